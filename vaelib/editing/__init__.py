"""Latent-space editing of notebooks 02-05, one job per module.

    classify    train / load / score the attribute classifier and the independent judge (02)
    latents     encode images to posterior means, decode latents, pick fixed example faces
    amplify     single latent dimensions: variance ranking, amplification sweeps, attribute correlation (03)
    directions  attribute directions: mean difference, boundary normals, conditional projection (03)
    methods     every edit method per target attribute, side by side, scored by the judge (03)
    guidance    label guidance: optimise z against the classifier, batched (04)
    identity    PCA, identity essences and principal-component transfer (05)
    evaluate    the judge's edit metrics, the per-notebook tables and their merge
    plots       figures of 02-05 that are not plain image grids
"""

from .classify import ClassifierTraining, load_classifier, predict, train_classifier, train_or_load
from .evaluate import collect_edit_eval, format_table, score_edits
from .guidance import guidance_batch, label_guidance
from .identity import fit_pca, identity_essences, transfer
from .latents import decode, encode, encode_split
from .methods import attribute_directions, evaluate_directions

__all__ = [
    "ClassifierTraining",
    "attribute_directions",
    "collect_edit_eval",
    "decode",
    "encode",
    "encode_split",
    "evaluate_directions",
    "fit_pca",
    "format_table",
    "guidance_batch",
    "identity_essences",
    "label_guidance",
    "load_classifier",
    "predict",
    "score_edits",
    "train_classifier",
    "train_or_load",
    "transfer",
]
