"""The load check a model file must pass before it is registered, run in a child process.

``python -m inference.model_check`` reads one JSON object on stdin
(``{"spec": ModelSpec.to_dict(), "path": "...", "architecture": "..."}``), loads the
file with ``inference.loader.load_model`` on the CPU (safe loading only: a state dict is
read with ``weights_only=True``, so a pickle that would run code is refused without
running it), feeds it a dummy batch, and prints one JSON line:
``{"ok": true, "output_shape": [1, n], "parameters": p, "seconds": s}`` or
``{"ok": false, "error": "..."}``.

The parent (``check_model_file``) runs it with a wall-clock timeout, a memory cap, a
CPU-time cap, no GPU and a bare environment, so a hostile or huge file can neither take
down nor read secrets from the process that asked: the worst it does is fail the check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inference.spec import ModelSpec

# Kept free of torch at import: the parent (the web process) only builds the request.
DEFAULT_MAX_ABS_DIFF = 1e-4
DEFAULT_MIN_TOP1_AGREEMENT = 1.0
GENERATED_SAMPLE_SIZE = 32

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT_SECONDS = 120.0
DEFAULT_MEMORY_BYTES = 8 * 1024**3
_RESULT_PREFIX = "MODEL-CHECK-RESULT "
# Isolated mode (-I) ignores PYTHONPATH and the working directory, so the child puts
# the package root on its path itself.
_CHILD_PROGRAM = (
    f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r}); "
    "from inference.model_check import main; main()"
)


@dataclass(frozen=True)
class ModelCheckResult:
    """The outcome of one sandboxed load check. ``error`` says why when ``ok`` is false."""

    ok: bool
    error: str = ""
    output_shape: tuple[int, ...] = ()
    parameters: int = 0
    seconds: float = 0.0
    # The runtime check, when a runtime other than eager was asked for: the runtime, the
    # sample's size and origin, max_abs_diff, top1_agreement, the tolerances, and each
    # runtime's milliseconds per image on the sample (one thread).
    runtime: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "output_shape": list(self.output_shape),
            "parameters": self.parameters,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class RuntimeRequest:
    """Verify ``runtime`` against the eager model on ``samples`` (image files; when
    empty, a generated sample) and write its file to ``output`` when it agrees."""

    runtime: str
    output: str
    samples: tuple[str, ...] = ()
    sample_origin: str = "generated"
    max_abs_diff: float = DEFAULT_MAX_ABS_DIFF
    min_top1_agreement: float = DEFAULT_MIN_TOP1_AGREEMENT
    # int8: refused unless faster than the fp32 graph (off only to test the accuracy gate
    # apart from the machine's speed).
    require_faster: bool = True


def check_model_file(
    spec: ModelSpec,
    path: str | Path,
    *,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
    display_name: str | None = None,
    runtime: RuntimeRequest | None = None,
) -> ModelCheckResult:
    """Load ``path`` as ``spec`` once, in a sandboxed child process; never raises for a bad file.

    The child runs in Python's isolated mode with only ``PATH`` from the environment (no
    secrets),
    ``CUDA_VISIBLE_DEVICES`` empty, one thread, its own empty working directory, an
    address-space limit of ``memory_bytes`` and a CPU-time limit of ``timeout_seconds``.
    """
    started = time.perf_counter()
    request = json.dumps(
        {
            "spec": spec.to_dict(),
            "path": str(Path(path).resolve()),
            "memory_bytes": memory_bytes,
            "cpu_seconds": timeout_seconds,
            "runtime": asdict(runtime) if runtime else None,
        }
    )
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    with tempfile.TemporaryDirectory(prefix="loopgate-model-check-") as workdir:
        environment["HOME"] = workdir
        environment["TMPDIR"] = workdir
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argv, our own module
                [sys.executable, "-I", "-c", _CHILD_PROGRAM],
                input=request,
                capture_output=True,
                text=True,
                timeout=timeout_seconds,
                cwd=workdir,
                env=environment,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ModelCheckResult(
                ok=False,
                error=f"the load check did not finish within {timeout_seconds:.0f} s",
                seconds=time.perf_counter() - started,
            )
    elapsed = time.perf_counter() - started
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            answer = json.loads(line.removeprefix(_RESULT_PREFIX))
            error = str(answer.get("error", ""))
            if display_name:
                error = error.replace(str(Path(path).resolve()), display_name)
            return ModelCheckResult(
                ok=bool(answer["ok"]),
                error=error,
                output_shape=tuple(answer.get("output_shape", ())),
                parameters=int(answer.get("parameters", 0)),
                seconds=elapsed,
                runtime=dict(answer.get("runtime") or {}),
            )
    tail = (completed.stderr or "").strip().splitlines()[-1:] or ["no output"]
    return ModelCheckResult(
        ok=False,
        error=(
            f"the load check crashed (exit status {completed.returncode}, e.g. out of "
            f"memory or killed): {tail[0][:300]}"
        ),
        seconds=elapsed,
    )


def _limit_self(memory_bytes: int | None, cpu_seconds: float) -> None:
    """Cap this (child) process before it touches the file; set here rather than in a
    ``preexec_fn``, which is unsafe when the parent runs threads."""
    import resource

    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    cpu = int(cpu_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _short_reason(message: str) -> str:
    """torch's refusal of an unsafe pickle is a page long; keep the lines that say why."""
    if "Weights only load failed" not in message:
        return message
    head = message.split(":", 1)[0] if ": Weights only" in message else ""
    details = [
        line.strip()
        for line in message.splitlines()
        if "GLOBAL" in line or "Unsupported operand" in line or "WeightsUnpickler" in line
    ]
    details = [line for line in details if line and not line.startswith("Please file")]
    reason = "; ".join(details) or "not a plain tensor archive"
    return f"{head}: refused by safe loading (weights_only=True): {reason}".lstrip(": ")


