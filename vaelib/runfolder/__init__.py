"""The run-folder layer: reads what earlier notebooks wrote into RUN_DIR (checkpoints, metrics JSON), passes plain
values (models, tensors, dicts) to the compute layers, and writes their results back. Only this layer (with
`vaelib.run` and the pipeline) takes a `RunContext`."""
