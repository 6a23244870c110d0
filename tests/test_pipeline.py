"""The batch runner: parameter checks, skip-if-complete, failures, documents; and the whole smoke pipeline.

Runner behaviour is tested on tiny notebooks written into tmp_path (seconds each); `smoke_run` (conftest.py)
is the real pipeline on the smoke profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import needs_tex

from vaelib.__main__ import main
from vaelib.errors import ConfigError, DataError
from vaelib.notebooks import NAMES, expected_outputs
from vaelib.pipeline import documents, plan
from vaelib.pipeline.manifest import missing_outputs
from vaelib.pipeline.plan import RunOptions
from vaelib.pipeline.runner import NotebookFailedError, run_pipeline
from vaelib.report import build
from vaelib.report.latex import format_number, format_value
from vaelib.report.metrics import load_metrics, metric_values

TINY = ("01_first", "02_second", "03_third")
TINY_PARAMETERS = """\
RUN_DIR = "runs/tiny"  # run folder
PROFILE = "demo"  # profile
DATA = "synthetic"  # data source
CELEBA_ROOT = ""  # real CelebA folder
SEED = 0  # seed
DEVICE = "auto"  # device
INTERACTIVE = True  # widgets
PROGRESS = True  # progress bars
SCALE = 1.0  # multiplies the metric
FAIL = False  # raise on purpose
"""
TINY_BODY = """\
import json, pathlib
if FAIL:
    raise ValueError("asked to fail")
