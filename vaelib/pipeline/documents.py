"""After the notebooks: report.pdf and a PDF of each executed notebook, built side by side."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path

from ..notebooks import NAMES
from ..report import build as report_build
from ..report.generated import write_generated
from ..report.latex import ReportError


def notebook_pdf(executed: Path, target: Path) -> Path:
    """PDF of an executed notebook via nbconvert's LaTeX exporter, without the `interactive` (slider) cells."""
    from nbconvert import PDFExporter
    from nbconvert.exporters.pdf import LatexFailed
    from traitlets.config import Config

    config = Config()
    # One xelatex pass: a notebook has no cross-references or table of contents, so nbconvert's default of
    # three passes renders the same pages (compared with pdftoppm) in three times the time.
    config.PDFExporter.latex_count = 1
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = {"interactive"}
    try:
        pdf, _ = PDFExporter(config=config).from_filename(str(executed))
    except LatexFailed as e:
        raise ReportError(f"LaTeX failed on the PDF of {executed}: {report_build.first_tex_error(e.output)}.") \
            from None
    target.write_bytes(pdf)
    return target


def notebook_pdfs(run_dir: Path, notebooks: tuple[str, ...], pool: Executor | None = None) -> list[Path]:
    """RUN_DIR/pdf/<notebook>.pdf for each executed notebook; an up-to-date PDF is kept. With `pool`, the
    PDFs are built in its processes (nbconvert changes the working directory, so threads would collide)."""
    out = run_dir / "pdf"
    out.mkdir(exist_ok=True)
    jobs = []
    for name in notebooks:
        executed, target = run_dir / f"{name}.ipynb", out / f"{name}.pdf"
        if not executed.is_file():
            continue
        if not target.is_file() or target.stat().st_mtime < executed.stat().st_mtime:
            jobs.append(pool.submit(notebook_pdf, executed, target) if pool else notebook_pdf(executed, target))
        else:
            jobs.append(target)
    return [job.result() if isinstance(job, Future) else job for job in jobs]


def build_documents(run_dir: Path, notebooks: tuple[str, ...] = NAMES) -> list[Path]:
    """report.pdf and notebook PDFs, built side by side (each xelatex run uses one core); without TeX one line
    says what to install and only the generated LaTeX is written (`make report` builds it later)."""
    run_dir = Path(run_dir).resolve()
    missing = report_build.missing_tex_tools()
    if set(missing) - {"pandoc"}:
        write_generated(run_dir)
        print(report_build.no_tex_message(missing), flush=True)
        return []
    t0 = time.perf_counter()
    print("documents: report.pdf and notebook PDFs ...", end=" ", flush=True)
    if missing:  # only pandoc: report.pdf needs latexmk and xelatex alone, the notebook PDFs need pandoc too
        documents = [report_build.build_report(run_dir)]
        print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
        print(report_build.no_pandoc_message(), flush=True)
        return documents
    workers = max(1, min(len(notebooks) + 1, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        report_pdf = pool.submit(report_build.build_report, run_dir)
        pdfs = notebook_pdfs(run_dir, notebooks, pool)
        documents = [report_pdf.result(), *pdfs]
    print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
    return documents
