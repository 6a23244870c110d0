"""The latent-space edit methods of notebook 03, side by side: one unit direction per (target, method).

Methods, each a unit direction towards "attribute present" (edit distances: see `directions`):
- top_variance_dim: among the `top_k` most variable dims, the one most correlated with the attribute;
- correlated_dim: the dim most correlated with the attribute among all;
- mean_difference: mean latent with the attribute minus mean latent without;
- boundary_normal: the unit normal of a linear classifier (logistic regression or linear SVM);
- conditional_normal: boundary_normal with the normals of the most correlated attributes projected out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..models.classifier import predict
from ..models.vae import VAE
from .amplify import attribute_correlations, best_dim, top_variance_dims
from .directions import (
    Direction,
    axis,
    boundary_normal,
    conditional,
    correlated_attributes,
    mean_difference,
    shift_grid,
    spread,
)
from .evaluate import CONTROL, Judge, edit_rows, random_directions, score_edits, sees
from .latents import decode


def attribute_directions(mu: torch.Tensor, labels: np.ndarray, attr_names, targets, top_k: int,
                         n_condition: int, boundary: str = "logistic", c: float = 1.0, seed: int = 0
                         ) -> dict[str, dict[str, Direction]]:
    """{target: {method: Direction}} fitted on encoded latents `mu` (N, D) with their 0/1 labels (N, 40);
    `boundary` and `c` choose the linear classifier of the normals (see `directions.boundary_normal`)."""
    d = mu.shape[1]
    corr = attribute_correlations(mu, labels)
    top = top_variance_dims(mu, top_k).numpy()
    normals: dict[int, torch.Tensor] = {}

    def normal(j: int) -> torch.Tensor:  # boundary normals are reused as conditions of other targets
        if j not in normals:
            normals[j] = boundary_normal(mu, labels[:, j], boundary, attr_names[j], seed, c)
        return normals[j]

    out = {}
    for name in targets:
        j = attr_names.index(name)
        methods = {}
        for method, among in (("top_variance_dim", top), ("correlated_dim", None)):
            dim, r = best_dim(corr, j, among)
            u = axis(dim, d, np.sign(r))
            methods[method] = Direction(u, spread=spread(mu, u), note=f"dim {dim} (r={r:+.2f})")
        u = mean_difference(mu, labels[:, j], name)
        methods["mean_difference"] = Direction(u, spread=spread(mu, u))
        methods["boundary_normal"] = Direction(normal(j), spread=spread(mu, normal(j)), note=f"{boundary}, C={c:g}")
        cond = correlated_attributes(labels, j, n_condition)
        u = conditional(normal(j), torch.stack([normal(c) for c in cond]) if cond else torch.empty(0, d))
        cond_names = tuple(attr_names[c] for c in cond)
        methods["conditional_normal"] = Direction(u, spread=spread(mu, u), conditions=cond_names,
                                                  note="orthogonal to " + (", ".join(cond_names) or "-"))
        out[name] = methods
    return out


def direction_edits(directions: dict[str, dict[str, Direction]], scale: float) -> dict[str, Direction]:
    """Slider edits named "<target>: <method>", strength in units of `scale` (see `latent_scale`)."""
    return {f"{t}: {m}": replace(d, scale=scale) for t, methods in directions.items() for m, d in methods.items()}


def direction_sweep(vae: VAE, z: torch.Tensor, directions: dict[str, dict[str, Direction]], distances,
                    scale: float) -> tuple[torch.Tensor, list[str]]:
    """Latents z (N, D) moved along every direction by every distance (in units of `scale`): images with one
    grid row per (target, method, face), and the row labels."""
    rows, labels = [], []
    for target, methods in directions.items():
        for method, d in methods.items():
            rows.append(shift_grid(z, d.u * scale, distances))
            labels += [f"{target}: {method}"] * z.shape[0]
    return decode(vae, torch.cat(rows)), labels


def direction_rows(directions: dict[str, dict[str, Direction]]) -> list[dict]:
    """(target, method, note, spread) of every direction, for a printed table and the JSON."""
    return [{"target": t, "method": m, "note": d.note, "spread": d.spread}
            for t, methods in directions.items() for m, d in methods.items()]


def evaluate_directions(vae: VAE, judge: Judge, z: torch.Tensor, attr_names,
                        directions: dict[str, dict[str, Direction]], distance: float, scale: float,
                        notebook: str = "feature_amp", seed: int = 0) -> list[dict]:
    """Move every latent of z (N, D) by `distance` * `scale` along each direction (towards the target where
    the judge, at its calibrated thresholds, does not see it; away from it where it does) and score the
    edits with the judge: rows per (target, method, direction add/remove).

    Each target also gets the control method `random_direction`: every face moved by the same distance along
    its own seeded random unit direction (a fresh direction per face averages over directions, so the row
    estimates how often a face crosses the judge's threshold by chance at that distance).
    Every method of a target also reports the judged change of the attributes its conditional direction
    holds fixed ("watched"), so the table shows what conditioning bought."""
    before = decode(vae, z)
    judged = predict(judge.model, before, with_features=True)
    rows = []
    for t, (target, methods) in enumerate(directions.items()):
        j = attr_names.index(target)
        add = ~sees(judged[0][:, j], judge.thresholds[j])
        sign = add.float() * 2 - 1  # +1 add, -1 remove
        watched = max((d.conditions for d in methods.values()), key=len)
        watch = [attr_names.index(a) for a in watched]
        moves = {m: d.u[None].expand_as(z) for m, d in methods.items()}
        moves[CONTROL] = random_directions(z.shape[0], z.shape[1], seed + t)
        notes = {**{m: d.note for m, d in methods.items()}, CONTROL: f"random unit directions (seed {seed + t})"}
        for method, u in moves.items():
            z_after = z + (sign * distance * scale)[:, None] * u
            scores = score_edits(judge.model, j, before, decode(vae, z_after), z, z_after, add, judge.thresholds,
                                 judged, watch)
            rows += edit_rows(judge, notebook, method, target, scores, distance=distance, note=notes[method],
                              watched=", ".join(watched))
    return rows
