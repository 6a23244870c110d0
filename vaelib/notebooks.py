"""The notebook registry: one declaration per notebook of what it writes and which part of the report it feeds.

Everything else derives from it: the runner's notebook list and the outputs it checks after each notebook
(`vaelib.pipeline`), the sections `report/main.tex` inputs and the tables and figure groups generated for them
(`vaelib.report`), and the sections a `configs/<profile>.json` may have. The parameters a notebook takes are its
own `parameters` cell (names, defaults and so types); per-profile values for them live in
`configs/<profile>.json` and are checked against that cell before a run starts.

Adding a notebook: `notebooks/NN_name.ipynb`, its entry below, `report/sections/<section>.tex`, and the library
code it calls (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableSpec:
    """A generated table: records found at `path` (dotted; "" = the first records in the file) in each source
    JSON, or with `scalars` that dict's scalar entries; a source without records contributes its scalars.
    Rows of several sources get a `source` column unless `label_sources` is off (rows that name their origin).
    `columns`: (key, header) pairs to show; empty = every scalar column."""

    name: str
    sources: tuple[str, ...]
    caption: str
    path: str = ""
    index: str = "name"
    scalars: bool = False
    label_sources: bool = True
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Notebook:
    """`outputs`: globs under RUN_DIR it must leave (each must match a file) or the run fails naming them.
    `sections`: report/sections/<name>.tex it feeds; the report inputs them in registry order, each at its
    first mention. `tables`: run-table-<name>.tex built from its metrics. `figure_groups`: prefixes whose
    figures/<prefix>_* files become run-figs-<prefix>.tex, captioned from `captions` (else by file name)."""

    name: str
    outputs: tuple[str, ...]
    sections: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    figure_groups: tuple[str, ...] = ()
    captions: Mapping[str, str] = field(default_factory=dict)


REGISTRY = (
    Notebook(
        "01_train_vae",
        outputs=("checkpoints/last.pt", "checkpoints/best.pt", "metrics/train_history.json", "metrics/vae.json",
                 "metrics/reconstruction.json", "figures/loss_curves.pdf", "figures/reconstructions.png",
                 "figures/interpolation.png", "figures/samples_temperature.png",
                 "metrics/latents.json", "figures/samples_fitted_gaussian.png"),
        sections=("model", "training"),
    ),
    Notebook(
        "02_classifier",
        outputs=("checkpoints/classifier.pt", "checkpoints/judge.pt", "metrics/classifier.json",
                 "figures/classifier_accuracy.pdf"),
        sections=("classifier",),
        tables=(
            TableSpec("classifier", ("classifier",), "Test-split accuracy per attribute of the attribute classifier "
                      "and the judge, each deciding at its threshold calibrated on the validation split (thr.), and "
                      "the majority-class baseline (rendered: drawn by the synthetic generator).",
                      path="attribute_table",
                      columns=(("attribute", "attribute"), ("rendered", "rendered"),
                               ("majority_baseline", "baseline"), ("classifier_threshold", "thr."),
                               ("classifier_accuracy", "classifier"), ("classifier_balanced", "balanced"),
                               ("judge_threshold", "thr."), ("judge_accuracy", "judge"),
                               ("judge_balanced", "balanced"))),
            TableSpec("classifier-summary", ("classifier",), "Mean accuracy over attributes at the calibrated "
                      "thresholds, and the worst attribute's balanced accuracy.", path="summary",
                      columns=(("model", "model"), ("attributes", "attributes"), ("accuracy", "accuracy"),
                               ("majority_baseline", "baseline"), ("balanced_accuracy", "balanced accuracy"),
                               ("worst_balanced_accuracy", "worst balanced"))),
        ),
    ),
    Notebook(
        "03_feature_amp",
        outputs=("metrics/feature_amp.json", "metrics/edit_eval_feature_amp.json", "figures/amp_*.png"),
        sections=("editing",),
        tables=(
            TableSpec("directions", ("feature_amp",), "Attribute directions compared in the edit evaluation.",
                      path="directions", columns=(("target", "target"), ("method", "method"), ("note", "note"),
                                                  ("spread", "spread"))),
        ),
        figure_groups=("amp",),
        captions={
            "amp_correlation.pdf": "Correlation of latent dimensions with the attributes.",
            "amp_attribute_dims.png": "Sweeps along the latent dimension most correlated with each target "
                                      "attribute.",
            "amp_top_dims.png": "The most variable dimensions, ranked by how much the judge sees an attribute "
                                "change.",
            "amp_directions.png": "Sweeps along the attribute directions of each method.",
            "amp_conditional.png": "Boundary normal against conditional normal (correlated attributes held fixed).",
        },
    ),
    Notebook(
        "04_label_guidance",
        outputs=("metrics/label_guidance.json", "metrics/edit_eval_label_guidance.json", "figures/guidance_*.png",
                 "figures/guidance_lambda.pdf"),
        sections=("editing",),  # its subsection follows 03's
        tables=(
            TableSpec("guidance-sweep", ("label_guidance",), "Label guidance against the closeness weight lambda, "
                      "add and remove edits apart, each followed by its random-direction control at the same latent "
                      "distances; n = faces the judge saw on the other side before the edit; success with its "
                      "Wilson 95% interval (low, high).",
                      path="sweep", columns=(("target", "target"), ("method", "method"), ("direction", "dir."),
                                             ("lambda", "lambda"), ("n", "n"), ("success_rate", "success"),
                                             ("success_lo", "low"), ("success_hi", "high"),
                                             ("classifier_success", "classifier"), ("latent_l2", "latent L2"),
                                             ("pixel_mse", "pixel MSE"), ("other_change", "other attr."))),
            # 03's edit evaluation and this one's, stacked: the methods of both notebooks in one table.
            TableSpec("edit-eval", ("edit_eval_feature_amp", "edit_eval_label_guidance"),
                      "Edit evaluation: every editing method scored by the judge at its calibrated thresholds "
                      "(thr.), add and remove edits apart (dir.), with the random-direction control at the same "
                      "latent distance; n = faces the judge saw on the other side before the edit, success = share "
                      "whose judged decision flipped to the goal, with its Wilson 95% interval (low, high).",
                      path="rows", label_sources=False,
                      columns=(("target", "target"), ("method", "method"), ("direction", "dir."), ("n", "n"),
                               ("success_rate", "success"), ("success_lo", "low"), ("success_hi", "high"),
                               ("other_change", "other attr."), ("pixel_mse", "pixel MSE"),
                               ("latent_l2", "latent L2"), ("judge_threshold", "thr."),
                               ("judge_balanced_accuracy", "judge bal. acc."))),
        ),
        figure_groups=("guidance",),
        captions={
            "guidance_edits.png": "Label guidance: each target attribute added (+) and removed (-).",
            "guidance_lambda.pdf": "Label guidance: judged success (add and remove pooled) against latent distance "
                                   "for each lambda, by the judge, by the guiding classifier, and for random "
                                   "directions at the same distances.",
            "guidance_sweep.png": "Label guidance for increasing lambda.",
        },
    ),
    Notebook(
        "05_identity_transfer",
        outputs=("metrics/identity_transfer.json", "figures/identity_*.png"),
        # The evaluation of 03's and 04's edits closes the editing part of the report, after the last edit.
        sections=("identity", "evaluation"),
        tables=(
            TableSpec("identity", ("identity_transfer",), "Identity transfer against the number K of components "
                      "taken from the anchor: of n subject-anchor pairs, how many transferred faces are nearer the "
                      "anchor's photos than the subject's other photos in the identity embedding (share and Wilson "
                      "95% interval).", path="identity.transfer",
                      columns=(("k", "K"), ("n", "n"), ("successes", "nearer anchor"), ("success_rate", "share"),
                               ("success_lo", "low"), ("success_hi", "high"))),
        ),
        figure_groups=("identity",),
        captions={
            "identity_essences.png": "Identity essences: images of one person and the decoded mean of their "
                                     "latents.",
            "identity_grid.png": "Identity transfer: the anchor's leading principal components given to each "
                                 "subject.",
            "identity_k_sweep.png": "Identity transfer against the number K of components taken from the anchor.",
            "identity_k_sweep.pdf": "Share of transferred faces nearer the anchor than the subject in the identity "
                                    "embedding, against K, beside the embedding's verification rate and chance.",
        },
    ),
    Notebook(
        "06_bpd",
        outputs=("metrics/likelihood.json", "figures/iwae_vs_k.pdf", "metrics/fid.json"),
        sections=("likelihood", "sample_quality"),
        tables=(
            TableSpec("bonus", ("likelihood",), "The assignment's bonus metric as it defines it: this run beside "
                      "the values the seed solution published.", path="bonus_table",
                      columns=(("quantity", "quantity"), ("this_run", "this run"),
                               ("seed_published", "seed published"))),
            TableSpec("likelihood", ("likelihood",), "Likelihood bounds on the test split (bits per dimension).",
                      path="iwae", index="k"),
            TableSpec("likelihood-summary", ("likelihood",), "Likelihood summary (all scalar entries of "
                      "likelihood.json).", index="quantity", scalars=True),
            TableSpec("fid", ("fid",), "FID and KID against the test split (lower is better; n: generated images "
                      "per set, as many test images as reference).", path="sets",
                      columns=(("set", "images"), ("n", "n"), ("fid", "FID"), ("kid", "KID"),
                               ("kid_std", "KID std"))),
        ),
    ),
)

NAMES = tuple(nb.name for nb in REGISTRY)
TRAINING_NOTEBOOK = "01_train_vae"  # the one `--nproc N` trains under torchrun first (vaelib.pipeline.runner)


def expected_outputs() -> dict[str, tuple[str, ...]]:
    return {nb.name: nb.outputs for nb in REGISTRY}


def report_sections() -> list[str]:
    """report/sections/<name>.tex in the order the report inputs them (before the appendix)."""
    return list(dict.fromkeys(section for nb in REGISTRY for section in nb.sections))


def tables() -> list[TableSpec]:
    return [spec for nb in REGISTRY for spec in nb.tables]


def figure_groups() -> list[str]:
    return [prefix for nb in REGISTRY for prefix in nb.figure_groups]


def figure_captions() -> dict[str, str]:
    return {file: caption for nb in REGISTRY for file, caption in nb.captions.items()}
