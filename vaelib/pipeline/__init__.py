"""Batch runner: the registered notebooks under papermill into one run folder, then the report and notebook PDFs.

    python -m vaelib run --profile demo --run-dir runs/demo

Each notebook gets the common parameters (RUN_DIR, PROFILE, DATA, CELEBA_ROOT, SEED, DEVICE, INTERACTIVE=False,
PROGRESS=False) merged with `configs/<profile>.json` ({"common": {...}, "<notebook>": {...}}), checked against
its `parameters` cell before anything runs (`plan`). The executed copy goes to RUN_DIR/<notebook>.ipynb and
RUN_DIR/manifest.json records parameters, code revision, package versions, device and timings (`manifest`). A
notebook whose executed copy finished cleanly from the same source with the same parameters and whose outputs
exist is skipped unless `force`; once one notebook runs, every later one runs too, since they read what it wrote
(`runner`). Then report.pdf and the notebook PDFs (`documents`). Which notebooks, and what each must write:
vaelib/notebooks.py.
"""
