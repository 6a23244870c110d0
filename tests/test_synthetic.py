"""Synthetic CelebA: official file formats byte for byte, determinism, identity-disjoint splits, label
consistency, marker/ensure behaviour, and that every rendered attribute visibly changes the face crop."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaelib.data import synthetic
from vaelib.data.attributes import CELEBA_ATTRIBUTES, CROP_BOX
from vaelib.data.people import HAIR_COLOURS, RENDERED_ATTRIBUTES, sample_attributes, sample_identity
from vaelib.data.render import render_face
from vaelib.data.synthetic import _plan, ensure_synthetic_celeba, generate_synthetic_celeba
from vaelib.errors import ConfigError, DataError

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "celeba_sample"  # real rows, absent in user clones
# official quirk: the first value is unpadded ("000001.jpg 1 -1 ..."), the other 39 fill 3-character fields
ATTR_ROW = re.compile(rb"\d{6}\.jpg (-1|1)( -1|  1){39}")
COL = {name: i for i, name in enumerate(CELEBA_ATTRIBUTES)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_celeba(tmp_path_factory.mktemp("synth"), 120, seed=3, progress=False)


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\r\n"), f"{path.name} must end in CRLF"
    assert data.count(b"\n") == data.count(b"\r\n"), f"{path.name} has a bare LF"
    return data[:-2].split(b"\r\n")


def _read_attributes(base: Path) -> np.ndarray:
    rows = _lines(base / "list_attr_celeba.txt")[2:]
    return np.array([[v == b"1" for v in row.split()[1:]] for row in rows])


def _read_mapping(path: Path) -> np.ndarray:
    return np.array([int(line.split(b" ")[1]) for line in _lines(path)])


def test_attribute_file_is_byte_exact_official_format(synth: Path) -> None:
    lines = _lines(synth / "list_attr_celeba.txt")
    assert lines[0] == b"120"
    assert lines[1] == (" ".join(CELEBA_ATTRIBUTES) + " ").encode()  # trailing space, as in the official file
    assert len(lines) == 122
    for k, row in enumerate(lines[2:], start=1):
        assert ATTR_ROW.fullmatch(row), row
        assert row.startswith(f"{k:06d}.jpg ".encode())


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="real CelebA sample (../shared/celeba_sample) not present")
def test_format_matches_the_real_sample(synth: Path) -> None:
    real = _lines(SAMPLE / "list_attr_celeba.txt")
    assert real[1] == (" ".join(CELEBA_ATTRIBUTES) + " ").encode()
    assert all(ATTR_ROW.fullmatch(row) for row in real[2:])  # the row pattern checked above is the real one
    ours = _lines(synth / "list_attr_celeba.txt")[2:]
    for first in (b"-1", b"1"):  # both spellings of the first value occur in the real file and in ours
        assert any(row[11:].startswith(first + b" ") for row in real[2:])
        assert any(row[11:].startswith(first + b" ") for row in ours)
    assert all(re.fullmatch(rb"\d{6}\.jpg \d+", row) for row in _lines(SAMPLE / "identity_CelebA.txt"))
    assert all(re.fullmatch(rb"\d{6}\.jpg [012]", row) for row in _lines(SAMPLE / "list_eval_partition.txt"))


def test_identity_and_partition_files(synth: Path) -> None:
    for name, pattern in (("identity_CelebA.txt", rb"\d{6}\.jpg \d+"),
                          ("list_eval_partition.txt", rb"\d{6}\.jpg [012]")):
        lines = _lines(synth / name)
        assert len(lines) == 120
        for k, row in enumerate(lines, start=1):
            assert re.fullmatch(pattern, row), row
            assert row.startswith(f"{k:06d}.jpg ".encode())


def test_images_are_aligned_celeba_jpegs(synth: Path) -> None:
    files = sorted((synth / "img_align_celeba").iterdir())
    assert [f.name for f in files] == [f"{k:06d}.jpg" for k in range(1, 121)]
    for path in files[::17]:
        with Image.open(path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (178, 218))


def test_partition_is_by_identity_and_every_split_is_used(synth: Path) -> None:
    identity = _read_mapping(synth / "identity_CelebA.txt")
    split = _read_mapping(synth / "list_eval_partition.txt")
    assert set(split.tolist()) == {0, 1, 2}
    assert np.all(np.diff(split) >= 0), "files are numbered train, then val, then test"
    for person in np.unique(identity):
        assert len(set(split[identity == person].tolist())) == 1, f"identity {person} crosses splits"


@pytest.mark.parametrize("num_images", [3, 7, 60])
def test_tiny_sets_still_have_three_identity_disjoint_splits(num_images: int) -> None:
    identity, split = _plan(num_images, seed=0)
    assert len(identity) == num_images and set(split.tolist()) == {0, 1, 2}
    assert not set(identity[split == 0]) & set(identity[split != 0])
    assert not set(identity[split == 1]) & set(identity[split == 2])


def test_large_plan_has_celeba_like_identities_and_splits() -> None:
    identity, split = _plan(20_000, seed=1)
    people, counts = np.unique(identity, return_counts=True)
    assert np.mean((counts >= 10) & (counts <= 30)) > 0.9, "most identities should have 10..30 images"
    split_of = {p: split[identity == p][0] for p in people[:200]}
    fractions = np.bincount(list(split_of.values()), minlength=3) / len(split_of)
    assert fractions[0] > 0.65 and 0.03 < fractions[1] < 0.2 and 0.03 < fractions[2] < 0.2


def test_fewer_images_per_identity_give_more_identities_with_the_same_splits() -> None:
    identity, split = _plan(6000, seed=0, per_identity=10)
    people, counts = np.unique(identity, return_counts=True)
    assert len(people) == 600 and np.mean((counts >= 5) & (counts <= 15)) > 0.9
    assert not set(identity[split == 0]) & set(identity[split != 0])
    assert len(np.unique(identity[split == 2])) == 60  # a tenth of the identities are test identities


def test_identity_traits_are_constant_across_its_images(synth: Path) -> None:
    attrs = _read_attributes(synth)
    identity = _read_mapping(synth / "identity_CelebA.txt")
    fixed = [COL[n] for n in ("Male", "Young", "Bald", "No_Beard", "Pale_Skin", *HAIR_COLOURS)]
    varying = [COL[n] for n in ("Smiling", "Mouth_Slightly_Open")]
    for person in np.unique(identity):
        rows = attrs[identity == person]
        assert (rows[:, fixed] == rows[0, fixed]).all(), f"identity {person} changes a fixed trait"
    assert attrs[:, varying].any(axis=0).all() and not attrs[:, varying].all(axis=0).any()


def _check_rules(a: np.ndarray) -> None:
    """The label rules of `sample_attributes`, on rows of a (N, 40) boolean array."""
    col = {name: a[:, i] for name, i in COL.items()}
    hair = np.stack([col[n] for n in HAIR_COLOURS], 1)
    assert hair.sum(1).max() <= 1, "at most one hair colour"
    bald = col["Bald"]
    hair_traits = hair.any(1) | col["Bangs"] | col["Wavy_Hair"] | col["Straight_Hair"]
    hair_traits |= col["Receding_Hairline"]
    assert not (bald & hair_traits).any(), "Bald excludes hair colour, bangs and hair texture"
    assert not (col["Wavy_Hair"] & col["Straight_Hair"]).any()
    facial_hair = ~col["No_Beard"] | col["Mustache"] | col["Sideburns"] | col["5_o_Clock_Shadow"]
    assert not ((facial_hair | bald | col["Wearing_Necktie"]) & ~col["Male"]).any(), "these imply Male"
    assert not ((col["Wearing_Lipstick"] | col["Heavy_Makeup"]) & col["Male"]).any()
    assert not (col["Heavy_Makeup"] & ~col["Wearing_Lipstick"]).any()
    assert not ((col["Goatee"] | col["Sideburns"]) & col["No_Beard"]).any()
    assert not (col["Gray_Hair"] & col["Young"]).any()


def test_label_rules_hold_in_the_written_file(synth: Path) -> None:
    _check_rules(_read_attributes(synth))


def test_label_rules_hold_over_many_people() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(600):
        person = sample_identity(rng)
        for _ in range(5):
            labels = sample_attributes(person, rng)
            rows.append([labels[n] for n in CELEBA_ATTRIBUTES])
    a = np.array(rows)
    _check_rules(a)
    for name in RENDERED_ATTRIBUTES:  # every drawn attribute occurs, and none is always on
        assert 0 < a[:, COL[name]].mean() < 1, name
    assert 0.3 < a[:, COL["Male"]].mean() < 0.55 and 0.35 < a[:, COL["Smiling"]].mean() < 0.65


def test_generation_is_deterministic_and_seed_dependent(tmp_path: Path, synth: Path) -> None:
    again = generate_synthetic_celeba(tmp_path / "a", 120, seed=3, progress=False)
    for name in ("list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"):
        assert (again / name).read_bytes() == (synth / name).read_bytes(), name
    for k in (1, 40, 120):
        img = f"img_align_celeba/{k:06d}.jpg"
        assert (again / img).read_bytes() == (synth / img).read_bytes(), img
    other = generate_synthetic_celeba(tmp_path / "b", 120, seed=4, progress=False)
    assert (other / "list_attr_celeba.txt").read_bytes() != (synth / "list_attr_celeba.txt").read_bytes()
    first = "img_align_celeba/000001.jpg"
    assert (other / first).read_bytes() != (synth / first).read_bytes()


def test_worker_processes_write_the_same_files(tmp_path: Path) -> None:
    one = generate_synthetic_celeba(tmp_path / "one", 40, seed=5, progress=False)
    two = generate_synthetic_celeba(tmp_path / "two", 40, seed=5, progress=False, workers=2)
    assert (one / "list_attr_celeba.txt").read_bytes() == (two / "list_attr_celeba.txt").read_bytes()
    for k in (1, 20, 40):
        img = f"img_align_celeba/{k:06d}.jpg"
        assert (one / img).read_bytes() == (two / img).read_bytes()


def test_real_loader_reads_the_synthetic_set(synth: Path, tmp_path: Path) -> None:
    from vaelib.data.celeba import load_celeba64

    data = load_celeba64(synth.parent, cache_dir=tmp_path, progress=False)
    assert data.images.shape == (120, 3, 64, 64) and data.attr_names == CELEBA_ATTRIBUTES
    assert np.array_equal(data.attributes.astype(bool), _read_attributes(synth))
    assert np.array_equal(data.identity, _read_mapping(synth / "identity_CelebA.txt"))
    assert np.array_equal(data.partition, _read_mapping(synth / "list_eval_partition.txt"))
    assert data.rendered_attributes == frozenset(RENDERED_ATTRIBUTES)


def test_a_set_written_before_provenance_was_recorded_loads_with_its_rendered_attributes(synth: Path,
                                                                                           tmp_path: Path) -> None:
    from vaelib.data.celeba import load_celeba64

    old = tmp_path / "old" / "celeba"
    shutil.copytree(synth, old)
    marker = json.loads((old / "synthetic.json").read_text())
    del marker["rendered_attributes"]  # the marker as earlier generators wrote it
    (old / "synthetic.json").write_text(json.dumps(marker))
    data = load_celeba64(old.parent, cache_dir=tmp_path / "cache", progress=False)
    assert data.rendered_attributes == frozenset(RENDERED_ATTRIBUTES) and len(data) == 120


def test_ensure_reuses_a_complete_set_and_regenerates_otherwise(tmp_path: Path, capsys) -> None:
    base = ensure_synthetic_celeba(tmp_path, 30, seed=1, progress=False)
    assert "generating" in capsys.readouterr().out
    marker = json.loads((base / "synthetic.json").read_text())
    assert (marker["num_images"], marker["seed"]) == (30, 1)
    watched = (base / "list_attr_celeba.txt", base / "img_align_celeba/000001.jpg")
    stamp = [path.stat().st_mtime_ns for path in watched]

    assert ensure_synthetic_celeba(tmp_path, 30, seed=1, progress=False) == base
    assert "reusing" in capsys.readouterr().out
    assert stamp == [path.stat().st_mtime_ns for path in watched], "a matching set must not be rewritten"

    ensure_synthetic_celeba(tmp_path, 25, seed=1, progress=False)
    assert "generating" in capsys.readouterr().out
    assert _lines(base / "list_attr_celeba.txt")[0] == b"25"
    assert len(list((base / "img_align_celeba").iterdir())) == 25, "images of the larger set are removed"



def test_a_crashed_generation_is_never_trusted(tmp_path: Path, monkeypatch, capsys) -> None:
    base = ensure_synthetic_celeba(tmp_path, 20, seed=1, progress=False)
    real_make_image = synthetic._make_image

    def crash_at_tenth(job):
        if job[0] == 9:
            raise KeyboardInterrupt
        return real_make_image(job)

    monkeypatch.setattr(synthetic, "_make_image", crash_at_tenth)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic_celeba(tmp_path, 30, seed=1, progress=False)
    assert not (base / "synthetic.json").exists(), "the old marker must go before the old set is overwritten"
    monkeypatch.undo()
    capsys.readouterr()
    ensure_synthetic_celeba(tmp_path, 20, seed=1, progress=False)  # the old parameters: still regenerated
    assert "generating" in capsys.readouterr().out
    assert json.loads((base / "synthetic.json").read_text())["num_images"] == 20


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "celeba").mkdir()
    (tmp_path / "celeba" / "list_attr_celeba.txt").write_text("202599\n")
    with pytest.raises(DataError, match="did not write"):
        generate_synthetic_celeba(tmp_path, 10, progress=False)
    assert (tmp_path / "celeba" / "list_attr_celeba.txt").read_text() == "202599\n"


@pytest.mark.parametrize("num_images", [0, 2, 10.0])
def test_rejects_bad_sizes(tmp_path: Path, num_images) -> None:
    with pytest.raises(ConfigError, match="num_images"):
        generate_synthetic_celeba(tmp_path, num_images, progress=False)


# Attributes that change large areas (hair, head, skin, glasses, blur) must change the crop by at least
# 1 grey level on average; small facial features by at least 0.3 (bags under the eyes and a double chin drawn
# at 0.2 were below what the demo's 64x64 judge learned: benchmarks/attribute_visibility.py); lipstick, a
# colour change of a small area that the classifiers learn easily, by 0.2.
STRONG = {"Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Blurry", "Chubby",
          "Eyeglasses", "Male", "No_Beard", "Pale_Skin", "Wearing_Hat"}
FLOOR = {**dict.fromkeys(STRONG, 1.0), "Wearing_Lipstick": 0.2}


@pytest.mark.parametrize("attribute", RENDERED_ATTRIBUTES)
def test_rendered_attribute_visibly_changes_the_crop(attribute: str) -> None:
    diffs = []
    for k in range(4):
        person = sample_identity(np.random.default_rng([11, k]))
        # a neutral face: no hair colour label (auburn), clean-shaven, young; only `attribute` changes
        base = dict.fromkeys(CELEBA_ATTRIBUTES, False)
        base |= {"No_Beard": True, "Young": True, "Male": person.male}
        off, on = (np.asarray(render_face(person, base | {attribute: v}, np.random.default_rng([7, k]))
                              .crop(CROP_BOX), dtype=np.float64) for v in (False, True))
        diffs.append(np.abs(on - off).mean())
    assert np.mean(diffs) > FLOOR.get(attribute, 0.3), f"{attribute}: {diffs}"


def test_render_depends_only_on_identity_labels_and_rng() -> None:
    person = sample_identity(np.random.default_rng(1))
    labels = sample_attributes(person, np.random.default_rng(2))
    first, second = (np.asarray(render_face(person, labels, np.random.default_rng(3))) for _ in range(2))
    assert first.shape == (218, 178, 3) and np.array_equal(first, second)
    moved = np.asarray(render_face(person, labels, np.random.default_rng(4)))  # new light, background, expression
    assert np.abs(moved.astype(int) - first).mean() > 5


def _edge_map(img: Image.Image) -> np.ndarray:
    """Standardised gradient magnitude of the grey 148x148 face crop."""
    gy, gx = np.gradient(np.asarray(img.crop(CROP_BOX).convert("L"), dtype=np.float64))
    edges = np.hypot(gx, gy)
    return (edges - edges.mean()) / edges.std()


def test_photos_of_one_person_are_aligned_like_img_align_celeba() -> None:
    # Different light, background and expression, but no shift: the edges of every photo line up best with
    # those of the first unmoved (the jittered version 3 was best matched 1-4 px away).
    person = sample_identity(np.random.default_rng(1))
    labels = sample_attributes(person, np.random.default_rng(2))
    first = _edge_map(render_face(person, labels, np.random.default_rng(100)))
    r = 4
    for seed in range(101, 106):
        other = _edge_map(render_face(person, labels, np.random.default_rng(seed)))
        h, w = first.shape
        match = {(dx, dy): float((first[r:h - r, r:w - r] * other[r + dy:h - r + dy, r + dx:w - r + dx]).mean())
                 for dy in range(-r, r + 1) for dx in range(-r, r + 1)}
        assert max(match, key=match.get) == (0, 0), f"photo {seed} lines up best shifted by {max(match, key=match.get)}"
