"""A version's runtime is chosen at registration, checked against PyTorch on the
workflow's labelled cases, recorded on the version, and used when it serves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from inference.loader import ModelLoadError, load_model, resize_to_uint8, sha256_of
from inference.runtimes import DEFAULT_MAX_ABS_DIFF, OnnxRunner
from modelops.models import DeploymentEvent, ModelVersion
from modelops.runtime import loaded_model_of, model_threads, predict_images
from modelops.services import ModelRefused, model_version_register
from tests.modelops import factories

pytestmark = pytest.mark.django_db


class HalfPrecisionSum(torch.nn.Module):
    """Scores from the rounding of a sum taken in half precision: torch sums float16 in
    float32 and rounds once, ONNX Runtime's ReduceSum rounds at every step, so the
    exported model scores differently on any image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rounding = x.half().sum(dim=(2, 3)).float() - x.sum(dim=(2, 3))
        return rounding[:, :2] - rounding[:, 1:3]


def upload(path: Path, **fields: Any) -> dict[str, Any]:
    handle = io.BytesIO(path.read_bytes())
    handle.name = path.name
    body: dict[str, Any] = {"weights": handle, "name": "tiny", "architecture": "squeezenet1_1"}
    body["input_size"] = 32
    body.update(fields)
    return body


def assert_nothing_stored(settings: Any) -> None:
    assert ModelVersion.objects.count() == 0
    assert not DeploymentEvent.objects.exists()
    assert factories.stored_files(settings.MEDIA_ROOT, "models") == []


def test_an_unknown_runtime_is_refused_naming_the_field(
    people: dict[str, Any], weights_file: Any, settings: Any, parts_workflow: Any
) -> None:
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(weights_file(), runtime="tensorrt"),
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "runtime"
    path = weights_file()
    with (
        pytest.raises(ModelRefused, match="runtime: 'tensorrt' is not a runtime"),
        path.open("rb") as handle,
    ):
        model_version_register(
            workflow=parts_workflow,
            name="tiny",
            architecture="squeezenet1_1",
            weights=handle,
            filename="w.pt",
            actor=None,
            source="command",
            input_size=32,
            runtime="tensorrt",
        )
    assert_nothing_stored(settings)


def test_a_model_whose_onnx_export_differs_is_refused_and_nothing_is_stored(
    people: dict[str, Any], parts_workflow: Any, tmp_path: Path, settings: Any
) -> None:
    factories.labelled_cases_create(parts_workflow, per_label=6)
    path = tmp_path / "half.pt"
    torch.jit.script(HalfPrecisionSum()).save(str(path))
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(path, architecture="torchscript", runtime="onnx"),
        format="multipart",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "runtime"
    assert "runtime onnx: refused: on 12 labelled cases sample images" in error["message"]
    assert "register it with the eager runtime" in error["message"]
    assert_nothing_stored(settings)
    # The same file is fine with PyTorch serving it.
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(path, architecture="torchscript", runtime="eager"),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["runtime"] == "eager"
    assert response.json()["runtime_check"] == {}


def test_a_matching_model_is_accepted_recorded_and_serves_the_labels_torch_gives(
    people: dict[str, Any], parts_workflow: Any, weights_file: Any
) -> None:
    cases = factories.labelled_cases_create(parts_workflow, per_label=5)
    path = weights_file()
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(path, runtime="onnx"),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["runtime"] == "onnx"
    check = body["runtime_check"]
    assert check["sample_origin"] == "labelled cases"
    assert check["samples"] == len(cases)
    assert check["max_abs_diff"] <= DEFAULT_MAX_ABS_DIFF
    assert check["top1_agreement"] == 1.0
    assert check["eager_ms_per_image"] > 0 and check["onnx_ms_per_image"] > 0
    version = ModelVersion.objects.get()
    assert version.runtime_file.name.endswith(".onnx")
    assert sha256_of(version.runtime_file.path) == version.runtime_sha256
    event = DeploymentEvent.objects.get()
    assert event.data["runtime"] == "onnx"

    served = loaded_model_of(version)
    assert served.runtime == "onnx"
    assert served.threads == model_threads(version) == 1  # a small model: one thread
    images = [Image.open(case.image.path) for case in cases]
    eager = load_model(factories.tiny_spec(factories.PART_LABELS), path)
    by_torch = eager.predict(images)
    by_platform = predict_images(version, images)
    assert [r.label for r in by_platform] == [r.label for r in by_torch]
    for one, other in zip(by_platform, by_torch, strict=True):
        assert one.confidence == pytest.approx(other.confidence, abs=DEFAULT_MAX_ABS_DIFF)


