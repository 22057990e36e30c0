"""Runtimes a model version can be served with, and the check that one computes what torch does.

* ``eager``: the PyTorch module itself, in channels-last memory format (the default).
* ``onnx``: the module exported to ONNX (the uint8 -> probabilities graph: normalisation,
  the network and the softmax in one graph) and run by ONNX Runtime, with its CPU
  execution provider, or its CUDA one when the device is a GPU and the installed
  ``onnxruntime`` has it. When the network ends in a linear layer the graph has a
  second output, ``embedding``: that layer's input, which monitoring projects to its
  32-d embedding, as the eager model's forward hook does (D131).

* ``onnx_int8``: that graph quantised to int8 (ONNX Runtime's static quantisation, QDQ,
  per-channel weights, activations calibrated on the workflow's own images): several
  times faster on CPUs with int8 dot products (AVX-512 VNNI), not exactly torch's
  numbers, so it is held to its own tolerance and accepted only where it is faster than
  the fp32 graph on the machine that checks it (D133).

A runtime other than eager is chosen when a version is registered and only after
``compare`` found it within tolerance of the eager outputs on sample images
(``inference.model_check`` runs the export and the comparison in the sandboxed child).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inference.spec import ModelSpec

EAGER = "eager"
ONNX = "onnx"
ONNX_INT8 = "onnx_int8"
RUNTIMES: tuple[str, ...] = (EAGER, ONNX, ONNX_INT8)
# The runtimes served by an ONNX Runtime session over a stored graph.
ONNX_RUNTIMES: tuple[str, ...] = (ONNX, ONNX_INT8)
ONNX_OPSET = 17
# Probabilities may differ by this much between torch and another runtime (fp32 kernels
# that sum in a different order differ by ~1e-6), and the top label must agree on every
# sample; anything more is a different model, and the runtime is refused.
DEFAULT_MAX_ABS_DIFF = 1e-4
DEFAULT_MIN_TOP1_AGREEMENT = 1.0
# int8 rounds every activation: its probabilities follow torch's to about a percent, and
# its top label may differ on an image the model is unsure of.
DEFAULT_INT8_MAX_ABS_DIFF = 0.05
DEFAULT_INT8_MIN_TOP1_AGREEMENT = 0.98


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot be built for this model (the export or the session failed)."""


def last_linear(module: torch.nn.Module) -> torch.nn.Linear | None:
    """The module's last linear layer (its classifier head), or None."""
    last = None
    for child in module.modules():
        if isinstance(child, torch.nn.Linear):
            last = child
    return last


class _Probabilities(torch.nn.Module):
    """uint8 ``(N, 3, S, S)`` -> softmax probabilities: what serving computes, as one graph."""

    def __init__(self, module: torch.nn.Module, spec: ModelSpec) -> None:
        super().__init__()
        self.module = module
        # The arithmetic of ``inference.loader.normalise``, step for step. Plain tensor
        # attributes (constants in the graph), which TorchScript accepts as they are.
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        inputs = (images.to(torch.float32) / 255.0 - self.mean) / self.std
        return torch.softmax(self.module(inputs).float(), dim=1)


