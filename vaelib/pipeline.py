"""Batch runner: the six notebooks under papermill into one run folder, then the report and notebook PDFs.

    python -m vaelib run --profile demo --run-dir runs/demo

Each notebook gets the common parameters (RUN_DIR, PROFILE, DATA, CELEBA_ROOT, SEED, DEVICE, INTERACTIVE=False,
PROGRESS=False) merged with `configs/<profile>.json` ({"common": {...}, "<notebook>": {...}}), checked against
its `parameters` cell before anything runs. The executed copy goes to RUN_DIR/<notebook>.ipynb and
RUN_DIR/manifest.json records parameters, code revision, package versions, device and timings. A notebook
whose executed copy finished cleanly from the same source with the same parameters and whose outputs exist is
skipped unless `force`; once one notebook runs, every later one runs too, since they read what it wrote.
"""

from __future__ import annotations

import ast
import hashlib
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from . import report
from .atomic import check_writable
from .checkpoint import load_checkpoint
from .config import device_name, get_profile, resolve_device
from .data.celeba_files import requested_celeba_root
from .errors import ConfigError, VaelibError
from .run import PROJECT_ROOT, read_manifest, resolve_path, write_manifest
from .runfolder.vae import prepare_run_dir
from .runlock import run_lock

NOTEBOOKS = ("01_train_vae", "02_classifier", "03_feature_amp", "04_label_guidance", "05_identity_transfer", "06_bpd")
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CONFIG_DIR = PROJECT_ROOT / "configs"
# What each notebook must leave in RUN_DIR (docs/CONTRACT.md); a glob must match at least one file.
EXPECTED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "01_train_vae": ("checkpoints/last.pt", "checkpoints/best.pt", "metrics/train_history.json", "metrics/vae.json",
                     "metrics/reconstruction.json",
                     "figures/loss_curves.pdf", "figures/reconstructions.png", "figures/interpolation.png",
                     "figures/samples_temperature.png"),
    "02_classifier": ("checkpoints/classifier.pt", "checkpoints/judge.pt", "metrics/classifier.json",
                      "figures/classifier_accuracy.pdf"),
    "03_feature_amp": ("metrics/feature_amp.json", "metrics/edit_eval_feature_amp.json", "figures/amp_*.png"),
    "04_label_guidance": ("metrics/label_guidance.json", "metrics/edit_eval_label_guidance.json",
                          "figures/guidance_*.png", "figures/guidance_lambda.pdf"),
    "05_identity_transfer": ("metrics/identity_transfer.json", "figures/identity_*.png"),
    "06_bpd": ("metrics/likelihood.json", "figures/iwae_vs_k.pdf", "metrics/fid.json"),
}
TRAINING_NOTEBOOK = "01_train_vae"
RUNNER_PARAMETERS = ("RUN_DIR", "PROFILE", "DATA", "CELEBA_ROOT", "SEED", "DEVICE", "INTERACTIVE", "PROGRESS")
VERSIONED_PACKAGES = ("torch", "torchvision", "numpy", "papermill", "scikit-learn", "nbconvert")
# The kernel's own log stays out of the console: its start-up notice that local TCP is unencrypted, and the
# "KeyboardInterrupt caught in kernel" it logs as an ERROR when jupyter_client interrupts it before shutting it
# down after the last cell. Errors in cells still reach the executed notebook and the runner's one-line failure
# message, and a dead kernel is nbclient's DeadKernelError.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
# The runner's own interpreter (jupyter_client maps a "python3" kernel to sys.executable), not whatever the
# notebook metadata names: a fresh machine has no "vae-celeba" kernelspec registered.
KERNEL = "python3"
_NO_DEFAULT = object()  # a parameter whose default is not a literal: any value is accepted


class NotebookFailedError(VaelibError):
    """A notebook raised; the executed copy in the run folder shows the traceback."""


@dataclass
class RunOptions:
    run_dir: str | Path
    profile: str = "demo"
    data: str | None = None  # None = the profile's data source
    seed: int = 0
    device: str = "auto"
    celeba_root: str = ""  # "" = $CELEBA_ROOT
    force: bool = False
    only: tuple[str, ...] = ()  # names or number prefixes ("02"); empty = all
    documents: bool = True  # report.pdf and notebook PDFs after the notebooks
    verbose: bool = False  # stream what the notebooks print (training logs ...) to the console
    nproc: int = 1  # > 1: notebook 01's training runs first under torchrun with this many processes (DDP)
    notebooks: tuple[str, ...] = NOTEBOOKS
    notebooks_dir: Path = NOTEBOOKS_DIR
    config_dir: Path = CONFIG_DIR
    expected_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EXPECTED_OUTPUTS)


