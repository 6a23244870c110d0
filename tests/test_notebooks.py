"""The notebook registry (vaelib/notebooks.py) agrees with the notebook files, the report's sections and their
tables and figures, and the report's generated section list."""

from __future__ import annotations

import re

from vaelib import notebooks
from vaelib.pipeline.plan import NOTEBOOKS_DIR
from vaelib.report.build import REPORT_SRC
from vaelib.report.generated import sections_tex

SECTIONS_DIR = REPORT_SRC / "sections"
APPENDIX = "appendix"  # after \appendix in main.tex: run details of every run, fed by no one notebook
RUN_TABLES = {"notebooks", "all-metrics"}  # the appendix's tables, from manifest.json and every metric


def _uses(command: str) -> set[str]:
    found = set()
    for path in SECTIONS_DIR.glob("*.tex"):
        found |= set(re.findall(rf"\\{command}{{([^}}]+)}}", path.read_text()))
    return found


def test_every_notebook_file_is_registered_and_every_entry_has_its_file():
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == sorted(notebooks.NAMES)
    assert notebooks.TRAINING_NOTEBOOK in notebooks.NAMES


def test_report_inputs_the_registered_sections_in_registry_order():
    sections = notebooks.report_sections()
    assert sorted({*sections, APPENDIX}) == sorted(p.stem for p in SECTIONS_DIR.glob("*.tex"))
    assert sections_tex() == "".join(f"\\input{{sections/{name}}}\n" for name in sections)
    main = (REPORT_SRC / "main.tex").read_text()
    assert "\\input{run-sections.tex}" in main
    assert re.findall(r"\\input{sections/(\w+)}", main) == [APPENDIX]  # the others come from the registry


def test_sections_use_only_tables_and_figure_groups_that_notebooks_declare():
    names = [spec.name for spec in notebooks.tables()]
    assert len(names) == len(set(names))  # one run-table-<name>.tex per table
    assert _uses("runtable") == set(names) | RUN_TABLES
    assert _uses("runfigures") == set(notebooks.figure_groups())


def test_a_notebook_captions_only_figures_of_its_own_groups_and_outputs():
    for nb in notebooks.REGISTRY:
        for prefix in nb.figure_groups:
            assert any(p.startswith(f"figures/{prefix}_") for p in nb.outputs), (nb.name, prefix)
        for file in nb.captions:
            assert file.split("_", 1)[0] in nb.figure_groups, (nb.name, file)
