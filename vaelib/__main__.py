"""Command line: `python -m vaelib {run,train,synth,report,overview,lab} ...` (`python -m vaelib run --help`).

    run      the registered notebooks into a run folder, then report.pdf and notebook PDFs (what `make demo` calls)
    train    only the VAE training of notebook 01, for a GPU job without Jupyter
    synth    generate the synthetic CelebA-format dataset (in parallel) before a run needs it
    report   rebuild report.pdf and the notebook PDFs of an existing run folder
    overview the README picture of a run (test faces, reconstructions, one edit; what make demo writes to docs/)
    lab      register the `vae-celeba` kernel and start JupyterLab on notebooks/ (what `make lab` calls)

User errors (bad parameter, missing data, a failing notebook) print one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from .config import PROFILES
from .errors import VaelibError
from .lab import DEFAULT_PORT


def _run(args: argparse.Namespace) -> None:
    from .pipeline.plan import RunOptions
    from .pipeline.runner import run_pipeline

    opts = RunOptions(args.run_dir or f"runs/{args.profile}", args.profile, args.data, args.seed, args.device,
                      args.celeba_root, args.force, tuple(filter(None, args.only.split(","))),
                      documents=not args.no_documents, verbose=args.verbose, nproc=args.nproc)
    result = run_pipeline(opts)
    print(f"run folder: {result.run_dir} ({len(result.executed)} notebook(s) executed, "
          f"{len(result.skipped)} complete and skipped)")
    for path in result.documents:
        print(f"  {path}")


def _train(args: argparse.Namespace) -> None:
    from .runfolder.vae import train_from_cli

    train_from_cli(args.run_dir, args.profile, args.data, args.seed, args.epochs, args.batch_size, args.device,
                   celeba_root=args.celeba_root, lr=args.lr, grad_clip=args.grad_clip, vgg_weights=args.vgg_weights)


def _synth(args: argparse.Namespace) -> None:
    from .config import override
    from .data import ensure_synthetic_celeba
    from .run import resolve_path, synthetic_root

    cfg = PROFILES[args.profile].data
    if args.images:
        cfg = override(cfg, synthetic_images=args.images)
    # The folder RunContext.load_data() looks in, so a later run reuses the images.
    root = resolve_path(args.root) if args.root else synthetic_root(cfg)
    print(ensure_synthetic_celeba(root, cfg.synthetic_images, seed=0, workers=args.workers,  # runs use seed 0
                                  per_identity=cfg.images_per_identity))


def _report(args: argparse.Namespace) -> int:
    from .pipeline.documents import build_documents
    from .run import resolve_path

    run_dir = resolve_path(args.run_dir)
    if not (run_dir / "metrics").is_dir():
        raise VaelibError(f"{run_dir} has no metrics/ folder; run `python -m vaelib run --run-dir {args.run_dir}` "
                          f"first.")
    built = build_documents(run_dir)
    for path in built:
        print(path)
    return 0 if built else 1  # build_documents has said what is missing; a script must not read this as success


def _overview(args: argparse.Namespace) -> None:
    from .run import read_manifest, resolve_path, setup_run
    from .runfolder.overview import EDIT_DISTANCE, write_overview

    run_dir = resolve_path(args.run_dir)
    manifest = read_manifest(run_dir)
    if "profile" not in manifest:
        raise VaelibError(f"{run_dir} has no manifest.json of a finished run; run `python -m vaelib run --run-dir "
                          f"{args.run_dir}` first.")
    ctx = setup_run(str(run_dir), manifest["profile"], manifest.get("data"), manifest.get("seed", 0),
                    manifest.get("device_setting", "auto"), progress=False)
    scored = manifest.get("notebooks", {}).get("03_feature_amp", {}).get("parameters", {})
    print(write_overview(ctx, resolve_path(args.out), args.attribute, scored.get("EVAL_DISTANCE", EDIT_DISTANCE)))


def _lab(args: argparse.Namespace) -> int:
    from .lab import run_lab

    return run_lab(args.port, open_browser=not args.no_browser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vaelib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    profiles = sorted(PROFILES)

    run = sub.add_parser("run", help="run the notebooks, then build report.pdf and notebook PDFs")
    run.add_argument("--profile", choices=profiles, default="demo", help="sizes of model, data, training")
    run.add_argument("--run-dir", help="run folder (default runs/<profile>; relative = from the project root)")
    run.add_argument("--data", choices=("synthetic", "celeba"), help="default: the profile's (full = celeba)")
    run.add_argument("--celeba-root", default="", help="real CelebA folder (default $CELEBA_ROOT)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    run.add_argument("--force", action="store_true", help="re-run notebooks even when their outputs are complete")
    run.add_argument("--only", default="", help="comma-separated notebooks, e.g. 01,02 (default all)")
    run.add_argument("--no-documents", action="store_true", help="skip report.pdf and the notebook PDFs")
    run.add_argument("--verbose", action="store_true", help="also print what the notebooks print (training logs)")
    run.add_argument("--nproc", type=int, default=1,
                     help="train the VAE with this many data-parallel processes (torchrun, one per GPU), then run "
                          "the notebooks (default 1: notebook 01 trains)")
    run.set_defaults(func=_run)

    train = sub.add_parser("train", help="train the VAE of a run folder (notebook 01's training only)")
    train.add_argument("--run-dir", required=True)
    train.add_argument("--profile", choices=profiles, default="demo")
    train.add_argument("--data", choices=("synthetic", "celeba"))
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--epochs", type=int, help="default: the profile's")
    train.add_argument("--batch-size", type=int,
                       help="default: the profile's; the learning rate scales with its square root")
    train.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    train.add_argument("--vgg-weights", help="torchvision's vgg16-397923af.pth for the perceptual loss of the spec "
                                             "profile (default: the torchvision cache)")
    train.add_argument("--celeba-root", default="", help="real CelebA folder (default $CELEBA_ROOT)")
    train.add_argument("--lr", type=float,
                       help="learning rate (default: the profile's); a resume may lower it, e.g. after a divergence")
    train.add_argument("--grad-clip", type=float, help="gradient-norm clip (default: the profile's); a resume may "
                                                       "lower it")
    train.set_defaults(func=_train)

    synth = sub.add_parser("synth", help="generate the synthetic CelebA-format dataset")
    synth.add_argument("--profile", choices=profiles, default="demo", help="its image count is the default")
    synth.add_argument("--images", type=int, help="number of images (default: the profile's)")
    synth.add_argument("--root", help="output folder (default: where runs look, $VAELIB_DATA/synthetic-N)")
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    synth.set_defaults(func=_synth)

    rep = sub.add_parser("report", help="build report.pdf and the notebook PDFs of a run folder")
    rep.add_argument("--run-dir", default="runs/demo")
    rep.set_defaults(func=_report)

    over = sub.add_parser("overview", help="the README picture of a run: faces, reconstructions and one edit")
    over.add_argument("--run-dir", default="runs/demo")
    over.add_argument("--out", default="docs/demo.png")
    over.add_argument("--attribute", default="Eyeglasses", help="the attribute added in the third row")
    over.set_defaults(func=_overview)

    lab = sub.add_parser("lab", help="JupyterLab on notebooks/ with the vae-celeba kernel")
    lab.add_argument("--port", type=int, default=DEFAULT_PORT)
    lab.add_argument("--no-browser", action="store_true", help="print the URL only (remote nodes)")
    lab.set_defaults(func=_lab)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except VaelibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
