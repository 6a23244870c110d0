"""Data-parallel training under torchrun on the CPU (gloo, 2 processes): it matches one process, writes from rank 0
only, and a kill -9 of the launcher's process group is resumed by the same command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from vaelib.checkpoint import load_checkpoint
from vaelib.config import ModelConfig
from vaelib.data.batches import device_batches, shard_batches
from vaelib.models import VAE
from vaelib.pipeline.plan import RunOptions
from vaelib.pipeline.runner import torchrun_command

# Both sides in fp32 on one thread each, so the only difference left is the order of the gradient average.
ENV = {**os.environ, "VAELIB_BF16": "0", "OMP_NUM_THREADS": "1"}
# Weights of a 2-process run vs one process on the same global batch after 15 steps of Adam at lr 1e-3: measured
# max abs difference 1.3e-6 (gloo on a 2-core x86 CPU, fp32); the bound leaves a margin of ~8x for other CPUs.
TOLERANCE = 1e-5

TRAIN_SCRIPT = textwrap.dedent("""
    import sys, torch
    from pathlib import Path
    from vaelib.training import distributed
    from vaelib.config import ModelConfig, TrainConfig
    from vaelib.training.vae import Trainer
    ckpt = Path(sys.argv[1])
    cfg = ModelConfig(widths=(16, 32), blocks_per_stage=1, latent_dim=8, norm_groups=8, image_size=16)
    train = TrainConfig(epochs=3, batch_size=16, lr=1e-3, kl_warmup_epochs=2, seed=3, lr_schedule="cosine",
                        ema_decay=0.9)
    data = torch.randint(0, 256, (96, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    group = distributed.init_from_env(torch.device("cpu"), train.batch_size)
    with distributed.closing(group):
        t = Trainer(cfg, train, torch.device("cpu"), dist=group)
        # 65 training images: four batches of 16, then one of a single image (rank 0 takes it at weight 2,
        # rank 1 a stand-in at weight 0).
        t.fit(data[:65], data[65:], ckpt, progress=False, log=lambda s: None)
    if t.is_main:
        torch.save({k: v.clone() for k, v in t.model.state_dict().items()}, ckpt / "final.pt")
""")


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    # --standalone: a rendezvous on a free local port, so tests never collide on 29500.
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "train_tiny.py"
    path.write_text(TRAIN_SCRIPT)
    return path


def test_two_processes_end_where_one_process_ends_within_tolerance(tmp_path, script):
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, str(script), str(one)], env=ENV, check=True, timeout=120)
    subprocess.run(torchrun(str(script), str(two)), env=ENV, check=True, timeout=120)
    a = torch.load(one / "final.pt", weights_only=True)
    b = torch.load(two / "final.pt", weights_only=True)
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"max abs weight difference, 2 processes vs 1: {diff:.3g}")
    assert diff < TOLERANCE
    torch.manual_seed(3)  # the trainer's initial weights depend on the seed alone
    start = VAE(ModelConfig(widths=(16, 32), blocks_per_stage=1, latent_dim=8, norm_groups=8, image_size=16))
    moved = max((a[k] - v).abs().max().item() for k, v in start.state_dict().items())
    assert moved > 100 * TOLERANCE, "training must have moved the weights, or the comparison says nothing"
    state = load_checkpoint(two / "last.pt", kind="vae")
    assert state["epoch"] == 3 and state["step"] == 15  # ceil(65 / 16) = 5 global steps per epoch
    assert not any(k.startswith("module.") for k in state["model"]), "checkpoints hold the unwrapped module"
    assert [row["processes"] for row in state["history"]["epochs"]] == [2, 2, 2]


def test_rank_shards_of_a_global_batch_are_the_single_process_batch():
    images = torch.randint(0, 256, (34, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = list(device_batches(images, 8, torch.Generator().manual_seed(5), train=True))
    shards = [list(shard_batches(images, 8, torch.Generator().manual_seed(5), rank, 4)) for rank in range(4)]
    assert all(len(s) == len(whole) for s in shards)  # every rank takes part in every step
    for step, batch in enumerate(whole):
        parts = [shards[rank][step] for rank in range(4)]
        real = [p for p in parts if p.weight > 0]
        assert torch.equal(torch.cat([p.x for p in real]), batch)  # same images, same flips, same order
        assert [p.rows for p in real] == [slice(sum(len(q.x) for q in real[:r]), sum(len(q.x) for q in real[:r + 1]))
                                          for r in range(len(real))]
        # DDP averages weight x (local mean) over the 4 ranks; with these weights that is the global batch's mean.
        assert all(p.weight == len(p.x) * 4 / len(batch) for p in real)
    # 34 = 4 x 8 + 2: the last batch's two images go to ranks 0 and 1 at weight 2, ranks 2 and 3 compute a stand-in
    # image at weight 0.
    assert [(len(s[-1].x), s[-1].weight) for s in shards] == [(1, 2.0), (1, 2.0), (1, 0.0), (1, 0.0)]


# `python -m vaelib` with a slow step (a slow device: the kill lands inside an epoch). The main guard matters: the
# synthetic data generator's spawned workers import this file.
SLOW_CLI = textwrap.dedent("""
    import sys, time
    from vaelib.__main__ import main
    from vaelib.training.vae import Trainer

    def slowed(self, shard, beta, steps=Trainer.shard_losses):
        time.sleep(PAUSE)
        return steps(self, shard, beta)

    if __name__ == "__main__":
        PAUSE = float(sys.argv.pop(1))
        Trainer.shard_losses = slowed
        sys.exit(main(sys.argv[1:]))
""")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has died and waits for its parent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the workers")
def test_kill_9_of_the_launcher_mid_epoch_then_the_same_command_resumes_and_finishes(tmp_path):
    run_dir, wrapper = tmp_path / "run", tmp_path / "slow_cli.py"
    wrapper.write_text(SLOW_CLI)
    env = {**ENV, "VAELIB_DATA": str(tmp_path / "data")}
    args = ["train", "--run-dir", str(run_dir), "--profile", "smoke", "--epochs", "2", "--device", "cpu"]
    last = run_dir / "checkpoints" / "last.pt"

    launcher = subprocess.Popen(torchrun(str(wrapper), "0.2", *args), env=env, start_new_session=True)
    deadline = time.time() + 150
    while not last.exists() and time.time() < deadline and launcher.poll() is None:
        time.sleep(0.05)
    assert last.exists(), "the first epoch never finished"
    time.sleep(1.0)  # a few steps into epoch 2
    workers = children(launcher.pid)
    assert len(workers) == 2
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher's process group: torchrun's workers are not in it
    launcher.wait()
    deadline = time.time() + 10
    while any(alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "ranks must die with their launcher, not train on as orphans"
    assert load_checkpoint(last, kind="vae")["epoch"] == 1, "the kill must land before epoch 2 was saved"

    done = subprocess.run(torchrun("-m", "vaelib", *args), env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stdout and "after epoch 1" in done.stdout
    assert done.stdout.count("epoch 2/2:") == 1, "rank 0 alone logs"
    state = load_checkpoint(last, kind="vae")
    assert state["epoch"] == 2 and [row["epoch"] for row in state["history"]["epochs"]] == [1, 2]
    assert not any(k.startswith("module.") for k in state["model"])
    assert (run_dir / "metrics" / "vae.json").is_file() and (run_dir / "checkpoints" / "best.pt").is_file()
    assert not (run_dir / ".lock").exists(), "rank 0 releases the run lock"
    assert not list(run_dir.rglob("*.tmp")), "no temp files left behind"


def test_a_batch_that_does_not_split_over_the_processes_is_one_sentence(tmp_path):
    done = subprocess.run(torchrun("-m", "vaelib", "train", "--run-dir", str(tmp_path / "run"), "--profile", "smoke",
                                   "--batch-size", "33", "--device", "cpu"),
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "error: the batch of 33 images does not split evenly over 2 processes" in done.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_run_nproc_trains_under_torchrun_with_notebook_01s_parameters(tmp_path):
    params = {"PROFILE": "smoke", "DATA": "synthetic", "SEED": 4, "DEVICE": "cpu", "CELEBA_ROOT": "", "EPOCHS": 3,
              "BATCH_SIZE": 0, "VGG_WEIGHTS": ""}
    cmd = torchrun_command(RunOptions(tmp_path, "smoke", nproc=2), tmp_path, params)
    assert cmd[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    assert cmd[6:] == ["vaelib", "train", "--run-dir", str(tmp_path), "--profile", "smoke", "--data", "synthetic",
                       "--seed", "4", "--device", "cpu", "--epochs", "3"]
