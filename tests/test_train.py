"""Training: exact resume after kill -9, fast path == plain path, NaN handling, checkpoint errors."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from vaelib.checkpoint import load_checkpoint, save_checkpoint
from vaelib.config import ModelConfig, TrainConfig, get_profile
from vaelib.errors import CheckpointError, ConfigError, TrainingDivergedError
from vaelib.training.vae import Trainer

TINY = ModelConfig(widths=(16, 32), blocks_per_stage=1, latent_dim=8, norm_groups=8, image_size=16)


def tiny_data(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


TRAIN_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from pathlib import Path
    from vaelib.config import ModelConfig, TrainConfig
    from vaelib.training.vae import Trainer
    ckpt, epochs, slow = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    cfg = ModelConfig(widths=(16, 32), blocks_per_stage=1, latent_dim=8, norm_groups=8, image_size=16)
    gen = torch.Generator().manual_seed(1)
    data = torch.randint(0, 256, (96, 3, 16, 16), dtype=torch.uint8, generator=gen)
    t = Trainer(cfg, TrainConfig(epochs=epochs, batch_size=16, lr=1e-3, kl_warmup_epochs=2, seed=3),
                torch.device("cpu"))
    t.fit(data[:64], data[64:], ckpt, progress=False, log=lambda s: None,
          on_epoch=lambda h: time.sleep(slow))
    torch.save(t.model.state_dict(), ckpt / "final.pt")
""")


def run_training(ckpt: Path, epochs: int, slow: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(ckpt), str(epochs), str(slow)])


