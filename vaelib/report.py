"""Run folder -> LaTeX report: every number in the PDF comes from `RUN_DIR/metrics/*.json` through generated files.

`write_generated(run_dir)` writes `RUN_DIR/report/generated/`:
    run-info.tex      title-page facts from manifest.json (profile, data, git revision, device)
    run-metrics.tex   one macro per JSON value: `\\metric{likelihood.elbo_bpd}` (a missing key prints "??")
    run-table-*.tex   tables built from JSON records (classifier per attribute, edit evaluation, likelihood, ...)
    run-figs-*.tex    one figure per file matching a prefix (amp_*.png, ...), or a placeholder box
`build_report(run_dir)` then runs latexmk on `report/main.tex` into `RUN_DIR/report/build` and copies the PDF to
`RUN_DIR/report.pdf`. The generated folder and the run's figures reach TeX through TEXINPUTS, so no path of the
run folder is ever written into TeX source (paths with `_`, `%` or `~` would need escaping).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .data.attributes import CELEBA_ATTRIBUTES
from .errors import VaelibError
from .run import PROJECT_ROOT, read_manifest

REPORT_SRC = PROJECT_ROOT / "report"
TEX_TOOLS = ("latexmk", "xelatex", "pandoc")  # pandoc: nbconvert turns markdown cells into LaTeX with it
DEBIAN_TEX = ("latexmk texlive-xetex texlive-latex-recommended texlive-fonts-recommended texlive-plain-generic "
              "pandoc")
MAX_INDEXED = 50  # list items get their own macro up to this length; longer lists are curves (figures only)
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


class ReportError(VaelibError):
    """LaTeX failed on the report; the message names the first TeX error and the log file."""


def missing_tex_tools() -> list[str]:
    return [tool for tool in TEX_TOOLS if shutil.which(tool) is None]


def no_tex_message(missing: Iterable[str]) -> str:
    return (f"report: {', '.join(missing)} not found, so report.pdf and the notebook PDFs are skipped "
            f"(everything else is done); install with `apt-get install {DEBIAN_TEX}` "
            f"or `conda install -c conda-forge texlive-core latexmk pandoc`.")


def no_pandoc_message() -> str:
    return ("report: pandoc not found, so the notebook PDFs are skipped (report.pdf is built); install it with "
            "`apt-get install pandoc` or `conda install -c conda-forge pandoc`.")


# ---------------------------------------------------------------------------------------------------------------
# values -> text


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


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


# ---------------------------------------------------------------------------------------------------------------
# metrics -> macros


def flatten(obj, prefix: str = "") -> dict[str, object]:
    """Dotted keys for every scalar in a JSON tree. Lists add `<key>.<i>` (up to MAX_INDEXED items) and
    `<key>.last` (final epoch, largest K ...); a list of scalars is also `<key>` itself, comma-joined."""
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(obj, list):
        out = {}
        if obj and len(obj) <= MAX_INDEXED:
            for i, value in enumerate(obj):
                out.update(flatten(value, f"{prefix}.{i}"))
        if obj:
            out.update(flatten(obj[-1], f"{prefix}.last"))
        if obj and all(_is_scalar(v) and not isinstance(v, str) for v in obj) and len(obj) <= MAX_INDEXED:
            out[prefix] = ", ".join(format_number(v) for v in obj)
        return out
    return {prefix: obj}


def macro_key(key: str) -> str:
    """Keys go inside \\csname; characters other than letters, digits, `_ . -` become `-`."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", key)


def load_metrics(run_dir: Path) -> dict[str, object]:
    """metrics/<name>.json -> {name: parsed JSON}; an unreadable file is an error naming it."""
    metrics = {}
    for path in sorted((run_dir / "metrics").glob("*.json")):
        try:
            metrics[path.stem] = json.loads(path.read_text())
        except ValueError as e:
            raise ReportError(f"{path} is not valid JSON ({e}); re-run the notebook that writes it.") from None
    return metrics


def metric_values(metrics: dict[str, object]) -> dict[str, object]:
    return {macro_key(k): v for k, v in flatten(metrics).items()}