class _ProbabilitiesAndEmbedding(_Probabilities):
    """As ``_Probabilities``, plus the input of the network's last linear layer (flattened)
    as a second output, captured by a forward pre-hook while the graph is traced."""

    def __init__(self, module: torch.nn.Module, spec: ModelSpec, head: torch.nn.Linear) -> None:
        super().__init__(module, spec)
        self.head = head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        captured: list[torch.Tensor] = []

        def keep_input(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            captured.append(inputs[0])

        handle = self.head.register_forward_pre_hook(keep_input)
        try:
            probabilities = super().forward(images)
        finally:
            handle.remove()
        return probabilities, captured[0].float().flatten(1)


def export_onnx(module: torch.nn.Module, spec: ModelSpec) -> bytes:
    """The ONNX graph (bytes) of ``module`` fed uint8 images, any batch size.

    Raises ``RuntimeUnavailable`` with the exporter's reason (e.g. an operator ONNX has
    no equivalent for).
    """
    head = last_linear(module)
    wrapper: torch.nn.Module
    outputs = ["probabilities"]
    if isinstance(module, torch.jit.ScriptModule):
        # A TorchScript graph cannot be called from a traced one (nor hooked): script the
        # wrapper too, without the embedding.
        wrapper = torch.jit.script(_Probabilities(module, spec).eval().to("cpu"))
    elif head is not None:
        wrapper = _ProbabilitiesAndEmbedding(module, spec, head).eval().to("cpu")
        outputs.append("embedding")
    else:
        wrapper = _Probabilities(module, spec).eval().to("cpu")
    size = spec.input_size
    dummy = torch.zeros((2, 3, size, size), dtype=torch.uint8)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                (dummy,),
                buffer,  # type: ignore[arg-type]  # a file object is accepted too
                dynamo=False,
                input_names=["images"],
                output_names=outputs,
                dynamic_axes={"images": {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
                opset_version=ONNX_OPSET,
            )
    except Exception as error:  # every exporter failure is a reason, not a crash
        first = str(error).strip().splitlines()[:1] or [type(error).__name__]
        raise RuntimeUnavailable(f"the ONNX export failed: {first[0][:300]}") from error
    return buffer.getvalue()


def quantize_int8(graph: bytes, calibration: torch.Tensor) -> bytes:
    """``graph`` (an ``export_onnx`` graph) with int8 weights and activations: ONNX
    Runtime's static quantisation in QDQ form, weights per channel, each activation's
    range calibrated on ``calibration`` (uint8 ``(N, 3, S, S)`` images, 8 at a time).

    Raises ``RuntimeUnavailable`` with the quantiser's reason.
    """
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [calibration[i : i + 8].contiguous().numpy() for i in range(0, len(calibration), 8)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self.left, None)
            return None if batch is None else {"images": batch}

    if not batches:
        raise RuntimeUnavailable("int8 quantisation needs calibration images")
    try:
        with tempfile.TemporaryDirectory(prefix="loopgate-int8-") as folder:
            source, prepared, quantised = (
                Path(folder) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx")
            )
            source.write_bytes(graph)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                quantize_static(
                    str(prepared),
                    str(quantised),
                    Reader(),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                )
            return quantised.read_bytes()
    except Exception as error:  # every quantiser failure is a reason, not a crash
        first = str(error).strip().splitlines()[:1] or [type(error).__name__]
        raise RuntimeUnavailable(f"int8 quantisation failed: {first[0][:300]}") from error


def int8_refusal(*, fp32_ms: float, int8_ms: float) -> str:
    """Why an int8 graph is refused on speed, or "" when it is faster than fp32: a
    quantised model is only worth its rounding where it buys time (on a CPU without
    int8 dot products it can be slower)."""
    if int8_ms < fp32_ms:
        return ""
    return (
        f"runtime onnx_int8: refused: not faster than the fp32 graph on this machine "
        f"({int8_ms:.3g} ms against {fp32_ms:.3g} ms per image); register it with onnx"
    )


def onnx_providers(device: str) -> list[str]:
    """ONNX Runtime's execution providers for ``device``: CUDA first on a GPU when the
    installed package has it (``onnxruntime-gpu``), the CPU always as the fallback."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxRunner:
    """An ONNX Runtime session over an exported graph; ``probabilities`` like the eager model.

    ``threads`` is its intra-op thread count; its threads sleep rather than spin when
    idle (``session.intra_op.allow_spinning`` off), like torch's under
    ``OMP_WAIT_POLICY=PASSIVE``.
    """

    def __init__(self, graph: bytes | str | Path, *, device: str, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        source: Any = graph if isinstance(graph, bytes) else str(graph)
        try:
            self._session = onnxruntime.InferenceSession(
                source, sess_options=options, providers=onnx_providers(device)
            )
        except Exception as error:
            first = str(error).strip().splitlines()[:1] or [type(error).__name__]
            raise RuntimeUnavailable(
                f"ONNX Runtime cannot load the graph: {first[0][:300]}"
            ) from error
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        self._input = self._session.get_inputs()[0].name
        names = [output.name for output in self._session.get_outputs()]
        self._probabilities = names[0]
        # Graphs exported before the embedding output existed have only probabilities.
        self.has_embedding = "embedding" in names

    def probabilities(self, uint8_batch: torch.Tensor) -> torch.Tensor:
        """float32 CPU probabilities for a ``(N, 3, S, S)`` uint8 CPU batch."""
        array = uint8_batch.contiguous().numpy()
        (output,) = self._session.run([self._probabilities], {self._input: array})
        return torch.from_numpy(output).float()

    def probabilities_and_embeddings(
        self, uint8_batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``probabilities``, and the graph's ``embedding`` output (None when it has none),
        from one run."""
        if not self.has_embedding:
            return self.probabilities(uint8_batch), None
        array = uint8_batch.contiguous().numpy()
        probabilities, embedding = self._session.run(
            [self._probabilities, "embedding"], {self._input: array}
        )
        return torch.from_numpy(probabilities).float(), torch.from_numpy(embedding).float()


@dataclass(frozen=True)
class Agreement:
    """How closely a runtime's probabilities follow the eager model's on the same images."""

    samples: int
    max_abs_diff: float
    top1_agreement: float

    def within(self, *, max_abs_diff: float, min_top1_agreement: float) -> bool:
        return self.max_abs_diff <= max_abs_diff and self.top1_agreement >= min_top1_agreement


def compare(reference: torch.Tensor, candidate: torch.Tensor) -> Agreement:
    """Max absolute difference and top-1 agreement of two ``(N, classes)`` probability tables."""
    if reference.shape != candidate.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(candidate.shape)}")
    if reference.shape[0] == 0:
        raise ValueError("no samples to compare")
    difference = (reference.float() - candidate.float()).abs()
    finite = bool(torch.isfinite(candidate).all())
    worst = float(difference.max()) if finite else float("inf")
    agree = (reference.argmax(dim=1) == candidate.argmax(dim=1)).float().mean()
    return Agreement(
        samples=int(reference.shape[0]), max_abs_diff=worst, top1_agreement=float(agree)
    )
