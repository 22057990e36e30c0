"""Small models, model files and labelled cases for the model-lifecycle tests.

Models are tiny (SqueezeNet at 32 px, two or four labels) so that loading, inference,
Grad-CAM and a few epochs of training take seconds on a shared two-core machine.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from django.core.files import File
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from inference.architectures import build_model
from inference.loader import sha256_of
from inference.spec import ModelSpec
from modelops.models import Deployment, ModelVersion
from workflows.models import Case, CaseStatus, Workflow

TINY_ARCHITECTURE = "squeezenet1_1"
TINY_SIZE = 32
PART_LABELS = ("ok", "stain")


def tiny_spec(labels: tuple[str, ...], *, architecture: str = TINY_ARCHITECTURE) -> ModelSpec:
    return ModelSpec(architecture=architecture, labels=labels, input_size=TINY_SIZE)


def tiny_weights(path: Path, labels: tuple[str, ...], *, seed: int = 0) -> Path:
    """A randomly initialised state dict for ``tiny_spec(labels)``, saved at ``path``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(tiny_spec(labels))
    torch.save(model.state_dict(), path)
    return path


def version_create(
    workflow: Workflow | None,
    path: Path,
    labels: tuple[str, ...],
    *,
    name: str = "tiny",
    version: int | None = None,
) -> ModelVersion:
    """A version row for a file, written directly (the registration service has its own
    tests; most tests need versions fast)."""
    number = version or (ModelVersion.objects.filter(name=name).count() + 1)
    spec = tiny_spec(labels)
    row = ModelVersion(
        name=name,
        version=number,
        workflow=workflow,
        architecture=spec.architecture,
        labels=list(labels),
        input_size=spec.input_size,
        mean=list(spec.mean),
        std=list(spec.std),
        sha256=sha256_of(path),
    )
    with path.open("rb") as handle:
        row.weights.save(f"{name}-v{number}.pt", File(handle), save=False)
    row.save()
    return row


def deploy(workflow: Workflow, version: ModelVersion, role: str, share: float = 0.0) -> Deployment:
    return Deployment.objects.create(
        workflow=workflow, model_version=version, role=role, traffic_share=share
    )


def part_image(label: str, seed: int, size: int = 40) -> Image.Image:
    """A grey part; a ``stain`` has a dark brown blob somewhere on it. Easy to learn."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(150, 20, (size, size, 3))
    if label == "stain":
        cx, cy = rng.integers(8, size - 8, 2)
        radius = rng.integers(5, 9)
        yy, xx = np.mgrid[:size, :size]
        pixels[(xx - cx) ** 2 + (yy - cy) ** 2 < radius * radius] = [90, 50, 30]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def case_create(
    workflow: Workflow,
    image: Image.Image,
    *,
    human_label: str = "",
    status: str = CaseStatus.RECEIVED,
    is_gold: bool = False,
) -> Case:
    """A case written directly, optionally already labelled by a human."""
    data = png_bytes(image)
    case = Case(
        id=uuid.uuid4(),
        workflow=workflow,
        image_format="PNG",
        image_width=image.width,
        image_height=image.height,
        image_bytes=len(data),
        image_sha256="0" * 64,
        status=status,
        human_label=human_label,
        labelled_at=timezone.now() if human_label else None,
        is_gold=is_gold,
    )
    case.image.save(f"{case.id}.png", ContentFile(data), save=False)
    case.save(force_insert=True)
    return case


def labelled_cases_create(
    workflow: Workflow, per_label: int, *, labels: tuple[str, ...] = PART_LABELS, seed: int = 0
) -> list[Case]:
    return [
        case_create(
            workflow,
            part_image(label, seed * 10_000 + i * 7 + k),
            human_label=label,
            status=CaseStatus.DECIDED,
        )
        for i in range(per_label)
        for k, label in enumerate(labels)
    ]


def stored_files(root: Any, folder: str) -> list[Path]:
    base = Path(root) / folder
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