@dataclass
class RunResult:
    run_dir: Path
    executed: list[str]
    skipped: list[str]
    documents: list[Path]


# ---------------------------------------------------------------------------------------------------------------
# parameters


def select(notebooks: tuple[str, ...], only: tuple[str, ...]) -> list[str]:
    """`only` entries are full names or their number prefix ("02"); order follows `notebooks`."""
    if not only:
        return list(notebooks)
    chosen = set()
    for item in only:
        match = [n for n in notebooks if n == item or n.split("_", 1)[0] == item]
        if not match:
            raise ConfigError(f"--only {item!r} names no notebook; choose from {', '.join(notebooks)}.")
        chosen.update(match)
    return [n for n in notebooks if n in chosen]


def load_config(config_dir: Path, profile: str, notebooks: tuple[str, ...],
                _children: tuple[str, ...] = ()) -> dict[str, dict]:
    """configs/<profile>.json -> {notebook: parameters} (its "common" section merged under each notebook's).

    `"extends": "<profile>"` starts from another profile's parameters (the `spec` recipe runs notebooks 02-06
    exactly as `full` does), so a shared setting lives in one file.
    """
    path = Path(config_dir) / f"{profile}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; every profile needs a parameter file (it may hold {{}}).") from None
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}.") from None
    sections = {"description", "extends", "common", *notebooks}
    for section, params in raw.items():
        if section not in sections:
            raise ConfigError(f"{path} has a section {section!r} that names no notebook; valid sections: "
                              f"{', '.join(sorted(sections))}.")
        if section in ("description", "extends"):
            continue
        if not isinstance(params, dict):
            raise ConfigError(f"{path}: section {section!r} must be an object of parameter names and values.")
        runner_set = sorted(set(params) & set(RUNNER_PARAMETERS))
        if runner_set:
            raise ConfigError(f"{path}: {', '.join(runner_set)} in section {section!r} are set by the runner; "
                              f"use the command-line options (python -m vaelib run --help) instead.")
    base: dict[str, dict] = {nb: {} for nb in notebooks}
    parent = raw.get("extends")
    if parent is not None:
        if not isinstance(parent, str) or parent in (profile, *_children):
            raise ConfigError(f"{path}: \"extends\" must name another profile's parameter file without a cycle, "
                              f"not {parent!r}.")
        base = load_config(config_dir, parent, notebooks, (*_children, profile))
    return {nb: {**base[nb], **raw.get("common", {}), **raw.get(nb, {})} for nb in notebooks}


def declared_parameters(path: Path) -> dict[str, object]:
    """The notebook's parameters cell: name -> default value (papermill gives source text; literals only)."""
    import papermill

    found = papermill.inspect_notebook(str(path))
    if not found:
        raise ConfigError(f"{path} has no code cell tagged 'parameters'; see docs/CONTRACT.md.")
    declared = {}
    for name, info in found.items():
        try:
            declared[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            declared[name] = _NO_DEFAULT
    return declared


def _type_matches(value, default) -> bool:
    if default is _NO_DEFAULT or default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):  # JSON has no tuples; each element must fit some default element
        return isinstance(value, (list, tuple)) and (
            not default or all(any(_type_matches(v, d) for d in default) for v in value))
    return isinstance(value, type(default))


def _type_name(value) -> str:
    if isinstance(value, (list, tuple)) and value:
        return f"{type(value).__name__} of {'/'.join(sorted({_type_name(v) for v in value}))}"
    return type(value).__name__


def check_parameters(name: str, declared: dict[str, object], params: dict, source: str) -> None:
    """Every parameter must be declared in the notebook's parameters cell, with the type of its default."""
    for key, value in params.items():
        if key not in declared:
            raise ConfigError(f"{source} passes {key!r} to notebook {name}, whose parameters cell does not define "
                              f"it; valid names: {', '.join(declared)}.")
        default = declared[key]
        if not _type_matches(value, default):
            raise ConfigError(f"{source} passes {key}={value!r} ({_type_name(value)}) to notebook {name}, "
                              f"but its default there is {default!r} ({_type_name(default)}).")


