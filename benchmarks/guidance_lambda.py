"""Label guidance at one lambda on a finished run: judged success per target and direction, at n faces each.

Sizes notebook 04's settings (benchmarks/RESULTS.md): the demo runs one lambda on 16 faces per target, this
script measures another (the assignment's 0.1) on the same faces without re-running the notebook.

    python benchmarks/guidance_lambda.py --run-dir runs/demo --lam 0.1 --steps 20 --lr 0.12 --faces 16

Prints one JSON line: mean ||z - z0||, and per (target, direction) the judge's success rate, n, and the share
of the same items the optimised classifier itself sees at the target (`classifier`).
"""

from __future__ import annotations

import argparse
import json
import time

from vaelib.editing.guidance import guidance_batch, label_guidance, score_guidance
from vaelib.editing.latents import encode_split
from vaelib.run import setup_run
from vaelib.runfolder.classifiers import load_classifier, load_judge
from vaelib.runfolder.vae import load_vae

TARGETS = ("Eyeglasses", "Male", "Blond_Hair", "Wearing_Hat")  # notebook 04's ATTRIBUTES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/demo")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.12)
    parser.add_argument("--faces", type=int, default=16)
    args = parser.parse_args()
    ctx = setup_run(args.run_dir, args.profile, "synthetic", 0, "auto", "", False, False)
    vae, (classifier, _) = load_vae(ctx), load_classifier(ctx, "classifier")
    data = ctx.load_data()
    judge = load_judge(ctx, data)
    attrs = [data.attr_index(a) for a in TARGETS]
    _, z0 = encode_split(vae, data, "test", args.faces, 0)
    start = time.perf_counter()
    batch = guidance_batch(args.faces, attrs, (1.0, 0.0), (args.lam,))
    result = label_guidance(vae, classifier, z0[batch.image], batch.attr, batch.target, args.steps, args.lr,
                            batch.lam)
    rows = score_guidance(vae, judge, z0, batch, result, list(data.attr_names), steps=args.steps, lr=args.lr)
    print(json.dumps({
        "lambda": args.lam, "steps": args.steps, "lr": args.lr, "faces": args.faces,
        "seconds": round(time.perf_counter() - start, 1), "mean_distance": round(float(result.distance.mean()), 3),
        "judged": {f"{r['target']} {r['direction']}": {"success": r["success_rate"], "n": r["n"],
                                                        "classifier": r.get("classifier_success")}
                   for r in rows if r["method"] == "label_guidance"},
        "random_control": {f"{r['target']} {r['direction']}": r["success_rate"]
                           for r in rows if r["method"] != "label_guidance"},
    }))


if __name__ == "__main__":
    main()
