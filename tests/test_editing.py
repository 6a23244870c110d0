"""Latent edits: directions, conditioning, amplification, label guidance, identity transfer, edit scoring."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from vaelib.config import get_profile
from vaelib.editing.amplify import amplify, attribute_correlations, best_dim, top_variance_dims
from vaelib.editing.directions import boundary_normal, conditional, correlated_attributes, mean_difference, shift_grid
from vaelib.editing.evaluate import Judge, random_directions, score_edits, wilson_interval
from vaelib.editing.guidance import guidance_batch, label_guidance
from vaelib.editing.identity import fit_pca, identity_essences, pick_identities, transfer, transfer_grid
from vaelib.editing.identity_measure import fit_identity_embedding, transfer_rows, verification
from vaelib.editing.latents import encode
from vaelib.editing.methods import attribute_directions, evaluate_directions
from vaelib.errors import ConfigError
from vaelib.figures.tables import format_table
from vaelib.models import VAE
from vaelib.models.classifier import AttributeClassifier, ClassifierConfig
from vaelib.run import setup_run
from vaelib.runfolder.edits import collect_edit_eval

D = 12


def _latents(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Gaussian latents whose dim 3 alone decides attribute 0; attribute 1 copies attribute 0 90 % of the time."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, D, generator=g)
    labels = np.zeros((n, 3), dtype=np.int8)
    labels[:, 0] = (mu[:, 3] > 0).numpy()
    flip = torch.rand(n, generator=g).numpy() < 0.1
    labels[:, 1] = np.where(flip, 1 - labels[:, 0], labels[:, 0])
    labels[:, 2] = (torch.rand(n, generator=g) < 0.5).numpy()
    return mu, labels


@pytest.mark.parametrize("method", ["mean_difference", "logistic", "svm"])
def test_direction_recovers_the_attribute_dimension(method):
    mu, labels = _latents()
    if method == "mean_difference":
        u = mean_difference(mu, labels[:, 0])
    else:
        u = boundary_normal(mu, labels[:, 0], method)
    assert u.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert u[3].item() > 0.9  # cosine with e_3, and pointing towards "attribute present"


def test_constant_attribute_has_no_direction():
    mu, _ = _latents(50)
    with pytest.raises(ConfigError, match="single class"):
        boundary_normal(mu, np.ones(50), name="Bald")


def test_conditional_direction_is_orthogonal_to_the_conditions():
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(D, generator=g)
    conditions = torch.randn(2, D, generator=g)
    u = conditional(direction, conditions)
    assert u.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert (conditions @ u).abs().max().item() < 1e-5
    assert (u @ direction).item() > 0  # still an edit towards the attribute
    with pytest.raises(ConfigError, match="span"):
        conditional(conditions[0] + 2 * conditions[1], conditions)


def test_correlated_attributes_ranks_by_label_correlation():
    _, labels = _latents()
    assert correlated_attributes(labels, 0, 1) == [1]
    labels[:, 2] = 1  # a constant attribute correlates with nothing and is never chosen
    assert correlated_attributes(labels, 0, 5) == [1]


def test_amplify_moves_only_the_chosen_dims():
    mu, _ = _latents(20)
    std = mu.std(0)
    out = amplify(mu[:3], [2, 7], [-1.0, 0.0, 2.0], std).view(3, 3, D)
    diff = out - mu[:3, None, :]
    untouched = [d for d in range(D) if d not in (2, 7)]
    assert diff[..., untouched].abs().max().item() == 0
    torch.testing.assert_close(diff[:, 2, 7], torch.full((3,), 2 * std[7].item()))
    torch.testing.assert_close(diff[:, 0, 2], torch.full((3,), -std[2].item()))
    assert diff[:, 1].abs().max().item() == 0  # alpha 0 is the original


def test_top_variance_and_correlation():
    mu, labels = _latents()
    mu[:, 5] *= 10
    mu[:, 8] *= 5
    assert top_variance_dims(mu, 2).tolist() == [5, 8]
    corr = attribute_correlations(mu, labels)
    expected = np.corrcoef(mu[:, 3].numpy(), labels[:, 0])[0, 1]
    assert corr[3, 0] == pytest.approx(expected, abs=1e-6)
    assert best_dim(corr, 0) == (3, pytest.approx(expected, abs=1e-6))
    assert best_dim(corr, 0, among=[5, 8])[0] in (5, 8)


def test_shift_grid_layout():
    z = torch.zeros(2, D)
    z[1] = 1
    step = torch.zeros(D)
    step[0] = 1
    out = shift_grid(z, step, [-1, 1]).view(2, 2, D)
    assert out[0, 0, 0].item() == -1 and out[0, 1, 0].item() == 1 and out[1, 1, 0].item() == 2


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    vae = VAE(get_profile("smoke").model).eval()
    clf = AttributeClassifier(ClassifierConfig(width=4)).eval()
    return vae, clf


def test_label_guidance_lowers_bce_and_lambda_limits_distance(tiny_models):
    vae, clf = tiny_models
    z0 = torch.randn(2, vae.cfg.latent_dim, generator=torch.Generator().manual_seed(0))
    batch = guidance_batch(2, [0, 5], (1.0,), (0.0, 10.0))  # (lambda, image, attribute)
    assert batch.lam.tolist() == [0.0] * 4 + [10.0] * 4
    assert batch.image.tolist() == [0, 0, 1, 1] * 2 and batch.attr.tolist() == [0, 5] * 4
    before = [p.clone() for p in clf.parameters()]
    result = label_guidance(vae, clf, z0[batch.image], batch.attr, batch.target, steps=15, lr=0.05, lam=batch.lam)
    assert (result.bce[:4] < result.bce_start[:4]).all()
    assert (result.distance[4:] < result.distance[:4]).all()
    assert all(torch.equal(a, b) for a, b in zip(before, clf.parameters(), strict=True))
    assert all(p.requires_grad for p in clf.parameters())  # unfrozen again


def test_guidance_batch_with_one_target_per_face():
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    batch = guidance_batch(2, [7, 9], targets, (0.1, 1.0))
    assert len(batch) == 8
    assert batch.target.tolist() == [1, 0, 0, 1] * 2 and batch.attr.tolist() == [7, 9] * 4


def test_identity_transfer_extremes():
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(200, D, generator=g) * torch.linspace(3, 0.5, D)
    pca = fit_pca(latents)
    assert isinstance(pca, PCA) and pca.components_.shape == (D, D)
    subject, anchor = torch.randn(3, D, generator=g), torch.randn(3, D, generator=g)
    torch.testing.assert_close(transfer(pca, subject, anchor, 0), subject)
    torch.testing.assert_close(transfer(pca, subject, anchor, D), anchor, atol=1e-5, rtol=0)
    half = transfer(pca, subject, anchor, 4)
    w = torch.from_numpy(pca.components_).float()
    torch.testing.assert_close((half @ w.T)[:, :4], (anchor @ w.T)[:, :4], atol=1e-5, rtol=0)
    torch.testing.assert_close((half @ w.T)[:, 4:], (subject @ w.T)[:, 4:], atol=1e-5, rtol=0)
    grid = transfer_grid(pca, subject[:2], anchor, D).view(2, 3, D)
    torch.testing.assert_close(grid[1], anchor, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError):
        transfer(pca, subject, anchor, D + 1)


def test_pick_identities():
    identity = np.array([1] * 12 + [2] * 3 + [3] * 10 + [4] * 11)
    pool = np.arange(len(identity))
    ids, members = pick_identities(identity, pool, 3, min_images=10, per_identity=5, seed=0)
    assert ids == [1, 3, 4]
    assert all(len(m) == 5 and (identity[m] == i).all() for i, m in zip(ids, members, strict=True))
    with pytest.raises(ConfigError, match="identities"):
        pick_identities(identity, pool, 4, min_images=10)
    ids, members = pick_identities(None, pool, 2)  # no labels: single images
    assert [len(m) for m in members] == [1, 1] and ids == [int(m[0]) for m in members]


def test_identity_essences_average_the_members(tiny_models):
    vae, _ = tiny_models
    rng = np.random.default_rng(0)
    identity = np.repeat([5, 6, 7], 4)
    data = SimpleNamespace(images=rng.integers(0, 256, (12, 3, 64, 64), dtype=np.uint8), identity=identity,
                           split=lambda name: np.arange(12))
    people = identity_essences(vae, data, "test", 2, min_images=4, per_identity=3, seed=0)
    assert len(people.ids) == 2 and all(len(m) == 3 for m in people.members)
    for i, members in zip(people.ids, people.members, strict=True):
        assert (identity[members] == i).all()
    mu = encode(vae, torch.from_numpy(data.images[people.members[1]]))
    torch.testing.assert_close(people.z[1], mu.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(people.single[1], mu[0], atol=1e-5, rtol=0)


class ToyJudge(nn.Module):
    """features = channel means; attribute 0 = "bright" (mean > 0.5), attribute 1 = "red" (R > G)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Module()
        self.net.fc = nn.Linear(3, 2)
        with torch.no_grad():
            self.net.fc.weight.copy_(torch.tensor([[100.0, 100.0, 100.0], [100.0, -100.0, 0.0]]))
            self.net.fc.bias.copy_(torch.tensor([-150.0, 0.0]))

    def features(self, x):
        return x.mean((2, 3))


