"""Interactive use: the latent explorer of notebook 03 in a real JupyterLab driven by headless Chromium, and the
batch side of the same cells (no widget output under papermill, none in the PDFs).

The browser test registers the `vae-celeba` kernel into sys.prefix (as `make lab` does), serves a copy of
notebook 03 pointed at the smoke run, runs all cells, moves the slider with the keyboard and checks that the
edited face changes while the original stays. Screenshot: <tmp_path>/lab.png (its path is printed; `pytest -s`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import socket
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import needs_tex

from vaelib import lab
from vaelib.errors import VaelibError
from vaelib.notebooks import NAMES
from vaelib.pipeline.plan import CONFIG_DIR, NOTEBOOKS_DIR, load_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
NOTEBOOK = "03_feature_amp"
# The dimension ranking and the scored table are not what the browser test checks, and at their smoke sizes
# they take 65 of the notebook's 105 s on a loaded 2-core CPU.
FAST = {"N_EXPLORE": 4, "N_EVAL": 8}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# The announcements plugin asks "get notified about official Jupyter news?" in a toast unless told not to.
NO_NEWS = '{"fetchNews": "false", "checkForUpdates": false}'

needs_browser = pytest.mark.skipif(
    not CHROMIUM.is_file() or importlib.util.find_spec("playwright") is None,
    reason=f"needs {CHROMIUM} (apt-get install chromium) and the playwright package (pip install playwright)")

# JavaScript run in the page (JupyterLab started with expose_app_in_browser, so window.jupyterapp exists).
KERNEL_IDLE = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return Boolean(kernel) && kernel.status === 'idle';
}"""
# 'widget' once the explorer's two faces are shown; the first error output otherwise, so a failing cell ends
# the wait at once with its message instead of a timeout.
WIDGET_OR_ERROR = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== 'code') continue;
        const error = cell.outputs.toJSON().find(o => o.output_type === 'error');
        if (error) return `cell ${i}: ${error.ename}: ${error.evalue}`;
    }
    return document.querySelectorAll('.widget-image').length >= 2 ? 'widget' : false;
}"""
EDITED_SRC_CHANGED = "old => document.querySelectorAll('.widget-image')[1].src !== old"


def set_parameters(source: str, **values) -> str:
    """Replace `NAME = literal  # comment` lines of a parameters cell, keeping their comments."""
    for name, value in values.items():
        source, n = re.subn(rf"^{name} = .*?(  #.*)?$", lambda m, v=value, k=name: f"{k} = {v!r}{m[1] or ''}",
                            source, flags=re.M)
        assert n == 1, f"{name} not in the parameters cell"
    return source


def interactive_cells(nb) -> list:
    return [c for c in nb.cells if "interactive" in c.metadata.get("tags", [])]


def test_register_kernel_is_idempotent_and_points_here(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    first = lab.register_kernel(prefix=tmp_path)
    assert lab.register_kernel(prefix=tmp_path) == first  # a second `make lab` overwrites, does not fail
    found = KernelSpecManager(kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")])
    spec = found.get_kernel_spec(lab.KERNEL_NAME)
    assert spec.display_name == lab.KERNEL_DISPLAY_NAME and spec.argv[0] == sys.executable


def test_lab_refuses_a_taken_port():
    with socket.socket() as busy:
        busy.bind((lab.HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not lab.port_is_free(port)
        with pytest.raises(VaelibError, match=f"port {port} .* is taken"):
            lab.run_lab(port, open_browser=False)
    assert lab.port_is_free(lab.free_port())


@pytest.fixture
def lab_server(smoke_run, tmp_path):
    """JupyterLab on a free port serving a folder with notebook 03 set to the smoke run (INTERACTIVE=True);
    isolated config, settings and workspaces; shut down even when the test fails. Yields (port, token)."""
    root = tmp_path / "notebooks"
    root.mkdir()
    nb = nbformat.read(NOTEBOOKS_DIR / f"{NOTEBOOK}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == lab.KERNEL_NAME
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    smoke = load_config(CONFIG_DIR, "smoke", NAMES)[NOTEBOOK]  # what the batch smoke run passes
    params.source = set_parameters(params.source, **{**smoke, **FAST}, RUN_DIR=str(smoke_run.run_dir),
                                   PROFILE="smoke", INTERACTIVE=True)
    nbformat.write(nb, root / f"{NOTEBOOK}.ipynb")

    lab.register_kernel()  # what the notebook's metadata names, for this interpreter
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(NO_NEWS)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces")}
    port, token = lab.free_port(), secrets.token_hex(16)
    proc = lab.start_lab(root, port, token, tmp_path / "lab.log", env=env,
                         extra=("--LabApp.expose_app_in_browser=True",))
    try:
        yield port, token
    finally:
        lab.stop_lab(proc)
        print(f"JupyterLab log: {tmp_path / 'lab.log'}")


@pytest.mark.e2e
@pytest.mark.slow
@needs_browser
def test_latent_slider_in_jupyterlab(lab_server, tmp_path):
    from playwright.sync_api import sync_playwright

    port, token = lab_server
    shot = tmp_path / "lab.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(lab.lab_url(port, token, f"lab/tree/{NOTEBOOK}.ipynb"))
            page.wait_for_function(KERNEL_IDLE)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")  # Run > Run All
            outcome = page.wait_for_function(WIDGET_OR_ERROR, timeout=150_000, polling=500).json_value()
            assert outcome == "widget", f"notebook {NOTEBOOK} failed in JupyterLab: {outcome}"

            faces = page.locator(".widget-image")
            original, edited = faces.nth(0), faces.nth(1)
            edited.scroll_into_view_if_needed()
            box = edited.bounding_box()
            assert box["width"] >= 192 and box["height"] >= 192, f"faces shown too small: {box}"
            assert page.locator(".widget-dropdown select").count() == 1
            before, original_before, src = edited.screenshot(), original.screenshot(), edited.get_attribute("src")
            assert before == original_before  # strength 0: the edit is the reconstruction

            handle = page.locator(".widget-slider .noUi-handle")
            handle.focus()
            start = time.perf_counter()
            page.keyboard.press("End")  # continuous_update=False: a key press commits one value, like a release
            page.wait_for_function(EDITED_SRC_CHANGED, arg=src, timeout=30_000)
            round_trip = time.perf_counter() - start
            assert float(page.locator(".widget-readout").inner_text()) > 0
            after = edited.screenshot()
            page.screenshot(path=str(shot))
            assert after != before, "the edited face did not change when the slider moved"
            assert original.screenshot() == original_before, "the original face changed with the slider"

            src = edited.get_attribute("src")
            page.locator(".widget-dropdown select").select_option(index=1)
            page.wait_for_function(EDITED_SRC_CHANGED, arg=src, timeout=30_000)
            assert edited.screenshot() != after, "another edit in the dropdown gave the same face"

            src = edited.get_attribute("src")
            page.get_by_role("button", name="Reset").click()
            page.wait_for_function(EDITED_SRC_CHANGED, arg=src, timeout=30_000)
            assert float(page.locator(".widget-readout").inner_text()) == 0.0
            assert edited.screenshot() == before, "Reset did not bring back the unedited face"
        finally:
            browser.close()
    print(f"\nslider released -> edited face shown in {round_trip * 1e3:.0f} ms (browser round trip); "
          f"screenshot: {shot}")


@pytest.mark.slow
def test_batch_run_has_no_widgets(smoke_run):
    """Slider cells are guarded by INTERACTIVE (False under papermill): the batch run finished, they printed
    nothing, and nbconvert's TagRemovePreprocessor (what the notebook PDFs use) drops them."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    source = nbformat.read(NOTEBOOKS_DIR / f"{NOTEBOOK}.ipynb", as_version=4)
    assert interactive_cells(source), f"{NOTEBOOK} has no cell tagged 'interactive'"
    for name in NAMES:
        executed = nbformat.read(smoke_run.run_dir / f"{name}.ipynb", as_version=4)
        meta = executed.metadata["papermill"]
        assert meta["end_time"] and not meta["exception"] and meta["parameters"]["INTERACTIVE"] is False, name
        sliders = interactive_cells(executed)
        for cell in (c for c in sliders if c.cell_type == "code"):  # markdown cells may be tagged too
            assert "if INTERACTIVE:" in cell.source, f"{name}: an interactive cell without the INTERACTIVE guard"
            assert cell.outputs == [], f"{name}: an interactive cell produced output in a batch run"
        assert not any(WIDGET_MIME in out.get("data", {}) for c in executed.cells if c.cell_type == "code"
                       for out in c.outputs), f"{name}: widget output in a batch run"
        cells = len(executed.cells)  # the preprocessor filters the notebook in place
        kept, _ = TagRemovePreprocessor(enabled=True, remove_cell_tags={"interactive"}).preprocess(executed, {})
        assert not interactive_cells(kept) and len(kept.cells) == cells - len(sliders), name


@pytest.mark.slow
@needs_tex
def test_notebook_pdf_has_no_slider_code(smoke_run):
    from test_report import pdf_text

    text = pdf_text(smoke_run.run_dir / "pdf" / f"{NOTEBOOK}.pdf")
    assert "Attribute directions" in text  # the static part is there
    assert "LatentExplorer(" not in text and "explorer.widget" not in text
