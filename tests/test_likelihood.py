"""vaelib.likelihood against known answers: normalisation, 8 bits/dim for a uniform model, a linear-Gaussian VAE
whose log p(x) is known in closed form, float32 under autocast, and the closed-form sigma of an MSE model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vaelib.config import get_profile
from vaelib.errors import ConfigError, VaelibError
from vaelib.likelihood import (
    ReconstructionStats,
    assignment_bonus,
    discretized_gaussian_log_prob,
    evaluate_bounds,
    evaluate_vae,
    fit_pixel_sigma,
    harmonic_mean,
    reconstruction_stats,
    resolve_log_sigma,
)
from vaelib.losses import gaussian_log_density
from vaelib.models import VAE

GRID = torch.arange(256, dtype=torch.float32) / 255  # the 256 values of an 8-bit pixel on [0, 1]
SIGMAS = [1e-4, 1e-3, 0.02, 0.1, 1.0, 10.0]


def _random_means(n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, generator=torch.Generator().manual_seed(seed)) * 2 - 0.5  # in [-0.5, 1.5]


@pytest.mark.parametrize("sigma", SIGMAS)
def test_discretized_gaussian_sums_to_one(sigma):
    log_p = discretized_gaussian_log_prob(GRID[None, :], _random_means(), torch.tensor(math.log(sigma)))
    assert log_p.dtype == torch.float32
    assert torch.all(log_p <= 0)
    total = log_p.double().exp().sum(1)
    assert torch.allclose(total, torch.ones_like(total), atol=2e-5), total


@pytest.mark.parametrize("sigma", SIGMAS)
def test_discretized_gaussian_matches_float64_cdf_difference(sigma):
    means = _random_means(seed=1)
    log_p = discretized_gaussian_log_prob(GRID[None, :], means, torch.tensor(math.log(sigma)))
    # reference: plain CDF differences in float64 on the same (float32) inputs, mirrored to the lower tail
    x, m, h = GRID.double()[None, :], means.double(), 0.5 / 255
    a, b = (x - h - m) / sigma, (x + h - m) / sigma
    a[:, 0], b[:, -1] = -math.inf, math.inf
    ndtr = torch.special.ndtr
    p = torch.where(a + b > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
    ok = p > 1e-9  # where float64 itself is still accurate
    assert ok.sum() >= 64  # every mean has at least its own bin
    assert torch.allclose(log_p.double()[ok], p[ok].log(), rtol=0, atol=5e-5)


def test_uniform_pixels_score_exactly_8_bits_per_dim():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (10, 3, 8, 8), dtype=np.uint8))
    dims = 3 * 8 * 8

    def encode(x):  # q(z|x) = p(z), so the rate and log p(z) - log q(z|x) vanish
        return torch.zeros(len(x), 4), torch.zeros(len(x), 4)

    def log_px_given_z(x, z):  # P = 1/256 for every 8-bit value, whatever z
        return torch.full(z.shape[:2], dims * math.log(1 / 256))

    result = evaluate_bounds(images, encode, log_px_given_z, k_values=[1, 3, 10], batch_size=4, max_decode=8)
    assert result.num_dims == dims and result.num_images == 10
    for k in (None, 1, 3, 10):
        bpd, _ = result.bpd(k)
        assert bpd == pytest.approx(8.0, abs=1e-5)
    assert np.allclose(result.to_bpd(result.distortion), 8.0) and np.allclose(result.rate, 0.0)


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I)  =>  p(x) = N(b, W W^T + s^2 I), and a deliberately wrong q:
    the exact posterior's marginal means shifted by half a std, with twice its marginal variances."""

    def __init__(self, dim_x: int = 6, dim_z: int = 2, s: float = 0.5, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(dim_x, dim_z, generator=g, dtype=torch.float64)
        self.b = torch.randn(dim_x, generator=g, dtype=torch.float64)
        self.s = s
        self.post_cov = torch.linalg.inv(torch.eye(dim_z, dtype=torch.float64) + self.w.T @ self.w / s**2)
        self.marginal = torch.distributions.MultivariateNormal(
            self.b, self.w @ self.w.T + s**2 * torch.eye(dim_x, dtype=torch.float64)
        )

    def sample(self, n: int, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return self.marginal.sample((n,))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        post_mean = (x.double() - self.b) @ self.w @ self.post_cov / self.s**2
        var = torch.diagonal(self.post_cov)
        return (post_mean + 0.5 * var.sqrt()).float(), (2 * var).log().float().expand_as(post_mean)

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean = z @ self.w.T.float() + self.b.float()
        return gaussian_log_density(x[:, None], mean, torch.tensor(math.log(self.s))).sum(-1)


def test_iwae_bounds_sit_between_elbo_and_exact_log_likelihood():
    model = LinearGaussian()
    x = model.sample(200, seed=1)
    log_px = model.marginal.log_prob(x).mean().item()
    # max_decode 700 -> 3 samples per image per chunk for batch 200: uneven chunks are exercised
    result = evaluate_bounds(x, model.encode, model.log_px_given_z, k_values=[1, 10, 1000], batch_size=200,
                             max_decode=700, seed=2)
    elbo = result.elbo.mean()
    iwae = {k: v.mean() for k, v in result.iwae.items()}
    assert log_px - elbo > 0.2  # the mismatched q makes the ELBO gap clearly visible ...
    assert iwae[1] == pytest.approx(elbo, abs=0.03)  # ... IWAE-1 is a Monte Carlo ELBO ...
    assert elbo < iwae[10] < iwae[1000] <= log_px + 0.01  # ... and more samples tighten the bound
    assert log_px - iwae[1000] < 0.05
    assert log_px - iwae[1000] < (log_px - iwae[1]) / 10


def _smoke_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(get_profile("smoke").model).eval()


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, 64, 64), dtype=np.uint8))


