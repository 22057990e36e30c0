"""Factories for automation tests: labelled cases straight through the ORM.

The evidence only needs (prediction, human label, how the case was routed); running the
demo CNN for that would make the tests slow, so these build the rows directly. Tests of
the routing and review flow itself use the real services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

LABELS = ("ok", "scratch", "crack", "stain")


@pytest.fixture
def model_version(db: None) -> Any:
    """A registered version that never needs to load (its predictions are made up)."""
    from modelops.models import ModelVersion

    return ModelVersion.objects.create(
        name="fake-cnn",
        version=1,
        architecture="fake",
        labels=list(LABELS),
        weights="models/fake.pt",
        sha256="0" * 64,
    )


@pytest.fixture
def automation_workflow(db: None, model_version: Any) -> Callable[..., Any]:
    """A workflow with ``model_version`` serving; policy fields as keyword arguments."""
    from modelops.models import Deployment
    from workflows.models import Workflow

    def make(
        slug: str = "line", *, level: str = "shadow", serving: bool = True, **fields: Any
    ) -> Any:
        fields.setdefault("labels", list(LABELS))
        fields.setdefault("audit_rate", 0.1)
        fields.setdefault("target_accuracy", 0.9)
        fields.setdefault("target_error", 0.1)
        fields.setdefault("min_evidence", 100)
        fields.setdefault("confidence_threshold", 0.9)
        workflow = Workflow.objects.create(slug=slug, name=slug.title(), level=level, **fields)
        if serving:
            Deployment.objects.create(
                workflow=workflow, model_version=model_version, role="serving"
            )
        return workflow

    return make


class LabelledCases:
    """Writes labelled cases with their serving prediction, in bulk, newest last."""

    def __init__(self, version: Any) -> None:
        self.version = version
        self._clock: datetime | None = None

    def _tick(self) -> datetime:
        now = timezone.now()
        if self._clock is not None and now <= self._clock:
            now = self._clock + timedelta(microseconds=1)
        self._clock = now
        return now

    def add(
        self,
        workflow: Any,
        rows: Sequence[tuple[str, float, str]],
        *,
        reason: str,
        level: str | None = None,
        version: Any = None,
        role: str = "serving",
    ) -> list[Any]:
        """One case per (predicted, confidence, human label), labelled now.

        ``reason`` is the routing's review reason: ``audit`` makes a model-decided case
        with a blind human label; any other makes a human-decided case.
        """
        from workflows.models import Case, Prediction

        version = version or self.version
        level = (
            level
            or {
                "shadow": "shadow",
                "assistance": "assistance",
                "low_confidence": "partial",
                "class_rule": "partial",
                "audit": "full",
            }[reason]
        )
        cases, predictions = [], []
        for predicted, confidence, human in rows:
            now = self._tick()
            by_model = reason == "audit"
            case = Case(
                id=uuid.uuid4(),
                workflow=workflow,
                image="cases/fake.png",
                image_format="PNG",
                image_width=8,
                image_height=8,
                image_bytes=100,
                image_sha256="0" * 64,
                status="decided",
                routed_level=level,
                routed_threshold=workflow.confidence_threshold if level == "partial" else None,
                review_reason=reason,
                decision_label=predicted if by_model else human,
                decision_source="model" if by_model else "human",
                decision_confidence=confidence if by_model else None,
                decision_model_version=version if by_model else None,
                decided_at=now,
                human_label=human,
                labelled_at=now,
            )
            cases.append(case)
            predictions.append(
                Prediction(
                    case=case,
                    model_version=version,
                    role=role,
                    scores={predicted: confidence},
                    label=predicted,
                    confidence=confidence,
                )
            )
        Case.objects.bulk_create(cases)
        Prediction.objects.bulk_create(predictions)
        return cases

    def simulate(
        self,
        workflow: Any,
        n: int,
        *,
        accuracy: float,
        reason: str,
        seed: int,
        level: str | None = None,
    ) -> list[Any]:
        """``n`` cases from a model right with probability ``accuracy``; confident when right."""
        return self.add(
            workflow, simulated_rows(n, accuracy=accuracy, seed=seed), reason=reason, level=level
        )


def simulated_rows(n: int, *, accuracy: float, seed: int) -> list[tuple[str, float, str]]:
    """(predicted, confidence, truth): right ones mostly confident, wrong ones less so."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        truth = str(rng.choice(LABELS, p=[0.55, 0.15, 0.15, 0.15]))
        if rng.random() < accuracy:
            predicted, confidence = truth, float(rng.beta(14, 1.2))
        else:
            predicted = str(rng.choice([label for label in LABELS if label != truth]))
            confidence = float(rng.beta(4, 2))
        rows.append((predicted, round(confidence, 6), truth))
    return rows


@pytest.fixture
def labelled(model_version: Any) -> LabelledCases:
    return LabelledCases(model_version)


@pytest.fixture
def admin_of(make_user: Any, member: Any) -> Callable[..., Any]:
    def make(workflow: Any, username: str = "boss") -> Any:
        user = make_user(username)
        member(user, workflow, admin=True)
        return user

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Users are made in nearly every test here; a slow hasher would dominate the run."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