def _flat(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32).view(-1, 3, 1, 1).expand(-1, 3, 4, 4).clone()


HALF = torch.tensor([0.5, 0.5])  # the ToyJudge's decision thresholds


def test_score_edits_splits_add_and_remove_and_counts_decision_flips():
    before = _flat([[0.2, 0.2, 0.2], [0.2, 0.2, 0.2], [0.8, 0.8, 0.8], [0.8, 0.8, 0.8], [0.9, 0.9, 0.9]])
    after = _flat([[0.8, 0.8, 0.8], [0.3, 0.3, 0.3], [0.2, 0.2, 0.2], [0.7, 0.7, 0.7], [0.9, 0.9, 0.9]])
    z0, z1 = torch.zeros(5, 2), torch.tensor([[3.0, 4.0], [0, 1], [0, 2], [0, 0], [9, 9]])
    add = torch.tensor([True, True, False, False, True])  # the last is already bright: left out
    s = score_edits(ToyJudge(), 0, before, after, z0, z1, add, HALF, watch=[1])
    a, r = s["add"], s["remove"]
    assert (a["n"], a["successes"], r["n"], r["successes"]) == (2, 1, 2, 1)  # 1st brightened; 3rd darkened
    assert a["success_rate"] == r["success_rate"] == pytest.approx(0.5)
    assert (a["success_lo"], a["success_hi"]) == pytest.approx(wilson_interval(1, 2))
    assert a["other_change"] == pytest.approx(0.0, abs=1e-6)  # grey stays not red
    assert a["watched_change"] == pytest.approx(0.0, abs=1e-6)
    assert a["latent_l2"] == pytest.approx((5 + 1) / 2) and r["latent_l2"] == pytest.approx((2 + 0) / 2)
    assert a["pixel_mse"] == pytest.approx((0.36 + 0.01) / 2)
    assert a["judge_feature_cosine"] == pytest.approx(1.0)  # grey to grey: same direction of features
    red = _flat([[0.9, 0.1, 0.1]] * 2)
    grey = _flat([[0.4, 0.4, 0.4]] * 2)
    s = score_edits(ToyJudge(), 0, grey, red, z0[:2], z0[:2], torch.tensor([True, True]), HALF)
    assert s["add"]["success_rate"] == 0.0 and s["add"]["other_change"] == pytest.approx(0.5, abs=1e-3)
    assert s["add"]["judge_feature_cosine"] == pytest.approx(1.1 / (np.sqrt(0.83) * np.sqrt(3)), abs=1e-5)
    assert s["remove"]["n"] == 0 and s["remove"]["success_rate"] is None