def test_an_int8_graph_is_calibrated_checked_on_held_out_cases_recorded_and_served(
    people: dict[str, Any], parts_workflow: Any, weights_file: Any, settings: Any
) -> None:
    # Speed is the machine's: the accuracy gate is tested apart from it (and the speed
    # rule in tests/inference/test_runtimes.py).
    settings.LOOPGATE_RUNTIME_INT8_REQUIRE_FASTER = False
    # A tiny random model's scores are close together, so rounding flips some of its
    # labels: the tolerance is widened here to test the path (the default's refusal is
    # the next test).
    settings.LOOPGATE_RUNTIME_INT8_MAX_ABS_DIFF = 0.5
    settings.LOOPGATE_RUNTIME_INT8_MIN_TOP1_AGREEMENT = 0.5
    cases = factories.labelled_cases_create(parts_workflow, per_label=5)
    path = weights_file()
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(path, runtime="onnx_int8"),
        format="multipart",
    )
    assert response.status_code == 201, response.content
    check = response.json()["runtime_check"]
    assert check["runtime"] == "onnx_int8"
    # Calibrated on half the labelled cases, compared on the other half.
    assert check["samples"] == len(cases) - len(cases) // 2
    assert check["max_abs_diff"] <= check["tolerance"]["max_abs_diff"] == 0.5
    assert check["top1_agreement"] >= check["tolerance"]["min_top1_agreement"] == 0.5
    assert check["max_abs_diff"] > 0  # rounded: the int8 graph, not the fp32 one
    assert check["onnx_fp32_ms_per_image"] > 0 and check["onnx_ms_per_image"] > 0
    version = ModelVersion.objects.get()
    assert version.runtime == "onnx_int8"
    served = loaded_model_of(version)
    assert served.runtime == "onnx_int8"
    # What serves is the recorded int8 graph, run as it was checked.
    images = [Image.open(case.image.path) for case in cases]
    graph = OnnxRunner(version.runtime_file.path, device="cpu", threads=1)
    spec = factories.tiny_spec(factories.PART_LABELS)
    expected = graph.probabilities(
        torch.stack([resize_to_uint8(image, spec.input_size) for image in images])
    )
    by_platform = predict_images(version, images)
    for result, row in zip(by_platform, expected.tolist(), strict=True):
        assert result.confidence == pytest.approx(max(row), abs=1e-6)
        assert result.label == spec.labels[row.index(max(row))]


def test_an_int8_graph_outside_its_tolerance_is_refused_and_nothing_is_stored(
    people: dict[str, Any], parts_workflow: Any, weights_file: Any, settings: Any
) -> None:
    settings.LOOPGATE_RUNTIME_INT8_REQUIRE_FASTER = False
    settings.LOOPGATE_RUNTIME_INT8_MAX_ABS_DIFF = 1e-9  # int8 rounds: never this close
    factories.labelled_cases_create(parts_workflow, per_label=5)
    response = people["admin"].post(
        "/api/v1/workflows/parts/model-versions/",
        upload(weights_file(), runtime="onnx_int8"),
        format="multipart",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == "runtime"
    # 10 labelled cases: calibrated on 5, compared on the other 5.
    assert "runtime onnx_int8: refused: on 5 labelled cases sample images" in error["message"]
    assert_nothing_stored(settings)


def test_without_labelled_cases_the_check_uses_a_generated_sample(
    parts_workflow: Any, weights_file: Any
) -> None:
    with weights_file().open("rb") as handle:
        version = model_version_register(
            workflow=parts_workflow,
            name="tiny",
            architecture="squeezenet1_1",
            weights=handle,
            filename="w.pt",
            actor=None,
            source="command",
            input_size=32,
            runtime="onnx",
        )
    assert version.runtime == "onnx"
    assert version.runtime_check["sample_origin"] == "generated"
    assert version.runtime_check["samples"] == 32


def test_an_altered_runtime_file_is_not_served(parts_workflow: Any, weights_file: Any) -> None:
    with weights_file().open("rb") as handle:
        version = model_version_register(
            workflow=parts_workflow,
            name="tiny",
            architecture="squeezenet1_1",
            weights=handle,
            filename="w.pt",
            actor=None,
            source="command",
            input_size=32,
            runtime="onnx",
        )
    with open(version.runtime_file.path, "ab") as graph:
        graph.write(b"\0")
    with pytest.raises(ModelLoadError, match="checksum mismatch for the onnx runtime"):
        loaded_model_of(version)


def test_the_command_registers_with_a_runtime_and_says_why_it_refuses(
    parts_workflow: Any, weights_file: Any, tmp_path: Path, settings: Any
) -> None:
    bad = tmp_path / "half.pt"
    torch.jit.script(HalfPrecisionSum()).save(str(bad))
    with pytest.raises(CommandError, match="runtime onnx: refused"):
        call_command(
            "register_model",
            "--workflow=parts",
            "--name=half",
            "--architecture=torchscript",
            "--input-size=32",
            f"--weights={bad}",
            "--runtime=onnx",
            stdout=io.StringIO(),
        )
    assert_nothing_stored(settings)
    out = io.StringIO()
    call_command(
        "register_model",
        "--workflow=parts",
        "--name=tiny",
        "--architecture=squeezenet1_1",
        "--input-size=32",
        f"--weights={weights_file()}",
        "--runtime=onnx",
        "--deploy-as=serving",
        "--reason=faster on the CPU",
        stdout=out,
    )
    assert '"runtime": "onnx"' in out.getvalue()
    assert ModelVersion.objects.get().runtime == "onnx"