def _run_check(request: dict[str, Any]) -> dict[str, Any]:
    import torch

    from inference.loader import ModelLoadError, load_model

    torch.set_num_threads(1)
    spec = ModelSpec.from_dict(request["spec"])
    try:
        loaded = load_model(spec, request["path"], device="cpu")
    except ModelLoadError as error:
        return {"ok": False, "error": _short_reason(str(error))}
    answer: dict[str, Any] = {
        "ok": True,
        "output_shape": [1, spec.num_classes],
        "parameters": loaded.parameters,
    }
    if request.get("runtime"):
        asked = request["runtime"]
        runtime = RuntimeRequest(**{**asked, "samples": tuple(asked["samples"])})
        verdict = _check_runtime(loaded, runtime)
        answer["runtime"] = verdict
        if verdict.get("error"):
            answer["ok"] = False
            answer["error"] = verdict["error"]
    return answer


def _sample_batch(spec: ModelSpec, runtime: RuntimeRequest) -> tuple[Any, str]:
    """The uint8 batch the runtimes are compared on, and where it came from."""
    import torch
    from PIL import Image

    from inference.loader import resize_to_uint8

    images = []
    for path in runtime.samples:
        try:
            with Image.open(path) as image:
                images.append(resize_to_uint8(image, spec.input_size))
        except (OSError, ValueError):  # a stored image gone or unreadable: skip it
            continue
    if images:
        return torch.stack(images), runtime.sample_origin
    # No images to compare on: half smooth random pictures, half raw noise (a fixed
    # seed), so every layer sees inputs unlike the export's dummy zeros, edges included.
    generator = torch.Generator().manual_seed(0)
    size, half = spec.input_size, GENERATED_SAMPLE_SIZE // 2
    coarse = torch.randint(0, 256, (half, 3, 8, 8), generator=generator, dtype=torch.uint8)
    smooth = torch.nn.functional.interpolate(coarse.float(), size=(size, size), mode="bilinear")
    noise = torch.randint(0, 256, (half, 3, size, size), generator=generator, dtype=torch.uint8)
    return torch.cat([smooth.round().clamp(0, 255).to(torch.uint8), noise]), "generated"


