"""Attribute classifier: adapted ResNet18 stem, training on a learnable toy, metrics, checkpoints of 02."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from vaelib.editing.classifier_report import attribute_metrics
from vaelib.errors import CheckpointError, MissingPrerequisiteError
from vaelib.models.classifier import AttributeClassifier, ClassifierConfig, predict
from vaelib.run import setup_run
from vaelib.runfolder import classifiers
from vaelib.runfolder.classifiers import load_classifier, load_judge, train_or_load, train_or_load_all
from vaelib.training.classifier import ClassifierTraining, calibrate_thresholds, disjoint_halves, train_classifier


@pytest.mark.parametrize("stride, side", [(2, 4), (1, 8)])
def test_full_width_is_resnet18_with_a_64px_stem(stride, side):
    model = AttributeClassifier(ClassifierConfig(stem_stride=stride)).eval()
    stem = model.net.conv1
    assert (stem.kernel_size, stem.stride, stem.padding) == ((3, 3), (stride, stride), (1, 1))
    assert isinstance(model.net.maxpool, nn.Identity)
    n = model.net
    with torch.no_grad():  # the last stage's feature map: 64 / 16 with the stride-2 stem, 64 / 8 with stride 1
        h = n.layer4(n.layer3(n.layer2(n.layer1(n.relu(n.bn1(n.conv1(torch.rand(1, 3, 64, 64))))))))
    assert h.shape[-2:] == (side, side)
    reference = torchvision.models.resnet18(weights=None, num_classes=40)
    ours = {k: v.shape for k, v in model.net.state_dict().items()}
    theirs = {k: v.shape for k, v in reference.state_dict().items()}
    assert ours.keys() == theirs.keys()
    assert [k for k in ours if ours[k] != theirs[k]] == ["conv1.weight"]  # 3x3 instead of 7x7


@pytest.mark.parametrize("width", [8, 16])
def test_narrow_classifier_shapes(width):
    model = AttributeClassifier(ClassifierConfig(width=width)).eval()
    x = torch.rand(3, 3, 64, 64)
    assert model(x).shape == (3, 40)
    assert model.features(x).shape == (3, 8 * width)
    assert model.net.layer1[0].conv1.in_channels == width
    torch.testing.assert_close(model.net.fc(model.features(x)), model(x))


def _toy(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 16x16 images; attribute 0 = bright, attribute 1 = red tint, the rest random noise labels."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, 40, generator=g) < 0.5).to(torch.int8)
    x = torch.full((n, 3, 16, 16), 40.0) + 100.0 * labels[:, 0, None, None, None]
    x[:, 0] += 100.0 * labels[:, 1, None, None]
    x += torch.randn(x.shape, generator=g) * 10
    return x.clamp(0, 255).to(torch.uint8), labels


def test_training_learns_a_visible_attribute():
    images, labels = _toy()
    cfg = ClassifierConfig(width=4)
    model, history = train_classifier(images, labels, cfg, ClassifierTraining(epochs=10, batch_size=16, lr=3e-3),
                                      torch.device("cpu"), log=lambda _: None)
    assert not model.training
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    test_images, test_labels = _toy(64, seed=1)
    probs, feats = predict(model, test_images, with_features=True)
    assert probs.shape == (64, 40) and feats.shape == (64, 32)
    accuracy = ((probs[:, :2] >= 0.5) == test_labels[:, :2].bool()).float().mean(0)
    assert accuracy.min() > 0.85


def test_attribute_metrics_known_answers():
    names = ("A", "B")
    labels = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.3], [0.1, 0.4]])  # A: 3/4 right; B: always "0"
    train_labels = np.array([[1, 1], [1, 1], [0, 1]])  # majority: A=1, B=1
    m = attribute_metrics(probs, labels, train_labels, names)
    assert m["A"]["accuracy"] == pytest.approx(0.75)
    assert m["A"]["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["A"]["majority_baseline"] == pytest.approx(0.75)
    assert m["B"]["accuracy"] == pytest.approx(0.75)
    assert m["B"]["balanced_accuracy"] == pytest.approx(0.5)  # the one positive is missed
    assert m["B"]["majority_baseline"] == pytest.approx(0.25)


def test_calibrated_threshold_beats_half_on_an_imbalanced_toy():
    # A class-weighted network pushes the rare class's probabilities up: here every negative sits at 0.55-0.65
    # and every positive at 0.7-0.9, so 0.5 calls everything positive (balanced accuracy 0.5).
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 1)) < 0.1).astype(int)
    probs = np.where(labels == 1, rng.uniform(0.7, 0.9, labels.shape), rng.uniform(0.55, 0.65, labels.shape))
    thresholds = calibrate_thresholds(probs, labels)
    assert probs[labels == 0].max() < thresholds[0] <= probs[labels == 1].min()
    names = ("rare",)
    at_half = attribute_metrics(probs, labels, labels, names)["rare"]
    calibrated = attribute_metrics(probs, labels, labels, names, thresholds)["rare"]
    assert at_half["balanced_accuracy"] == pytest.approx(0.5)
    assert calibrated["balanced_accuracy"] == pytest.approx(1.0) and calibrated["threshold"] == thresholds[0]
    assert calibrated["accuracy"] > calibrated["majority_baseline"] > at_half["accuracy"]


def test_single_class_attribute_keeps_half():
    assert calibrate_thresholds(np.array([[0.2], [0.9]]), np.array([[1], [1]])).tolist() == [0.5]


def test_disjoint_halves_cover_the_split():
    idx = np.arange(10, 31)
    a, b = disjoint_halves(idx, seed=3)
    assert not set(a) & set(b)
    assert sorted([*a, *b]) == idx.tolist()
    assert abs(len(a) - len(b)) <= 1
    assert not np.array_equal(a, disjoint_halves(idx, seed=4)[0])


def _fake_data(n: int = 24) -> SimpleNamespace:
    images, labels = _toy(n)
    names = tuple(f"a{i}" for i in range(40))
    partition = np.zeros(n, dtype=int)
    partition[16:] = 1  # the last images are the validation split that calibrates the thresholds
    return SimpleNamespace(images=images.numpy(), attributes=labels.numpy(), attr_names=names,
                           split=lambda name: np.flatnonzero(partition == {"train": 0, "val": 1}[name]))


def test_train_or_load_saves_then_reloads_without_training(tmp_path, monkeypatch):
    ctx = setup_run(str(tmp_path / "run"), "smoke", device="cpu", progress=False)
    with pytest.raises(MissingPrerequisiteError, match="02_classifier"):
        load_classifier(ctx, "judge")
    data, cfg = _fake_data(), ClassifierConfig(width=4)
    training = ClassifierTraining(epochs=1, batch_size=8)
    model, state = train_or_load(ctx, "judge", data, np.arange(16), cfg, training, log=lambda _: None)
    assert (ctx.checkpoints / "judge.pt").is_file() and state["kind"] == "classifier"
    assert len(state["thresholds"]) == 40 and state["metrics"]["calibration_images"] == 8

    def fail(*args, **kwargs):
        raise AssertionError("retrained although a checkpoint exists")

    monkeypatch.setattr(classifiers, "train_classifier", fail)
    loaded, state = train_or_load(ctx, "judge", data, np.arange(16), cfg, training, log=lambda _: None)
    assert state["attr_names"] == list(data.attr_names) and state["metrics"]["train_images"] == 16
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(CheckpointError, match="width"):
        train_or_load(ctx, "judge", data, np.arange(16), ClassifierConfig(width=8), training, log=lambda _: None)


def test_classifier_and_judge_train_side_by_side_on_a_multicore_cpu_as_they_would_one_after_the_other(
        tmp_path, monkeypatch):
    data, cfg = _fake_data(), ClassifierConfig(width=4)
    halves = {"classifier": np.arange(8), "judge": np.arange(8, 16)}
    trainings = {"classifier": ClassifierTraining(epochs=1, batch_size=4),
                 "judge": ClassifierTraining(epochs=1, batch_size=4, seed=1)}
    lines = []
    monkeypatch.setattr(classifiers.os, "cpu_count", lambda: 2)
    side_by_side = train_or_load_all(setup_run(str(tmp_path / "a"), "smoke", device="cpu", progress=False), data,
                                     halves, cfg, trainings, log=lines.append)
    assert any("side by side" in line for line in lines)
    monkeypatch.setattr(classifiers.os, "cpu_count", lambda: 1)
    in_turn = train_or_load_all(setup_run(str(tmp_path / "b"), "smoke", device="cpu", progress=False), data,
                                halves, cfg, trainings, log=lambda _: None)
    x = torch.rand(3, 3, 16, 16)
    for role in ("classifier", "judge"):
        (model, state), (reference, _) = side_by_side[role], in_turn[role]
        assert (tmp_path / "a" / "checkpoints" / f"{role}.pt").is_file() and state["role"] == role
        assert len(state["metrics"]["history"]) == 1 and state["metrics"]["train_images"] == 8
        torch.testing.assert_close(model(x), reference(x), atol=1e-4, rtol=1e-4)  # only thread counts differ
    assert not torch.allclose(side_by_side["classifier"][0](x), side_by_side["judge"][0](x))


def test_judge_carries_02s_thresholds_and_test_quality_and_the_datas_rendered_attributes(tmp_path):
    ctx = setup_run(str(tmp_path / "run"), "smoke", device="cpu", progress=False)
    data = _fake_data()
    _, state = train_or_load(ctx, "judge", data, np.arange(16), ClassifierConfig(width=4),
                             ClassifierTraining(epochs=1, batch_size=8), log=lambda _: None)
    with pytest.raises(MissingPrerequisiteError, match="02_classifier"):
        load_judge(ctx, data)  # the checkpoint alone is not enough: 02's test metrics are part of the judge
    per = {n: {"threshold": 0.3, "balanced_accuracy": 0.8} for n in data.attr_names}
    ctx.save_json("classifier", {"models": {"judge": {"per_attribute": per}}})
    data.rendered_attributes = frozenset({"a0"})
    judge = load_judge(ctx, data)
    assert judge.thresholds.tolist() == pytest.approx(state["thresholds"]) and judge.quality == per
    assert judge.rendered == {"a0"} and not judge.model.training

