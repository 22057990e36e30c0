"""Training and evaluating classification models from labelled PIL images.

Training is seeded and, on the CPU with a fixed thread count, bit-for-bit
reproducible: the same seed, data and hyper-parameters give the same loss
history and weights. It changes process-wide torch settings (thread count,
deterministic algorithms) for its duration and restores them afterwards, so
run it in a worker of its own, not beside live inference threads.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from inference.architectures import build_model
from inference.augment import DEFAULT, FLIPS, NONE, Augmentation, augment_batch
from inference.loader import (
    LoadedModel,
    mixed_precision,
    resize_to_uint8,
    sha256_of,
    standardise,
)
from inference.spec import ModelSpec

TRAINING_BATCH_NORM_MOMENTUM = 0.1
# NHWC layout: about a third faster for MobileNet's depthwise convolutions on
# the CPU, and what tensor cores prefer on CUDA.
CHANNELS_LAST = torch.channels_last

ProgressCallback = Callable[[int, float, float | None], None]
CancelCheck = Callable[[], bool]


class TrainingCancelled(Exception):
    """``should_cancel()`` returned true; no result is produced."""


@dataclass(frozen=True)
class EpochRecord:
    """Mean training loss of one epoch (1-based) and validation accuracy when a set was given."""

    epoch: int
    loss: float
    val_accuracy: float | None


@dataclass(frozen=True)
class TrainResult:
    """A trained model's weights and how they came about.

    ``state_dict`` holds CPU tensors and is meant only for ``save_weights``:
    it must not travel outside ``inference/``.
    """

    state_dict: dict[str, torch.Tensor]
    history: tuple[EpochRecord, ...]
    hyperparameters: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class ClassCounts:
    label: str
    total: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None


@dataclass(frozen=True)
class EvalResult:
    """How a model did on labelled images.

    ``confusion[i][j]`` counts images of ``labels[i]`` predicted as ``labels[j]``;
    ``confidences`` pairs each image's top score with whether it was right, in
    input order (for threshold and calibration analysis).
    """

    labels: tuple[str, ...]
    accuracy: float
    per_class: tuple[ClassCounts, ...]
    confusion: tuple[tuple[int, ...], ...]
    confidences: tuple[tuple[float, bool], ...]

    @property
    def n(self) -> int:
        return len(self.confidences)

    def per_class_accuracy(self) -> dict[str, float | None]:
        return {counts.label: counts.accuracy for counts in self.per_class}


def train_model(
    spec: ModelSpec,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    *,
    epochs: int,
    seed: int,
    lr: float = 2e-3,
    batch_size: int = 16,
    weight_decay: float = 1e-4,
    augment: Augmentation | bool = DEFAULT,
    init_state_dict: dict[str, torch.Tensor] | None = None,
    val_images: Sequence[Image.Image] | None = None,
    val_labels: Sequence[str] | None = None,
    device: str = "cpu",
    num_threads: int = 1,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> TrainResult:
    """Train ``spec``'s architecture on the images and return its weights and history.

    AdamW with a one-cycle learning-rate schedule and cross-entropy loss;
    ``augment`` is the seeded ``inference.augment.Augmentation`` (``DEFAULT``: no flips,
    mild brightness and contrast jitter; ``True`` means ``FLIPS``, the demo model's,
    ``False`` none). ``init_state_dict``
    warm-starts from a previous version with the same architecture and labels
    (``ValueError`` when it does not fit). Small batches suit the CPU: with one
    thread the cost per image barely depends on batch size, and more steps per
    epoch help a model trained from scratch. After every
    epoch ``progress(epoch, mean_loss, val_accuracy)`` is called, with
    ``val_accuracy`` ``None`` when no validation set is given.
    ``should_cancel()`` is polled before every batch; when it returns true,
    ``TrainingCancelled`` is raised. On CUDA, autocast mixed precision is used.

    ``num_threads`` (torch's CPU threads while training) defaults to one: the
    loss history is reproducible for a given thread count, and on a machine
    shared with other busy processes extra threads spin-wait and can make a
    run many times slower. Raise it on a dedicated machine.
    """
    _check_training_arguments(spec, images, labels, epochs, batch_size)
    if isinstance(augment, bool):
        augment = FLIPS if augment else NONE
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1, got {num_threads}")
    with _seeded_and_deterministic(seed, device, num_threads):
        inputs = _stack_uint8(images, spec)
        targets = torch.tensor([spec.labels.index(label) for label in labels], dtype=torch.long)
        model = build_model(spec)
        if init_state_dict is not None:
            _warm_start(model, init_state_dict, spec)
        # torch accepts memory_format here; its stubs list no overload that takes it.
        model.to(device=device, memory_format=CHANNELS_LAST)  # type: ignore[call-overload]
        _set_batch_norm_momentum(model, TRAINING_BATCH_NORM_MOMENTUM)
        history = _fit(
            model,
            spec,
            inputs,
            targets,
            epochs=epochs,
            seed=seed,
            lr=lr,
            batch_size=batch_size,
            weight_decay=weight_decay,
            augment=augment,
            device=device,
            validation=_validation_set(val_images, val_labels),
            progress=progress,
            should_cancel=should_cancel or (lambda: False),
        )
        _recalibrate_batch_norm(model, spec, inputs, batch_size=batch_size, device=device)
        state_dict = {
            key: value.detach().cpu().contiguous().clone()
            for key, value in model.state_dict().items()
        }
    hyperparameters = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "optimizer": "AdamW",
        "schedule": "one_cycle",
        "augment": augment.as_dict(),
        "augment_summary": augment.describe(),
        "warm_start": init_state_dict is not None,
        "device": device,
        "mixed_precision": torch.device(device).type == "cuda",
        "num_threads": num_threads,
        "n_train": len(images),
        "n_val": len(val_images or ()),
    }
    return TrainResult(
        state_dict=state_dict, history=history, hyperparameters=hyperparameters, seed=seed
    )


def _check_training_arguments(
    spec: ModelSpec,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    epochs: int,
    batch_size: int,
) -> None:
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) < 2:
        raise ValueError("training needs at least two images")
    unknown = sorted(set(labels) - set(spec.labels))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the model's labels {spec.labels}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (batch norm), got {batch_size}")


def _warm_start(
    model: torch.nn.Module, state_dict: dict[str, torch.Tensor], spec: ModelSpec
) -> None:
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"init_state_dict does not fit {spec.architecture} with {spec.num_classes} labels: "
            f"{error}"
        ) from error


def _validation_set(
    images: Sequence[Image.Image] | None, labels: Sequence[str] | None
) -> tuple[Sequence[Image.Image], Sequence[str]] | None:
    if (images is None) != (labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    if not images or labels is None:
        return None
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} validation images but {len(labels)} labels")
    return images, labels


@contextmanager
def _seeded_and_deterministic(seed: int, device: str, num_threads: int) -> Iterator[None]:
    """Seed torch, fix the thread count, prefer deterministic kernels; restore all on exit.

    The global RNG state is forked, so callers' random streams are untouched.
    ``warn_only`` keeps CUDA kernels without a deterministic variant usable.
    """
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cuda_devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn_only)
            torch.set_num_threads(previous_threads)


def _stack_uint8(images: Sequence[Image.Image], spec: ModelSpec) -> torch.Tensor:
    """All images resized once, kept as uint8 (a quarter of float32's memory)."""
    return torch.stack([resize_to_uint8(image, spec.input_size) for image in images])


def _batch_norm_layers(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
    ]


def _set_batch_norm_momentum(model: torch.nn.Module, momentum: float | None) -> None:
    """Momentum is a training-time setting, not saved in the state dict.

    Some architectures (MobileNetV3: 0.01) tune it for ImageNet-length runs; in
    a few hundred steps their running statistics would barely leave their
    initial values and the model would predict garbage in eval mode.
    """
    for layer in _batch_norm_layers(model):
        layer.momentum = momentum


def _recalibrate_batch_norm(
    model: torch.nn.Module,
    spec: ModelSpec,
    inputs: torch.Tensor,
    *,
    batch_size: int,
    device: str,
) -> None:
    """Recompute batch-norm running statistics as exact averages over the (unaugmented) data.

    The weights are final by now; this only makes eval mode see the statistics
    of the images themselves rather than a moving average of earlier weights.
    """
    layers = _batch_norm_layers(model)
    if not layers:
        return
    for layer in layers:
        layer.reset_running_stats()
    _set_batch_norm_momentum(model, None)
    model.train()
    with torch.no_grad(), mixed_precision(device):
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size].to(device)
            model(standardise(batch / 255.0, spec).contiguous(memory_format=CHANNELS_LAST))
    model.eval()


def _batches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A seeded shuffle cut into batches; a final batch of one is dropped (batch norm)."""
    order = torch.randperm(count, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    return batches


def _fit(
    model: torch.nn.Module,
    spec: ModelSpec,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    augment: Augmentation,
    device: str,
    validation: tuple[Sequence[Image.Image], Sequence[str]] | None,
    progress: ProgressCallback | None,
    should_cancel: CancelCheck,
) -> tuple[EpochRecord, ...]:
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(_batches(len(inputs), batch_size, torch.Generator().manual_seed(0)))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    use_cuda = torch.device(device).type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda and not torch.cuda.is_bf16_supported())
    history: list[EpochRecord] = []
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss, seen = 0.0, 0
        for batch_indices in _batches(len(inputs), batch_size, generator):
            if should_cancel():
                raise TrainingCancelled(f"training cancelled during epoch {epoch}")
            batch = inputs[batch_indices].to(device)
            unit = augment_batch(batch, augment, generator)
            with mixed_precision(device):
                logits = model(standardise(unit, spec).contiguous(memory_format=CHANNELS_LAST))
                loss = torch.nn.functional.cross_entropy(
                    logits.float(), targets[batch_indices].to(device)
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            total_loss += loss.item() * len(batch_indices)
            seen += len(batch_indices)
        val_accuracy = _validation_accuracy(model, spec, device, validation)
        record = EpochRecord(epoch=epoch, loss=total_loss / seen, val_accuracy=val_accuracy)
        history.append(record)
        if progress is not None:
            progress(record.epoch, record.loss, record.val_accuracy)
    model.eval()
    return tuple(history)


def _validation_accuracy(
    model: torch.nn.Module,
    spec: ModelSpec,
    device: str,
    validation: tuple[Sequence[Image.Image], Sequence[str]] | None,
) -> float | None:
    if validation is None:
        return None
    result = evaluate(LoadedModel(model, spec, device=device, sha256=None), *validation)
    return result.accuracy


def evaluate(
    model: LoadedModel | torch.nn.Module,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    *,
    spec: ModelSpec | None = None,
    device: str = "cpu",
) -> EvalResult:
    """Accuracy, per-class counts, confusion matrix and (confidence, correct) pairs.

    Pass a ``LoadedModel``, or a bare module together with its ``spec`` (the
    module is put in eval mode and moved to ``device``). Every label must be in
    the model's labels.
    """
    if not isinstance(model, LoadedModel):
        if spec is None:
            raise ValueError("evaluating a bare module needs its spec")
        model = LoadedModel(model, spec, device=device, sha256=None)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not images:
        raise ValueError("evaluation needs at least one image")
    model_labels = model.spec.labels
    unknown = sorted(set(labels) - set(model_labels))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the model's labels {model_labels}")
    predictions = model.predict(images)
    confusion = [[0] * len(model_labels) for _ in model_labels]
    confidences: list[tuple[float, bool]] = []
    for truth, prediction in zip(labels, predictions, strict=True):
        confusion[model_labels.index(truth)][model_labels.index(prediction.label)] += 1
        confidences.append((prediction.confidence, prediction.label == truth))
    per_class = tuple(
        ClassCounts(label=label, total=sum(row), correct=row[index])
        for index, (label, row) in enumerate(zip(model_labels, confusion, strict=True))
    )
    return EvalResult(
        labels=model_labels,
        accuracy=sum(correct for _, correct in confidences) / len(confidences),
        per_class=per_class,
        confusion=tuple(tuple(row) for row in confusion),
        confidences=tuple(confidences),
    )


def save_weights(state_dict: dict[str, torch.Tensor], path: str | Path) -> str:
    """Write a state dict atomically (temp file, then rename) and return its SHA-256.

    Readers never see a half-written file: the rename is atomic on one
    filesystem. Serialising to memory first keeps the archive's internal names
    independent of the temporary file's name, so equal weights give equal bytes
    (and an equal checksum).
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
    torch.save(tensors, buffer)
    handle, temporary_name = tempfile.mkstemp(dir=destination.parent, suffix=".partial")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
            file.flush()
            os.fsync(file.fileno())
        temporary.chmod(0o644)  # mkstemp's 0600 would hide the model from other workers
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return sha256_of(destination)