def test_evaluation_stays_float32_under_bf16_autocast():
    model, images = _smoke_vae(), _images(2)
    log_sigma, source = resolve_log_sigma(model)
    assert source == "learned"
    plain = evaluate_vae(model, images, log_sigma, k_values=[1, 3], batch_size=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = evaluate_vae(model, images, log_sigma, k_values=[1, 3], batch_size=1)
    assert plain.num_dims == 3 * 64 * 64
    np.testing.assert_array_equal(plain.iwae[3], under_autocast.iwae[3])
    np.testing.assert_array_equal(plain.distortion, under_autocast.distortion)


@pytest.mark.parametrize("k_values", [[0], [], [1, -2], [1.5], [True], "[1, 5]", 10])
def test_k_below_one_or_not_an_integer_is_a_clear_error(k_values):
    model = _smoke_vae()
    with pytest.raises(ConfigError, match="K values"):
        evaluate_vae(model, _images(1), resolve_log_sigma(model)[0], k_values=k_values)


def test_float_images_are_refused_for_bits_per_dim():
    model = _smoke_vae()
    with pytest.raises(ConfigError, match="uint8"):
        evaluate_vae(model, _images(1).float() / 255, resolve_log_sigma(model)[0])


def test_images_come_as_the_datasets_uint8_tensor_not_a_numpy_array():
    model = _smoke_vae()
    with pytest.raises(ConfigError, match="images_tensor"):
        evaluate_vae(model, _images(1).numpy(), resolve_log_sigma(model)[0])
    with pytest.raises(ConfigError, match="images_tensor"):
        reconstruction_stats(model, _images(1).numpy())


class ConstantDecoderMSE(nn.Module):
    """An MSE-trained stand-in (no sigma) whose decoder ignores z, so the ML sigma is known exactly."""

    def __init__(self, mean_image: torch.Tensor, latent_dim: int = 3):
        super().__init__()
        self.cfg = type("Cfg", (), {"latent_dim": latent_dim})()
        self.mean_image = nn.Parameter(mean_image)

    def encode(self, x):
        return torch.zeros(len(x), self.cfg.latent_dim), torch.zeros(len(x), self.cfg.latent_dim)

    def decode(self, z):
        return self.mean_image.expand(len(z), -1, -1, -1)

    def pixel_log_sigma(self):
        return None


def test_mse_model_sigma_is_the_per_channel_rms_residual_on_validation_data():
    images = _images(6, seed=3)[:, :, :8, :8]
    mean_image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = ConstantDecoderMSE(mean_image)
    residual = images.double() / 255 - mean_image.double()
    expected = residual.pow(2).mean(dim=(0, 2, 3)).sqrt()
    sigma = fit_pixel_sigma(model, images, batch_size=4)
    assert torch.allclose(sigma.double(), expected, rtol=1e-5)
    log_sigma, source = resolve_log_sigma(model, images, batch_size=4)
    assert source == "fitted on val" and log_sigma.shape == (1, 3, 1, 1)
    assert torch.allclose(log_sigma.exp().flatten().double(), expected, rtol=1e-5)


def test_model_without_usable_sigma_is_a_clear_error():
    mse = ConstantDecoderMSE(torch.zeros(3, 8, 8))
    with pytest.raises(ConfigError, match="no pixel sigma"):
        resolve_log_sigma(mse)
    with pytest.raises(ConfigError, match="not finite and positive"):  # perfect fit: sigma 0
        resolve_log_sigma(mse, torch.zeros((2, 3, 8, 8), dtype=torch.uint8))
    broken = _smoke_vae()
    with torch.no_grad():
        broken.log_sigma.fill_(math.nan)
    with pytest.raises(ConfigError, match="not finite"):
        resolve_log_sigma(broken)


def test_bonus_metric_is_the_assignments_sigma1_nll_and_kl_per_dim_with_their_harmonic_mean():
    dims, latent = 12288, 32
    stats = ReconstructionStats(sse=np.array([10.0, 30.0]), kl=np.array([8.0, 24.0]), num_dims=dims, latent_dim=latent)
    bonus = assignment_bonus(stats)
    a = 0.5 * 20.0 / dims + 0.5 * math.log(2 * math.pi)  # continuous N(x; x_hat, 1): 0.5 SSE/D + 0.5 ln 2pi
    assert bonus.nll_per_dim == pytest.approx(a) and bonus.kl_per_dim == pytest.approx(0.5)
    assert bonus.harmonic_mean == pytest.approx(2 * a * 0.5 / (a + 0.5))
    assert harmonic_mean(0.0, 0.0) == 0.0 and harmonic_mean(1.0, 3.0) == pytest.approx(1.5)
    with pytest.raises(VaelibError):
        harmonic_mean(-1.0, 2.0)


def test_bonus_nll_of_a_real_vae_sits_at_the_sigma1_constant_whatever_the_model():
    stats = reconstruction_stats(_smoke_vae(), _images(3), batch_size=2)
    assert stats.sse.shape == (3,) and stats.kl.shape == (3,)
    assert stats.num_dims == 3 * 64 * 64 and stats.latent_dim == get_profile("smoke").model.latent_dim
    # ~0.92 nats/dim whatever the model: 0.5 log(2 pi) plus half a mean squared error below 1
    assert 0.5 * math.log(2 * math.pi) < assignment_bonus(stats).nll_per_dim < 0.5 * math.log(2 * math.pi) + 0.5


def test_discretized_decoder_of_a_constant_model_with_prior_posterior_gives_the_float64_log_probability():
    """q(z|x) = p(z) and a decoder whose mean ignores z: log w = log P(x) exactly, so ELBO = every IWAE-K =
    sum over pixels of log(Phi(b) - Phi(a)), which float64 CDF differences give independently."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)
    mean = torch.from_numpy(rng.uniform(0.2, 0.8, (3, 4, 4))).float()  # float64 CDFs stay above underflow
    log_sigma = torch.tensor([0.05, 0.15, 0.4]).log().view(1, 3, 1, 1)

    class ConstantMean(nn.Module):
        def decode(self, z):
            return mean.expand(z.shape[0], *mean.shape)

    def encode(x):
        return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

    from vaelib.likelihood import discrete_decoder

    result = evaluate_bounds(torch.from_numpy(pixels), encode, discrete_decoder(ConstantMean(), log_sigma),
                             k_values=[1, 4, 16],
                             batch_size=2)
    from scipy.special import ndtr  # float64 CDF accurate far into the tails (torch's underflows near -9)

    x = pixels.astype(np.float64) / 255
    m, s, h = mean.double().numpy(), log_sigma.double().exp()[0].numpy(), 0.5 / 255
    lo = np.where(pixels == 0, -np.inf, (x - h - m) / s)  # the end bins take the tails
    hi = np.where(pixels == 255, np.inf, (x + h - m) / s)
    p = np.where(lo + hi > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))  # each bin from its near tail
    expected = np.log(p).reshape(len(pixels), -1).sum(1)
    assert np.allclose(result.elbo, expected, rtol=0, atol=2e-3), (result.elbo, expected)
    for k in (1, 4, 16):
        assert np.allclose(result.iwae[k], expected, rtol=0, atol=2e-3)
    assert np.allclose(result.rate, 0.0)