def _milliseconds_per_image(function: Any, batch: Any) -> float:
    """The better of two timed passes over (at most) 16 images, after one untimed."""
    batch = batch[:16]
    function(batch)
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        function(batch)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000 / max(1, len(batch)), 4)


def _check_runtime(loaded: Any, runtime: RuntimeRequest) -> dict[str, Any]:
    """Export, run and compare; a refusal is ``{"error": ...}`` with the figures."""
    from inference.runtimes import (
        ONNX_INT8,
        ONNX_RUNTIMES,
        OnnxRunner,
        RuntimeUnavailable,
        compare,
        export_onnx,
        int8_refusal,
        quantize_int8,
    )

    name = runtime.runtime
    if name not in ONNX_RUNTIMES:
        return {"runtime": name, "error": f"runtime: unknown {name!r}"}
    batch, origin = _sample_batch(loaded.spec, runtime)
    compared = batch
    fp32_runner = None
    try:
        graph = export_onnx(loaded._module, loaded.spec)
        if name == ONNX_INT8:
            fp32_runner = OnnxRunner(graph, device="cpu", threads=1)
            # Calibrated on the first half, compared on the other (held out), when
            # there are enough images to split.
            half = len(batch) // 2 if len(batch) >= 8 else 0
            graph = quantize_int8(graph, batch[:half] if half else batch)
            compared = batch[half:]
        runner = OnnxRunner(graph, device="cpu", threads=1)
        candidate = runner.probabilities(compared)
    except RuntimeUnavailable as error:
        return {"runtime": name, "error": f"runtime {name}: {error}"}
    reference = loaded._probabilities(compared)
    agreement = compare(reference, candidate)
    figures: dict[str, Any] = {
        "runtime": name,
        "samples": agreement.samples,
        "sample_origin": origin,
        "max_abs_diff": agreement.max_abs_diff,
        "top1_agreement": agreement.top1_agreement,
        "tolerance": {
            "max_abs_diff": runtime.max_abs_diff,
            "min_top1_agreement": runtime.min_top1_agreement,
        },
    }
    if not agreement.within(
        max_abs_diff=runtime.max_abs_diff, min_top1_agreement=runtime.min_top1_agreement
    ):
        figures["error"] = (
            f"runtime {name}: refused: on {agreement.samples} {origin} sample images its "
            f"probabilities differ from torch's by up to {agreement.max_abs_diff:.3g} "
            f"(tolerance {runtime.max_abs_diff:.3g}) and its top label agrees on "
            f"{agreement.top1_agreement:.1%} (needed {runtime.min_top1_agreement:.1%}); "
            + (
                "register it with the onnx or eager runtime"
                if name == ONNX_INT8
                else "register it with the eager runtime"
            )
        )
        return figures
    figures["eager_ms_per_image"] = _milliseconds_per_image(loaded._probabilities, batch)
    figures["onnx_ms_per_image"] = _milliseconds_per_image(runner.probabilities, batch)
    if fp32_runner is not None:
        figures["onnx_fp32_ms_per_image"] = _milliseconds_per_image(
            fp32_runner.probabilities, batch
        )
        if runtime.require_faster:
            refusal = int8_refusal(
                fp32_ms=figures["onnx_fp32_ms_per_image"], int8_ms=figures["onnx_ms_per_image"]
            )
            if refusal:
                figures["error"] = refusal
                return figures
    Path(runtime.output).write_bytes(graph)
    return figures


def main() -> None:
    try:
        request = json.loads(sys.stdin.read())
        _limit_self(request.get("memory_bytes"), float(request.get("cpu_seconds") or 60))
        answer = _run_check(request)
    except Exception as error:  # noqa: BLE001 - every failure becomes a refusal with a reason
        answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    sys.stdout.write(_RESULT_PREFIX + json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
