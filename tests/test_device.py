"""Device choice: CUDA, then Apple's MPS, then the CPU, with availability mocked (no GPU or Mac needed)."""

import os
import subprocess
import sys

import pytest
import torch

from vaelib.config import device_name, resolve_device
from vaelib.errors import ConfigError
from vaelib.training.precision import native_bf16


def _machine(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _machine(monkeypatch, cuda, mps)
    assert resolve_device("auto").type == expected


def test_explicit_mps_without_apple_gpu_is_one_sentence(monkeypatch):
    _machine(monkeypatch, cuda=True, mps=False)
    with pytest.raises(ConfigError, match=r"^DEVICE='mps' but torch sees no Apple-silicon GPU .*'cpu'\.$"):
        resolve_device("mps")


def test_explicit_devices_that_exist_are_kept(monkeypatch):
    _machine(monkeypatch, cuda=False, mps=True)
    assert resolve_device("mps") == torch.device("mps")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")


def test_unknown_device_name_is_a_config_error():
    with pytest.raises(ConfigError, match="not a device this project runs on"):
        resolve_device("gpu")


def test_a_run_records_the_resolved_device_or_the_gpu_name(monkeypatch):
    _machine(monkeypatch, cuda=True, mps=True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert device_name(resolve_device("auto")) == "NVIDIA H200"
    assert device_name(resolve_device("mps")) == "mps" and device_name(resolve_device("cpu")) == "cpu"


def test_mps_trains_in_fp32():
    assert native_bf16(torch.device("mps")) is False


def test_importing_vaelib_enables_the_mps_cpu_fallback_unless_the_user_chose():
    code = "import os, vaelib; print(os.environ.get('PYTORCH_ENABLE_MPS_FALLBACK'))"
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_ENABLE_MPS_FALLBACK"}
    run = [sys.executable, "-c", code]
    assert subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.strip() == "1"
    env["PYTORCH_ENABLE_MPS_FALLBACK"] = "0"
    assert subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.strip() == "0"