def test_score_edits_decides_at_the_given_thresholds():
    before, after = _flat([[0.2, 0.2, 0.2]]), _flat([[0.49, 0.49, 0.49]])  # judged bright: 0 -> 0.047
    z = torch.zeros(1, 2)
    at_half = score_edits(ToyJudge(), 0, before, after, z, z, torch.tensor([True]), HALF)
    low = score_edits(ToyJudge(), 0, before, after, z, z, torch.tensor([True]), torch.tensor([0.01, 0.5]))
    assert at_half["add"]["successes"] == 0 and low["add"]["successes"] == 1


@pytest.mark.parametrize("k, n, lo, hi", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
                                          (81, 263, 0.2553, 0.3662)])
def test_wilson_interval_known_values(k, n, lo, hi):
    # Wilson score intervals without continuity correction (e.g. Newcombe 1998, Table I; 81/263 is his example)
    assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=1e-4)
    assert wilson_interval(0, 0) == (None, None)


def test_random_directions_are_seeded_unit_vectors():
    u = random_directions(5, 7, seed=3)
    torch.testing.assert_close(u.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(u, random_directions(5, 7, seed=3))
    assert not torch.allclose(u, random_directions(5, 7, seed=4))


def test_every_target_gets_a_random_control_with_add_and_remove_rows(tiny_models):
    vae, _ = tiny_models
    names = [f"a{i}" for i in range(40)]
    quality = {n: {"threshold": 0.5, "balanced_accuracy": 0.9} for n in names}
    judge = Judge(AttributeClassifier(ClassifierConfig(width=4)).eval(), torch.full((40,), 0.5), quality)
    d = vae.cfg.latent_dim
    mu = torch.randn(40, d, generator=torch.Generator().manual_seed(0))
    labels = (torch.rand(40, 40, generator=torch.Generator().manual_seed(2)) < 0.5).numpy().astype(int)
    labels[:, :2] = (mu[:, :2].numpy() > 0)  # a0 and a1 live in latent dims 0 and 1
    directions = attribute_directions(mu, labels, names, ["a0", "a1"], top_k=3, n_condition=1)
    z = torch.randn(6, d, generator=torch.Generator().manual_seed(1))
    rows = evaluate_directions(vae, judge, z, names, directions, 2.0, 1.0)
    for target in ("a0", "a1"):
        for direction in ("add", "remove"):
            got = [r for r in rows if r["target"] == target and r["direction"] == direction]
            assert {r["method"] for r in got} == {*directions[target], "random_direction"}
        both = [r for r in rows if r["target"] == target and r["method"] == "random_direction"]
        assert sum(r["n"] for r in both) == 6  # every face is eligible for exactly one direction
        assert all(r["latent_l2"] == pytest.approx(2.0) for r in both if r["n"])  # same distance as the methods


def test_collect_edit_eval_merges_notebooks(tmp_path):
    ctx = setup_run(str(tmp_path / "run"), "smoke", device="cpu", progress=False)
    ctx.save_json("edit_eval_label_guidance", {"rows": [{"target": "Male", "method": "label_guidance", "n": 3}]})
    ctx.save_json("edit_eval_feature_amp", {"rows": [
        {"target": "Smiling", "method": "boundary_normal", "n": 1},
        {"target": "Male", "method": "conditional_normal", "n": 2, "success_rate": 0.25},
        {"target": "Male", "method": "top_variance_dim", "n": 4},
    ]})
    rows = collect_edit_eval(ctx)
    assert [(r["target"], r["method"]) for r in rows] == [
        ("Male", "top_variance_dim"), ("Male", "conditional_normal"), ("Male", "label_guidance"),
        ("Smiling", "boundary_normal")]
    text = format_table(rows, ("target", "method", "success_rate"))
    assert "0.250" in text and text.count("\n") == 4
    assert json.loads((ctx.metrics / "edit_eval_feature_amp.json").read_text())["rows"][0]["n"] == 1


def _people(n_ids: int, per: int, seed: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Features (n_ids * per, 30): each identity a random point in 5 of 30 dims plus noise in all 30."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((n_ids, 30))
    centres[:, :5] = rng.normal(0, 3, (n_ids, 5))
    ids = np.repeat(np.arange(n_ids) + 1000 * seed, per)
    return centres[ids - 1000 * seed] + rng.normal(0, spread, (len(ids), 30)), ids


def test_identity_embedding_tells_unseen_people_apart():
    train, train_ids = _people(40, 8, seed=0)
    embedding = fit_identity_embedding(train, train_ids)
    test, test_ids = _people(10, 6, seed=1)  # other people, never seen by the embedding
    v = verification(embedding.transform(test), test_ids)
    assert v["n"] == 60 * 9 and v["chance"] == 0.5 and v["identities"] == 10
    assert v["success_rate"] > 0.9 and v["success_lo"] > 0.5
    noise = verification(np.random.default_rng(2).normal(size=test.shape), test_ids)  # no identity in it
    assert abs(noise["success_rate"] - 0.5) < 0.1


def test_transfer_rows_count_faces_nearer_the_anchor():
    anchors, subjects = np.zeros((3, 2)), np.ones((3, 2))
    faces = np.array([[0.1, 0.1], [0.9, 0.9], [0.2, 0.3]])
    rows = transfer_rows({0: subjects, 5: faces}, anchors, subjects)
    assert [(r["k"], r["n"], r["successes"]) for r in rows] == [(0, 3, 0), (5, 3, 2)]
    assert (rows[1]["success_lo"], rows[1]["success_hi"]) == pytest.approx(wilson_interval(2, 3))
