"""What a demo-sized VAE learns from a fixed number of training images: test PSNR and ELBO bits/dim per recipe.

Used to size the demo profile by what is learned per second (benchmarks/RESULTS.md): on a 2-core CPU the cost
is the number of images pushed through the network, so recipes are compared at the same image count.

    python benchmarks/demo_recipe.py --images-seen 24000 --batch-size 16 --lr 2e-3 --layer-scale 1.0

Beta rises linearly over the first `--warmup` fraction of the steps, the learning rate follows the trainer's
schedule (TrainConfig.lr_at). Prints one JSON line; `--threads 1` lets two recipes run side by side fairly.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time

import torch

from vaelib.config import TrainConfig, override
from vaelib.data.batches import device_batches
from vaelib.data.pixels import images_tensor
from vaelib.likelihood import evaluate_vae
from vaelib.losses import kl_standard_normal, reconstruction_loss
from vaelib.models import VAE
from vaelib.quality import reconstruction_psnr
from vaelib.run import setup_run
from vaelib.training.vae import parameter_groups


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="demo", help="its data set is used")
    p.add_argument("--images-seen", type=int, default=24000, help="training images pushed through the network")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--schedule", default="cosine", choices=("constant", "cosine"))
    p.add_argument("--warmup", type=float, default=0.3, help="fraction of steps over which beta rises to 1")
    p.add_argument("--beta", type=float, default=1.0, help="the KL weight that beta rises to (1: the ELBO)")
    p.add_argument("--ema", type=float, default=0.0, help="EMA decay of the evaluated weights (0: off)")
    p.add_argument("--layer-scale", type=float, default=1.0, help="LayerScale initial value")
    p.add_argument("--blocks", type=int, default=1, help="bottleneck blocks per stage")
    p.add_argument("--test-images", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    ctx = setup_run(tempfile.mkdtemp(prefix="demo-recipe-"), a.profile, progress=False)
    data = ctx.load_data()
    train = images_tensor(data, data.split("train"))
    test = images_tensor(data, data.split("test")[:a.test_images])
    cfg = override(ctx.profile.model, layer_scale_init=a.layer_scale, blocks_per_stage=a.blocks)
    model: VAE = VAE(cfg)
    ema = copy.deepcopy(model) if a.ema else None
    opt = torch.optim.Adam(parameter_groups(model, a.lr), lr=a.lr)
    schedule = TrainConfig(lr=a.lr, lr_schedule=a.schedule)
    steps = max(1, a.images_seen // a.batch_size)
    gen, step, start = torch.Generator().manual_seed(0), 0, time.perf_counter()
    while step < steps:
        for x in device_batches(train, a.batch_size, gen, train=True):
            if step == steps:
                break
            beta = a.beta * (min(1.0, step / (a.warmup * steps)) if a.warmup > 0 else 1.0)
            for group in opt.param_groups:
                group["lr"] = schedule.lr_at(step, steps) * group["lr_scale"]
            out = model(x)
            loss = (reconstruction_loss(model, out.reconstruction, x) + beta * kl_standard_normal(out.mu, out.logvar))
            opt.zero_grad()
            loss.mean().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
            opt.step()
            step += 1
            if ema is not None:
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                        pe.lerp_(pm, 1 - a.ema)
    seconds = time.perf_counter() - start
    evaluated = (ema or model).eval()
    with torch.no_grad():
        psnr = reconstruction_psnr(evaluated, test)["psnr_db"]
        result = evaluate_vae(evaluated, test, evaluated.pixel_log_sigma().detach().float(), [1], batch_size=64)
    print(json.dumps({**{k: v for k, v in vars(a).items() if k not in ("profile", "threads")},
                      "steps": steps, "images_per_s": round(steps * a.batch_size / seconds, 1),
                      "test_psnr_db": round(psnr, 2), "elbo_bpd": round(result.bpd()[0], 3),
                      "rate_bpd": round(float(result.to_bpd(result.rate).mean()), 3)}))


if __name__ == "__main__":
    main()
