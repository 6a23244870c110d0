"""RUN_DIR/manifest.json facts (code revision, package versions, device) and whether a notebook is complete."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ..run import PROJECT_ROOT

VERSIONED_PACKAGES = ("torch", "torchvision", "numpy", "papermill", "scikit-learn", "nbconvert")


def now() -> str:
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
