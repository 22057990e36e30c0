"""Loading checksummed model files safely, caching one copy per process, predicting.

Weights files are state dicts read with ``torch.load(..., weights_only=True)``,
which refuses any pickle that would construct arbitrary objects or call
functions: a malicious file fails to load instead of running code. The one
exception is the ``torchscript`` architecture: a TorchScript archive *is* code
(its graph runs whatever ops it was compiled with), so only files an admin
registered on purpose may use it, never uploads from users or upstream systems.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as tvf

from inference.architectures import build_model
from inference.devices import to_device
from inference.measure import project_embeddings
from inference.runtimes import last_linear
from inference.spec import ModelSpec, PredictionResult

if TYPE_CHECKING:
    from inference.runtimes import OnnxRunner

TORCHSCRIPT = "torchscript"
DEFAULT_BATCH_SIZE = 64
_HASH_CHUNK_BYTES = 1 << 20


class ModelLoadError(Exception):
    """A model file could not be turned into a working model; the message says why."""


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks so large files stay cheap."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def resize_to_uint8(image: Image.Image, size: int) -> torch.Tensor:
    """The image as a ``(3, size, size)`` uint8 tensor: converted to RGB, squashed to a square.

    The aspect ratio is not kept: inspection cameras deliver a fixed framing,
    and training and serving both go through this function, so they agree.
    """
    rgb = image.convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return tvf.pil_to_tensor(rgb)


def standardise(unit_batch: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """Float images in [0, 1] (``(..., 3, H, W)``), minus the spec's mean, over its std."""
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=unit_batch.device).view(3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=unit_batch.device).view(3, 1, 1)
    return (unit_batch - mean) / std


