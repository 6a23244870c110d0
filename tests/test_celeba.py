"""Real-CelebA loader: the shared 600-image sample (skipped when absent) and tiny hand-made layouts in tmp."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaelib.data import CELEBA_ATTRIBUTES, CROP_BOX, celeba, load_celeba64, resolve_celeba_root
from vaelib.errors import ConfigError, DataError

# The sample sits beside the checkout (../shared), never inside it; a fresh clone has none.
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "celeba_sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"CelebA sample not found at {SAMPLE}")

RED, BLUE = (200, 30, 30), (20, 40, 220)


def _raw_rows(path: Path, skip: int) -> dict[str, list[str]]:
    """Independent slow parse of an official txt file: image name -> remaining fields."""
    lines = path.read_bytes().decode().split("\r\n")[skip:]
    return {parts[0]: parts[1:] for parts in (line.split() for line in lines) if parts}


def _write_jpeg(path: Path, rng: np.random.Generator, size: tuple[int, int] = (178, 218)) -> None:
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)


def make_celeba(base: Path, n: int = 6, kind: str = "torchvision", seed: int = 0) -> dict:
    """Write a tiny CelebA copy in an official layout; returns what was written, for comparison."""
    rng = np.random.default_rng(seed)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    attrs = rng.choice([-1, 1], size=(n, 40))
    partition = [i % 3 for i in range(n)]
    identity = [100 + i // 2 for i in range(n)]
    folder = base / "celeba" if kind == "torchvision" else base
    image_dir = folder / "img_align_celeba" / ("img_align_celeba" if kind == "kaggle" else "")
    image_dir.mkdir(parents=True)
    for name in names:
        _write_jpeg(image_dir / name, rng)
    if kind == "kaggle":
        rows = [",".join([name, *map(str, row)]) for name, row in zip(names, attrs, strict=True)]
        header = "image_id," + ",".join(CELEBA_ATTRIBUTES)
        (folder / "list_attr_celeba.csv").write_text("\n".join([header, *rows]))
        parts = [f"{name},{p}" for name, p in zip(names, partition, strict=True)]
        (folder / "list_eval_partition.csv").write_text("\n".join(["image_id,partition", *parts]) + "\n")
    else:
        rows = [name + "".join(f" {v:2d}" for v in row) for name, row in zip(names, attrs, strict=True)]
        lines = [str(n), " ".join(CELEBA_ATTRIBUTES) + " ", *rows]
        (folder / "list_attr_celeba.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())
        for file, values in (("list_eval_partition.txt", partition), ("identity_CelebA.txt", identity)):
            text = "".join(f"{name} {v}\r\n" for name, v in zip(names, values, strict=True))
            (folder / file).write_bytes(text.encode())
    return {"names": names, "attrs": (attrs == 1).astype(np.int8), "partition": partition,
            "identity": identity, "folder": folder, "image_dir": image_dir}


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = celeba._decode_crop

    def counting(path, crop_box, size):
        calls.append(path)
        return real(path, crop_box, size)

    monkeypatch.setattr(celeba, "_decode_crop", counting)
    return calls


# --- the shared real sample ------------------------------------------------------------------------------


@needs_sample
def test_sample_images_labels_and_partitions(tmp_path):
    ds = load_celeba64(SAMPLE, cache_dir=tmp_path, progress=False)
    assert ds.images.shape == (600, 3, 64, 64) and ds.images.dtype == np.uint8
    assert ds.layout == "flat" and ds.attr_names == CELEBA_ATTRIBUTES

    raw_attr = _raw_rows(SAMPLE / "list_attr_celeba.txt", skip=2)
    raw_part = _raw_rows(SAMPLE / "list_eval_partition.txt", skip=0)
    raw_ids = _raw_rows(SAMPLE / "identity_CelebA.txt", skip=0)
    assert list(ds.filenames) == list(raw_attr)
    expected = np.array([[v == "1" for v in raw_attr[f]] for f in ds.filenames], dtype=np.int8)
    np.testing.assert_array_equal(ds.attributes, expected)
    assert ds.attributes.dtype == np.int8 and set(np.unique(ds.attributes)) == {0, 1}
    # One value read straight from the file (row "000132.jpg -1  1  1 ...").
    i = ds.filenames.index("000132.jpg")
    assert ds.attributes[i, ds.attr_index("5_o_Clock_Shadow")] == 0
    assert ds.attributes[i, ds.attr_index("Attractive")] == 1
    assert ds.identity[i] == 5173 and ds.rendered_attributes is None  # photos: every label is shown

    np.testing.assert_array_equal(ds.partition, [int(raw_part[f][0]) for f in ds.filenames])
    np.testing.assert_array_equal(ds.identity, [int(raw_ids[f][0]) for f in ds.filenames])
    assert [len(ds.split(s)) for s in ("train", "val", "test", "all")] == [420, 90, 90, 600]
    # 20 identities x 30 images, each identity inside one partition: 14 train, 3 val, 3 test.
    ids_per_split = [set(ds.identity[ds.split(s)]) for s in ("train", "val", "test")]
    assert [len(s) for s in ids_per_split] == [14, 3, 3] and len(set().union(*ids_per_split)) == 20


@needs_sample
def test_sample_pixels_are_the_face_crop(tmp_path):
    ds = load_celeba64(SAMPLE, cache_dir=tmp_path, progress=False, limit=5)
    assert ds.filenames == tuple(list(_raw_rows(SAMPLE / "list_attr_celeba.txt", skip=2))[:5])
    left, top, right, bottom = CROP_BOX
    for image, name in zip(ds.images, ds.filenames, strict=True):
        with Image.open(SAMPLE / "img_align_celeba" / name) as im:
            crop = np.asarray(im.convert("RGB"), dtype=np.float64)[top:bottom, left:right]
        # 4x4 block means survive an antialiased resize; a wrong box, flip or axis order would not match.
        expected = crop.reshape(4, 37, 4, 37, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
        np.testing.assert_allclose(image.reshape(3, 4, 16, 4, 16).mean(axis=(2, 4)), expected, atol=1.5)


@needs_sample
def test_sample_second_load_uses_cache_and_size_change_rebuilds(tmp_path, monkeypatch):
    first = load_celeba64(SAMPLE, cache_dir=tmp_path, progress=False)
    calls = _count_decodes(monkeypatch)
    again = load_celeba64(SAMPLE, cache_dir=tmp_path, progress=False)
    assert calls == [] and isinstance(again.images, np.memmap) and not again.images.flags.writeable
    np.testing.assert_array_equal(np.asarray(first.images), np.asarray(again.images))

    small = load_celeba64(SAMPLE, cache_dir=tmp_path, progress=False, image_size=32)
    assert small.images.shape == (600, 3, 32, 32) and len(calls) == 600


# --- hand-made layouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("point_at_celeba_folder", [False, True])
def test_torchvision_layout(tmp_path, point_at_celeba_folder):
    made = make_celeba(tmp_path / "data")
    root = made["folder"] if point_at_celeba_folder else tmp_path / "data"
    ds = load_celeba64(root, cache_dir=tmp_path / "cache", progress=False)
    assert ds.layout == "torchvision" and ds.images.shape == (6, 3, 64, 64)
    assert ds.root == made["folder"].resolve()
    np.testing.assert_array_equal(ds.attributes, made["attrs"])
    np.testing.assert_array_equal(ds.partition, made["partition"])
    np.testing.assert_array_equal(ds.identity, made["identity"])
    np.testing.assert_array_equal(ds.split("val"), [1, 4])


def test_kaggle_layout_has_no_identity(tmp_path, monkeypatch):
    made = make_celeba(tmp_path / "kaggle", kind="kaggle")
    monkeypatch.setenv("CELEBA_ROOT", str(tmp_path / "kaggle"))
    ds = load_celeba64(cache_dir=tmp_path / "cache", progress=False)
    assert ds.layout == "kaggle" and ds.images.shape == (6, 3, 64, 64) and ds.identity is None
    assert resolve_celeba_root().image_dir == made["image_dir"].resolve()
    np.testing.assert_array_equal(ds.attributes, made["attrs"])
    np.testing.assert_array_equal(ds.partition, made["partition"])


def test_missing_root_explains_layouts_and_download(tmp_path, monkeypatch):
    monkeypatch.delenv("CELEBA_ROOT", raising=False)
    with pytest.raises(DataError, match="CELEBA_ROOT") as no_root:
        load_celeba64(cache_dir=tmp_path)
    for needle in ("mmlab.ie.cuhk.edu.hk", "jessicali9530/celeba-dataset", "list_attr_celeba.csv"):
        assert needle in str(no_root.value)
    with pytest.raises(DataError, match="does not exist"):
        resolve_celeba_root(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no CelebA annotation files"):
        resolve_celeba_root(tmp_path)


def test_partial_image_folder_warns_and_keeps_rows_aligned(tmp_path):
    made = make_celeba(tmp_path / "data")
    for name in ("000002.jpg", "000005.jpg"):
        (made["image_dir"] / name).unlink()
    with pytest.warns(UserWarning, match="found 4 of 6 images listed in list_attr_celeba.txt; using those"):
        ds = load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert ds.filenames == ("000001.jpg", "000003.jpg", "000004.jpg", "000006.jpg")
    np.testing.assert_array_equal(ds.attributes, made["attrs"][[0, 2, 3, 5]])
    np.testing.assert_array_equal(ds.identity, np.array(made["identity"])[[0, 2, 3, 5]])

    with pytest.warns(UserWarning, match="found 4 of 6"):
        limited = load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False, limit=2)
    assert limited.filenames == ("000001.jpg", "000003.jpg") and limited.images.shape[0] == 2

    for path in made["image_dir"].iterdir():
        path.unlink()
    with pytest.raises(DataError, match="none of the 6 images"):
        load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)


@pytest.mark.parametrize(
    ("file", "line_no", "edit", "message"),
    [
        ("list_attr_celeba.txt", 5, lambda line: line.rsplit(" ", 1)[0], r"list_attr_celeba.txt line 5"),
        ("list_attr_celeba.txt", 3, lambda line: line[:-2] + " 2", r"list_attr_celeba.txt line 3"),
        ("list_attr_celeba.txt", 2, lambda line: line.replace("Smiling", "Smiled"), r"line 2: .*names"),
        ("list_attr_celeba.txt", 1, lambda line: "7", r"line 1 says '7' images but the file has 6 rows"),
        ("list_eval_partition.txt", 2, lambda line: line[:-1] + "3", r"list_eval_partition.txt line 2"),
        ("identity_CelebA.txt", 4, lambda line: line + " 9", r"identity_CelebA.txt line 4"),
        ("list_eval_partition.txt", 6, lambda line: "", r"list_eval_partition.txt has no row for 000006.jpg"),
    ],
)
def test_malformed_annotations_name_file_and_line(tmp_path, file, line_no, edit, message):
    made = make_celeba(tmp_path / "data")
    path = made["folder"] / file
    lines = path.read_bytes().decode().split("\r\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(DataError, match=message):
        load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)


def test_malformed_kaggle_csv_row(tmp_path):
    made = make_celeba(tmp_path, kind="kaggle")
    path = made["folder"] / "list_attr_celeba.csv"
    path.write_text(path.read_text().replace("000004.jpg,", "000004.jpg,0,", 1))
    with pytest.raises(DataError, match=r"list_attr_celeba\.csv line 5"):
        load_celeba64(tmp_path, cache_dir=tmp_path / "cache", progress=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_jpeg_names_the_file(tmp_path, damage):
    made = make_celeba(tmp_path / "data")
    bad = made["image_dir"] / "000003.jpg"
    bad.write_bytes(bad.read_bytes()[: 600] if damage == "truncate" else b"not a jpeg at all")
    with pytest.raises(DataError, match=r"000003\.jpg.*re-download"):
        load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []  # the failed build left no cache behind


def test_unaligned_image_size_is_rejected(tmp_path):
    made = make_celeba(tmp_path / "data")
    _write_jpeg(made["image_dir"] / "000004.jpg", np.random.default_rng(1), size=(250, 250))
    with pytest.raises(DataError, match=r"000004\.jpg is 250x250, not 178x218"):
        load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)


def test_crop_box_is_applied(tmp_path):
    made = make_celeba(tmp_path / "data", n=3)
    left, top, right, bottom = CROP_BOX
    picture = np.empty((218, 178, 3), dtype=np.uint8)
    picture[:] = BLUE
    picture[top:bottom, left:right] = RED
    Image.fromarray(picture).save(made["image_dir"] / "000002.jpg", quality=100, subsampling=0)

    ds = load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    face = ds.images[1].astype(int)
    assert np.abs(face - np.array(RED)[:, None, None]).max() <= 12  # JPEG noise only, no blue at the edges

    whole = load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False,
                          crop_box=(0, 0, 178, 218))
    assert np.abs(whole.images[1].astype(int) - np.array(RED)[:, None, None]).max() > 100
    with pytest.raises(ConfigError, match="crop_box"):
        load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", crop_box=(0, 0, 200, 218))


def test_cache_follows_source_changes_and_survives_a_killed_build(tmp_path, monkeypatch):
    made = make_celeba(tmp_path / "data")
    calls = _count_decodes(monkeypatch)
    load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert len(calls) == 6
    load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert len(calls) == 6  # cached
    stat = (made["image_dir"] / "000001.jpg").stat()
    os.utime(made["image_dir"] / "000001.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert len(calls) == 12  # an image changed: rebuilt

    def killed(path, crop_box, size):
        raise KeyboardInterrupt

    monkeypatch.setattr(celeba, "_decode_crop", killed)
    with pytest.raises(KeyboardInterrupt):
        load_celeba64(tmp_path / "data", cache_dir=tmp_path / "fresh", progress=False)
    assert list((tmp_path / "fresh").iterdir()) == []  # nothing half-written that a later load could trust


def test_names_and_splits_fail_helpfully(tmp_path):
    make_celeba(tmp_path / "data", n=3)
    ds = load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert ds.attr_index("Smiling") == CELEBA_ATTRIBUTES.index("Smiling")
    with pytest.raises(ConfigError, match="did you mean 'Smiling'"):
        ds.attr_index("smiling")
    with pytest.raises(ConfigError, match="'train', 'val', 'test', 'all'"):
        ds.split("validation")
    assert ds.split("all").dtype == np.int64


def test_unwritable_cache_and_bad_parameters(tmp_path):
    make_celeba(tmp_path / "data", n=3)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(DataError, match=r"cannot write the image cache.*VAELIB_DATA"):
        load_celeba64(tmp_path / "data", cache_dir=not_a_folder / "cache", progress=False)
    for bad in ({"limit": 0}, {"image_size": 0}, {"crop_box": (15, 40, 163)}):
        with pytest.raises(ConfigError):
            load_celeba64(tmp_path / "data", cache_dir=tmp_path / "cache", **bad)
