"""A repeated image never counts twice: not in the gate's evidence, the calibration,
the audit window or the comparison of two versions (docs/decisions.md D56)."""

from __future__ import annotations

from typing import Any

import pytest

from automation.selectors import audit_window, evidence_by_version, gate_evidence
from workflows.models import Case

pytestmark = pytest.mark.django_db


def repeat(cases: list[Any], of: Any) -> None:
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(duplicate_of=of)


def test_repeats_are_left_out_of_evidence_and_calibration(
    automation_workflow: Any, labelled: Any
) -> None:
    workflow = automation_workflow(level="shadow")
    firsts = labelled.add(workflow, [("ok", 0.99, "ok")] * 10, reason="shadow")
    repeats = labelled.add(workflow, [("ok", 0.99, "ok")] * 16, reason="shadow")
    repeat(repeats, firsts[0])
    assert gate_evidence(workflow=workflow, level="partial").n == 10
    assert gate_evidence(workflow=workflow, level="full").n == 10
    unbiased = evidence_by_version(workflow=workflow)[0].unbiased
    assert len(unbiased) == 10


def test_the_reported_case_16_of_26_audits_were_repeats(
    automation_workflow: Any, labelled: Any
) -> None:
    workflow = automation_workflow(level="full")
    shadow = labelled.add(workflow, [("ok", 0.99, "ok")] * 16, reason="shadow")
    audits = labelled.add(workflow, [("ok", 0.99, "ok")] * 26, reason="audit")
    repeat(audits[:16], shadow[0])
    window = audit_window(workflow=workflow)
    assert window.n == 10
    evidence = evidence_by_version(workflow=workflow)[0]
    assert evidence.audited_overall == (10, 10)
    assert gate_evidence(workflow=workflow, level="full").n == 16 + 10


def test_a_wrong_repeat_does_not_step_down_twice(automation_workflow: Any, labelled: Any) -> None:
    workflow = automation_workflow(level="full")
    wrong = labelled.add(workflow, [("ok", 0.99, "crack")], reason="audit")
    copies = labelled.add(workflow, [("ok", 0.99, "crack")] * 30, reason="audit")
    repeat(copies, wrong[0])
    window = audit_window(workflow=workflow)
    assert (window.successes, window.n) == (0, 1)
