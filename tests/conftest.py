"""Shared fixtures. `smoke_run`: the whole pipeline (six notebooks, report, notebook PDFs) on the smoke profile,
run once per session into a temporary folder; tests that read a finished run use it instead of running again."""

from __future__ import annotations

import shutil

import pytest

from vaelib.pipeline.plan import RunOptions
from vaelib.pipeline.runner import RunResult, run_pipeline


def tex_available() -> bool:
    """What building and reading the PDFs needs: TeX, pandoc (nbconvert) and pdftotext (the tests)."""
    return all(shutil.which(tool) for tool in ("latexmk", "xelatex", "pandoc", "pdftotext"))


needs_tex = pytest.mark.skipif(not tex_available(), reason="latexmk, xelatex, pandoc or pdftotext not installed")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> RunResult:
    """The run folder of a complete smoke pipeline; treat it as read-only (other tests share it)."""
    return run_pipeline(RunOptions(tmp_path_factory.mktemp("smoke-run"), profile="smoke"))
