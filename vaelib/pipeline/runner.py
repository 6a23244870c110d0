"""Execution: each planned notebook under papermill, skip-if-complete, the manifest kept current, failures named;
with --nproc N, notebook 01's training first under torchrun."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import check_writable
from ..config import device_name, get_profile, resolve_device
from ..errors import VaelibError
from ..notebooks import TRAINING_NOTEBOOK
from ..run import read_manifest, resolve_path, write_manifest
from ..runfolder.vae import prepare_run_dir
from ..runlock import run_lock
from .documents import build_documents
from .manifest import git_state, is_complete, missing_outputs, now, package_versions, source_hash
from .plan import RunOptions, plan, runner_parameters

# The kernel's own log stays out of the console: its start-up notice that local TCP is unencrypted, and the
# "KeyboardInterrupt caught in kernel" it logs as an ERROR when jupyter_client interrupts it before shutting it
# down after the last cell. Errors in cells still reach the executed notebook and the runner's one-line failure
# message, and a dead kernel is nbclient's DeadKernelError.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
# The runner's own interpreter (jupyter_client maps a "python3" kernel to sys.executable), not whatever the
# notebook metadata names: a fresh machine has no "vae-celeba" kernelspec registered.
KERNEL = "python3"


class NotebookFailedError(VaelibError):
    """A notebook raised; the executed copy in the run folder shows the traceback."""


@dataclass
class RunResult:
    run_dir: Path
    executed: list[str]
    skipped: list[str]
    documents: list[Path]


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
                                      f"(its outputs in vaelib/notebooks.py).")
    except NotebookFailedError as e:
        entry.update(status="failed", error=str(e), finished=now(), wall_s=round(time.perf_counter() - t0, 1))
        raise
    entry.update(status="completed", finished=now(), wall_s=round(time.perf_counter() - t0, 1))


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
                         "started": now()}
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
                    started=now(), finished=None, training_processes=opts.nproc)
    write_manifest(run_dir, manifest)
    train_in_parallel(opts, run_dir, steps, manifest)
    executed, skipped = run_notebooks(opts, run_dir, steps, manifest)
    manifest.update(finished=now(), executed=executed, skipped=skipped)
    write_manifest(run_dir, manifest)
    documents = build_documents(run_dir, opts.notebooks) if opts.documents else []
    return RunResult(run_dir, executed, skipped, documents)
