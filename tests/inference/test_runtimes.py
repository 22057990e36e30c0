"""Serving runtimes: the ONNX export computes what torch does, the comparison catches a
graph that does not, and a loaded model serves the same labels on either runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from PIL import Image

from inference.loader import ModelLoadError, load_model, sha256_of
from inference.model_check import RuntimeRequest, check_model_file
from inference.runtimes import (
    DEFAULT_INT8_MAX_ABS_DIFF,
    DEFAULT_MAX_ABS_DIFF,
    OnnxRunner,
    RuntimeUnavailable,
    compare,
    export_onnx,
    int8_refusal,
    onnx_providers,
    quantize_int8,
)
from inference.spec import ModelSpec


def sample_batch(spec: ModelSpec, n: int = 12, seed: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    size = spec.input_size
    return torch.randint(0, 256, (n, 3, size, size), generator=generator, dtype=torch.uint8)


def images_of(batch: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in batch]


class HalfPrecisionSum(torch.nn.Module):
    """Scores from the rounding of a sum taken in half precision: torch sums float16 in
    float32 and rounds once, ONNX Runtime's ReduceSum rounds at every step, so the
    exported model scores differently on any image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rounding = x.half().sum(dim=(2, 3)).float() - x.sum(dim=(2, 3))
        return rounding[:, :2] - rounding[:, 1:3]


def half_precision_model(tmp_path: Path) -> Path:
    path = tmp_path / "half.pt"
    torch.jit.script(HalfPrecisionSum()).save(str(path))
    return path


TWO_LABELS = ModelSpec(architecture="torchscript", labels=("a", "b"), input_size=32)


# --- compare ------------------------------------------------------------------------------


def test_compare_refuses_tables_of_different_shapes_and_empty_ones() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        compare(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="no samples"):
        compare(torch.zeros(0, 3), torch.zeros(0, 3))


def test_compare_reports_the_worst_difference_and_top1_agreement() -> None:
    reference = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    candidate = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.3, 0.7]])
    agreement = compare(reference, candidate)
    assert agreement.samples == 4
    assert agreement.max_abs_diff == pytest.approx(0.15)
    assert agreement.top1_agreement == 0.75
    assert not agreement.within(max_abs_diff=0.2, min_top1_agreement=1.0)
    assert not agreement.within(max_abs_diff=0.1, min_top1_agreement=0.5)
    assert agreement.within(max_abs_diff=0.2, min_top1_agreement=0.75)


def test_compare_counts_a_non_finite_output_as_infinitely_far() -> None:
    reference = torch.tensor([[0.9, 0.1]])
    assert compare(reference, torch.tensor([[float("nan"), 0.1]])).max_abs_diff == float("inf")


# --- export and run -----------------------------------------------------------------------


