"""FID and KID of the VAE's prior samples and test reconstructions against the test split, with torch-fidelity.

torch-fidelity is the reference PyTorch port of the TensorFlow FID/KID code: its Inception-v3 (TF 2015-12-05
graph, TF1-style bilinear upsampling of our 64x64 images to 299x299) and its FID / KID formulas are used here
unchanged; this module only feeds it uint8 images and collects the numbers. Features are extracted once per image
set and shared by FID and KID (Inception is the expensive part).

The Inception weights cannot be downloaded on most GPU nodes, so they are read from a local file: torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth`, asset of its GitHub release v0.2.0 (URL in WEIGHTS_URL), given as a
path or in $FID_WEIGHTS. Without it `sample_quality` prints one sentence and returns `{"measured": False, ...}`;
nothing else in a run depends on it. `allow_random_weights=True` (tests and CI only) runs the same path on
randomly initialised weights and labels every output as not meaningful.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from .data.batches import map_batches
from .errors import ConfigError

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
# torch.hub convention (which torch-fidelity's file name follows): the digits after the last '-' start its SHA-256.
WEIGHTS_SHA256_PREFIX = "6726825d"
ENV_VAR = "FID_WEIGHTS"
FEATURE = "2048"  # Inception pool features: the layer every published FID uses
UNBIASED_N = 10_000
KID_SUBSETS = 100  # torch-fidelity's defaults
KID_SUBSET_SIZE = 1000
NOT_MEANINGFUL = "computed with RANDOM Inception weights (pipeline test): not meaningful"
# Short: the report's appendix lists it in a table cell.
SMALL_N_WARNING = "FID on fewer than {n:,} images is biased upward: compare it only at equal n (KID is unbiased)."


# ---------------------------------------------------------------------------------------------------------------
# weights and feature extractor


def weights_problem(path: str | os.PathLike | None) -> str | None:
    """Why `path` is not usable as the Inception weights (None when it is)."""
    if not path:
        return f"no Inception weights file given (the FID_WEIGHTS parameter and ${ENV_VAR} are empty)"
    path = Path(path).expanduser()
    if not path.is_file():
        return f"the Inception weights file {path} does not exist"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(WEIGHTS_SHA256_PREFIX):
        return (f"{path} is not torch-fidelity's {WEIGHTS_FILE} "
                f"(its SHA-256 does not start with {WEIGHTS_SHA256_PREFIX})")
    return None


def weights_notice(reason: str) -> str:
    """The one sentence a run prints when FID/KID are skipped."""
    return (f"FID/KID not measured: {reason}; to measure them, download torch-fidelity's {WEIGHTS_FILE} "
            f"(release v0.2.0 asset, {WEIGHTS_URL}) and pass its path as FID_WEIGHTS or in ${ENV_VAR}.")


def inception(weights_path: str | os.PathLike, feature: str = FEATURE, device: str | torch.device = "cpu"):
    """torch-fidelity's Inception-v3 with weights from a local file; it takes uint8 (N, 3, H, W) images."""
    net = FeatureExtractorInceptionV3("inception-v3-compat", [feature],
                                      feature_extractor_weights_path=str(weights_path))
    return net.to(device)


def random_inception(feature: str = FEATURE, device: str | torch.device = "cpu", seed: int = 0):
    """The same network with random weights, loaded through the same file path: for tests only.

    torchvision's Inception3 has torch-fidelity's parameter names and shapes (both follow the TF graph), so its
    random state dict loads strictly. Convolutions are re-drawn with He init so that, with BatchNorm at its
    identity running statistics, activations neither vanish nor overflow float32 through 90 layers.
    """
    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random-inception.pth"
        torch.save(net.state_dict(), path)
        return inception(path, feature, device)


