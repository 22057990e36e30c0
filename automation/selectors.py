"""Reads for the automation evidence: model predictions paired with human labels."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F

from workflows.models import Prediction, Workflow


@dataclass(frozen=True)
class LabelledPrediction:
    """One model prediction on a case a human has labelled."""

    model_version_id: int
    role: str
    predicted: str
    confidence: float
    human_label: str
    level: str
    review_reason: str

    @property
    def correct(self) -> bool:
        return self.predicted == self.human_label


def labelled_predictions(
    *, workflow: Workflow, model_version_id: int | None = None, limit: int | None = None
) -> list[LabelledPrediction]:
    """Predictions on human-labelled cases, newest first.

    Every case a human labelled counts: shadow, assistance, low-confidence reviews and
    audits of model-decided cases. Gold cases are excluded (they measure reviewers).
    """
    qs = (
        Prediction.objects.filter(case__workflow=workflow, case__is_gold=False)
        .exclude(case__human_label="")
        .order_by("-case__labelled_at", "-id")
        .values_list(
            "model_version_id",
            "role",
            "label",
            "confidence",
            F("case__human_label"),
            F("case__routed_level"),
            F("case__review_reason"),
        )
    )
    if model_version_id is not None:
        qs = qs.filter(model_version_id=model_version_id)
    if limit is not None:
        qs = qs[:limit]
    return [LabelledPrediction(*row) for row in qs]
