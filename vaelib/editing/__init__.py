"""Latent-space editing of notebooks 02-05: pure functions of tensors, models and arrays (the run folder's
reading and writing is `vaelib.runfolder`'s)."""
