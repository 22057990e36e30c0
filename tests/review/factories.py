"""Cases waiting for review, built directly (no model run): fast enough for hundreds."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from inference.synthetic import DEMO_LABELS
from modelops.models import ModelVersion
from review.models import ReviewTask
from review.services import review_task_open
from workflows.models import Case, CaseStatus, Prediction, Workflow, WorkflowMembership

LEVEL_REASON = {
    "human_only": "human_only",
    "shadow": "shadow",
    "assistance": "assistance",
    "partial": "low_confidence",
}


def tiny_png(colour: tuple[int, int, int] = (120, 120, 120), size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def stored_image(data: bytes, name: str) -> str:
    """Save ``data`` in media storage once; cases may share the stored file."""
    return default_storage.save(f"cases/tests/{name}", ContentFile(data))


def workflow_create(slug: str = "inspect", *, level: str = "human_only", **fields: Any) -> Workflow:
    fields.setdefault("labels", list(DEMO_LABELS))
    fields.setdefault("audit_rate", 0.0)
    return Workflow.objects.create(
        slug=slug, name=slug.replace("-", " ").title(), level=level, **fields
    )


def reviewer_create(username: str, workflow: Workflow, *, admin: bool = False) -> Any:
    """Make ``username`` (created on first use) a reviewer of ``workflow``."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    user = users.filter(username=username).first() or users.create_user(
        username=username, password="pw-for-tests-only"
    )
    WorkflowMembership.objects.create(
        user=user, workflow=workflow, can_review=True, can_admin=admin
    )
    return user


def model_version_create() -> ModelVersion:
    """A registered version row for predictions; its weights are never loaded here."""
    return ModelVersion.objects.create(
        name="stub-model",
        version=ModelVersion.objects.filter(name="stub-model").count() + 1,
        architecture="stub",
        labels=list(DEMO_LABELS),
        weights="models/stub.pt",
        sha256="0" * 64,
    )


def case_in_review(
    workflow: Workflow,
    *,
    image_name: str | None = None,
    image_data: bytes | None = None,
    metadata: dict[str, Any] | None = None,
    prediction: tuple[ModelVersion, str, float] | None = None,
    show_suggestion: bool | None = None,
    external_id: str | None = None,
) -> tuple[Case, ReviewTask]:
    """A case in review with its open review task, as routing would have left it."""
    data = image_data or tiny_png()
    name = image_name or stored_image(data, f"{uuid.uuid4()}.png")
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    reason = LEVEL_REASON.get(workflow.level, "human_only")
    visible = show_suggestion
    if visible is None:
        visible = workflow.level in ("assistance", "partial")
    with transaction.atomic():
        case = Case.objects.create(
            workflow=workflow,
            external_id=external_id,
            metadata=metadata or {},
            image=name,
            image_format="PNG",
            image_width=width,
            image_height=height,
            image_bytes=len(data),
            image_sha256=hashlib.sha256(data).hexdigest(),
            status=CaseStatus.IN_REVIEW,
            routed_level=workflow.level,
            review_reason=reason,
            suggestion_visible=visible,
        )
        if prediction is not None:
            version, label, confidence = prediction
            scores = {name: (1 - confidence) / 3 for name in DEMO_LABELS}
            scores[label] = confidence
            made = Prediction.objects.create(
                case=case,
                model_version=version,
                role="serving",
                scores=scores,
                label=label,
                confidence=confidence,
            )
            case.deciding_prediction = made
            case.save(update_fields=["deciding_prediction"])
        task = review_task_open(case=case, kind="review", reason=reason, show_suggestion=visible)
    return case, task


def cases_in_review_bulk(workflow: Workflow, count: int) -> list[Case]:
    """``count`` cases in review with their tasks, in two bulk inserts."""
    data = tiny_png()
    name = stored_image(data, "bulk.png")
    digest = hashlib.sha256(data).hexdigest()
    cases = Case.objects.bulk_create(
        [
            Case(
                id=uuid.uuid4(),
                workflow=workflow,
                metadata={"n": index},
                image=name,
                image_format="PNG",
                image_width=8,
                image_height=8,
                image_bytes=len(data),
                image_sha256=digest,
                status=CaseStatus.IN_REVIEW,
                routed_level=workflow.level,
                review_reason="human_only",
            )
            for index in range(count)
        ]
    )
    required = max(1, workflow.consensus_required)
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(
                case=case,
                workflow=workflow,
                kind="review",
                reason="human_only",
                verdicts_required=required,
                agreement_required=required,
            )
            for case in cases
        ]
    )
    return cases
