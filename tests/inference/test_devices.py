from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from inference.devices import (
    DeviceUnavailable,
    available_cores,
    configure_cpu_threads,
    cpu_threads_policy,
    resolve_device,
    to_device,
    worker_processes,
)


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


# --- the CPU thread policy (D78) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "processes", "parameters", "expected"),
    [
        (2, 1, None, 2),  # the process's share: all of a 2-core machine's cores
        (2, 2, None, 1),  # two processes on two cores: one each
        (2, 4, None, 1),  # more processes than cores: never fewer than one
        (16, 2, None, 8),
        (64, 1, None, 8),  # past 8 a forward pass stops getting faster
        (16, 2, 2_500_000, 1),  # a small model: one thread, whatever the share
        (16, 2, 11_700_000, 8),  # ResNet-18: the process's share
        (2, 1, 4_999_999, 1),
        (2, 1, 5_000_000, 2),
    ],
)
def test_cpu_threads_policy(
    cores: int, processes: int, parameters: int | None, expected: int
) -> None:
    assert cpu_threads_policy(cores=cores, processes=processes, parameters=parameters) == expected


def test_the_operators_thread_count_wins_for_every_model() -> None:
    assert cpu_threads_policy(cores=2, processes=2, parameters=100, requested=3) == 3
    assert cpu_threads_policy(cores=64, processes=1, parameters=None, requested=12) == 12


@pytest.mark.parametrize(
    "arguments",
    [
        {"cores": 0, "processes": 1},
        {"cores": 2, "processes": 0},
        {"cores": 2, "processes": 1, "requested": 0},
    ],
)
def test_cpu_threads_policy_refuses_nonsense(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        cpu_threads_policy(**arguments)


def test_available_cores_counts_what_this_process_may_use() -> None:
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


def test_worker_processes_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPGATE_WORKER_PROCESSES", raising=False)
    assert worker_processes() == 1
    monkeypatch.setenv("LOOPGATE_WORKER_PROCESSES", "3")
    assert worker_processes() == 3
    monkeypatch.setenv("LOOPGATE_WORKER_PROCESSES", "many")
    assert worker_processes() == 1


def test_a_cpu_batch_stays_where_it_is() -> None:
    batch = torch.zeros((2, 3, 4, 4), dtype=torch.uint8)
    assert to_device(batch, "cpu") is batch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_gpu_batch_goes_through_pinned_memory() -> None:
    batch = torch.arange(48, dtype=torch.uint8).view(1, 3, 4, 4)
    moved = to_device(batch, "cuda")
    assert moved.device.type == "cuda"
    assert torch.equal(moved.cpu(), batch)


def test_loopgate_processes_wait_passively_before_torch_loads() -> None:
    """The OpenMP runtime reads OMP_WAIT_POLICY once, when torch's libraries load: it must
    be set by the time anything imports torch, and importing ``loopgate`` (what
    ``celery -A loopgate``, gunicorn and manage.py do first) sets it without loading torch."""
    program = (
        "import os, sys; import loopgate; "
        "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))"
    )
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", "PASSIVE"], done.stderr[-2000:]
    # An operator's own choice is kept.
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=root,
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["False", "ACTIVE"], done.stderr[-2000:]
