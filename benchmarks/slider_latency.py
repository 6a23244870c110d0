"""Slider update latency: one `LatentExplorer.render` = edit the latent, decode one face, encode a 192x192 PNG.

This is the work behind every slider release in notebooks 03 and 05 (the browser round trip comes on top).
Random weights by default (speed does not depend on them); with --run-dir, the run's trained VAE. Prints the
median and 95th percentile per update, split into decode and PNG encode. Target on a 2-core CPU for the demo
model: median <= 50 ms. Usage:
    python benchmarks/slider_latency.py --profile demo
    python benchmarks/slider_latency.py --run-dir runs/demo --updates 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vaelib.config import get_profile
from vaelib.editing.directions import Direction, axis
from vaelib.figures.widgets import LatentExplorer, to_png
from vaelib.models import VAE, count_parameters
from vaelib.run import setup_run
from vaelib.runfolder.vae import load_vae

TARGET_MS = 50.0


def percentiles(times: list[float]) -> str:
    ms = np.array(times) * 1e3
    return f"median {np.median(ms):6.1f} ms   p95 {np.percentile(ms, 95):6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="demo", help="model size when no --run-dir is given")
    parser.add_argument("--run-dir", default="", help="use this run's trained VAE (checkpoints/best.pt)")
    parser.add_argument("--updates", type=int, default=100, help="timed slider updates")
    parser.add_argument("--size", type=int, default=192, help="displayed face size in pixels")
    args = parser.parse_args()

    if args.run_dir:
        vae = load_vae(setup_run(args.run_dir, args.profile, device="cpu", progress=False))
    else:
        vae = VAE(get_profile(args.profile).model).eval()
    d = vae.cfg.latent_dim
    explorer = LatentExplorer(vae, torch.randn(d), {"dim 0": Direction(axis(0, d))}, size=args.size)
    strengths = np.random.default_rng(0).uniform(-3, 3, args.updates)
    print(f"{args.profile} VAE ({count_parameters(vae) / 1e6:.2f} M parameters, latent {d}) on cpu, "
          f"{torch.get_num_threads()} threads; {args.updates} updates at {args.size}x{args.size}")
    explorer.render(0.0)  # warm-up: first-call allocations

    total, decode_t, png_t = [], [], []
    with torch.no_grad():
        for s in strengths:
            start = time.perf_counter()
            explorer.render(float(s))
            total.append(time.perf_counter() - start)
            start = time.perf_counter()
            image = vae.decode(explorer.z0 + float(s))[0]
            decode_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            to_png(image, args.size)
            png_t.append(time.perf_counter() - start)
    print(f"render (decode + PNG): {percentiles(total)}")
    print(f"  decode alone:        {percentiles(decode_t)}")
    print(f"  PNG encode alone:    {percentiles(png_t)}")
    verdict = "meets" if np.median(total) * 1e3 <= TARGET_MS else "misses"
    print(f"{verdict} the {TARGET_MS:.0f} ms target (median)")


if __name__ == "__main__":
    main()