def metrics_tex(values: dict[str, object]) -> str:
    lines = ["% generated by vaelib.report from metrics/*.json -- do not edit"]
    lines += [rf"\expandafter\def\csname m@{key}\endcsname{{{format_value(v)}}}" for key, v in values.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# tables


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    align: str = "r"


def _is_row(obj) -> bool:
    """A dict with at least one scalar (a dict of only dicts is a level above the rows)."""
    return isinstance(obj, dict) and any(_is_scalar(v) for v in obj.values())


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
    return [{index: key, "value": value} for key, value in obj.items() if _is_scalar(value)]


def _align(rows: list[dict], key: str) -> str:
    return "l" if any(isinstance(r.get(key), str) for r in rows) else "r"


def auto_columns(rows: list[dict], first: str = "") -> list[Column]:
    """Every scalar column in order of first appearance (`first` leading: the JSON files are saved with sorted
    keys); text left-aligned, numbers right-aligned."""
    keys: list[str] = [first] if any(first in r for r in rows) else []
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and _is_scalar(v)]
    return [Column(k, k.replace("_", " "), _align(rows, k)) for k in keys]


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


@dataclass(frozen=True)
class TableSpec:
    """A generated table: records found at `path` (dotted; "" = the first records in the file) in each source
    JSON, or with `scalars` that dict's scalar entries; a source without records contributes its scalars.
    Rows of several sources get a `source` column unless `label_sources` is off (rows that name their origin).
    `columns`: (key, header) pairs to show; empty = every scalar column."""

    name: str
    sources: tuple[str, ...]
    caption: str
    path: str = ""
    index: str = "name"
    scalars: bool = False
    label_sources: bool = True
    columns: tuple[tuple[str, str], ...] = ()


TABLES = (
    TableSpec("classifier", ("classifier",), "Test-split accuracy per attribute of the latent classifier and the "
              "judge, each deciding at its threshold calibrated on the validation split (thr.), and the "
              "majority-class baseline (rendered: drawn by the synthetic generator).",
              path="attribute_table",
              columns=(("attribute", "attribute"), ("rendered", "rendered"), ("majority_baseline", "baseline"),
                       ("classifier_threshold", "thr."), ("classifier_accuracy", "classifier"),
                       ("classifier_balanced", "balanced"), ("judge_threshold", "thr."),
                       ("judge_accuracy", "judge"), ("judge_balanced", "balanced"))),
    TableSpec("classifier-summary", ("classifier",), "Mean accuracy over attributes at the calibrated thresholds, "
              "and the worst attribute's balanced accuracy.", path="summary",
              columns=(("model", "model"), ("attributes", "attributes"), ("accuracy", "accuracy"),
                       ("majority_baseline", "baseline"), ("balanced_accuracy", "balanced accuracy"),
                       ("worst_balanced_accuracy", "worst balanced"))),
    TableSpec("directions", ("feature_amp",), "Attribute directions compared in the edit evaluation.",
              path="directions", columns=(("target", "target"), ("method", "method"), ("note", "note"),
                                          ("spread", "spread"))),
    TableSpec("guidance-sweep", ("label_guidance",), "Label guidance against the closeness weight lambda, add and "
              "remove edits apart, each followed by its random-direction control at the same latent distances; "
              "n = faces the judge saw on the other side before the edit; success with its Wilson 95% "
              "interval (low, high).",
              path="sweep", columns=(("target", "target"), ("method", "method"), ("direction", "dir."),
                                     ("lambda", "lambda"), ("n", "n"), ("success_rate", "success"),
                                     ("success_lo", "low"), ("success_hi", "high"),
                                     ("classifier_success", "classifier"), ("latent_l2", "latent L2"),
                                     ("pixel_mse", "pixel MSE"), ("other_change", "other attr."))),
    TableSpec("edit-eval", ("edit_eval_feature_amp", "edit_eval_label_guidance"),
              "Edit evaluation: every editing method scored by the judge at its calibrated thresholds (thr.), "
              "add and remove edits apart (dir.), with the random-direction control at the same latent distance; "
              "n = faces the judge saw on the other side before the edit, success = share whose judged decision "
              "flipped to the goal, with its Wilson 95% interval (low, high).", path="rows",
              label_sources=False,
              columns=(("target", "target"), ("method", "method"), ("direction", "dir."), ("n", "n"),
                       ("success_rate", "success"), ("success_lo", "low"), ("success_hi", "high"),
                       ("other_change", "other attr."), ("pixel_mse", "pixel MSE"), ("latent_l2", "latent L2"),
                       ("judge_threshold", "thr."), ("judge_balanced_accuracy", "judge bal. acc."))),
    TableSpec("bonus", ("likelihood",), "The assignment's bonus metric as it defines it: this run beside the "
              "values the seed solution published.", path="bonus_table",
              columns=(("quantity", "quantity"), ("this_run", "this run"), ("seed_published", "seed published"))),
    TableSpec("likelihood", ("likelihood",), "Likelihood bounds on the test split (bits per dimension).",
              path="iwae", index="k"),
    TableSpec("likelihood-summary", ("likelihood",), "Likelihood summary (all scalar entries of likelihood.json).",
              index="quantity", scalars=True),
    TableSpec("fid", ("fid",), "FID and KID against the test split (lower is better; n: generated images per set, "
              "as many test images as reference).", path="sets",
              columns=(("set", "images"), ("n", "n"), ("fid", "FID"), ("kid", "KID"), ("kid_std", "KID std"))),
    TableSpec("identity", ("identity_transfer",), "Identity transfer against the number K of components taken "
              "from the anchor: of n subject-anchor pairs, how many transferred faces are nearer the anchor's "
              "photos than the subject's other photos in the identity embedding (share and Wilson 95% "
              "interval).", path="identity.transfer",
              columns=(("k", "K"), ("n", "n"), ("successes", "nearer anchor"), ("success_rate", "share"),
                       ("success_lo", "low"), ("success_hi", "high"))),
)


