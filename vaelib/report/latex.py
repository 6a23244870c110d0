"""Values -> LaTeX text: one number format for the whole report, escaping, booktabs tables, placeholders."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import VaelibError

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


class ReportError(VaelibError):
    """LaTeX failed on the report; the message names the first TeX error and the log file."""


def escape_latex(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def format_number(value) -> str:
    """One format for every number in the report: integers as is, floats with 3 decimals (3 significant
    digits in e-notation when tiny or huge), None (a NaN saved as null) as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.3f}"
        return f"{value:.2e}"
    return str(value)


def format_value(value) -> str:
    """LaTeX text for one JSON scalar: a formatted number or an escaped string."""
    return escape_latex(value) if isinstance(value, str) else format_number(value)


def is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    align: str = "r"


def latex_table(rows: list[dict], columns: list[Column], caption: str, label: str) -> str:
    """A booktabs longtable (tables of 40 attributes may span pages); a missing cell prints as a dash."""
    spec = "".join(c.align for c in columns)
    header = " & ".join(rf"\textbf{{{escape_latex(c.header)}}}" for c in columns) + r" \\"
    body = [" & ".join(format_value(r[c.key]) if c.key in r else "--" for c in columns) + r" \\" for r in rows]
    # Wide tables (the edit evaluation has a dozen columns) shrink instead of running off the page: a longtable
    # cannot be scaled as a box.
    size = r"{\footnotesize" if len(columns) <= 8 else r"{\scriptsize\setlength{\tabcolsep}{2.5pt}"
    return "\n".join([
        size,
        rf"\begin{{longtable}}{{{spec}}}",
        rf"\caption{{{caption}}}\label{{{label}}}\\",
        r"\toprule", header, r"\midrule", r"\endfirsthead",
        r"\toprule", header, r"\midrule", r"\endhead",
        *body,
        r"\bottomrule",
        r"\end{longtable}}",
        "",
    ])


def placeholder(kind: str, name: str, detail: str = "") -> str:
    """A visible box in the PDF and a `vaelib: missing <kind> <name>` line in the TeX log (names are ours:
    no braces, % or #, so \\detokenize can print them verbatim)."""
    return rf"\missingitem{{{kind}}}{{{name}}}{{{detail}}}" + "\n"