def runner_parameters(opts: RunOptions, run_dir: Path) -> dict:
    data = opts.data or get_profile(opts.profile).data.source
    root = (requested_celeba_root(opts.celeba_root) or "") if data == "celeba" else ""
    return {
        "RUN_DIR": str(run_dir),
        "PROFILE": opts.profile,
        "DATA": data,
        "CELEBA_ROOT": str(Path(root).expanduser().resolve()) if root else "",
        "SEED": opts.seed,
        "DEVICE": opts.device,
        "INTERACTIVE": False,
        "PROGRESS": False,
    }


def plan(opts: RunOptions, run_dir: Path) -> list[tuple[str, Path, dict]]:
    """(name, source notebook, parameters) of each selected notebook, all validated before anything runs."""
    get_profile(opts.profile)  # an unknown profile fails here, not inside the first notebook
    if isinstance(opts.nproc, bool) or not isinstance(opts.nproc, int) or opts.nproc < 1:
        raise ConfigError(f"--nproc must be a positive number of training processes, not {opts.nproc!r}.")
    resolve_device(opts.device)  # so does DEVICE="tpu", or "cuda" on a machine without one
    config = load_config(opts.config_dir, opts.profile, opts.notebooks)
    common = runner_parameters(opts, run_dir)
    if common["DATA"] == "celeba":
        from .data import resolve_celeba_root

        resolve_celeba_root(common["CELEBA_ROOT"] or None)  # a wrong path fails now, not after minutes of work
    steps = []
    for name in select(opts.notebooks, opts.only):
        path = Path(opts.notebooks_dir) / f"{name}.ipynb"
        if not path.is_file():
            raise ConfigError(f"notebook {path} does not exist; the pipeline runs {', '.join(opts.notebooks)}.")
        declared = declared_parameters(path)
        check_parameters(name, declared, common, "the runner")
        check_parameters(name, declared, config[name], str(Path(opts.config_dir) / f"{opts.profile}.json"))
        steps.append((name, path, {**config[name], **common}))
    for name, _, params in steps:
        if name == TRAINING_NOTEBOOK:
            check_training(params, run_dir)
    return steps


def check_training(params: dict, run_dir: Path) -> None:
    """Notebook 01's training settings are valid, and fit a checkpoint already in the run folder: both fail now,
    not after the data is generated or loaded. (EPOCHS / BATCH_SIZE = 0 mean the profile's, as in 01.)"""
    from .run import build_profile
    from .training.resume import check_resume_config

    overrides = {k: params[p] for k, p in (("epochs", "EPOCHS"), ("batch_size", "BATCH_SIZE")) if params.get(p)}
    profile = build_profile(params["PROFILE"], params["DATA"], params["SEED"], **overrides)
    last = run_dir / "checkpoints" / "last.pt"
    if last.exists():
        check_resume_config(last, load_checkpoint(last, kind="vae"), profile.model, profile.train)