def test_export_runs_in_onnx_runtime_and_matches_torch(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, _ = saved_weights
    eager = load_model(tiny_spec, path)
    batch = sample_batch(tiny_spec)
    runner = OnnxRunner(export_onnx(eager._module, tiny_spec), device="cpu", threads=1)
    assert runner.providers == ("CPUExecutionProvider",)
    agreement = compare(eager._probabilities(batch), runner.probabilities(batch))
    assert agreement.max_abs_diff <= DEFAULT_MAX_ABS_DIFF
    assert agreement.top1_agreement == 1.0
    # Any batch size: the batch axis is dynamic.
    assert runner.probabilities(batch[:1]).shape == (1, len(tiny_spec.labels))


def test_a_deliberately_corrupted_graph_is_caught_by_the_comparison(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, _ = saved_weights
    eager = load_model(tiny_spec, path)
    graph = onnx.load_from_string(export_onnx(eager._module, tiny_spec))
    # The classifier's last bias: shift one class's score, as a broken export would.
    bias = next(
        init
        for init in reversed(graph.graph.initializer)
        if list(init.dims) == [len(tiny_spec.labels)]
    )
    values = numpy_helper.to_array(bias).copy()
    values[1] += 4.0
    bias.CopyFrom(numpy_helper.from_array(values.astype(np.float32), bias.name))
    runner = OnnxRunner(graph.SerializeToString(), device="cpu", threads=1)
    batch = sample_batch(tiny_spec)
    agreement = compare(eager._probabilities(batch), runner.probabilities(batch))
    assert agreement.max_abs_diff > 0.1
    assert not agreement.within(max_abs_diff=DEFAULT_MAX_ABS_DIFF, min_top1_agreement=1.0)


def test_an_op_that_exports_differently_is_caught_by_the_comparison(tmp_path: Path) -> None:
    eager = load_model(TWO_LABELS, half_precision_model(tmp_path))
    batch = sample_batch(TWO_LABELS, n=16, seed=1)
    runner = OnnxRunner(export_onnx(eager._module, TWO_LABELS), device="cpu", threads=1)
    agreement = compare(eager._probabilities(batch), runner.probabilities(batch))
    assert agreement.max_abs_diff > DEFAULT_MAX_ABS_DIFF
    assert not agreement.within(max_abs_diff=DEFAULT_MAX_ABS_DIFF, min_top1_agreement=1.0)


def test_an_op_onnx_cannot_express_is_a_clear_refusal() -> None:
    class Unexportable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.svdvals(x.mean(dim=1))[:, :2]

    with pytest.raises(RuntimeUnavailable, match="the ONNX export failed"):
        export_onnx(Unexportable(), TWO_LABELS)


def test_garbage_is_not_a_graph() -> None:
    with pytest.raises(RuntimeUnavailable, match="cannot load the graph"):
        OnnxRunner(b"not an onnx graph", device="cpu", threads=1)


def test_the_cpu_provider_serves_when_no_gpu_is_asked_for() -> None:
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]


def test_int8_is_refused_unless_it_is_faster_than_fp32() -> None:
    assert int8_refusal(fp32_ms=2.0, int8_ms=0.7) == ""
    refusal = int8_refusal(fp32_ms=2.0, int8_ms=2.0)
    assert "not faster than the fp32 graph on this machine" in refusal
    assert "register it with onnx" in refusal
    assert int8_refusal(fp32_ms=2.0, int8_ms=3.1).startswith("runtime onnx_int8: refused")


def test_an_int8_graph_follows_fp32_within_its_tolerance_and_keeps_the_embedding(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str]
) -> None:
    path, _ = saved_weights
    eager = load_model(tiny_spec, path)
    batch = sample_batch(tiny_spec, n=24)
    graph = quantize_int8(export_onnx(eager._module, tiny_spec), batch[:12])
    quantised = onnx.load_from_string(graph)
    assert any(node.op_type == "QuantizeLinear" for node in quantised.graph.node)
    assert [o.name for o in quantised.graph.output] == ["probabilities", "embedding"]
    runner = OnnxRunner(graph, device="cpu", threads=1)
    agreement = compare(eager._probabilities(batch[12:]), runner.probabilities(batch[12:]))
    assert agreement.max_abs_diff <= DEFAULT_INT8_MAX_ABS_DIFF
    assert agreement.max_abs_diff > 0  # rounded: not the fp32 graph under another name
    with pytest.raises(RuntimeUnavailable, match="calibration images"):
        quantize_int8(export_onnx(eager._module, tiny_spec), batch[:0])


# --- a loaded model on the onnx runtime ---------------------------------------------------


def test_a_model_served_by_onnx_gives_the_labels_eager_gives(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha256 = saved_weights
    eager = load_model(tiny_spec, path, expected_sha256=sha256)
    graph_path = tmp_path / "model.onnx"
    graph_path.write_bytes(export_onnx(eager._module, tiny_spec))
    served = load_model(
        tiny_spec,
        path,
        expected_sha256=sha256,
        threads=1,
        runtime="onnx",
        runtime_path=graph_path,
        runtime_sha256=sha256_of(graph_path),
    )
    assert served.runtime == "onnx" and eager.runtime == "eager"
    images = images_of(sample_batch(tiny_spec, n=20))
    by_eager = eager.predict(images, batch_size=8)
    by_onnx = served.predict(images, batch_size=8)
    assert [r.label for r in by_onnx] == [r.label for r in by_eager]
    for one, other in zip(by_onnx, by_eager, strict=True):
        assert one.confidence == pytest.approx(other.confidence, abs=DEFAULT_MAX_ABS_DIFF)


def test_onnx_serves_the_embedding_eager_computes_from_the_same_run(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], tmp_path: Path
) -> None:
    """Monitoring's embedding comes from the graph's second output, and is the eager
    model's (the input of its last linear layer), projected the same way."""
    path, sha256 = saved_weights
    eager = load_model(tiny_spec, path, expected_sha256=sha256)
    graph_path = tmp_path / "model.onnx"
    graph_path.write_bytes(export_onnx(eager._module, tiny_spec))
    assert [o.name for o in onnx.load(str(graph_path)).graph.output] == [
        "probabilities",
        "embedding",
    ]
    served = load_model(tiny_spec, path, threads=1, runtime="onnx", runtime_path=graph_path)
    images = images_of(sample_batch(tiny_spec, n=11))
    by_eager, eager_embeddings = eager.predict_with_embeddings(images, batch_size=4)
    by_onnx, onnx_embeddings = served.predict_with_embeddings(images, batch_size=4)
    assert [r.label for r in by_onnx] == [r.label for r in by_eager]
    assert eager_embeddings is not None and onnx_embeddings is not None
    assert onnx_embeddings.shape == eager_embeddings.shape == (11, 32)
    scale = float(np.abs(eager_embeddings).max())
    assert scale > 0
    np.testing.assert_allclose(onnx_embeddings, eager_embeddings, atol=1e-4 * scale)
    # Not a constant: different images, different embeddings.
    assert np.abs(onnx_embeddings[0] - onnx_embeddings[1]).max() > 1e-2 * scale


