"""Run folder -> LaTeX report: every number in the PDF comes from `RUN_DIR/metrics/*.json` through generated files.

`generated.write_generated(run_dir)` writes `RUN_DIR/report/generated/`:
    run-info.tex      title-page facts from manifest.json (profile, data, git revision, device)
    run-metrics.tex   one macro per JSON value: `\\metric{likelihood.elbo_bpd}` (a missing key prints "??")
    run-sections.tex  the \\input of each report/sections/*.tex, in the order of the notebook registry
    run-table-*.tex   tables built from JSON records (classifier per attribute, edit evaluation, likelihood, ...)
    run-figs-*.tex    one figure per file matching a prefix (amp_*.png, ...), or a placeholder box
`build.build_report(run_dir)` then runs latexmk on `report/main.tex` into `RUN_DIR/report/build` and copies the
PDF to `RUN_DIR/report.pdf`. The generated folder and the run's figures reach TeX through TEXINPUTS, so no path
of the run folder is ever written into TeX source (paths with `_`, `%` or `~` would need escaping).

Modules: `latex` (values -> LaTeX text, tables), `metrics` (JSON -> macros and the appendix),
`tables` (table specs -> tables), `generated` (the run-*.tex files), `build` (TeX tools and latexmk).
"""