def test_rerun_after_kill_9_ends_bit_identical(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_training(straight, 4).wait(timeout=300) == 0

    proc = run_training(killed, 4, slow=2.0)  # sleeps after each epoch so the kill lands mid-run
    deadline = time.time() + 120
    while not (killed / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted_at = load_checkpoint(killed / "last.pt", kind="vae")["epoch"]
    assert 1 <= interrupted_at < 4, "the kill must land before training finished"
    assert not (killed / "final.pt").exists()

    assert run_training(killed, 4).wait(timeout=300) == 0
    a = torch.load(straight / "final.pt", weights_only=True)
    b = torch.load(killed / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not list(killed.glob("*.tmp")), "no temp files left behind"


@pytest.mark.parametrize("bf16, channels_last", [(True, True), (True, False), (None, None)],
                         ids=["bf16+channels_last", "bf16", "device-default"])
def test_fast_path_matches_plain_path_on_the_same_batch(bf16, channels_last):
    x = tiny_data(16, 0).float() / 255
    plain = Trainer(TINY, TrainConfig(seed=5), torch.device("cpu"), bf16=False, channels_last=False)
    other = Trainer(TINY, TrainConfig(seed=5), torch.device("cpu"), bf16=bf16, channels_last=channels_last)
    assert all(torch.equal(p, q) for p, q in zip(plain.model.parameters(), other.model.parameters(), strict=True))

    def losses_and_gradient(trainer):
        torch.manual_seed(0)  # the same reparameterisation noise
        parts = trainer.losses(x, beta=1.0)
        parts["loss"].backward()
        return parts, torch.cat([p.grad.flatten() for p in trainer.model.parameters()])

    (a, grad_a), (b, grad_b) = losses_and_gradient(plain), losses_and_gradient(other)
    for k in ("loss", "recon", "kl"):
        assert torch.isclose(a[k], b[k], rtol=2e-2, atol=0.05), (k, a[k].item(), b[k].item())
    # The update direction, not just the loss, must agree within bf16 rounding.
    assert torch.nn.functional.cosine_similarity(grad_a, grad_b, dim=0) > 0.99


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = tiny_data(48, 2)
    t = Trainer(TINY, TrainConfig(epochs=1, batch_size=16, log_every=1), torch.device("cpu"))
    t.fit(data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)
    good = (tmp_path / "last.pt").read_bytes()

    t2 = Trainer(TINY, TrainConfig(epochs=2, batch_size=16, log_every=1), torch.device("cpu"))
    with torch.no_grad():
        t2.model.decoder.from_latent.weight.fill_(float("nan"))
    t2.load_state = lambda state, path: None  # keep the poisoned weights instead of resuming
    with pytest.raises(TrainingDivergedError, match="last good checkpoint is kept"):
        t2.fit(data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)
    assert (tmp_path / "last.pt").read_bytes() == good


def test_checkpoint_of_another_config_is_a_clear_error(tmp_path):
    data = tiny_data(48, 2)
    Trainer(TINY, TrainConfig(epochs=1, batch_size=16), torch.device("cpu")).fit(
        data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)
    other = ModelConfig(widths=(16, 32), blocks_per_stage=1, latent_dim=4, norm_groups=8, image_size=16)
    with pytest.raises(CheckpointError, match=r"latent_dim: checkpoint 8 vs requested 4"):
        Trainer(other, TrainConfig(epochs=2, batch_size=16), torch.device("cpu")).fit(
            data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"kind": "vae", "model": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path, kind="vae")


def test_resume_may_extend_epochs_but_never_raises_lr(tmp_path):
    data, messages = tiny_data(48, 2), []
    fit = dict(progress=False, log=lambda s: None)
    Trainer(TINY, TrainConfig(epochs=1, batch_size=16), torch.device("cpu")).fit(data[:32], data[32:], tmp_path, **fit)
    t = Trainer(TINY, TrainConfig(epochs=2, batch_size=16), torch.device("cpu"))
    history = t.fit(data[:32], data[32:], tmp_path, **fit)
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    raised = Trainer(TINY, TrainConfig(epochs=3, batch_size=16, lr=0.5), torch.device("cpu"))
    raised.fit(data[:32], data[32:], tmp_path, progress=False, log=messages.append)
    assert raised.cfg.lr == TrainConfig().lr and raised.optimizer.param_groups[0]["lr"] == TrainConfig().lr
    assert any("continues with lr 0.001 from its checkpoint, not 0.5" in m for m in messages), messages


def test_batch_size_override_scales_the_learning_rate_by_its_square_root(tmp_path):
    from vaelib.config import get_profile, with_batch_size
    from vaelib.run import setup_run

    base = get_profile("demo").train
    b = base.batch_size
    assert with_batch_size(base, 4 * b).lr == pytest.approx(2 * base.lr)  # 4x the batch: 2x the lr
    assert with_batch_size(base, b // 4).lr == pytest.approx(base.lr / 2)
    ctx = setup_run(str(tmp_path / "run"), "demo", device="cpu", batch_size=4 * b)
    assert (ctx.profile.train.batch_size, ctx.profile.train.lr) == (4 * b, pytest.approx(2 * base.lr))
    with pytest.raises(ConfigError, match="batch_size must be a positive number"):
        setup_run(str(tmp_path / "run"), "demo", device="cpu", batch_size=0)


def test_resuming_at_another_batch_size_is_a_clear_error(tmp_path):
    data = tiny_data(48, 2)
    Trainer(TINY, TrainConfig(epochs=1, batch_size=16), torch.device("cpu")).fit(
        data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)
    with pytest.raises(CheckpointError, match=r"batch_size: checkpoint 16 vs requested 8"):
        Trainer(TINY, TrainConfig(epochs=2, batch_size=8), torch.device("cpu")).fit(
            data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)


def test_resuming_in_another_precision_says_so(tmp_path):
    data, messages = tiny_data(48, 2), []
    Trainer(TINY, TrainConfig(epochs=1, batch_size=16), torch.device("cpu"), bf16=True).fit(
        data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)
    Trainer(TINY, TrainConfig(epochs=2, batch_size=16), torch.device("cpu"), bf16=False).fit(
        data[:32], data[32:], tmp_path, progress=False, log=messages.append)
    assert any("trained with bf16 autocast and this device continues without it" in m for m in messages), messages


def test_checkpoint_of_an_older_format_says_to_retrain(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"kind": "vae", "format_version": 1}, path)
    with pytest.raises(CheckpointError, match="another vaelib version .* delete it, or use a new RUN_DIR"):
        load_checkpoint(path, kind="vae")


def test_spec_recipe_trains_with_summed_squared_error_and_vgg_perceptual(tmp_path):
    from torchvision.models import vgg16

    weights = tmp_path / "vgg16-features.pth"  # random weights: the recipe's code path, not its numbers
    torch.save({f"features.{k}": v for k, v in vgg16().features.state_dict().items()}, weights)
    spec = get_profile("spec").train
    model_cfg = dataclasses.replace(TINY, likelihood="mse")
    cfg = dataclasses.replace(spec, epochs=1, compile=False, vgg_weights=str(weights))
    data = tiny_data(48, seed=2)
    history = Trainer(model_cfg, cfg, torch.device("cpu")).fit(data[:32], data[32:], tmp_path, progress=False,
                                                             log=lambda s: None)
    row = history["epochs"][0]
    assert row["beta"] == 0.0  # epoch 1 of a 10-epoch warm-up: beta = 0 / 10
    assert row["train_loss"] > row["train_recon"] > 0  # summed squared error plus a positive perceptual term
    assert "summed squared error" in history["validation_loss"]


def test_ema_weights_are_what_best_pt_is_evaluated_with(tmp_path):
    from vaelib.training.weights import evaluation_weights

    cfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, lr_schedule="cosine", ema_decay=0.9)
    data = tiny_data(48, seed=4)
    t = Trainer(TINY, cfg, torch.device("cpu"))
    t.fit(data[:32], data[32:], tmp_path, progress=False, log=lambda s: None)
    last = load_checkpoint(tmp_path / "last.pt", kind="vae")
    best = load_checkpoint(tmp_path / "best.pt", kind="vae")
    ema = evaluation_weights(last)
    assert set(ema) == set(last["model"])
    assert not all(torch.equal(ema[k], last["model"][k]) for k in ema)  # an average, not the last weights
    kept = last["best_model"]  # the best epoch's evaluation weights, which best.pt is evaluated with
    assert all(torch.equal(evaluation_weights(best)[k], kept[k]) for k in kept)
    assert [s["lr"] for s in t.history["steps"]][-1] < cfg.lr / 2  # the cosine has decayed


def test_loop_weights_epoch_means_and_a_resumed_loop_continues_where_it_stopped():
    from vaelib.training.loop import Loop

    w = torch.nn.Parameter(torch.zeros(1))
    loop = Loop(torch.optim.SGD([w], lr=0.1), lr_at=lambda step: 0.1 / (step + 1))
    batches = [torch.full((3,), 1.0), torch.full((1,), 5.0)]  # a full batch and a short last one
    logged = []
    means, _ = loop.run_epoch(batches, lambda x: ({"loss": (w * x).sum() * 0 + x.mean()}, len(x)), len(batches),
                              on_log=lambda done, m: logged.append((done, m["loss"])))
    assert means["loss"] == pytest.approx((3 * 1.0 + 1 * 5.0) / 4)  # weighted by the batch weights, not per batch
    assert logged == [(1.0, pytest.approx(2.0))] and loop.step == 2 and loop.lr == pytest.approx(0.05)
    rows = []
    loop.epoch = 2  # as a resume restores it
    loop.fit(3, lambda: {"epoch": loop.epoch + 1}, rows.append)
    assert rows == [{"epoch": 3}] and loop.epoch == 3
