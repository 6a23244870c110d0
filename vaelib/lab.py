"""Interactive use: register the `vae-celeba` kernel and run JupyterLab on the notebooks.

    python -m vaelib lab [--port 8888] [--no-browser]     (what `make lab` calls)

The kernelspec goes into `sys.prefix` (the venv or conda env), not ~/.local: the Jupyter of that env finds it,
and it points at this interpreter, so notebooks whose metadata name `vae-celeba` run where vaelib is installed.
`start_lab` / `stop_lab` run a server in the background for tests (tests/test_lab_e2e.py).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import VaelibError
from .run import PROJECT_ROOT

KERNEL_NAME = "vae-celeba"
KERNEL_DISPLAY_NAME = "Python (vae-celeba)"
HOST = "127.0.0.1"  # never 0.0.0.0: on a shared GPU node others reach it only through an ssh tunnel
DEFAULT_PORT = 8888
# No calls to the internet: compute nodes have none, and the news / update check / extension manager would
# only wait for timeouts and pop up notifications over the notebook.
QUIET_FLAGS = (
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
)


def register_kernel(prefix: str | os.PathLike | None = None) -> Path:
    """Install (or overwrite, so it is idempotent) the `vae-celeba` kernelspec for this interpreter into
    `prefix`/share/jupyter/kernels (default sys.prefix); returns its folder."""
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME,
                        prefix=str(prefix or sys.prefix)))


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def lab_command(root_dir: str | os.PathLike, port: int, token: str, open_browser: bool = False,
                extra: tuple[str, ...] = ()) -> list[str]:
    """`jupyter lab` on HOST:port serving root_dir, with a fixed token so the caller knows the URL."""
    return [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root_dir}", f"--ServerApp.ip={HOST}",
            f"--ServerApp.port={port}",
            # A taken port is an error, not a silent switch to the next one: the printed URL and an ssh
            # tunnel name this port.
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.open_browser={open_browser}", *QUIET_FLAGS,
            # Jupyter refuses to start as root; containers (docker, CI) often run as root.
            *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []), *extra]


def lab_url(port: int, token: str, path: str = "lab") -> str:
    return f"http://{HOST}:{port}/{path}?token={token}"


def wait_until_ready(proc: subprocess.Popen, port: int, token: str, timeout: float = 90.0) -> None:
    """Poll the server's REST API until it answers; raises when the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{port}/api/status?token={token}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise VaelibError(f"JupyterLab exited with status {proc.returncode} before serving port {port}.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                json.load(response)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            time.sleep(0.5)  # not listening yet
    raise VaelibError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s.")


def start_lab(root_dir: str | os.PathLike, port: int, token: str, log: str | os.PathLike, env: dict | None = None,
              extra: tuple[str, ...] = (), timeout: float = 90.0) -> subprocess.Popen:
    """A JupyterLab server in its own process group, logging to `log`; returns once it answers HTTP."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(lab_command(root_dir, port, token, extra=extra), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        wait_until_ready(proc, port, token, timeout)
    except BaseException:
        stop_lab(proc)
        raise
    return proc


def stop_lab(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers. On SIGTERM JupyterLab shuts its kernels
    down (they run in sessions of their own); after a SIGKILL they exit when they see their parent gone."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # already gone
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_lab(port: int = DEFAULT_PORT, open_browser: bool = True) -> int:
    """Register the kernel, then JupyterLab in the foreground on notebooks/ until Ctrl-C; returns its status."""
    if not port_is_free(port):
        raise VaelibError(f"port {port} on {HOST} is taken (another Jupyter?); choose one with "
                          f"`python -m vaelib lab --port N` (make lab LAB_PORT=N) and tunnel that port.")
    spec = register_kernel()
    print(f"kernel {KERNEL_NAME!r} ({KERNEL_DISPLAY_NAME}) -> {sys.executable} (spec in {spec})")
    token = secrets.token_hex(24)
    print(f"JupyterLab: {lab_url(port, token)}\n"
          f"on a remote GPU node, first run on your laptop: ssh -N -L {port}:localhost:{port} user@gpu-node\n"
          f"Ctrl-C stops it.", flush=True)
    proc = subprocess.Popen(lab_command(PROJECT_ROOT / "notebooks", port, token, open_browser))
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # Jupyter got the same Ctrl-C (it asks to confirm, a second one stops it) and shuts its kernels
            # down itself; killing it here, as subprocess.call would, would leave the kernels running.
            continue