def features(extractor, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """float64 (N, F) Inception features of uint8 (N, 3, H, W) images (upsampled to 299 inside the extractor)."""
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3 \
            or len(images) == 0:
        raise ConfigError(f"FID needs a uint8 tensor (N, 3, H, W) (vaelib.data.pixels.images_tensor), got "
                          f"{type(images).__name__} {getattr(images, 'dtype', '')} of shape "
                          f"{tuple(getattr(images, 'shape', ()))}.")
    # map_batches hands [0, 1] floats; the extractor takes uint8 pixels, which to_uint8 restores exactly. It returns
    # one tensor per requested layer; we request one.
    return map_batches(lambda x: extractor(to_uint8(x))[0].double(), images, batch_size,
                       next(extractor.parameters()).device)


# ---------------------------------------------------------------------------------------------------------------
# distances (torch-fidelity's formulas)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians, by torch-fidelity's code."""
    stats = [{"mu": np.asarray(m, np.float64), "sigma": np.asarray(s, np.float64)}
             for m, s in ((mu1, sigma1), (mu2, sigma2))]
    return fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID]


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets (N, F): the Frechet distance of their fitted Gaussians."""
    a, b = fid_features_to_statistics(real.double()), fid_features_to_statistics(fake.double())
    return frechet_distance(a["mu"], a["sigma"], b["mu"], b["sigma"])


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets): unbiased MMD^2 with the cubic polynomial kernel, by torch-fidelity's code.

    The subset size is capped at the smaller set, so a few dozen test images still give a number."""
    size = min(subset_size, len(real), len(fake))
    out = kid_features_to_metric(real.double(), fake.double(), kid_subsets=subsets, kid_subset_size=size,
                                 rng_seed=seed, verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


# ---------------------------------------------------------------------------------------------------------------
# the VAE's image sets


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Decoder means on [0, 1] -> the uint8 pixels a saved image would have."""
    return x.float().clamp(0, 1).mul(255).round().to(torch.uint8)


def prior_samples(vae, n: int, temperature: float, seed: int, batch_size: int = 64) -> torch.Tensor:
    """uint8 decoder means of z = T * eps, eps ~ N(0, I) from a seeded generator (the same eps for every T)."""
    device = next(vae.parameters()).device
    eps = torch.randn(n, vae.cfg.latent_dim, generator=torch.Generator().manual_seed(seed))
    with torch.autocast(device.type, enabled=False):
        return map_batches(lambda z: to_uint8(vae.decode(z * temperature)), eps, batch_size, device)


def reconstructions(vae, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 decoder means at the posterior mean z = mu(x): the deterministic reconstruction of each image."""
    device = next(vae.parameters()).device
    with torch.autocast(device.type, enabled=False):
        return map_batches(lambda x: to_uint8(vae.decode(vae.encode(x)[0])), images, batch_size, device)


def set_names(temperatures: Sequence[float]) -> list[str]:
    return [f"prior, T = {t:g}" for t in temperatures] + ["reconstructions"]


def not_measured(reason: str, temperatures: Sequence[float]) -> dict:
    """The result without weights: the report's table then lists each set as "not measured", with n = 0."""
    rows = [{"set": name, "n": 0, "fid": "not measured", "kid": "not measured"} for name in set_names(temperatures)]
    return {"measured": False, "meaningful": False, "reason": reason, "status": f"Not measured: {reason}.",
            "warning": "", "sets": rows}


def sample_quality(vae, test_images: torch.Tensor, weights_path: str | os.PathLike | None = None,
                   temperatures: Sequence[float] = (1.0, 0.7), n: int | None = None, seed: int = 0,
                   batch_size: int = 64, feature: str = FEATURE, allow_random_weights: bool = False,
                   log: Callable[[str], None] = print) -> dict:
    """FID and KID of prior samples at each temperature and of reconstructions, against `test_images`.

    `n` (default: all) test images are the reference set and every generated set has as many images. Weights
    come from `weights_path`, else $FID_WEIGHTS; without a usable file the result says `measured: False` and why.
    `allow_random_weights` (tests only) substitutes random weights; the result then says it is not meaningful.
    """
    path = weights_path or os.environ.get(ENV_VAR, "")
    problem = weights_problem(path)
    if problem and not allow_random_weights:
        log(weights_notice(problem))
        return not_measured(problem, temperatures)
    reals = test_images[: n or len(test_images)]
    if len(reals) < 2:
        raise ConfigError(f"FID needs at least 2 test images, got {len(reals)}; raise FID_IMAGES.")
    device = next(vae.parameters()).device
    extractor = inception(path, feature, device) if problem is None else random_inception(feature, device, seed)
    if problem is not None:
        log(f"FID/KID {NOT_MEANINGFUL}.")
    real = features(extractor, reals, batch_size)
    # One image set at a time: 10k images are 120 MB of uint8 per set, their features 160 MB.
    make_sets = [lambda t=t: prior_samples(vae, len(reals), t, seed, batch_size) for t in temperatures]
    make_sets.append(lambda: reconstructions(vae, reals, batch_size))
    rows = []
    for name, make in zip(set_names(temperatures), make_sets, strict=True):
        images = make()
        fake = features(extractor, images, batch_size)
        kid_mean, kid_std = kid(real, fake, seed=seed)
        rows.append({"set": name, "n": len(images), "fid": fid(real, fake), "kid": kid_mean, "kid_std": kid_std})
    n_real = len(reals)
    meaningful = problem is None
    status = (f"Measured with torch-fidelity's Inception-v3 ({feature}-dimensional features) against {n_real} "
              "test images." if meaningful else f"FID/KID {NOT_MEANINGFUL}.")
    return {
        "measured": True, "meaningful": meaningful, "status": status,
        "weights": WEIGHTS_FILE if meaningful else "random (test only)",
        "feature": feature, "n_real": n_real, "kid_subset_size": min(KID_SUBSET_SIZE, n_real),
        "kid_subsets": KID_SUBSETS, "warning": SMALL_N_WARNING.format(n=UNBIASED_N) if n_real < UNBIASED_N else "",
        "sets": rows,
    }
