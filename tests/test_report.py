"""vaelib.report: JSON -> LaTeX macros and tables, and a PDF built from a hand-made run folder."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
from conftest import needs_tex

from vaelib import notebooks
from vaelib.notebooks import TableSpec
from vaelib.report import build, generated, latex, metrics, tables
from vaelib.report.latex import Column


@pytest.mark.parametrize(("value", "text"), [
    (2.9531234, "2.953"), (-12345.6789, "-12345.679"), (0.0, "0.000"), (0.00012345, "1.23e-04"),
    (1234567.0, "1.23e+06"), (7, "7"), (True, "yes"), (None, "n/a"), (math.nan, "n/a"),
])
def test_format_number(value, text):
    assert latex.format_number(value) == text


def test_escape_latex_attribute_names():
    assert latex.escape_latex("Wearing_Hat") == r"Wearing\_Hat"
    assert latex.escape_latex("5_o_Clock_Shadow 100% & #1 {x} ~^\\") == (
        r"5\_o\_Clock\_Shadow 100\% \& \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}")


def test_flatten_dicts_lists_and_last():
    flat = metrics.flatten({"likelihood": {"elbo_bpd": 2.5, "iwae": [{"k": 1, "bpd": 2.5}, {"k": 16, "bpd": 2.4}],
                                          "sigma": [0.1, 0.2]}})
    assert flat["likelihood.elbo_bpd"] == 2.5
    assert flat["likelihood.iwae.0.k"] == 1
    assert flat["likelihood.iwae.last.bpd"] == 2.4
    assert flat["likelihood.sigma"] == "0.100, 0.200"


def test_long_lists_keep_only_last():
    flat = metrics.flatten({"curve": list(range(metrics.MAX_INDEXED + 1))})
    assert flat == {"curve.last": metrics.MAX_INDEXED}


def test_macros_use_csname_and_escape_values():
    values = metrics.metric_values({"likelihood": {"elbo_bpd": 2.95312}, "classifier": {"best": "Wearing_Hat"},
                                   "odd key": {"a{b}": 1}})
    tex = metrics.metrics_tex(values)
    assert r"\expandafter\def\csname m@likelihood.elbo_bpd\endcsname{2.953}" in tex
    assert r"\csname m@classifier.best\endcsname{Wearing\_Hat}" in tex
    assert r"\csname m@odd-key.a-b-\endcsname{1}" in tex


def test_records_shapes():
    assert tables.records([{"k": 1}, {"k": 2}]) == [{"k": 1}, {"k": 2}]
    assert tables.records({"Smiling": {"acc": 0.9}}, "attribute") == [{"attribute": "Smiling", "acc": 0.9}]
    assert tables.records({"mean": 0.8, "per_attribute": {"Smiling": {"acc": 0.9}}}, "a") == [
        {"a": "Smiling", "acc": 0.9}]
    assert tables.records({"mean": 0.8}) is None


def test_latex_table_escapes_and_marks_missing_cells():
    rows = [{"attribute": "Wearing_Hat", "accuracy": 0.95123}, {"attribute": "Smiling"}]
    tex = latex.latex_table(rows, tables.auto_columns(rows), "Caption", "tab:x")
    assert r"\begin{longtable}{lr}" in tex
    assert r"\textbf{attribute} & \textbf{accuracy} \\" in tex
    assert r"Wearing\_Hat & 0.951 \\" in tex
    assert r"Smiling & -- \\" in tex


def test_table_stacks_sources_and_falls_back_to_scalars():
    metrics = {"a": {"rows": [{"attribute": "Smiling", "gain": 0.5}]}, "b": {"mean_gain": 0.25}}
    spec = TableSpec("t", ("a", "b"), "caption", index="attribute")
    assert tables.table_rows(spec, metrics) == [
        {"source": "a", "attribute": "Smiling", "gain": 0.5}, {"source": "b", "attribute": "mean_gain", "value": 0.25}]
    assert r"\missingitem{table}{t}" in tables.table_tex(spec, {})


def test_all_metrics_table_leaves_out_list_items_and_attributes():
    values = metrics.metric_values({"m": {"curve": [1.0, 2.0], "best": 3.0, "per": {"Smiling": {"acc": 0.5}}}})
    tex = metrics.all_metrics_tex(values)
    assert r"m.best & 3.000" in tex and r"m.curve & 1.000, 2.000" in tex
    assert "m.curve.0" not in tex and "m.curve.last" not in tex and "Smiling" not in tex


def test_figure_groups_list_files_or_placeholder(tmp_path):
    (tmp_path / "figures").mkdir()
    assert r"\missingitem{figure}{amp_*}" in generated.figure_group_tex(tmp_path, "amp")
    (tmp_path / "figures" / "amp_Wearing_Hat.png").write_bytes(b"")
    assert generated.figure_group_tex(tmp_path, "amp") == "\\runfigure{amp_Wearing_Hat.png}{Wearing Hat}\n"


@pytest.mark.parametrize(("data", "flag"), [("synthetic", True), ("celeba", False), (None, True)])
def test_title_page_says_synthetic(data, flag):
    tex = generated.run_info_tex({"data": data} if data else {})
    assert (r"\syntheticdatatrue" in tex) == flag


def test_column_alignment_in_spec():
    tex = latex.latex_table([{"a": 1, "b": "x"}], [Column("a", "A"), Column("b", "B", "l")], "c", "tab:c")
    assert r"\begin{longtable}{rl}" in tex


def _hand_made_run(run_dir):
    (run_dir / "metrics").mkdir(parents=True)
    (run_dir / "figures").mkdir()
    metrics = {
        "likelihood": {"elbo_bpd": 2.953123, "iwae": [{"k": 1, "bpd": 2.953123}, {"k": 64, "bpd": 2.91}]},
        "classifier": {"attribute_table": [{
            "attribute": "Wearing_Hat", "rendered": True, "majority_baseline": 0.9, "classifier_threshold": 0.41,
            "judge_threshold": 0.62, "classifier_accuracy": 0.951,
            "classifier_balanced": 0.8, "judge_accuracy": 0.97, "judge_balanced": 0.85}]},
    }
    for name, obj in metrics.items():
        (run_dir / "metrics" / f"{name}.json").write_text(json.dumps(obj))
    (run_dir / "manifest.json").write_text(json.dumps({"profile": "smoke", "data": "synthetic"}))


def pdf_text(path) -> str:
    """Text of a PDF with whitespace collapsed (table rows become `key value`)."""
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


@needs_tex
def test_build_report_from_hand_made_run(tmp_path, capsys):
    _hand_made_run(tmp_path)
    pdf = build.build_report(tmp_path)
    text = pdf_text(pdf)
    assert "Synthetic data." in text
    assert "ELBO bounds it at 2.953 bits/dim" in text
    assert "Wearing_Hat yes 0.900 0.410 0.951 0.800 0.620 0.970 0.850" in text  # thresholds beside accuracies
    assert "tightens it to 2.910 bits/dim at K = 64" in text
    assert "figure loss_curves.pdf not produced by this run" in text
    assert "??" in text  # metrics this run lacks are visible, not silently empty
    assert "figure loss_curves.pdf" in capsys.readouterr().out  # and listed on the console


@needs_tex
def test_latex_error_names_first_error(tmp_path):
    _hand_made_run(tmp_path / "run")
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.tex").write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(latex.ReportError, match="Undefined control sequence"):
        build.build_report(tmp_path / "run", src=src)


def test_fid_table_says_not_measured_without_weights_and_lists_measured_sets():
    from vaelib.fid import not_measured

    spec = next(s for s in notebooks.tables() if s.name == "fid")
    unmeasured = tables.table_tex(spec, {"fid": not_measured("no weights", (1.0, 0.7))})
    assert r"prior, T = 0.7 & 0 & not measured & not measured & -- \\" in unmeasured
    row = {"set": "reconstructions", "n": 64, "fid": 41.25, "kid": 0.0125, "kid_std": 0.002}
    measured = tables.table_tex(spec, {"fid": {"measured": True, "sets": [row]}})
    assert r"reconstructions & 64 & 41.250 & 0.013 & 0.002 \\" in measured
