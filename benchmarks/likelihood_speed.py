"""IWAE evaluation speed: images/s of `vaelib.likelihood.evaluate_vae` at K samples per image, float32.

Random weights and random uint8 images (speed does not depend on either), the profile's model on the chosen
device. Prints images/s, decodes/s, the share of time spent in the decoder alone, and the projected time for
the full CelebA test split (19,962 images). Target on one H100 for the `full` model: K=100 over the test split
in <= 5 min, i.e. >= 67 images/s. Usage:
    python benchmarks/likelihood_speed.py --profile demo --images 8
    python benchmarks/likelihood_speed.py --profile full --device cuda --images 512
"""

from __future__ import annotations

import argparse
import time

import torch

from vaelib.config import get_profile, resolve_device
from vaelib.likelihood import evaluate_vae, resolve_log_sigma
from vaelib.models import VAE, count_parameters

CELEBA_TEST_IMAGES = 19_962
TARGET_SECONDS = 300.0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def decoder_only_rate(model: VAE, n: int, device: torch.device) -> float:
    """Decodes per second of the bare decoder on n latents at once (the floor any evaluation must pay)."""
    z = torch.randn(n, model.cfg.latent_dim, device=device)
    model.decode(z[:8])  # warm-up (cuDNN autotuning, allocator)
    sync(device)
    start = time.perf_counter()
    model.decode(z)
    sync(device)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="full", help="smoke | demo | full (the model size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=64, help="images to evaluate (timed)")
    parser.add_argument("--k", type=int, default=100, help="importance samples per image")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-decode", type=int, default=1024, help="samples decoded at once")
    args = parser.parse_args()

    device = resolve_device(args.device)
    model = VAE(get_profile(args.profile).model).to(device).eval()
    log_sigma, _ = resolve_log_sigma(model)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 64, 64), dtype=torch.uint8, generator=generator)
    print(f"{args.profile} model ({count_parameters(model) / 1e6:.1f} M parameters) on {device}, "
          f"{torch.get_num_threads()} CPU threads; K={args.k}, {args.images} images, batch {args.batch_size}, "
          f"max_decode {args.max_decode}")

    evaluate_vae(model, images[: min(2, args.images)], log_sigma, [2], args.batch_size, args.max_decode)  # warm-up
    result = evaluate_vae(model, images, log_sigma, [args.k], args.batch_size, args.max_decode)
    rate = result.images_per_s
    batch = min(args.batch_size, args.images)
    decode_rate = decoder_only_rate(model, batch * min(args.k, max(1, args.max_decode // batch)), device)
    projected = CELEBA_TEST_IMAGES / rate
    print(f"IWAE K={args.k}: {rate:.2f} images/s = {rate * args.k:.0f} decodes/s "
          f"({result.seconds:.1f} s for {args.images} images)")
    print(f"decoder alone: {decode_rate:.0f} decodes/s -> decoding is {rate * args.k / decode_rate:.0%} of the time")
    print(f"projected CelebA test split ({CELEBA_TEST_IMAGES} images): {projected / 60:.1f} min "
          f"(target {TARGET_SECONDS / 60:.0f} min on one H100 for the full model = "
          f"{CELEBA_TEST_IMAGES / TARGET_SECONDS:.0f} images/s)")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