# ---------------------------------------------------------------------------------------------------------------
# manifest and completeness


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state() -> dict:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True,
                                  check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None  # not a git checkout (an sdist, a copied folder): the manifest says unknown
        return done.stdout.strip()

    status = git("status", "--porcelain")
    return {"revision": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def missing_outputs(run_dir: Path, patterns: tuple[str, ...]) -> list[str]:
    return [p for p in patterns if not any(run_dir.glob(p))]


def _finished_cleanly(executed: Path) -> bool:
    import nbformat

    try:
        meta = nbformat.read(executed, as_version=4).metadata.get("papermill", {})
    except (OSError, ValueError):
        return False
    return bool(meta.get("end_time")) and not meta.get("exception")


def _without_location(params: dict | None) -> dict | None:
    # RUN_DIR says where the folder is, not what is in it: a copied or moved run is still complete.
    return None if params is None else {k: v for k, v in params.items() if k != "RUN_DIR"}


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def is_complete(run_dir: Path, name: str, source: Path, params: dict, manifest: dict,
                outputs: tuple[str, ...]) -> bool:
    """Executed copy finished without error, from the same notebook source with the same parameters, and every
    declared output exists. (Library changes are not detected: --force re-runs.)"""
    entry = (manifest.get("notebooks") or {}).get(name, {})
    return (entry.get("status") == "completed"
            and _without_location(entry.get("parameters")) == _without_location(json.loads(json.dumps(params)))
            and entry.get("source_sha256") == source_hash(source)
            and _finished_cleanly(run_dir / f"{name}.ipynb")
            and not missing_outputs(run_dir, outputs))


# ---------------------------------------------------------------------------------------------------------------
# execution


def execute(name: str, source: Path, target: Path, params: dict, verbose: bool = False) -> None:
    """One notebook under papermill. What its cells print goes to the executed copy, and with `verbose` also to
    this process's stdout/stderr (training logs one line per N steps)."""
    import papermill
    from nbclient.exceptions import DeadKernelError

    streams = {"stdout_file": sys.stdout, "stderr_file": sys.stderr} if verbose else {}
    try:
        papermill.execute_notebook(str(source), str(target), parameters=params, kernel_name=KERNEL,
                                   progress_bar=False, extra_arguments=KERNEL_ARGUMENTS, **streams)
    except papermill.PapermillExecutionError as e:
        raise NotebookFailedError(f"notebook {name} failed: {e.ename}: {e.evalue} "
                                  f"(traceback in {target}).") from None
    except DeadKernelError:
        raise NotebookFailedError(f"notebook {name} failed: its kernel died (out of memory?); "
                                  f"the cells that ran are in {target}.") from None


def run_one(name: str, source: Path, params: dict, run_dir: Path, outputs: tuple[str, ...], entry: dict,
            verbose: bool = False) -> None:
    """Execute one notebook and record status, finish time and wall time in its manifest `entry`."""
    t0 = time.perf_counter()
    try:
        execute(name, source, run_dir / f"{name}.ipynb", params, verbose)
        lacking = missing_outputs(run_dir, outputs)
        if lacking:
            raise NotebookFailedError(f"notebook {name} finished but did not write {', '.join(lacking)} "
                                      f"(its outputs in vaelib.pipeline.EXPECTED_OUTPUTS).")
    except NotebookFailedError as e:
        entry.update(status="failed", error=str(e), finished=_now(), wall_s=round(time.perf_counter() - t0, 1))
        raise
    entry.update(status="completed", finished=_now(), wall_s=round(time.perf_counter() - t0, 1))


def run_notebooks(opts: RunOptions, run_dir: Path, steps, manifest: dict) -> tuple[list[str], list[str]]:
    """Skip complete notebooks until the first one that needs to run; from there on run every one."""
    executed, skipped = [], []
    entries = manifest.setdefault("notebooks", {})
    for i, (name, source, params) in enumerate(steps, 1):
        tag = f"[{i}/{len(steps)}] {name}"
        outputs = tuple(opts.expected_outputs.get(name, ()))
        if not opts.force and not executed and is_complete(run_dir, name, source, params, manifest, outputs):
            print(f"{tag}: complete with this source and these parameters, skipped (--force re-runs it)", flush=True)
            skipped.append(name)
            continue
        print(f"{tag} ...", end="\n" if opts.verbose else " ", flush=True)
        entries[name] = {"parameters": params, "source_sha256": source_hash(source), "status": "running",
                         "started": _now()}
        write_manifest(run_dir, manifest)
        try:
            run_one(name, source, params, run_dir, outputs, entries[name], opts.verbose)
        except NotebookFailedError:
            print("failed", flush=True)
            raise
        finally:
            write_manifest(run_dir, manifest)
        executed.append(name)
        print(f"{tag + ': ' if opts.verbose else ''}done in {entries[name]['wall_s']:.1f} s", flush=True)
    return executed, skipped


def torchrun_command(opts: RunOptions, run_dir: Path, params: dict) -> list[str]:
    """`python -m vaelib train` under torchrun with notebook 01's parameters, so that 01 finds the checkpoint it
    would have trained and only loads it."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={opts.nproc}",
           "-m", "vaelib", "train", "--run-dir", str(run_dir), "--profile", params["PROFILE"], "--data",
           params["DATA"], "--seed", str(params["SEED"]), "--device", params["DEVICE"]]
    for option, name in (("--celeba-root", "CELEBA_ROOT"), ("--epochs", "EPOCHS"), ("--batch-size", "BATCH_SIZE"),
                         ("--vgg-weights", "VGG_WEIGHTS")):
        if params.get(name):  # EPOCHS / BATCH_SIZE = 0 and empty paths mean the profile's, as in notebook 01
            cmd += [option, str(params[name])]
    return cmd


def train_in_parallel(opts: RunOptions, run_dir: Path, steps, manifest: dict) -> None:
    """With --nproc N > 1, notebook 01's training first runs as a torchrun job of N processes (the lock this runner
    holds passes to it through the environment); notebook 01 then resumes from the finished last.pt."""
    for name, source, params in steps:
        if opts.nproc <= 1 or name != TRAINING_NOTEBOOK:
            continue
        outputs = tuple(opts.expected_outputs.get(name, ()))
        if not opts.force and is_complete(run_dir, name, source, params, manifest, outputs):
            return
        print(f"training with {opts.nproc} processes (torchrun) ...", flush=True)
        t0 = time.perf_counter()
        done = subprocess.run(torchrun_command(opts, run_dir, params), check=False)
        if done.returncode != 0:
            raise NotebookFailedError(f"data-parallel training ({opts.nproc} processes under torchrun) failed with "
                                      f"exit status {done.returncode}; its messages are above, and a rerun resumes "
                                      "from the last checkpoint.")
        print(f"training done in {time.perf_counter() - t0:.1f} s", flush=True)


def notebook_pdf(executed: Path, target: Path) -> Path:
    """PDF of an executed notebook via nbconvert's LaTeX exporter, without the `interactive` (slider) cells."""
    from nbconvert import PDFExporter
    from nbconvert.exporters.pdf import LatexFailed
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = {"interactive"}
    try:
        pdf, _ = PDFExporter(config=config).from_filename(str(executed))
    except LatexFailed as e:
        raise report.ReportError(f"LaTeX failed on the PDF of {executed}: {report.first_tex_error(e.output)}.") \
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


