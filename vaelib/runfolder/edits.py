"""The scored edit rows of a run folder: each edit notebook (03, 04) writes its own file, 05 reads them all."""

from __future__ import annotations

import json

from ..editing.evaluate import sort_edit_rows
from ..run import RunContext


def save_edit_eval(ctx: RunContext, notebook: str, rows: list[dict]) -> None:
    ctx.save_json(f"edit_eval_{notebook}", {"rows": rows})


def collect_edit_eval(ctx: RunContext) -> list[dict]:
    """Rows of every metrics/edit_eval_*.json of the run, in `sort_edit_rows` order."""
    rows = []
    for path in sorted(ctx.metrics.glob("edit_eval_*.json")):
        rows += json.loads(path.read_text())["rows"]
    return sort_edit_rows(rows)
