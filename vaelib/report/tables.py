"""Table specs -> tables: the rows a spec finds in the run's metrics JSON, typeset by `latex.latex_table`.
The specs themselves belong to the notebooks that write their sources (vaelib/notebooks.py)."""

from __future__ import annotations

from ..notebooks import TableSpec
from .latex import Column, escape_latex, is_scalar, latex_table, placeholder


def _is_row(obj) -> bool:
    """A dict with at least one scalar (a dict of only dicts is a level above the rows)."""
    return isinstance(obj, dict) and any(is_scalar(v) for v in obj.values())


def records(obj, index: str = "name") -> list[dict] | None:
    """Rows of a table found in a JSON value: a list of dicts as is; a dict of dicts as one row per key (the
    key under `index`); otherwise the first such structure nested inside a dict. None when there is none."""
    if isinstance(obj, list) and obj and all(_is_row(r) for r in obj):
        return obj
    if isinstance(obj, dict) and obj and all(_is_row(v) for v in obj.values()):
        return [{index: key, **row} for key, row in obj.items()]
    if isinstance(obj, dict):
        for value in obj.values():
            found = records(value, index)
            if found:
                return found
    return None


def scalar_rows(obj: dict, index: str = "quantity") -> list[dict]:
    """A dict's top-level scalars as a two-column (name, value) table."""
    return [{index: key, "value": value} for key, value in obj.items() if is_scalar(value)]


def align(rows: list[dict], key: str) -> str:
    return "l" if any(isinstance(r.get(key), str) for r in rows) else "r"


def auto_columns(rows: list[dict], first: str = "") -> list[Column]:
    """Every scalar column in order of first appearance (`first` leading: the JSON files are saved with sorted
    keys); text left-aligned, numbers right-aligned."""
    keys: list[str] = [first] if any(first in r for r in rows) else []
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and is_scalar(v)]
    return [Column(k, k.replace("_", " "), align(rows, k)) for k in keys]


def at(obj, path: str):
    """The value at a dotted `path` of a JSON tree, or None."""
    for part in filter(None, path.split(".")):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def table_rows(spec: TableSpec, metrics: dict[str, object]) -> list[dict]:
    rows = []
    for source in spec.sources:
        if source not in metrics:
            continue
        found = at(metrics[source], spec.path)
        part = None if spec.scalars else records(found, spec.index)
        if part is None and isinstance(found, dict):
            part = scalar_rows(found, spec.index)
        if part and len(spec.sources) > 1 and spec.label_sources:
            part = [{"source": source.replace("edit_eval_", ""), **row} for row in part]
        rows += part or []
    return rows


def table_tex(spec: TableSpec, metrics: dict[str, object]) -> str:
    rows = table_rows(spec, metrics)
    if not rows:
        where = ", ".join(f"metrics/{s}.json" for s in spec.sources)
        return placeholder("table", spec.name, f"from {where}")
    columns = [Column(k, h, align(rows, k)) for k, h in spec.columns] or auto_columns(rows, spec.index)
    return latex_table(rows, columns, escape_latex(spec.caption), f"tab:{spec.name}")
