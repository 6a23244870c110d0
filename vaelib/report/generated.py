"""The run-*.tex files of one run (RUN_DIR/report/generated/): title-page facts, metric macros, the section list,
tables and figure groups, each derived from the run folder and the notebook registry."""

from __future__ import annotations

from pathlib import Path

from .. import notebooks
from ..run import read_manifest
from .latex import Column, escape_latex, format_value, latex_table, placeholder
from .metrics import all_metrics_tex, load_metrics, metric_values, metrics_tex
from .tables import at, table_tex


def figure_group_tex(run_dir: Path, prefix: str) -> str:
    files = sorted(p.name for p in (run_dir / "figures").glob(f"{prefix}_*") if p.suffix in (".png", ".pdf"))
    if not files:
        return placeholder("figure", f"{prefix}_*")
    known = notebooks.figure_captions()  # any other file is captioned by its name
    captions = [known.get(f) or Path(f).stem[len(prefix) + 1:].replace("_", " ") for f in files]
    return "".join(rf"\runfigure{{{f}}}{{{escape_latex(c)}}}" + "\n" for f, c in zip(files, captions, strict=True))


def sections_tex() -> str:
    """main.tex inputs this instead of a hand-kept list, so a new notebook's section needs no edit there."""
    return "".join(rf"\input{{sections/{name}}}" + "\n" for name in notebooks.report_sections())


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
    identity = at(metrics.get("identity_transfer"), "identity.measured")
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
    _write(out / "run-sections.tex", sections_tex())
    _write(out / "run-table-notebooks.tex", notebooks_tex(manifest))
    _write(out / "run-metrics.tex", metrics_tex(values))
    _write(out / "run-table-all-metrics.tex", all_metrics_tex(values))
    for spec in notebooks.tables():
        _write(out / f"run-table-{spec.name}.tex", table_tex(spec, metrics))
    for prefix in notebooks.figure_groups():
        _write(out / f"run-figs-{prefix}.tex", figure_group_tex(run_dir, prefix))
    return out
