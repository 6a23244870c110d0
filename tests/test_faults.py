"""Faults a careful user meets (issue 15): each ends in one sentence naming the problem and the way out, the way
out works, and no earlier file is lost. CPU, tiny models, under a minute; the numbers in the section titles are
the issue's cases."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch
from test_celeba import make_celeba

from vaelib import atomic
from vaelib.__main__ import build_parser, main
from vaelib.checkpoint import load_checkpoint, save_checkpoint
from vaelib.config import ModelConfig, TrainConfig, get_profile
from vaelib.data import celeba, resolve_celeba_root
from vaelib.errors import CheckpointError, ConfigError, DataError, TrainingDivergedError, WriteFailedError
from vaelib.pipeline import documents, plan
from vaelib.pipeline.manifest import is_complete, source_hash
from vaelib.pipeline.plan import RunOptions
from vaelib.report import build
from vaelib.run import RunContext
from vaelib.runfolder.vae import load_vae, prepare_run_dir
from vaelib.runlock import run_lock
from vaelib.training.vae import Trainer

TINY = ModelConfig(widths=(16, 32), blocks_per_stage=1, latent_dim=8, norm_groups=8, image_size=16)
QUIET = dict(progress=False, log=lambda s: None)


def tiny_data(n: int = 48) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))


def trained_run(run_dir: Path, epochs: int = 1, **train) -> Path:
    """A run folder whose checkpoints/ holds last.pt and best.pt of a tiny VAE; returns checkpoints/."""
    data, ckpts = tiny_data(), run_dir / "checkpoints"
    Trainer(TINY, TrainConfig(epochs=epochs, batch_size=16, **train), torch.device("cpu")).fit(
        data[:32], data[32:], ckpts, **QUIET)
    return ckpts


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaelib", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def error_line(stderr: str) -> str:
    """The CLI's message: exactly one `error:` line and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


# ---- 1: best.pt can always be rebuilt -------------------------------------------------------------------------


def test_damaged_best_pt_is_rebuilt_from_the_best_weights_kept_in_last_pt(tmp_path):
    ckpts = trained_run(tmp_path, epochs=2)
    best_weights = load_checkpoint(ckpts / "best.pt", kind="vae")["model"]
    last_before = (ckpts / "last.pt").read_bytes()
    (ckpts / "best.pt").write_bytes(b"damaged")
    messages = []
    Trainer(TINY, TrainConfig(epochs=2, batch_size=16), torch.device("cpu")).fit(
        tiny_data()[:32], tiny_data()[32:], ckpts, progress=False, log=messages.append)
    assert any("rebuilt" in m and "best weights kept in last.pt" in m for m in messages), messages
    rebuilt = load_checkpoint(ckpts / "best.pt", kind="vae")["model"]
    assert all(torch.equal(best_weights[k], rebuilt[k]) for k in best_weights)
    assert (ckpts / "last.pt").read_bytes() == last_before


def test_deleted_best_pt_is_rebuilt_when_a_later_notebook_loads_the_vae(tmp_path):
    ckpts = trained_run(tmp_path)
    (ckpts / "best.pt").unlink()
    ctx = RunContext(tmp_path, get_profile("smoke"), torch.device("cpu"))
    model = load_vae(ctx)
    assert model.cfg == TINY and (ckpts / "best.pt").is_file()


# ---- 2: one writer per run folder -----------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vaelib.runlock import run_lock
    with run_lock(Path(sys.argv[1]), "test holder"):
        print("held", flush=True)
        time.sleep(60)
