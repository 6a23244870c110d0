"""FID / KID: the distance formulas against closed forms, and the whole sample-quality path on random weights.

Real Inception weights are not available here, so the end-to-end test runs torch-fidelity's network with random
weights (meaningless numbers, but every step from VAE to JSON-ready dict runs).
"""

import json

import numpy as np
import pytest
import torch

from vaelib import fid
from vaelib.config import ModelConfig
from vaelib.errors import ConfigError
from vaelib.models import VAE


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    # Diagonal covariances commute: Tr (S1 S2)^(1/2) = sum sqrt(s1 s2), so the distance is
    # ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)  # 5 + (1 + 1 + 4) = 11
    assert fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(11.0)


def test_frechet_distance_matches_closed_form_for_full_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    r1 = _sqrtm_psd(s1)  # Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2), a symmetric form
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * _sqrtm_psd(r1 @ s2 @ r1))
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert fid.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_feature_samples_approaches_the_gaussians_distance():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(20000, 4, generator=gen, dtype=torch.float64)
    fake = torch.randn(20000, 4, generator=gen, dtype=torch.float64) * 2 + 1  # mean 1, variance 4 per dim
    # closed form: 4 * 1^2 + 4 * (1 - 2)^2 = 8
    assert fid.fid(real, fake) == pytest.approx(8.0, rel=0.05)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shifted_one():
    gen = torch.Generator().manual_seed(1)
    real, same = torch.randn(2, 400, 16, generator=gen, dtype=torch.float64)
    shifted = same + 1.0
    kid_same, _ = fid.kid(real, same, subsets=20, subset_size=200)
    kid_shift, std_shift = fid.kid(real, shifted, subsets=20, subset_size=200)
    assert abs(kid_same) < 0.02
    assert kid_shift > 0.2 and kid_shift > 10 * std_shift


def test_features_take_the_datasets_uint8_tensor_only():
    extractor = fid.random_inception("64")
    for wrong in (np.zeros((2, 3, 8, 8), np.uint8), torch.zeros(2, 3, 8, 8)):
        with pytest.raises(ConfigError, match="uint8 tensor"):
            fid.features(extractor, wrong)


def test_missing_weights_give_one_sentence_and_an_unmeasured_result(monkeypatch, tmp_path):
    monkeypatch.delenv(fid.ENV_VAR, raising=False)
    said = []
    vae = VAE(ModelConfig(widths=(8, 16), blocks_per_stage=1, latent_dim=4, norm_groups=4, image_size=8))
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    result = fid.sample_quality(vae, images, weights_path="", log=said.append)
    assert result["measured"] is False and "no Inception weights file" in result["reason"]
    assert result["status"].startswith("Not measured")
    assert [(r["set"], r["n"], r["fid"]) for r in result["sets"]] == [
        ("prior, T = 1", 0, "not measured"), ("prior, T = 0.7", 0, "not measured"),
        ("reconstructions", 0, "not measured")]
    assert len(said) == 1 and said[0].count(". ") == 0 and fid.WEIGHTS_FILE in said[0]
    json.dumps(result)  # saved as metrics/fid.json

    monkeypatch.setenv(fid.ENV_VAR, str(tmp_path / "nowhere.pth"))
    assert "does not exist" in fid.sample_quality(vae, images, log=said.append)["reason"]

    wrong = tmp_path / fid.WEIGHTS_FILE
    wrong.write_bytes(b"not the weights")
    result = fid.sample_quality(vae, images, weights_path=wrong, log=said.append)
    assert result["measured"] is False and "SHA-256" in result["reason"]


def test_whole_path_runs_on_random_weights_and_says_it_is_not_meaningful(monkeypatch):
    monkeypatch.delenv(fid.ENV_VAR, raising=False)
    torch.manual_seed(0)
    vae = VAE(ModelConfig(widths=(8, 16), blocks_per_stage=1, latent_dim=4, norm_groups=4, image_size=16)).eval()
    images = torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8)
    said = []
    # The 64-channel layer stops Inception after its first block: the full path in a few seconds on a CPU.
    result = fid.sample_quality(vae, images, temperatures=(1.0, 0.7), n=10, batch_size=8, feature="64",
                                allow_random_weights=True, log=said.append)
    assert result["measured"] is True and result["meaningful"] is False
    assert "not meaningful" in result["status"] and "not meaningful" in said[0]
    assert result["n_real"] == 10 and result["kid_subset_size"] == 10
    assert "biased upward" in result["warning"]
    assert [r["set"] for r in result["sets"]] == ["prior, T = 1", "prior, T = 0.7", "reconstructions"]
    for row in result["sets"]:
        assert row["n"] == 10
        assert np.isfinite(row["fid"]) and row["fid"] > 0 and np.isfinite(row["kid"])
    json.dumps(result)


def test_features_reject_float_images():
    with pytest.raises(fid.ConfigError, match="uint8"):
        fid.features(torch.nn.Conv2d(3, 1, 1), torch.zeros(2, 3, 8, 8))


def test_random_inception_pool_features_are_finite_2048_vectors():
    # He-initialised random weights keep the 2048 pool features finite (default init overflows float32 in KID).
    net = fid.random_inception("2048")
    out = fid.features(net, torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    assert out.shape == (2, 2048) and out.dtype == torch.float64 and torch.isfinite(out).all()
    assert out.abs().max() < 1e6
