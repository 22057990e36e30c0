from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import torch

import inference.loader as loader_module
from inference.architectures import build_model
from inference.loader import (
    LoadedModel,
    ModelLoadError,
    get_model,
    load_model,
    sha256_of,
)
from inference.spec import ModelSpec
from inference.training import save_weights

# torch marks TorchScript deprecated; Loopgate still loads admin-registered archives.
TORCHSCRIPT_IS_DEPRECATED = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


class _RunsAShellCommandWhenUnpickled:
    """Unpickling this calls ``os.system(command)``: the classic malicious model file."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def _malicious_weights(tmp_path: Path, name: str) -> tuple[Path, Path]:
    marker = tmp_path / f"{name}.marker"
    payload = {
        "features.0.0.weight": _RunsAShellCommandWhenUnpickled(f"touch {shlex.quote(str(marker))}")
    }
    path = tmp_path / f"{name}.pt"
    torch.save(payload, path)
    return path, marker


def test_round_trip_gives_identical_predictions(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], rgb_image_factory
) -> None:
    path, sha256 = saved_weights
    first = load_model(tiny_spec, path, expected_sha256=sha256)
    resaved = path.with_name("resaved.pt")
    save_weights(first._module.state_dict(), resaved)
    second = load_model(tiny_spec, resaved)
    images = [rgb_image_factory(seed) for seed in range(3)]
    assert first.predict(images) == second.predict(images)
    assert isinstance(first, LoadedModel)
    assert (first.spec, first.device, first.sha256) == (tiny_spec, "cpu", sha256)


def test_sha256_of_matches_the_value_save_weights_returned(
    saved_weights: tuple[Path, str],
) -> None:
    path, sha256 = saved_weights
    assert sha256_of(path) == sha256
    assert len(sha256) == 64


def test_missing_file_is_refused(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tiny_spec, tmp_path / "absent.pt")


def test_checksum_mismatch_is_refused(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, _ = saved_weights
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        load_model(tiny_spec, path, expected_sha256="0" * 64)


def test_uppercase_checksum_is_accepted(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, sha256 = saved_weights
    assert load_model(tiny_spec, path, expected_sha256=sha256.upper()).sha256 == sha256


@pytest.mark.parametrize("keep_fraction", [0.0, 0.1, 0.5, 0.9])
def test_truncated_file_is_refused(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], tmp_path: Path, keep_fraction: float
) -> None:
    path, _ = saved_weights
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: int(len(data) * keep_fraction)])
    with pytest.raises(ModelLoadError):
        load_model(tiny_spec, truncated)


def test_random_bytes_are_refused(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ModelLoadError, match="not a safe, readable weights file"):
        load_model(tiny_spec, garbage)


def test_malicious_pickle_is_refused_without_running_it(
    tiny_spec: ModelSpec, tmp_path: Path
) -> None:
    path, marker = _malicious_weights(tmp_path, "evil")
    with pytest.raises(ModelLoadError, match="not a safe, readable weights file"):
        load_model(tiny_spec, path)
    with pytest.raises(ModelLoadError):
        get_model(tiny_spec, path, device="cpu", expected_sha256=None)
    assert not marker.exists()


def test_the_malicious_payload_is_live_so_the_refusal_test_means_something(
    tmp_path: Path,
) -> None:
    path, marker = _malicious_weights(tmp_path, "control")
    torch.load(path, weights_only=False)  # the unsafe call the loader never makes
    assert marker.exists()


def test_a_pickled_non_state_dict_is_refused(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(ModelLoadError, match="does not hold a state dict"):
        load_model(tiny_spec, path)


def test_a_dict_with_non_tensor_values_is_refused(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    path = tmp_path / "mixed.pt"
    torch.save({"features.0.0.weight": 3}, path)
    with pytest.raises(ModelLoadError, match="not a state dict"):
        load_model(tiny_spec, path)


def test_label_count_mismatch_is_refused(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, _ = saved_weights
    three_labels = ModelSpec(
        architecture=tiny_spec.architecture,
        labels=("ok", "scratch", "crack"),
        input_size=tiny_spec.input_size,
        arch_kwargs=tiny_spec.arch_kwargs,
    )
    with pytest.raises(ModelLoadError, match="do not fit mobilenet_v3_small with 3 labels"):
        load_model(three_labels, path)


def test_weights_of_another_architecture_are_refused(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    resnet_spec = ModelSpec("resnet18", tiny_spec.labels, tiny_spec.input_size)
    path = tmp_path / "resnet.pt"
    save_weights(build_model(resnet_spec).state_dict(), path)
    with pytest.raises(ModelLoadError, match="missing/unexpected keys"):
        load_model(tiny_spec, path)


def test_unsupported_architecture_is_a_load_error(tmp_path: Path, saved_weights) -> None:
    path, _ = saved_weights
    with pytest.raises(ModelLoadError, match="unsupported architecture"):
        load_model(ModelSpec("no_such_net", ("a", "b"), 32), path)


def _trace_pooling_classifier(outputs: int, path: Path) -> None:
    module = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, outputs)
    )
    torch.jit.trace(module, torch.zeros(1, 3, 32, 32)).save(str(path))


@TORCHSCRIPT_IS_DEPRECATED
def test_torchscript_with_the_wrong_output_size_is_refused(
    tiny_spec: ModelSpec, tmp_path: Path
) -> None:
    path = tmp_path / "scripted.pt"
    _trace_pooling_classifier(3, path)
    scripted_spec = ModelSpec("torchscript", tiny_spec.labels, 32)
    with pytest.raises(ModelLoadError, match=r"outputs shape \(1, 3\), expected \(1, 4\)"):
        load_model(scripted_spec, path)


@TORCHSCRIPT_IS_DEPRECATED
def test_torchscript_with_the_right_output_size_loads(
    tiny_spec: ModelSpec, tmp_path: Path, rgb_image_factory
) -> None:
    path = tmp_path / "scripted.pt"
    _trace_pooling_classifier(4, path)
    loaded = load_model(ModelSpec("torchscript", tiny_spec.labels, 32), path)
    assert len(loaded.predict([rgb_image_factory(0)])) == 1


@TORCHSCRIPT_IS_DEPRECATED
def test_a_state_dict_is_not_a_torchscript_archive(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, _ = saved_weights
    with pytest.raises(ModelLoadError, match="TorchScript"):
        load_model(ModelSpec("torchscript", tiny_spec.labels, 32), path)


def test_cache_loads_each_model_once(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, sha256 = saved_weights
    calls: list[Path] = []
    real_load_model = loader_module.load_model

    def counting_load_model(*args, **kwargs) -> LoadedModel:
        calls.append(args[1])
        return real_load_model(*args, **kwargs)

    monkeypatch.setattr(loader_module, "load_model", counting_load_model)
    first = get_model(tiny_spec, path, device="cpu", expected_sha256=sha256)
    second = get_model(tiny_spec, str(path), device="cpu", expected_sha256=sha256)
    assert first is second
    assert len(calls) == 1

    loader_module.clear_cache()
    third = get_model(tiny_spec, path, device="cpu", expected_sha256=sha256)
    assert third is not first
    assert len(calls) == 2


def test_cache_keys_on_checksum_and_does_not_cache_failures(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, sha256 = saved_weights
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        get_model(tiny_spec, path, device="cpu", expected_sha256="f" * 64)
    loaded = get_model(tiny_spec, path, device="cpu", expected_sha256=sha256)
    assert loaded.sha256 == sha256
    assert get_model(tiny_spec, path, device="cpu", expected_sha256=None) is not loaded