def test_a_graph_without_the_embedding_output_still_serves_without_embeddings(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], tmp_path: Path
) -> None:
    """A graph exported before the embedding output existed: probabilities only."""
    path, _ = saved_weights
    eager = load_model(tiny_spec, path)
    graph = onnx.load_from_string(export_onnx(eager._module, tiny_spec))
    kept = [output for output in graph.graph.output if output.name == "probabilities"]
    del graph.graph.output[:]
    graph.graph.output.extend(kept)
    graph_path = tmp_path / "old.onnx"
    graph_path.write_bytes(graph.SerializeToString())
    served = load_model(tiny_spec, path, threads=1, runtime="onnx", runtime_path=graph_path)
    images = images_of(sample_batch(tiny_spec, n=5))
    results, embeddings = served.predict_with_embeddings(images)
    assert embeddings is None
    assert [r.label for r in results] == [r.label for r in eager.predict(images)]


def test_a_missing_or_altered_runtime_file_is_a_load_error(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], tmp_path: Path
) -> None:
    path, _ = saved_weights
    graph_path = tmp_path / "model.onnx"
    with pytest.raises(ModelLoadError, match="runtime's file is missing"):
        load_model(tiny_spec, path, runtime="onnx", runtime_path=graph_path)
    graph_path.write_bytes(export_onnx(load_model(tiny_spec, path)._module, tiny_spec))
    with pytest.raises(ModelLoadError, match="checksum mismatch for the onnx runtime"):
        load_model(
            tiny_spec, path, runtime="onnx", runtime_path=graph_path, runtime_sha256="0" * 64
        )
    with pytest.raises(ModelLoadError, match="unknown runtime"):
        load_model(tiny_spec, path, runtime="tensorrt", runtime_path=graph_path)


# --- the runtime check in the sandboxed child ---------------------------------------------


def test_the_load_check_exports_and_verifies_on_the_given_images(
    tiny_spec: ModelSpec, saved_weights: tuple[Path, str], tmp_path: Path
) -> None:
    path, _ = saved_weights
    samples = []
    for index, image in enumerate(images_of(sample_batch(tiny_spec, n=5))):
        samples.append(str(tmp_path / f"{index}.png"))
        image.save(samples[-1])
    output = tmp_path / "out.onnx"
    result = check_model_file(
        tiny_spec,
        path,
        runtime=RuntimeRequest(
            runtime="onnx", output=str(output), samples=tuple(samples), sample_origin="cases"
        ),
    )
    assert result.ok, result.error
    assert result.runtime["samples"] == 5
    assert result.runtime["sample_origin"] == "cases"
    assert result.runtime["max_abs_diff"] <= DEFAULT_MAX_ABS_DIFF
    assert result.runtime["top1_agreement"] == 1.0
    assert output.is_file()
    OnnxRunner(output, device="cpu", threads=1)  # what it wrote is a graph that loads


def test_the_load_check_refuses_a_runtime_that_differs_and_writes_nothing(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out.onnx"
    result = check_model_file(
        TWO_LABELS,
        half_precision_model(tmp_path),
        runtime=RuntimeRequest(runtime="onnx", output=str(output)),
    )
    assert not result.ok
    assert "runtime onnx: refused" in result.error
    assert "generated sample images" in result.error
    assert result.runtime["max_abs_diff"] > DEFAULT_MAX_ABS_DIFF
    assert not output.exists()