def _at(obj, path: str):
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
        found = _at(metrics[source], spec.path)
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
    columns = [Column(k, h, _align(rows, k)) for k, h in spec.columns] or auto_columns(rows, spec.index)
    return latex_table(rows, columns, escape_latex(spec.caption), f"tab:{spec.name}")


def _in_appendix(key: str) -> bool:
    """List items (`.3`, `.last`) and per-attribute values are left out: they are curves or table rows."""
    return not any(p.isdigit() or p == "last" or p in CELEBA_ATTRIBUTES for p in key.split("."))


def all_metrics_tex(values: dict[str, object]) -> str:
    """Appendix: every other metric key and value, so a reader can find any number the text quotes."""
    rows = [{"key": k, "value": v} for k, v in values.items() if _in_appendix(k)]
    if not rows:
        return placeholder("table", "all-metrics", "no metrics/*.json in this run")
    columns = [Column("key", "key", "l"), Column("value", "value", "l")]
    return latex_table(rows, columns, "Every metric of this run (\\texttt{metrics/*.json}).", "tab:all-metrics")


# ---------------------------------------------------------------------------------------------------------------
# figures and title page


FIGURE_GROUPS = ("amp", "guidance", "identity")  # notebooks 03-05: every figures/<prefix>_* file, in name order
FIGURE_CAPTIONS = {  # captions of the figures the notebooks write; any other file is captioned by its name
    "amp_correlation.pdf": "Correlation of latent dimensions with the attributes.",
    "amp_attribute_dims.png": "Sweeps along the latent dimension most correlated with each target attribute.",
    "amp_top_dims.png": "The most variable dimensions, ranked by how much the judge sees an attribute change.",
    "amp_directions.png": "Sweeps along the attribute directions of each method.",
    "amp_conditional.png": "Boundary normal against conditional normal (correlated attributes held fixed).",
    "guidance_edits.png": "Label guidance: each target attribute added (+) and removed (-).",
    "guidance_lambda.pdf": "Label guidance: judged success (add and remove pooled) against latent distance for "
                           "each lambda, by the judge, by the guiding classifier, and for random directions "
                           "at the same distances.",
    "guidance_sweep.png": "Label guidance for increasing lambda.",
    "identity_essences.png": "Identity essences: images of one person and the decoded mean of their latents.",
    "identity_grid.png": "Identity transfer: the anchor's leading principal components given to each subject.",
    "identity_k_sweep.png": "Identity transfer against the number K of components taken from the anchor.",
    "identity_k_sweep.pdf": "Share of transferred faces nearer the anchor than the subject in the identity "
                            "embedding, against K, beside the embedding's verification rate and chance.",
}


def figure_group_tex(run_dir: Path, prefix: str) -> str:
    files = sorted(p.name for p in (run_dir / "figures").glob(f"{prefix}_*") if p.suffix in (".png", ".pdf"))
    if not files:
        return placeholder("figure", f"{prefix}_*")
    captions = [FIGURE_CAPTIONS.get(f) or Path(f).stem[len(prefix) + 1:].replace("_", " ") for f in files]
    return "".join(rf"\runfigure{{{f}}}{{{escape_latex(c)}}}" + "\n" for f, c in zip(files, captions, strict=True))


