"""Fixed-width text tables of metric rows, printed in the notebooks."""

from __future__ import annotations

import numpy as np

from ..editing.evaluate import COLUMNS


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    """Fixed-width text table (numbers to 3 decimals) of `rows` (default columns: the edit metrics)."""
    def cell(v) -> str:
        if isinstance(v, float):
            return "nan" if not np.isfinite(v) else f"{v:.3f}"
        return "-" if v is None else str(v)

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table)
