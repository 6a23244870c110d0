"""Training throughput: a seed-equivalent pipeline vs this project's fast path, same model, same machine.

(a) seed-equivalent: JPEG files decoded by PIL with torchvision transforms in a DataLoader, fp32, batch 32
    (what the assignment's reference solution did: ~900 images/s on a GPU).
(b) fast path: the whole uint8 dataset on the device, batched there (vaelib.training.vae.Trainer), first in plain
    fp32 NCHW (the data path alone), then with the trainer's per-device defaults: bf16 autocast on CUDA and
    on CPUs with hardware bf16 (AVX512-BF16/AMX); channels_last, fused Adam (+ torch.compile with --compile)
    on CUDA.

Prints the median images/s over several timed windows after warm-up, the ratio, and on CUDA the achieved
TFLOP/s, MFU and peak memory. Usage:
    python benchmarks/train_throughput.py --profile full --device cpu --steps 3 --windows 3
    python benchmarks/train_throughput.py --profile full --device cuda --batch-size 256 --compile \
        --images 20000 --epoch-images 162770
    python benchmarks/train_throughput.py --profile full --device cpu --batch-size 32 --variants
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from vaelib.config import get_profile, override
from vaelib.data import CROP_BOX, ensure_synthetic_celeba
from vaelib.data.batches import device_batches
from vaelib.data.pixels import images_tensor
from vaelib.run import data_dir
from vaelib.training.vae import Trainer

CELEBA_TRAIN_IMAGES = 162_770


class JpegFaces(Dataset):
    """What a torchvision CelebA dataset does per item: open the JPEG, crop, resize, to tensor."""

    def __init__(self, image_dir: Path):
        self.files = sorted(image_dir.glob("*.jpg"))
        self.transform = transforms.Compose([
            transforms.Lambda(lambda im: im.crop(CROP_BOX)),
            transforms.Resize(64),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
        ])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.files[i]) as im:
            return self.transform(im.convert("RGB"))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_windows(step, batches, batch_size: int, warmup: int, steps: int, windows: int, device) -> list[float]:
    """images/s of `windows` windows of `steps` steps each, after `warmup` untimed steps."""
    it = iter(batches)
    for _ in range(warmup):
        step(next(it))
    rates = []
    for _ in range(windows):
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            step(next(it))
        sync(device)
        rates.append(steps * batch_size / (time.perf_counter() - t))
    return rates


def make_step(trainer: Trainer, device: torch.device):
    def step(x: torch.Tensor) -> None:
        parts = trainer.losses(x.to(device, non_blocking=True), beta=1.0)
        trainer.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        trainer.optimizer.step()
    return step


def endless(make_iter):
    while True:
        yield from make_iter()


def flops_per_image(trainer: Trainer, device: torch.device) -> float:
    x = torch.rand(2, 3, 64, 64, device=device)
    with FlopCounterMode(display=False) as counter:
        trainer.losses(x, beta=1.0)["loss"].backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2


def time_epoch(profile, train_cfg, images: torch.Tensor, n_images: int, device: torch.device) -> None:
    """One real `Trainer.train_epoch` (grad clipping, loss logging and all) over `n_images` images."""
    trainer = Trainer(profile.model, override(train_cfg, epochs=1), device)
    # Warm-up ending in the epoch's partial last batch, so that torch.compile has seen both batch shapes.
    warmup = 4 * train_cfg.batch_size + n_images % train_cfg.batch_size
    trainer.train_epoch(images[:warmup], progress=False, log=lambda _: None)
    epoch_images = images.repeat(-(-n_images // images.shape[0]), 1, 1, 1)[:n_images]
    row = trainer.train_epoch(epoch_images, progress=False, log=lambda _: None)
    print(f"one training epoch of {n_images:,} images: {row['seconds']:,.1f} s ({row['images_per_s']:,.0f} images/s)"
          f"; 50 epochs: {50 * row['seconds'] / 60:,.1f} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="full")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=256, help="fast path batch size (the seed uses 32)")
    ap.add_argument("--images", type=int, default=2000, help="synthetic images to generate and load")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed window")
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of the seed pipeline")
    ap.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    ap.add_argument("--variants", action="store_true",
                    help="also time fp32/bf16 x NCHW/channels_last, eager and compiled (where a speed-up comes from)")
    ap.add_argument("--epoch-images", type=int, default=0,
                    help=f"also time one whole training epoch of this many images (GPU: {CELEBA_TRAIN_IMAGES}, "
                         "CelebA's train split; the loaded images are repeated to that count)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100/H200 SXM)")
    args = ap.parse_args()

    device = torch.device(args.device)
    profile = get_profile(args.profile)
    train_cfg = override(profile.train, compile=False)  # compiled only where asked for, below
    root = ensure_synthetic_celeba(data_dir() / f"synthetic-{args.images}", args.images, progress=False,
                                   workers=os.cpu_count() or 1)
    print(f"{args.profile} profile on {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}),"
          f" torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    # (a) seed-equivalent: fp32, batch 32, JPEG decoding in DataLoader workers.
    seed_trainer = Trainer(profile.model, override(train_cfg, batch_size=32), device, bf16=False, channels_last=False)
    loader = DataLoader(JpegFaces(root / "img_align_celeba"), batch_size=32, shuffle=True, drop_last=True,
                        num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)
    seed_rates = timed_windows(make_step(seed_trainer, device), endless(lambda: iter(loader)), 32,
                               args.warmup, args.steps, args.windows, device)
    seed = statistics.median(seed_rates)
    print(f"(a) seed-equivalent (JPEG + DataLoader, fp32, batch 32): {seed:,.1f} images/s")
    del seed_trainer

    # (b) this project's data path: the uint8 tensor on the device, batched there. Measured in plain fp32 NCHW
    # (what the data path alone gains) and with the trainer's per-device defaults (bf16 where native,
    # channels_last and fused Adam on CUDA), which is what training uses; --variants adds the other settings.
    from vaelib.data import load_celeba64

    data = load_celeba64(root, cache_dir=data_dir() / "cache", progress=False)
    images = images_tensor(data, data.split("train")).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    variants = [("data path only", False, False, False), ("fast path (trainer defaults)", None, None, args.compile)]
    if args.variants:
        variants += [("variant", bf16, cl, compiled) for bf16, cl, compiled in (
            (False, True, False), (True, True, False), (True, False, False), (True, True, True), (True, False, True))]
    for label, bf16, channels_last, compiled in variants:
        trainer = Trainer(profile.model, override(train_cfg, batch_size=args.batch_size), device, bf16, channels_last)
        if compiled:  # set here rather than via TrainConfig.compile so that it can be measured on a CPU too
            trainer.step_model = torch.compile(trainer.model)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rate = statistics.median(timed_windows(
            make_step(trainer, device), endless(lambda: device_batches(images, args.batch_size, gen, train=True)),
            args.batch_size, args.warmup, args.steps, args.windows, device))
        print(f"(b) {label}: uint8 on device, batch {args.batch_size}, bf16={trainer.bf16}, "
              f"channels_last={trainer.channels_last}, compiled={compiled}: {rate:,.1f} images/s "
              f"({rate / seed:.2f}x seed)")
        if label.startswith("fast path"):
            fast = rate
            peak_gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
        del trainer  # before the next variant allocates, so each peak is its own
    print(f"ratio fast / seed: {fast / seed:.2f}x")
    flops = flops_per_image(Trainer(profile.model, train_cfg, device, bf16=False, channels_last=False), device)
    print(f"model: {flops / 1e9:.2f} GFLOP per image per training step (forward + backward)")
    print(f"projected epoch of {CELEBA_TRAIN_IMAGES:,} images: {CELEBA_TRAIN_IMAGES / fast:,.0f} s; "
          f"50 epochs: {50 * CELEBA_TRAIN_IMAGES / fast / 60:,.1f} min")
    if device.type == "cuda":
        tflops = fast * flops / 1e12
        print(f"achieved {tflops:.1f} TFLOP/s, MFU {100 * tflops / args.peak_tflops:.1f}% of "
              f"{args.peak_tflops:.0f} TFLOP/s; peak memory {peak_gib:.1f} GiB "
              f"at batch {args.batch_size}")
    if args.epoch_images:
        time_epoch(profile, override(train_cfg, batch_size=args.batch_size, compile=args.compile), images,
                   args.epoch_images, device)


if __name__ == "__main__":
    main()
