"""vaelib: the library behind the vae-celeba notebooks.

Modules, one job each (their layers: docs/ARCHITECTURE.md): `config` (profiles, seeding, device), `data`
(CelebA and synthetic faces as uint8 crops), `models` (VAE and attribute classifier, each with its config),
`losses`, `training` (one loop for both, + `checkpoint`), `likelihood` (bits/dim), `editing` (latent edits and
their evaluation), `figures` (figures, tables and sliders), `run` (a run folder) and `runfolder` (what notebooks
read from and write to it), `notebooks` (the notebook registry), `pipeline` / `report` (batch run and LaTeX
report), `lab` (JupyterLab), `atomic` (files written all-or-nothing).
Submodules are imported explicitly (`from vaelib.runfolder.vae import train_vae`) so `import vaelib` stays cheap.
"""

import os

# On Apple silicon, operators that MPS lacks then run on the CPU instead of stopping the run. torch reads this
# variable once, when it is imported: vaelib's submodules import torch after this line (a user's own value wins).
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

__version__ = "0.1.0"
