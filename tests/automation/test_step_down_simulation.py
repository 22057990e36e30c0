"""Seeded simulations of the automatic step down through the real service.

Audited verdicts arrive one at a time and the check runs after each, as it does after
every audit verdict in production. With the defaults (window 200, 99% confidence, at
least 20 audits) and a target of 95%: a model at 97% is not stepped down over three
full windows, and a drop of 10 points (to 87%) is caught within a bounded number of audits.
bench/simulate_guarantees.py measures the same rule over thousands of streams (median
delay 125 audits, p99 about 280; one false step down per ~1.3 million audits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from automation.models import Alert
from automation.services import automation_check_workflow

pytestmark = pytest.mark.django_db

TARGET = 0.95
GOOD, DROPPED = 0.97, 0.87
DETECTION_BOUND = 300  # audits after the drop; above the p99 the bench measures


def audit_stream(
    workflow: Any, labelled: Any, outcomes: np.ndarray, *, level: str = "full"
) -> int | None:
    """Feed audits one by one, checking after each; the 1-based index of a step down."""
    for index, right in enumerate(outcomes, start=1):
        row = ("ok", 0.97, "ok") if right else ("ok", 0.97, "crack")
        labelled.add(workflow, [row], reason="audit", level=level)
        if automation_check_workflow(workflow_id=workflow.pk) is not None:
            return index
    return None


@pytest.fixture
def full_workflow(automation_workflow: Any) -> Any:
    workflow = automation_workflow(level="full", target_accuracy=TARGET)
    return workflow


@pytest.mark.parametrize("seed", [1, 2])
def test_a_ten_point_drop_steps_down_within_the_bound(
    full_workflow: Any, labelled: Any, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    before = rng.random(200) < GOOD
    after = rng.random(DETECTION_BOUND) < DROPPED
    assert audit_stream(full_workflow, labelled, before) is None, "no step down before the drop"
    delay = audit_stream(full_workflow, labelled, after)
    assert delay is not None and delay <= DETECTION_BOUND, delay
    full_workflow.refresh_from_db()
    assert full_workflow.level == "partial"
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.data["window"]["n"] == 200


def test_a_stable_model_is_not_stepped_down(full_workflow: Any, labelled: Any) -> None:
    rng = np.random.default_rng(3)
    assert audit_stream(full_workflow, labelled, rng.random(600) < GOOD) is None
    full_workflow.refresh_from_db()
    assert full_workflow.level == "full"
    assert not Alert.objects.exists()
