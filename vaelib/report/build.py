"""TeX tools and latexmk: the generated files plus report/main.tex -> RUN_DIR/report.pdf."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ..run import PROJECT_ROOT
from .generated import write_generated
from .latex import ReportError

REPORT_SRC = PROJECT_ROOT / "report"
TEX_TOOLS = ("latexmk", "xelatex", "pandoc")  # pandoc: nbconvert turns markdown cells into LaTeX with it
DEBIAN_TEX = ("latexmk texlive-xetex texlive-latex-recommended texlive-fonts-recommended texlive-plain-generic "
              "pandoc")


def missing_tex_tools() -> list[str]:
    return [tool for tool in TEX_TOOLS if shutil.which(tool) is None]


def no_tex_message(missing: Iterable[str]) -> str:
    return (f"report: {', '.join(missing)} not found, so report.pdf and the notebook PDFs are skipped "
            f"(everything else is done); install with `apt-get install {DEBIAN_TEX}` "
            f"or `conda install -c conda-forge texlive-core latexmk pandoc`.")


def no_pandoc_message() -> str:
    return ("report: pandoc not found, so the notebook PDFs are skipped (report.pdf is built); install it with "
            "`apt-get install pandoc` or `conda install -c conda-forge pandoc`.")


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
