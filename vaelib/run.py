"""A run folder and what every notebook needs from it: resolved paths, profile, device, data, JSON metrics.

Layout of RUN_DIR (each notebook writes its own part; later notebooks read earlier parts):
    checkpoints/   vae last.pt / best.pt (01), classifier.pt / judge.pt (02)
    metrics/       <name>.json written by save_json, read by the report
    figures/       PNG image grids and PDF plots, included by the report
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .atomic import atomic_write_text
from .config import Profile, get_profile, override, resolve_device, set_seed, with_batch_size
from .errors import MissingPrerequisiteError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path: str | os.PathLike) -> Path:
    """Relative paths are taken from the project root, not the working directory: papermill keeps the caller's
    cwd while JupyterLab starts kernels in notebooks/, and both must find the same run."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def data_dir() -> Path:
    """Where generated data and image caches live ($VAELIB_DATA, default <project>/data)."""
    return resolve_path(os.environ.get("VAELIB_DATA", "data"))


@dataclass
class RunContext:
    run_dir: Path
    profile: Profile
    device: torch.device
    seed: int = 0
    interactive: bool = False
    progress: bool = True
    celeba_root: str | None = None
    _data: object = field(default=None, repr=False)

    def subdir(self, name: str) -> Path:
        d = self.run_dir / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def figures(self) -> Path:
        return self.subdir("figures")

    @property
    def metrics(self) -> Path:
        return self.subdir("metrics")

    @property
    def checkpoints(self) -> Path:
        return self.subdir("checkpoints")

    def save_json(self, name: str, obj) -> Path:
        """metrics/<name>.json; NaN/inf become null so the file stays valid JSON for the report."""
        text = json.dumps(_finite(obj), indent=2, sort_keys=True) + "\n"
        return atomic_write_text(self.metrics / f"{name}.json", text)

    def load_json(self, name: str, producer: str) -> dict:
        return json.loads(self.require(self.run_dir / "metrics" / f"{name}.json", producer).read_text())

    def require(self, path: Path, producer: str) -> Path:
        if not path.is_file():
            raise MissingPrerequisiteError(
                f"{path} is missing: run notebooks/{producer}.ipynb first with the same RUN_DIR."
            )
        return path

    def train_command(self) -> str:
        """The `python -m vaelib train` line that continues this run (named in error messages)."""
        parts = ["python -m vaelib train", f"--run-dir {self.run_dir}", f"--profile {self.profile.name}"]
        base, train = get_profile(self.profile.name), self.profile.train
        if self.profile.data.source != base.data.source:
            parts.append(f"--data {self.profile.data.source}")
        if self.profile.data.source == "celeba" and self.celeba_root:
            parts.append(f"--celeba-root {self.celeba_root}")
        parts += [f"--{name.replace('_', '-')} {getattr(train, name)}" for name in ("seed", "epochs", "batch_size")
                  if getattr(train, name) != getattr(base.train, name)]
        return " ".join(parts)

    def load_data(self):
        """The profile's dataset as CelebA64 (synthetic generated on first use); cached for this process."""
        if self._data is None:
            from .data import ensure_synthetic_celeba, load_celeba64

            cfg = self.profile.data
            cache = data_dir() / "cache"
            if cfg.source == "synthetic":
                root = synthetic_root(cfg)
                ensure_synthetic_celeba(root, cfg.synthetic_images, seed=0, progress=self.progress,
                                        workers=os.cpu_count() or 1, per_identity=cfg.images_per_identity)
                self._data = load_celeba64(root, cache_dir=cache, progress=self.progress)
            else:
                self._data = load_celeba64(self.celeba_root, cache_dir=cache,
                                           progress=self.progress)
        return self._data


def synthetic_root(cfg) -> Path:
    """Where the synthetic set of a DataConfig lives: $VAELIB_DATA/synthetic-<images>[-x<images per identity>]."""
    per = cfg.images_per_identity
    return data_dir() / (f"synthetic-{cfg.synthetic_images}" + (f"-x{per}" if per != 20 else ""))


def read_manifest(run_dir: Path) -> dict:
    """RUN_DIR/manifest.json (written by the batch runner), or {} when absent or unreadable."""
    path = run_dir / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        print(f"run: {path} is not valid JSON; treating the run as new (the batch runner re-runs every notebook)")
        return {}


def write_manifest(run_dir: Path, manifest: dict) -> None:
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def setup_run(
    run_dir: str,
    profile: str = "demo",
    data: str | None = None,
    seed: int = 0,
    device: str = "auto",
    celeba_root: str = "",
    interactive: bool = False,
    progress: bool = True,
    **train_overrides,
) -> RunContext:
    """Build the context from a notebook's parameters: picks the profile, applies overrides, seeds.

    Every value is checked before the run folder is created, so a bad parameter leaves nothing behind.
    """
    prof = build_profile(profile, data, seed, **train_overrides)
    device = resolve_device(device)
    set_seed(seed)
    ctx = RunContext(resolve_path(run_dir), prof, device, seed, interactive, progress, celeba_root or None)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    return ctx


def build_profile(profile: str, data: str | None = None, seed: int = 0, **train_overrides) -> Profile:
    """The profile with a data source and training overrides applied (ConfigError on any bad value).

    A `batch_size` override rescales the profile's learning rate (`config.with_batch_size`); an explicit `lr`
    override is applied after that, as given.
    """
    prof = get_profile(profile)
    if data is not None:
        prof = override(prof, data=override(prof.data, source=data))
    batch_size = train_overrides.pop("batch_size", None)
    train = prof.train if batch_size is None else with_batch_size(prof.train, batch_size)
    # The notebook's SEED drives training too, so one parameter fixes the whole run.
    return override(prof, train=override(train, seed=seed, **train_overrides))


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return _finite(obj.item())
    return obj
