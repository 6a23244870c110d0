"""Model shapes and sizes, losses against torch.distributions, configuration errors."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from vaelib.config import ModelConfig, TrainConfig, describe_loss, get_profile, override
from vaelib.errors import ConfigError
from vaelib.losses import VGGPerceptual, gaussian_nll, kl_beta, kl_standard_normal, mse_sum
from vaelib.models import VAE, count_parameters
from vaelib.models.blocks import BottleneckBlock
from vaelib.models.vae import VAEOutput


@pytest.mark.parametrize("profile", ["smoke", "demo", "full"])
def test_forward_returns_named_output_of_the_right_shapes(profile):
    cfg = get_profile(profile).model
    model = VAE(cfg)
    out = model(torch.rand(2, 3, 64, 64))
    assert isinstance(out, VAEOutput)
    assert out.reconstruction.shape == (2, 3, 64, 64)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, cfg.latent_dim)
    assert 0 <= out.reconstruction.min() and out.reconstruction.max() <= 1


def test_full_profile_is_the_assignment_spec():
    cfg = get_profile("full").model
    assert cfg.widths == (64, 128, 256, 512) and cfg.blocks_per_stage == 2 and cfg.latent_dim == 256
    assert cfg.norm_groups == 32
    model = VAE(cfg)
    assert 28e6 < count_parameters(model) < 36e6
    assert isinstance(model.encoder.to_mu, torch.nn.Linear) and model.encoder.to_mu.in_features == 512 * 8 * 8
    assert sum(isinstance(m, BottleneckBlock) for m in model.modules()) == 2 * 4 * 2


def test_residual_blocks_start_near_identity():
    block = BottleneckBlock(64, 2, 16, layer_scale_init=1e-2, groups=32)
    x = torch.randn(2, 64, 8, 8)
    assert (block(x) - x).abs().mean() < 0.05 * x.abs().mean()


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(kl_standard_normal(mu, logvar), expected, atol=1e-5)


def test_gaussian_nll_matches_torch_distributions_per_channel():
    x, mean = torch.rand(3, 3, 4, 4), torch.rand(3, 3, 4, 4)
    log_sigma = torch.tensor([-1.0, -2.0, 0.5]).view(1, 3, 1, 1)
    expected = -torch.distributions.Normal(mean, log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(mean, x, log_sigma), expected, atol=1e-4)


def test_mse_is_summed_over_pixels():
    x = torch.zeros(2, 3, 4, 4)
    assert torch.equal(mse_sum(x + 0.5, x), torch.full((2,), 0.25 * 48))


def test_kl_warmup_is_linear_then_one():
    assert [kl_beta(e, 4) for e in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert kl_beta(0, 0) == 1.0


def test_learned_sigma_only_for_gaussian_likelihood():
    assert VAE(override(get_profile("smoke").model, likelihood="mse")).pixel_log_sigma() is None
    sigma = VAE(get_profile("smoke").model).pixel_log_sigma()
    assert sigma.shape == (1, 3, 1, 1) and math.isclose(sigma.exp()[0, 0, 0, 0].item(), 0.1, rel_tol=1e-5)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="GroupNorm"):
        ModelConfig(widths=(48, 64))
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        get_profile("huge")
    with pytest.raises(ConfigError, match="epochz"):
        override(TrainConfig(), epochz=3)


def test_perceptual_loss_without_weights_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="perceptual_weight=0"):
        VGGPerceptual(str(tmp_path / "missing.pth"))


def test_perceptual_loss_with_local_weights(tmp_path):
    from torchvision.models import vgg16

    path = tmp_path / "vgg16.pth"
    torch.save(vgg16().state_dict(), path)
    loss = VGGPerceptual(str(path))
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(loss(x, x), torch.zeros(2)) and (loss(x, torch.rand(2, 3, 32, 32)) > 0).all()


def test_spec_profile_is_the_assignments_recipe_on_the_full_network():
    spec, full = get_profile("spec"), get_profile("full")
    assert spec.model == dataclasses.replace(full.model, likelihood="mse") and spec.data == full.data
    t = spec.train
    assert (t.epochs, t.batch_size, t.lr, t.kl_warmup_epochs, t.perceptual_weight) == (50, 32, 1e-4, 10, 0.1)
    assert t.lr_schedule == "constant" and t.ema_decay == 0
    assert "summed squared error" in describe_loss(spec.model, t) and "VGG16" in describe_loss(spec.model, t)
    assert "Gaussian NLL" in describe_loss(full.model, full.train)


def test_perceptual_loss_reads_a_features_only_state_dict(tmp_path):
    from torchvision.models import vgg16

    path = tmp_path / "vgg16-features.pth"
    torch.save({f"features.{k}": v for k, v in vgg16().features.state_dict().items()}, path)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(VGGPerceptual(str(path))(x, x), torch.zeros(2))
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="not a torchvision VGG16 state dict"):
        VGGPerceptual(str(path))


def test_cosine_schedule_warms_up_then_decays_to_zero_and_constant_stays_put():
    t = TrainConfig(lr=1e-3, lr_schedule="cosine", warmup_fraction=0.1)
    lrs = [t.lr_at(step, 100) for step in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and max(lrs) == pytest.approx(1e-3) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] < 1e-6
    assert TrainConfig(lr=2e-3).lr_at(57, 100) == 2e-3
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_fitted_gaussian_samples_follow_the_encoded_latents_not_the_prior():
    from vaelib.figures.vae import fitted_gaussian_samples

    class DecodeIsIdentity(nn.Module):  # decode(z) = z, so the samples are the latent draws themselves
        def __init__(self):
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))

        def decode(self, z):
            return z

    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(4000, 3, generator=gen) * torch.tensor([3.0, 0.5, 1.0]) + torch.tensor([5.0, -2.0, 0.0])
    samples = fitted_gaussian_samples(DecodeIsIdentity(), latents, [1.0, 0.0], per_row=2000, seed=1)
    at_one, at_zero = samples[:2000], samples[2000:]
    assert torch.allclose(at_one.mean(0), latents.mean(0), atol=0.2)
    assert torch.allclose(at_one.std(0), latents.std(0), rtol=0.1)
    assert torch.allclose(at_zero, latents.mean(0).expand_as(at_zero), atol=1e-5)  # temperature 0: the mean