""")


def test_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (["train", "--profile", "smoke", "--device", "cpu"],
                        ["run", "--profile", "smoke", "--device", "cpu", "--no-documents"]):
            done = cli(*command, "--run-dir", str(run_dir), cwd=tmp_path)
            assert done.returncode == 1
            assert f"is in use by test holder (pid {holder.pid}" in error_line(done.stderr)
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"], "the refused writers touched nothing"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    messages = []
    with run_lock(run_dir, "second", log=messages.append):
        assert json.loads((run_dir / ".lock").read_text())["pid"] == os.getpid()
    assert any(f"left by pid {holder.pid}" in m and "no longer running" in m for m in messages), messages
    assert not (run_dir / ".lock").exists(), "released on exit"


# ---- 3: write failures are one sentence, checked before work starts -------------------------------------------


def test_full_disk_during_a_checkpoint_write_says_disk_full_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"kind": "x", "model": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    def full_disk(prefix, suffix, dir):  # a real ENOSPC from the kernel, under the temp file's name
        name = Path(dir) / f"{prefix}abcdefgh{suffix}"
        name.touch()
        return os.open("/dev/full", os.O_WRONLY), str(name)

    monkeypatch.setattr(tempfile, "mkstemp", full_disk)
    with pytest.raises(WriteFailedError, match=r"cannot write .*last.pt: the disk is full .* free some space"):
        save_checkpoint({"kind": "x", "model": {"w": torch.zeros(100_000)}}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"], "no temp file left"


def test_unwritable_folder_is_one_sentence(tmp_path, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(WriteFailedError, match="permission denied in .* make it writable"):
        atomic.atomic_write_text(tmp_path / "metrics.json", "{}")


def test_train_refuses_a_read_only_run_folder_before_training(tmp_path, monkeypatch, capsys):
    def denied(self, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", denied)  # as root, chmod would not stop the write
    monkeypatch.setattr(RunContext, "load_data", lambda self: pytest.fail("data loaded before the check"))
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--profile", "smoke", "--device", "cpu"]) == 1
    assert "checkpoints/.write-test: permission denied" in capsys.readouterr().err


def test_train_refuses_a_disk_without_room_for_two_checkpoints(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    monkeypatch.setattr(RunContext, "load_data", lambda self: pytest.fail("data loaded before the check"))
    assert main(["train", "--run-dir", str(tmp_path / "run"), "--profile", "smoke", "--device", "cpu"]) == 1
    assert "free on the disk of" in capsys.readouterr().err


# ---- 4: NaN advice that can be followed -----------------------------------------------------------------------


def test_nan_weights_are_refused_on_load(tmp_path):
    ckpts = trained_run(tmp_path)
    state = load_checkpoint(ckpts / "last.pt", kind="vae")
    state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    save_checkpoint(state, ckpts / "last.pt")
    with pytest.raises(CheckpointError, match="NaN or infinite weights .* delete it"):
        load_checkpoint(ckpts / "last.pt", kind="vae")


def test_nan_before_any_checkpoint_does_not_claim_one_is_kept(tmp_path):
    t = Trainer(TINY, TrainConfig(epochs=1, batch_size=16, log_every=1), torch.device("cpu"))
    with torch.no_grad():
        t.model.decoder.from_latent.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="no epoch finished, so there is no checkpoint") as err:
        t.fit(tiny_data()[:32], tiny_data()[32:], tmp_path, **QUIET)
    assert "is kept" not in str(err.value) and not list(tmp_path.iterdir())


def test_divergence_advice_resumes_at_a_lower_lr_and_records_it(tmp_path):
    ckpts = trained_run(tmp_path)
    ctx = RunContext(tmp_path, get_profile("smoke"), torch.device("cpu"))
    advice = f"{ctx.train_command()} --lr 0.0005 --grad-clip 5"
    args = build_parser().parse_args(advice.split()[3:])  # the advised command line parses
    assert (args.lr, args.grad_clip, args.run_dir) == (0.0005, 5.0, str(tmp_path))
    t = Trainer(TINY, TrainConfig(epochs=2, batch_size=16, lr=5e-4, grad_clip=5.0), torch.device("cpu"))
    history = t.fit(tiny_data()[:32], tiny_data()[32:], ckpts, **QUIET)
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]
    assert history["changes"] == [{"after_epoch": 1, "lr": [1e-3, 5e-4], "grad_clip": [100.0, 5.0]}]
    assert t.optimizer.param_groups[0]["lr"] == 5e-4


# ---- 5, 6: umask and orphan temp files ------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_atomic_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic.atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_orphan_temp_files_are_removed_at_start_and_others_kept(tmp_path):
    orphans = [tmp_path / "checkpoints" / "last.pt.k2j4_9ab.tmp", tmp_path / "metrics" / "vae.json.0a1b2c3d.tmp"]
    for p in orphans:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x" * 100)
    keep = tmp_path / "notes.tmp"
    keep.write_text("mine")
    messages = []
    prepare_run_dir(tmp_path, TINY, messages.append)
    assert not any(p.exists() for p in orphans) and keep.read_text() == "mine"
    assert messages == [f"removed 2 temp file(s) left by an interrupted write in {tmp_path}"]


# ---- 7, 8: annotation files -----------------------------------------------------------------------------------


def test_utf8_bom_on_annotation_files_is_accepted(tmp_path):
    written = make_celeba(tmp_path)
    for name in ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt"):
        path = written["folder"] / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ann = celeba.read_annotations(resolve_celeba_root(tmp_path))
    assert list(ann.filenames) == written["names"] and ann.partition.tolist() == written["partition"]


def test_missing_count_line_is_named_as_such(tmp_path):
    path = make_celeba(tmp_path)["folder"] / "list_attr_celeba.txt"
    path.write_bytes(path.read_bytes().split(b"\r\n", 1)[1])
    with pytest.raises(DataError, match="line 1 is the header .* the count line is missing"):
        celeba.read_annotations(resolve_celeba_root(tmp_path))


def test_a_bad_value_at_the_end_of_a_long_row_is_shown(tmp_path):
    path = make_celeba(tmp_path)["folder"] / "list_attr_celeba.txt"
    lines = path.read_bytes().decode().split("\r\n")
    lines[3] = lines[3][:-2] + " 7"  # the 40th value of the second image
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(DataError, match=r"line 4: .* 7' \(bad value '7'\)"):
        celeba.read_annotations(resolve_celeba_root(tmp_path))


# ---- 9: parameters checked in one place, before anything runs -------------------------------------------------


def test_an_unknown_device_fails_in_plan(tmp_path):
    with pytest.raises(ConfigError, match="DEVICE='tpu' is not a device .* 'cuda:N'"):
        plan.plan(RunOptions(tmp_path / "run", profile="smoke", device="tpu"), tmp_path / "run")


def test_list_elements_must_have_the_defaults_type(tmp_path):
    (tmp_path / "smoke.json").write_text(json.dumps({"06_bpd": {"K_VALUES": ["a"]}}))
    with pytest.raises(ConfigError, match=r"K_VALUES=\['a'\] \(list of str\) .* \(list of int\)"):
        plan.plan(RunOptions(tmp_path / "run", profile="smoke", config_dir=tmp_path), tmp_path / "run")


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "-1"], "epochs must be a positive whole number, not -1"),
    (["train", "--batch-size", "0"], "batch_size must be a positive number"),
    (["train", "--lr", "-0.1"], "lr must be a positive number"),
    (["train", "--device", "tpu"], "DEVICE='tpu' is not a device"),
    (["run", "--device", "tpu"], "DEVICE='tpu' is not a device"),
], ids=["epochs", "batch", "lr", "train-device", "run-device"])
def test_bad_option_is_one_sentence_and_leaves_no_run_folder(tmp_path, capsys, args, message):
    run_dir = tmp_path / "run"
    assert main([*args, "--profile", "smoke", "--run-dir", str(run_dir)]) == 1
    assert message in error_line(capsys.readouterr().err)
    assert not run_dir.exists()


def test_negative_epochs_on_the_command_line_exit_1_in_one_sentence(tmp_path):
    done = cli("train", "--epochs", "-1", "--profile", "smoke", "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 1
    assert error_line(done.stderr) == "error: epochs must be a positive whole number, not -1."


def test_checkpoint_of_another_config_is_refused_before_the_data_loads(tmp_path, monkeypatch, capsys):
    trained_run(tmp_path)  # TINY, not the smoke profile's model
    monkeypatch.setattr(RunContext, "load_data", lambda self: pytest.fail("data loaded before the check"))
    assert main(["train", "--run-dir", str(tmp_path), "--profile", "smoke", "--device", "cpu"]) == 1
    assert "was trained with another model config" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="another model config"):
        plan.plan(RunOptions(tmp_path, profile="smoke", only=("01",)), tmp_path)


def test_a_checkpoint_dict_missing_fields_or_a_folder_named_last_pt_is_one_sentence(tmp_path):
    save_checkpoint({"kind": "vae", "model": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks optimizer, model_config"):
        load_checkpoint(tmp_path / "partial.pt", kind="vae")
    (tmp_path / "last.pt").mkdir()
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        load_checkpoint(tmp_path / "last.pt", kind="vae")


# ---- 10: smaller ----------------------------------------------------------------------------------------------


def test_celeba_messages_name_the_celeba_root_option(monkeypatch):
    monkeypatch.delenv("CELEBA_ROOT", raising=False)
    with pytest.raises(DataError, match="pass --celeba-root or set CELEBA_ROOT") as err:
        resolve_celeba_root(None)
    assert "root=..." not in str(err.value)
    assert build_parser().parse_args(["train", "--run-dir", "x", "--celeba-root", "y"]).celeba_root == "y"


def test_report_without_tex_exits_nonzero(tmp_path, monkeypatch, capsys):
    (tmp_path / "metrics").mkdir()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["report", "--run-dir", str(tmp_path)]) == 1
    assert "not found, so report.pdf" in capsys.readouterr().out


def test_missing_pandoc_alone_still_builds_report_pdf(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(build, "missing_tex_tools", lambda: ["pandoc"])
    monkeypatch.setattr(build, "build_report", lambda run_dir: run_dir / "report.pdf")
    monkeypatch.setattr(documents, "notebook_pdfs", lambda *a: pytest.fail("notebook PDFs need pandoc"))
    assert documents.build_documents(tmp_path) == [tmp_path.resolve() / "report.pdf"]
    assert "pandoc not found, so the notebook PDFs are skipped (report.pdf is built)" in capsys.readouterr().out


def test_a_moved_run_folder_is_still_complete(tmp_path):
    source = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), source)
    old, new = tmp_path / "old", tmp_path / "new"
    executed = nbformat.v4.new_notebook(metadata={"papermill": {"end_time": "now", "exception": None}})
    old.mkdir()
    nbformat.write(executed, old / "nb.ipynb")
    params = {"RUN_DIR": str(old), "SEED": 0}
    manifest = {"notebooks": {"nb": {"status": "completed", "parameters": params,
                                     "source_sha256": source_hash(source)}}}
    shutil.move(old, new)
    assert is_complete(new, "nb", source, {**params, "RUN_DIR": str(new)}, manifest, ())
    assert not is_complete(new, "nb", source, {"RUN_DIR": str(new), "SEED": 1}, manifest, ())
