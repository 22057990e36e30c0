"""Where the model looked: Grad-CAM overlays of a case, computed in the worker and cached.

Who may see an overlay is decided by ``workflows.access.case_visibility``: only a user who
may see the model's suggestion for the case (never a reviewer of a shadow-mode case),
because the overlay reveals what the model thought as surely as its label does.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from inference.saliency import saliency_map
from kernel.errors import DomainError, NotFound
from modelops.models import SaliencyMap, SaliencyStatus
from modelops.runtime import loaded_model_of
from workflows.models import Case, Prediction

logger = logging.getLogger(__name__)

RETRY_FAILED_AFTER = timedelta(minutes=1)

# A cached overlay's states, changed only by _saliency_move. Ready is final; a failed one
# is sent back to pending by a request after RETRY_FAILED_AFTER. A cache row keeps no
# event trail: ``error`` and ``computed_at`` say how its last computation ended.
SALIENCY_TRANSITIONS: dict[str, frozenset[str]] = {
    SaliencyStatus.PENDING: frozenset({SaliencyStatus.READY, SaliencyStatus.FAILED}),
    SaliencyStatus.FAILED: frozenset({SaliencyStatus.PENDING}),
    SaliencyStatus.READY: frozenset(),
}


class SaliencyFailed(DomainError):
    status_code = 422
    code = "saliency_failed"


def _saliency_move(*, saliency_id: int, to_status: str, **fields: object) -> bool:
    """Move the overlay to ``to_status`` if the table allows it from its stored status.

    One conditional UPDATE rather than a row lock, as the computation is long: of two
    deliveries computing the same overlay, the first to finish stores it. Returns
    whether it moved.
    """
    from_states = [state for state, moves in SALIENCY_TRANSITIONS.items() if to_status in moves]
    return bool(
        SaliencyMap.objects.filter(pk=saliency_id, status__in=from_states).update(
            status=to_status, **fields
        )
    )


def saliency_prediction(*, case: Case, model_version_id: int | None = None) -> Prediction:
    """The prediction an overlay explains: the one that decided or was suggested for the
    case (or, before routing, the deciding role's), or the given version's prediction."""
    predictions = case.predictions.select_related("model_version")
    if model_version_id is not None:
        chosen = predictions.filter(model_version_id=model_version_id).first()
    elif case.deciding_prediction_id is not None:
        chosen = predictions.filter(pk=case.deciding_prediction_id).first()
    else:
        chosen = predictions.filter(role__in=["serving", "canary"]).order_by("id").first()
    if chosen is None:
        raise NotFound(f"case {case.id} has no model prediction to explain")
    return chosen


def saliency_request(*, case: Case, prediction: Prediction) -> SaliencyMap:
    """The cached overlay, or a pending one with its computation queued on commit.

    A failure is reported as it is for ``RETRY_FAILED_AFTER`` (so a client polling for
    the overlay learns why at once), and queued again when asked after that, so a lost
    file or a fixed model gets another chance without a retry storm.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                overlay, created = SaliencyMap.objects.get_or_create(
                    case=case,
                    model_version=prediction.model_version,
                    defaults={"label": prediction.label},
                )
        except IntegrityError:
            overlay, created = (
                SaliencyMap.objects.get(case=case, model_version=prediction.model_version),
                False,
            )
        retry = (
            overlay.status == SaliencyStatus.FAILED
            and overlay.computed_at is not None
            and timezone.now() - overlay.computed_at > RETRY_FAILED_AFTER
        )
        if created or retry:
            if not created:
                _saliency_move(saliency_id=overlay.pk, to_status=SaliencyStatus.PENDING, error="")
            overlay_id = overlay.pk

            def queue() -> None:
                from modelops.tasks import INFERENCE_QUEUE, saliency_compute

                # The queue given at call time wins over the route map, which sends
                # modelops.tasks.* to the training queue.
                saliency_compute.apply_async(args=[overlay_id], queue=INFERENCE_QUEUE)

            transaction.on_commit(queue)
    overlay.refresh_from_db()
    return overlay


def saliency_compute(*, saliency_id: int) -> SaliencyMap | None:
    """Compute and store a pending overlay; idempotent (any other is left alone)."""
    overlay = (
        SaliencyMap.objects.select_related("case", "case__workflow", "model_version")
        .filter(pk=saliency_id)
        .first()
    )
    if overlay is None or overlay.status != SaliencyStatus.PENDING:
        return overlay
    try:
        with overlay.case.image.open("rb") as handle:
            image = Image.open(handle, formats=list(settings.LOOPGATE_ALLOWED_IMAGE_FORMATS))
            image.load()
        picture = saliency_map(
            loaded_model_of(overlay.model_version), image.convert("RGB"), target_label=overlay.label
        )
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and shown, not raised
        logger.warning("saliency %s failed: %s", saliency_id, exc)
        _saliency_move(
            saliency_id=saliency_id,
            to_status=SaliencyStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            computed_at=timezone.now(),
        )
        return SaliencyMap.objects.get(pk=saliency_id)
    if overlay.image.name:
        overlay.image.storage.delete(overlay.image.name)
    overlay.image.save("overlay.png", ContentFile(buffer.getvalue()), save=False)
    stored = _saliency_move(
        saliency_id=saliency_id,
        to_status=SaliencyStatus.READY,
        image=overlay.image.name,
        error="",
        computed_at=timezone.now(),
    )
    if not stored and overlay.image.name:
        overlay.image.storage.delete(overlay.image.name)
    return SaliencyMap.objects.get(pk=saliency_id)
