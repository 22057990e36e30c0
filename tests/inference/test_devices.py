from __future__ import annotations

import pytest
import torch

from inference.devices import DeviceUnavailable, configure_cpu_threads, resolve_device


def test_cpu_is_always_cpu() -> None:
    assert resolve_device("cpu") == "cpu"


def test_auto_picks_cuda_only_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailable, match="no usable GPU"):
        resolve_device("cuda")


def test_cuda_with_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cuda") == "cuda"


@pytest.mark.parametrize("setting", ["gpu", "", "cuda:0", "mps", "tpu"])
def test_unknown_settings_are_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="unknown device setting"):
        resolve_device(setting)


def test_configure_cpu_threads() -> None:
    previous = torch.get_num_threads()
    try:
        configure_cpu_threads(1)
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError):
            configure_cpu_threads(0)
    finally:
        torch.set_num_threads(previous)