def build_documents(run_dir: Path, notebooks: tuple[str, ...] = NOTEBOOKS) -> list[Path]:
    """report.pdf and notebook PDFs, built side by side (each xelatex run uses one core); without TeX one line
    says what to install and only the generated LaTeX is written (`make report` builds it later)."""
    run_dir = Path(run_dir).resolve()
    missing = report.missing_tex_tools()
    if set(missing) - {"pandoc"}:
        report.write_generated(run_dir)
        print(report.no_tex_message(missing), flush=True)
        return []
    t0 = time.perf_counter()
    print("documents: report.pdf and notebook PDFs ...", end=" ", flush=True)
    if missing:  # only pandoc: report.pdf needs latexmk and xelatex alone, the notebook PDFs need pandoc too
        documents = [report.build_report(run_dir)]
        print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
        print(report.no_pandoc_message(), flush=True)
        return documents
    workers = max(1, min(len(notebooks) + 1, os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        report_pdf = pool.submit(report.build_report, run_dir)
        pdfs = notebook_pdfs(run_dir, notebooks, pool)
        documents = [report_pdf.result(), *pdfs]
    print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
    return documents


def run_pipeline(opts: RunOptions) -> RunResult:
    run_dir = resolve_path(opts.run_dir).resolve()
    steps = plan(opts, run_dir)  # before the folder is made: a bad parameter leaves no empty run folder behind
    check_writable([run_dir])
    with run_lock(run_dir, "python -m vaelib run"):
        prepare_run_dir(run_dir, get_profile(opts.profile).model)
        return _run_locked(opts, run_dir, steps)


def _run_locked(opts: RunOptions, run_dir: Path, steps) -> RunResult:
    manifest = read_manifest(run_dir)
    data = runner_parameters(opts, run_dir)["DATA"]
    manifest.update(profile=opts.profile, data=data, seed=opts.seed, device=device_name(resolve_device(opts.device)),
                    device_setting=opts.device, git=git_state(), versions=package_versions(),
                    started=_now(), finished=None, training_processes=opts.nproc)
    write_manifest(run_dir, manifest)
    train_in_parallel(opts, run_dir, steps, manifest)
    executed, skipped = run_notebooks(opts, run_dir, steps, manifest)
    manifest.update(finished=_now(), executed=executed, skipped=skipped)
    write_manifest(run_dir, manifest)
    documents = build_documents(run_dir, opts.notebooks) if opts.documents else []
    return RunResult(run_dir, executed, skipped, documents)
