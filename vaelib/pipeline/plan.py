"""Parameters of a batch run: the options, configs/<profile>.json, and each notebook's parameters cell, all checked
before anything runs."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..config import get_profile, resolve_device
from ..data.celeba_files import requested_celeba_root
from ..errors import ConfigError
from ..notebooks import NAMES, TRAINING_NOTEBOOK, expected_outputs
from ..run import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CONFIG_DIR = PROJECT_ROOT / "configs"
RUNNER_PARAMETERS = ("RUN_DIR", "PROFILE", "DATA", "CELEBA_ROOT", "SEED", "DEVICE", "INTERACTIVE", "PROGRESS")
_NO_DEFAULT = object()  # a parameter whose default is not a literal: any value is accepted


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
    notebooks: tuple[str, ...] = NAMES
    notebooks_dir: Path = NOTEBOOKS_DIR
    config_dir: Path = CONFIG_DIR
    expected_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=expected_outputs)


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
        raise ConfigError(f"{path} has no code cell tagged 'parameters'; see docs/ARCHITECTURE.md.")
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
        from ..data import resolve_celeba_root

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
    from ..run import build_profile
    from ..training.resume import check_resume_config

    overrides = {k: params[p] for k, p in (("epochs", "EPOCHS"), ("batch_size", "BATCH_SIZE")) if params.get(p)}
    profile = build_profile(params["PROFILE"], params["DATA"], params["SEED"], **overrides)
    last = run_dir / "checkpoints" / "last.pt"
    if last.exists():
        check_resume_config(last, load_checkpoint(last, kind="vae"), profile.model, profile.train)