out = pathlib.Path(RUN_DIR) / "metrics"
out.mkdir(parents=True, exist_ok=True)
(out / "{name}.json").write_text(json.dumps({{"value": 1.5 * SCALE, "interactive": INTERACTIVE}}))
print("visible cell")
"""


def tiny_notebooks(folder, config: dict | None = None) -> dict:
    """Three notebooks writing metrics/<name>.json, and configs/smoke.json; returns RunOptions arguments."""
    nb_dir, cfg_dir = folder / "notebooks", folder / "configs"
    nb_dir.mkdir()
    cfg_dir.mkdir()
    for name in TINY:
        nb = nbformat.v4.new_notebook()
        # A kernel no machine has registered: the runner must use its own interpreter instead.
        nb.metadata["kernelspec"] = {"name": "vae-celeba", "display_name": "Python (vae-celeba)",
                                     "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"),
                    nbformat.v4.new_code_cell(TINY_PARAMETERS, metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell(TINY_BODY.format(name=name)),
                    nbformat.v4.new_code_cell('print("slider cell")', metadata={"tags": ["interactive"]})]
        nbformat.write(nb, nb_dir / f"{name}.ipynb")
    (cfg_dir / "smoke.json").write_text(json.dumps(config or {}))
    return dict(profile="smoke", notebooks=TINY, notebooks_dir=nb_dir, config_dir=cfg_dir, documents=False,
                expected_outputs={name: (f"metrics/{name}.json",) for name in TINY})


def mtimes(run_dir, names=TINY) -> dict:
    return {n: (run_dir / f"{n}.ipynb").stat().st_mtime_ns for n in names}


def test_runner_executes_skips_and_forces(tmp_path):
    run_dir = tmp_path / "run"
    kw = tiny_notebooks(tmp_path, {"common": {"SCALE": 2}})
    first = run_pipeline(RunOptions(run_dir, **kw))
    assert first.executed == list(TINY)
    assert json.loads((run_dir / "metrics" / "02_second.json").read_text()) == {"value": 3.0, "interactive": False}
    before = mtimes(run_dir)

    second = run_pipeline(RunOptions(run_dir, **kw))
    assert (second.executed, second.skipped) == ([], list(TINY))
    assert mtimes(run_dir) == before

    forced = run_pipeline(RunOptions(run_dir, force=True, only=("02",), **kw))
    assert forced.executed == ["02_second"]
    assert mtimes(run_dir)["02_second"] > before["02_second"]
    assert mtimes(run_dir)["01_first"] == before["01_first"]


def test_changed_parameters_rerun_that_notebook_and_later_ones(tmp_path):
    run_dir = tmp_path / "run"
    kw = tiny_notebooks(tmp_path)
    run_pipeline(RunOptions(run_dir, **kw))
    (kw["config_dir"] / "smoke.json").write_text(json.dumps({"02_second": {"SCALE": 3.0}}))
    again = run_pipeline(RunOptions(run_dir, **kw))
    assert (again.skipped, again.executed) == (["01_first"], ["02_second", "03_third"])


def test_edited_notebook_reruns(tmp_path):
    run_dir = tmp_path / "run"
    kw = tiny_notebooks(tmp_path)
    run_pipeline(RunOptions(run_dir, **kw))
    path = kw["notebooks_dir"] / "03_third.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("an edit"))
    nbformat.write(nb, path)
    assert run_pipeline(RunOptions(run_dir, **kw)).executed == ["03_third"]


def test_missing_output_reruns_notebook(tmp_path):
    run_dir = tmp_path / "run"
    kw = tiny_notebooks(tmp_path)
    run_pipeline(RunOptions(run_dir, **kw))
    (run_dir / "metrics" / "03_third.json").unlink()
    assert run_pipeline(RunOptions(run_dir, **kw)).executed == ["03_third"]


def test_manifest_of_tiny_run(tmp_path):
    run_dir = tmp_path / "run"
    run_pipeline(RunOptions(run_dir, seed=3, **tiny_notebooks(tmp_path)))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["profile"] == "smoke" and manifest["data"] == "synthetic"
    params = manifest["notebooks"]["01_first"]["parameters"]
    assert params["RUN_DIR"] == str(run_dir.resolve()) and params["SEED"] == 3 and params["INTERACTIVE"] is False


@pytest.mark.parametrize(("config", "message"), [
    ({"01_first": {"EPOCHS": 3}}, r"'EPOCHS' to notebook 01_first, .*valid names: RUN_DIR, PROFILE"),
    ({"common": {"SCALE": "big"}}, r"SCALE='big' \(str\) to notebook 01_first, but its default there is 1.0"),
    ({"common": {"FAIL": 1}}, r"FAIL=1 \(int\) to notebook 01_first"),
    ({"04_fourth": {}}, r"section '04_fourth' that names no notebook"),
    ({"common": {"SEED": 1}}, r"SEED in section 'common' are set by the runner"),
])
def test_bad_config_fails_before_running(tmp_path, config, message):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        run_pipeline(RunOptions(run_dir, **tiny_notebooks(tmp_path, config)))
    assert not list(run_dir.glob("*.ipynb"))


def test_missing_notebook_is_a_config_error(tmp_path):
    kw = tiny_notebooks(tmp_path)
    (kw["notebooks_dir"] / "02_second.ipynb").unlink()
    with pytest.raises(ConfigError, match=r"02_second.ipynb does not exist"):
        run_pipeline(RunOptions(tmp_path / "run", **kw))


def test_failing_notebook_is_named_and_stops_the_run(tmp_path):
    run_dir = tmp_path / "run"
    kw = tiny_notebooks(tmp_path, {"02_second": {"FAIL": True}})
    with pytest.raises(NotebookFailedError, match=r"notebook 02_second failed: ValueError: asked to fail"):
        run_pipeline(RunOptions(run_dir, **kw))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["notebooks"]["02_second"]["status"] == "failed"
    assert not (run_dir / "03_third.ipynb").exists()
    executed = nbformat.read(run_dir / "02_second.ipynb", as_version=4)
    assert executed.metadata.papermill.exception  # papermill's error banner is in the executed copy


def test_notebook_without_its_outputs_fails(tmp_path):
    kw = tiny_notebooks(tmp_path)
    kw["expected_outputs"] = {**kw["expected_outputs"], "01_first": ("figures/never.png",)}
    with pytest.raises(NotebookFailedError, match=r"01_first finished but did not write figures/never.png"):
        run_pipeline(RunOptions(tmp_path / "run", **kw))


def test_cli_user_error_is_one_line_and_exit_1(tmp_path, capsys):
    assert main(["run", "--profile", "smoke", "--run-dir", str(tmp_path), "--only", "99"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --only '99' names no notebook") and err.count("\n") == 1


@pytest.mark.parametrize("profile", ["smoke", "demo", "full", "spec"])
def test_profile_configs_match_the_notebooks(tmp_path, profile):
    steps = plan.plan(RunOptions(tmp_path, profile=profile, data="synthetic"), tmp_path)
    assert [name for name, _, _ in steps] == list(NAMES)
    assert all(params["PROFILE"] == profile and params["INTERACTIVE"] is False for _, _, params in steps)


def test_full_profile_plans_the_assignments_evaluation_and_spec_runs_it_the_same_way(tmp_path):
    full = {name: params for name, _, params in plan.plan(RunOptions(tmp_path, "full", "synthetic"), tmp_path)}
    guidance = full["04_label_guidance"]
    assert (guidance["STEPS"], guidance["LR"], guidance["LAMBDA"]) == (200, 0.01, 0.1)
    assert guidance["N_IMAGES"] >= 64
    assert full["06_bpd"]["NUM_TEST_IMAGES"] == 0  # the whole test split
    spec = {name: params for name, _, params in plan.plan(RunOptions(tmp_path, "spec", "synthetic"), tmp_path)}
    assert {n: {k: v for k, v in p.items() if k != "PROFILE"} for n, p in spec.items()} == \
        {n: {k: v for k, v in p.items() if k != "PROFILE"} for n, p in full.items()}


def test_config_that_extends_itself_is_a_clear_error(tmp_path):
    (tmp_path / "loop.json").write_text('{"extends": "loop"}')
    with pytest.raises(ConfigError, match="without a cycle"):
        plan.load_config(tmp_path, "loop", NAMES)


def test_missing_celeba_fails_before_running(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        plan.plan(RunOptions(tmp_path, profile="full", celeba_root=str(tmp_path / "nowhere")), tmp_path)


def test_real_celeba_layout_is_accepted(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "shared" / "celeba_sample"
    if not sample.is_dir():
        pytest.skip("no CelebA sample next to the project")
    steps = plan.plan(RunOptions(tmp_path, profile="full", celeba_root=str(sample)), tmp_path)
    # resolved on both sides: ../shared may be a symlink
    assert Path(steps[0][2]["CELEBA_ROOT"]).resolve() == sample.resolve() and steps[0][2]["DATA"] == "celeba"


def test_select_by_prefix_or_name():
    assert plan.select(NAMES, ("06", "01_train_vae")) == ["01_train_vae", "06_bpd"]


def test_without_tex_one_line_and_everything_else_done(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    kw = tiny_notebooks(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = run_pipeline(RunOptions(run_dir, **{**kw, "documents": True}))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("report:")]
    assert lines == [build.no_tex_message(["latexmk", "xelatex", "pandoc"])]
    assert "apt-get install latexmk texlive-xetex" in lines[0]
    assert result.executed == list(TINY) and result.documents == []
    assert (run_dir / "report" / "generated" / "run-metrics.tex").is_file()


@needs_tex
def test_notebook_pdf_drops_interactive_cells(tmp_path):
    run_dir = tmp_path / "run"
    run_pipeline(RunOptions(run_dir, **{**tiny_notebooks(tmp_path), "only": ("01",)}))
    pdf = documents.notebook_pdfs(run_dir, TINY)
    assert pdf == [run_dir / "pdf" / "01_first.pdf"]
    text = subprocess.run(["pdftotext", str(pdf[0]), "-"], capture_output=True, text=True, check=True).stdout
    assert "visible cell" in text and "slider cell" not in text


# ---------------------------------------------------------------------------------------------------------------
# the real pipeline on the smoke profile


@pytest.mark.slow
def test_smoke_manifest(smoke_run):
    manifest = json.loads((smoke_run.run_dir / "manifest.json").read_text())
    assert manifest["profile"] == "smoke" and manifest["data"] == "synthetic" and manifest["device"] == "cpu"
    assert set(manifest["git"]) == {"revision", "dirty"}
    assert {"python", "torch", "torchvision", "numpy", "papermill", "scikit-learn"} <= set(manifest["versions"])
    assert manifest["started"] <= manifest["finished"]
    assert list(manifest["notebooks"]) == list(NAMES)
    for entry in manifest["notebooks"].values():
        assert entry["status"] == "completed" and entry["wall_s"] > 0
        assert entry["parameters"]["RUN_DIR"] == str(smoke_run.run_dir)
        assert entry["parameters"]["INTERACTIVE"] is False


@pytest.mark.slow
def test_smoke_outputs_follow_the_registry(smoke_run):
    for name, patterns in expected_outputs().items():
        assert not missing_outputs(smoke_run.run_dir, patterns), name


@pytest.mark.slow
def test_smoke_run_numbers_are_plausible(smoke_run):
    metrics = load_metrics(smoke_run.run_dir)
    like = metrics["likelihood"]
    assert 0 < like["elbo_bpd"] < 8  # better than a uniform guess over 256 levels
    bounds = [like["elbo_bpd"]] + [r["bpd"] for r in like["iwae"]]
    assert all(b <= like["elbo_bpd"] + 1e-6 for b in bounds[2:])  # IWAE-K never looser than the ELBO
    assert abs(like["assignment_bonus"]["nll_sigma1_nats_per_dim"] - 0.919) < 0.1
    assert 5 < metrics["reconstruction"]["psnr_db"] < 60
    assert metrics["classifier"]["models"]["judge"]["mean_rendered"]["balanced_accuracy"] > 0.5


@pytest.mark.slow
def test_smoke_rerun_executes_nothing(smoke_run):
    before = mtimes(smoke_run.run_dir, NAMES)
    again = run_pipeline(RunOptions(smoke_run.run_dir, profile="smoke", documents=False))
    assert (again.executed, again.skipped) == ([], list(NAMES))
    assert mtimes(smoke_run.run_dir, NAMES) == before


@pytest.mark.slow
@needs_tex
def test_smoke_report_numbers_equal_the_json(smoke_run):
    from test_report import pdf_text

    assert smoke_run.documents[0] == smoke_run.run_dir / "report.pdf"
    text = pdf_text(smoke_run.run_dir / "report.pdf")
    assert "Synthetic data." in text
    values = metric_values(load_metrics(smoke_run.run_dir))
    for key in ("vae.parameters", "vae.best_val_loss", "likelihood.elbo_bpd",
                "likelihood.assignment_bonus.harmonic_mean", "classifier.models.judge.mean.balanced_accuracy"):
        assert f"{key} {format_value(values[key])}" in text, key  # the appendix row
    elbo, iwae, k = (format_number(values[f"likelihood.{key}"]) for key in ("elbo_bpd", "iwae.last.bpd",
                                                                                   "iwae.last.k"))
    assert f"ELBO bounds it at {elbo} bits/dim" in text
    assert f"tightens it to {iwae} bits/dim at K = {k}" in text


@pytest.mark.slow
@needs_tex
def test_smoke_notebook_pdfs_have_figures(smoke_run):
    from pypdf import PdfReader

    pdfs = smoke_run.documents[1:]
    assert [p.name for p in pdfs] == [f"{name}.pdf" for name in NAMES]
    for path in pdfs:
        assert sum(len(page.images) for page in PdfReader(path).pages) > 0, path.name


@pytest.mark.slow
def test_smoke_edit_tables_have_controls_intervals_and_thresholds(smoke_run):
    metrics = load_metrics(smoke_run.run_dir)
    thresholds = {n: m["threshold"] for n, m in metrics["classifier"]["models"]["judge"]["per_attribute"].items()}
    assert len(thresholds) == 40 and all(0 <= t <= 1 for t in thresholds.values())
    for name in ("edit_eval_feature_amp", "edit_eval_label_guidance"):
        rows = metrics[name]["rows"]
        for target in {r["target"] for r in rows}:
            for direction in ("add", "remove"):
                cell = [r for r in rows if r["target"] == target and r["direction"] == direction]
                assert any(r["method"] == "random_direction" for r in cell), (name, target, direction)
                assert all(r["judge_threshold"] == thresholds[target] for r in cell)
        assert all(isinstance(r["n"], int) and r["n"] >= 0 for r in rows)
        for r in rows:
            if r["n"]:
                assert r["success_lo"] <= r["success_rate"] <= r["success_hi"]
    identity = metrics["identity_transfer"]["identity"]
    assert identity["measured"] and identity["verification"]["chance"] == 0.5
    assert [r["k"] for r in identity["transfer"]][0] == 0 and all(r["n"] for r in identity["transfer"])


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("FID_WEIGHTS")), reason="FID_WEIGHTS is set: the smoke run measures FID")
def test_smoke_fid_says_not_measured_without_weights(smoke_run):
    result = json.loads((smoke_run.run_dir / "metrics" / "fid.json").read_text())
    assert result["measured"] is False and "FID_WEIGHTS" in result["reason"]
    assert {row["fid"] for row in result["sets"]} == {"not measured"}


@pytest.mark.slow
def test_overview_picture_shows_faces_reconstructions_and_an_edit(smoke_run, tmp_path):
    from PIL import Image

    out = tmp_path / "demo.png"
    assert main(["overview", "--run-dir", str(smoke_run.run_dir), "--out", str(out)]) == 0
    width, height = Image.open(out).size
    assert (width, height) == (8 * 66 + 2, 3 * 66 + 2)  # 3 rows of 8 faces, torchvision's 2-pixel padding


def test_overview_of_a_folder_without_a_run_is_one_sentence(tmp_path, capsys):
    assert main(["overview", "--run-dir", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 1
    assert "has no manifest.json of a finished run" in capsys.readouterr().err
