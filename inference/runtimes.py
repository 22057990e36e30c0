"""Runtimes a model version can be served with, and the check that one computes what torch does.

* ``eager``: the PyTorch module itself, in channels-last memory format (the default).
* ``onnx``: the module exported to ONNX (the uint8 -> probabilities graph: normalisation,
  the network and the softmax in one graph) and run by ONNX Runtime, with its CPU
  execution provider, or its CUDA one when the device is a GPU and the installed
  ``onnxruntime`` has it.

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
RUNTIMES: tuple[str, ...] = (EAGER, ONNX)
ONNX_OPSET = 17
# Probabilities may differ by this much between torch and another runtime (fp32 kernels
# that sum in a different order differ by ~1e-6), and the top label must agree on every
# sample; anything more is a different model, and the runtime is refused.
DEFAULT_MAX_ABS_DIFF = 1e-4
DEFAULT_MIN_TOP1_AGREEMENT = 1.0


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot be built for this model (the export or the session failed)."""


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


def export_onnx(module: torch.nn.Module, spec: ModelSpec) -> bytes:
    """The ONNX graph (bytes) of ``module`` fed uint8 images, any batch size.

    Raises ``RuntimeUnavailable`` with the exporter's reason (e.g. an operator ONNX has
    no equivalent for).
    """
    wrapper: torch.nn.Module = _Probabilities(module, spec).eval().to("cpu")
    if isinstance(module, torch.jit.ScriptModule):
        # A TorchScript graph cannot be called from a traced one: script the wrapper too.
        wrapper = torch.jit.script(wrapper)
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
                output_names=["probabilities"],
                dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
    except Exception as error:  # every exporter failure is a reason, not a crash
        first = str(error).strip().splitlines()[:1] or [type(error).__name__]
        raise RuntimeUnavailable(f"the ONNX export failed: {first[0][:300]}") from error
    return buffer.getvalue()


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

    def probabilities(self, uint8_batch: torch.Tensor) -> torch.Tensor:
        """float32 CPU probabilities for a ``(N, 3, S, S)`` uint8 CPU batch."""
        array = uint8_batch.contiguous().numpy()
        (output,) = self._session.run(None, {self._input: array})
        return torch.from_numpy(output).float()


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