def run_info_tex(manifest: dict) -> str:
    """Title-page facts; a run on anything but real CelebA sets \\syntheticdatatrue so the title page says so."""
    git = manifest.get("git") or {}
    revision = (git.get("revision") or "unknown")[:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    facts = {
        "runprofile": manifest.get("profile", "unknown"),
        "rundata": manifest.get("data", "unknown"),
        "rungit": revision,
        "rundevice": manifest.get("device", "unknown"),
        "rundate": (manifest.get("finished") or manifest.get("started") or "unknown")[:19].replace("T", " "),
        "runseed": manifest.get("seed", "unknown"),
    }
    lines = [rf"\newcommand{{\{name}}}{{{format_value(value)}}}" for name, value in facts.items()]
    lines.append(r"\newif\ifsyntheticdata")
    if manifest.get("data") != "celeba":
        lines.append(r"\syntheticdatatrue")
    return "\n".join(lines) + "\n"


def metric_flags_tex(metrics: dict[str, object]) -> str:
    """TeX switches for text that depends on what a run measured: \\ifidentitymeasured is false where 05 had
    no identity labels (Kaggle layout) or did not run, so the report says "not measured" instead of "??"."""
    identity = _at(metrics.get("identity_transfer"), "identity.measured")
    return r"\newif\ifidentitymeasured" + "\n" + (r"\identitymeasuredtrue" + "\n" if identity else "")


def notebooks_tex(manifest: dict) -> str:
    """Wall time and finish time of each notebook, from the manifest."""
    rows = [{"notebook": name, "status": nb.get("status"), "wall_s": nb.get("wall_s"),
             "finished": (nb.get("finished") or "")[:19].replace("T", " ")}
            for name, nb in (manifest.get("notebooks") or {}).items()]
    if not rows:
        return placeholder("table", "notebooks", "no manifest.json in this run")
    columns = [Column("notebook", "notebook", "l"), Column("status", "status", "l"),
               Column("wall_s", "wall time (s)"), Column("finished", "finished", "l")]
    return latex_table(rows, columns, "Notebooks of this run.", "tab:notebooks")


# ---------------------------------------------------------------------------------------------------------------
# build


def _write(path: Path, text: str) -> None:
    """Only rewrite changed files: latexmk then sees nothing new and a re-run costs about a second."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def write_generated(run_dir: Path) -> Path:
    out = run_dir / "report" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    metrics = load_metrics(run_dir)
    values = metric_values(metrics)
    manifest = read_manifest(run_dir)
    _write(out / "run-info.tex", run_info_tex(manifest) + metric_flags_tex(metrics))
    _write(out / "run-table-notebooks.tex", notebooks_tex(manifest))
    _write(out / "run-metrics.tex", metrics_tex(values))
    _write(out / "run-table-all-metrics.tex", all_metrics_tex(values))
    for spec in TABLES:
        _write(out / f"run-table-{spec.name}.tex", table_tex(spec, metrics))
    for prefix in FIGURE_GROUPS:
        _write(out / f"run-figs-{prefix}.tex", figure_group_tex(run_dir, prefix))
    return out


def first_tex_error(log_text: str) -> str:
    """The first `! ...` or `file.tex:12: ...` line of a TeX log."""
    errors = [line for line in log_text.splitlines() if line.startswith("!") or re.match(r"^\S+\.tex:\d+: ", line)]
    return errors[0] if errors else "no TeX error line found"


def _missing_items(log: Path) -> list[str]:
    """The report's \\metric and \\runfigure log `vaelib: missing ...` for keys and figures the run lacks."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    return sorted(set(re.findall(r"vaelib: missing (\S+ \S+)", text)))


def build_report(run_dir: Path, src: Path = REPORT_SRC) -> Path:
    """Generated files + latexmk -> RUN_DIR/report.pdf. Call only when `missing_tex_tools()` is empty."""
    run_dir = Path(run_dir).resolve()
    generated = write_generated(run_dir)
    build = run_dir / "report" / "build"
    build.mkdir(parents=True, exist_ok=True)
    # Trailing separator: TeX's own search path follows the run's folders.
    env = {**os.environ, "TEXINPUTS": os.pathsep.join([str(generated), str(run_dir / "figures"), ""])}
    cmd = ["latexmk", "-xelatex", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
           f"-outdir={build}", "main.tex"]
    with open(build / "latexmk.out", "w") as out:
        done = subprocess.run(cmd, cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        log = build / "main.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        raise ReportError(f"LaTeX failed on the report: {first_tex_error(text)} (full log: {log}).")
    missing = _missing_items(build / "main.log")
    if missing:
        print(f"report: {len(missing)} item(s) not produced by this run: {', '.join(missing)}")
    target = run_dir / "report.pdf"
    shutil.copyfile(build / "main.pdf", target)
    return target