def normalise(batch: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """uint8 images (``(..., 3, H, W)``) to standardised float32 model input."""
    return standardise(batch.to(torch.float32) / 255.0, spec)


def preprocess(image: Image.Image, spec: ModelSpec) -> torch.Tensor:
    """One PIL image to the model's normalised ``(3, input_size, input_size)`` float tensor."""
    return normalise(resize_to_uint8(image, spec.input_size), spec)


def _autocast_dtype() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@contextmanager
def mixed_precision(device: str) -> Iterator[None]:
    """Autocast to bf16 (or fp16 on older GPUs) on CUDA; a no-op on the CPU, which runs fp32."""
    if torch.device(device).type == "cuda":
        with torch.autocast(device_type="cuda", dtype=_autocast_dtype()):
            yield
    else:
        yield


class LoadedModel:
    """A model in eval mode on its device, with the spec that says how to feed it.

    The wrapped module (``_module``) is package-internal: callers outside
    ``inference/`` use ``predict`` and never see a tensor.
    ``sha256`` is the checksum of the file it came from (``None`` for a model
    built in memory, e.g. during training). ``runtime`` is what computes predictions:
    ``eager`` (the module itself, channels-last) or ``onnx`` (an ONNX Runtime session
    over the version's verified export; the module stays for saliency). ``threads`` is
    the CPU thread count its forward pass runs with (``None``: the process's setting).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        spec: ModelSpec,
        *,
        device: str,
        sha256: str | None,
        threads: int | None = None,
    ) -> None:
        # torch accepts memory_format here; its stubs list no overload that takes it.
        self._module = module.eval().to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.spec = spec
        self.device = device
        self.sha256 = sha256
        self.threads = threads
        self.runtime = "eager"
        self._runner: OnnxRunner | None = None

    def __repr__(self) -> str:
        return (
            f"LoadedModel(architecture={self.spec.architecture!r}, "
            f"labels={self.spec.labels!r}, device={self.device!r}, sha256={self.sha256!r}, "
            f"runtime={self.runtime!r})"
        )

    @property
    def parameters(self) -> int:
        return int(sum(parameter.numel() for parameter in self._module.parameters()))

    def use_onnx(self, graph: bytes | str | Path) -> None:
        """Serve through ONNX Runtime over ``graph`` (the version's verified export)."""
        from inference.runtimes import ONNX, OnnxRunner

        self._runner = OnnxRunner(
            graph, device=self.device, threads=self.threads or torch.get_num_threads()
        )
        self.runtime = ONNX

    def predict(
        self, images: Sequence[Image.Image], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[PredictionResult]:
        """One ``PredictionResult`` per image, in input order, computed in batches."""
        results: list[PredictionResult] = []
        for batch in self._uint8_batches(images, batch_size):
            results.extend(self._results(self._probabilities(batch)))
        return results

    def _uint8_batches(
        self, images: Sequence[Image.Image], batch_size: int
    ) -> Iterator[torch.Tensor]:
        """The images as ``(N, 3, S, S)`` uint8 batches of at most ``batch_size``."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            yield torch.stack([resize_to_uint8(image, self.spec.input_size) for image in chunk])

    def _results(self, probabilities: torch.Tensor) -> list[PredictionResult]:
        return [
            PredictionResult.from_probabilities(self.spec.labels, row)
            for row in probabilities.tolist()
        ]

    def predict_with_embeddings(
        self, images: Sequence[Image.Image], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> tuple[list[PredictionResult], np.ndarray | None]:
        """``predict`` plus each image's penultimate-layer embedding, projected to 32-d.

        The embedding is the input of the model's last linear layer, from the same
        forward pass (no second pass): captured by a forward hook when the module runs,
        the ONNX graph's ``embedding`` output when ONNX Runtime does. ``None`` for a
        model without a final linear layer (SqueezeNet, TorchScript archives), or an
        ONNX graph exported without the output.
        """
        if self._runner is not None:
            return self._predict_onnx_with_embeddings(images, batch_size=batch_size)
        head = last_linear(self._module)
        if head is None:
            return self.predict(images, batch_size=batch_size), None
        captured: list[torch.Tensor] = []

        def keep_input(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            captured.append(inputs[0].detach().float().flatten(1).cpu())

        handle = head.register_forward_pre_hook(keep_input)
        try:
            results = self.predict(images, batch_size=batch_size)
        finally:
            handle.remove()
        if not captured:
            return results, None
        features = torch.cat(captured).numpy()
        return results, project_embeddings(features)

    def _predict_onnx_with_embeddings(
        self, images: Sequence[Image.Image], *, batch_size: int
    ) -> tuple[list[PredictionResult], np.ndarray | None]:
        assert self._runner is not None
        results: list[PredictionResult] = []
        features: list[torch.Tensor] = []
        for batch in self._uint8_batches(images, batch_size):
            probabilities, embedding = self._runner.probabilities_and_embeddings(batch)
            results.extend(self._results(probabilities))
            if embedding is not None:
                features.append(embedding)
        if not features:
            return results, None
        return results, project_embeddings(torch.cat(features).numpy())

    def _probabilities(self, uint8_batch: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities (float32, CPU) for a ``(N, 3, S, S)`` uint8 batch."""
        if self._runner is not None:
            return self._runner.probabilities(uint8_batch)
        return self._eager_probabilities(uint8_batch)

    def _eager_probabilities(self, uint8_batch: torch.Tensor) -> torch.Tensor:
        # OpenMP's thread count is per calling thread: set it where the work runs.
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            inputs = normalise(to_device(uint8_batch, self.device), self.spec).contiguous(
                memory_format=torch.channels_last
            )
            with mixed_precision(self.device):
                logits = self._module(inputs)
            return torch.softmax(logits.float(), dim=1).cpu()


def load_model(
    spec: ModelSpec,
    weights_path: str | Path,
    *,
    device: str = "cpu",
    expected_sha256: str | None = None,
    threads: int | None = None,
    runtime: str = "eager",
    runtime_path: str | Path | None = None,
    runtime_sha256: str | None = None,
) -> LoadedModel:
    """Load, verify and place a model; every failure becomes a ``ModelLoadError``.

    Checks, in order: the file exists; its SHA-256 matches ``expected_sha256``
    when one is given; it is a state dict (read with ``weights_only=True``) whose
    keys and shapes match ``build_model(spec)`` exactly, or a TorchScript archive
    when ``spec.architecture == "torchscript"``; the model, in eval mode on
    ``device``, maps a dummy ``(1, 3, S, S)`` batch to ``(1, len(spec.labels))``.
    With ``runtime="onnx"`` the exported graph at ``runtime_path`` (checked against
    ``runtime_sha256``) computes the predictions, and passes the same dummy batch.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        actual_sha256 = sha256_of(path)
    except OSError as error:
        raise ModelLoadError(f"cannot read model file {path}: {error}") from error
    if expected_sha256 is not None and actual_sha256 != expected_sha256.lower():
        raise ModelLoadError(
            f"checksum mismatch for {path}: expected sha256 {expected_sha256}, "
            f"file has {actual_sha256}"
        )
    if spec.architecture == TORCHSCRIPT:
        module = _load_torchscript(path)
    else:
        module = _load_state_dict_model(spec, path)
    try:
        loaded = LoadedModel(module, spec, device=device, sha256=actual_sha256, threads=threads)
    except Exception as error:  # a bad device string, CUDA out of memory, ...
        raise ModelLoadError(f"cannot move model {path} to device {device!r}: {error}") from error
    if runtime != "eager":
        _use_runtime(loaded, runtime, runtime_path, runtime_sha256)
    _check_output_shape(loaded, path)
    return loaded


def _use_runtime(
    loaded: LoadedModel,
    runtime: str,
    runtime_path: str | Path | None,
    runtime_sha256: str | None,
) -> None:
    from inference.runtimes import ONNX_RUNTIMES, RuntimeUnavailable

    if runtime not in ONNX_RUNTIMES:
        raise ModelLoadError(
            f"unknown runtime {runtime!r}; expected 'eager', 'onnx' or 'onnx_int8'"
        )
    if runtime_path is None or not Path(runtime_path).is_file():
        raise ModelLoadError(f"the {runtime} runtime's file is missing: {runtime_path}")
    if runtime_sha256 is not None and sha256_of(runtime_path) != runtime_sha256.lower():
        raise ModelLoadError(
            f"checksum mismatch for the {runtime} runtime's file {runtime_path}: "
            f"expected sha256 {runtime_sha256}"
        )
    try:
        loaded.use_onnx(runtime_path)
    except RuntimeUnavailable as error:
        raise ModelLoadError(str(error)) from error
    loaded.runtime = runtime


def _load_torchscript(path: Path) -> torch.nn.Module:
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelLoadError(f"{path} is not a loadable TorchScript archive: {error}") from error


def _load_state_dict_model(spec: ModelSpec, path: Path) -> torch.nn.Module:
    try:
        module = build_model(spec)
    except ValueError as error:
        raise ModelLoadError(str(error)) from error
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelLoadError(
            f"{path} is not a safe, readable weights file (corrupt, truncated, or "
            f"holding objects other than tensors): {error}"
        ) from error
    _check_is_state_dict(state_dict, path)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ModelLoadError(
            f"weights in {path} do not fit {spec.architecture} with "
            f"{spec.num_classes} labels (missing/unexpected keys or shape mismatch): {error}"
        ) from error
    return module


def _check_is_state_dict(candidate: Any, path: Path) -> None:
    if not isinstance(candidate, dict) or not candidate:
        raise ModelLoadError(f"{path} does not hold a state dict (got {type(candidate).__name__})")
    for key, value in candidate.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelLoadError(
                f"{path} is not a state dict: entry {key!r} is a {type(value).__name__}, "
                "not a tensor"
            )


def _check_output_shape(loaded: LoadedModel, path: Path) -> None:
    size = loaded.spec.input_size
    dummy = torch.zeros((1, 3, size, size), dtype=torch.uint8)
    expected = (1, loaded.spec.num_classes)
    try:
        shape = tuple(loaded._probabilities(dummy).shape)
    except Exception as error:
        raise ModelLoadError(
            f"model from {path} fails on a dummy {size}x{size} batch: {error}"
        ) from error
    if shape != expected:
        raise ModelLoadError(
            f"model from {path} outputs shape {shape}, expected {expected} "
            f"(one score per label of {loaded.spec.labels!r})"
        )


_CacheKey = tuple[ModelSpec, str, str | None, str, int | None, str, str | None]
_cache: dict[_CacheKey, LoadedModel] = {}
_cache_lock = threading.Lock()


def get_model(
    spec: ModelSpec,
    weights_path: str | Path,
    *,
    device: str,
    expected_sha256: str | None,
    threads: int | None = None,
    runtime: str = "eager",
    runtime_path: str | Path | None = None,
    runtime_sha256: str | None = None,
) -> LoadedModel:
    """``load_model`` memoised per process on (spec, resolved path, checksum, device,
    threads, runtime and its file's checksum).

    A worker therefore loads each model version once. Failures are not cached,
    so a fixed file is picked up on the next call. Model files are meant to be
    immutable and identified by checksum: without ``expected_sha256`` a file
    replaced in place keeps serving its cached predecessor until ``clear_cache``.
    The lock is held while loading, so concurrent threads never load twice.
    """
    key: _CacheKey = (
        spec,
        str(Path(weights_path).resolve()),
        expected_sha256.lower() if expected_sha256 else None,
        device,
        threads,
        runtime,
        runtime_sha256.lower() if runtime_sha256 else None,
    )
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            cached = load_model(
                spec,
                weights_path,
                device=device,
                expected_sha256=expected_sha256,
                threads=threads,
                runtime=runtime,
                runtime_path=runtime_path,
                runtime_sha256=runtime_sha256,
            )
            _cache[key] = cached
        return cached


def clear_cache() -> None:
    """Forget every cached model (tests, or after a deployment removes versions)."""
    with _cache_lock:
        _cache.clear()
