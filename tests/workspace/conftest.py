"""A workflow with cases in every state, built directly (no model run, no queue)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import pytest

from tests.review.factories import model_version_create, stored_image, tiny_png

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


def make_case(
    workflow: Any, *, created: dt.datetime, image: tuple[str, bytes], **fields: Any
) -> Any:
    from workflows.models import Case

    name, data = image
    case = Case.objects.create(
        workflow=workflow,
        image=name,
        image_format="PNG",
        image_width=8,
        image_height=8,
        image_bytes=len(data),
        image_sha256=hashlib.sha256(data).hexdigest(),
        **fields,
    )
    Case.objects.filter(pk=case.pk).update(created_at=created)
    case.refresh_from_db()
    return case


def predict(
    case: Any, version: Any, label: str, confidence: float, *, deciding: bool = True
) -> Any:
    from workflows.models import Prediction

    scores = {name: (1 - confidence) / 3 for name in ("ok", "scratch", "crack", "stain")}
    scores[label] = confidence
    prediction = Prediction.objects.create(
        case=case,
        model_version=version,
        role="serving",
        scores=scores,
        label=label,
        confidence=confidence,
    )
    if deciding:
        case.deciding_prediction = prediction
        case.save(update_fields=["deciding_prediction"])
    return prediction


def verdict(
    case: Any, reviewer: Any, label: str, *, kind: str = "review", comment: str = ""
) -> Any:
    from review.models import ReviewTask, Verdict

    task = ReviewTask.objects.create(
        case=case, workflow=case.workflow, kind=kind, reason=case.review_reason, status="done"
    )
    return Verdict.objects.create(
        task=task, case=case, reviewer=reviewer, label=label, comment=comment
    )


def event(
    case: Any,
    when: dt.datetime,
    kind: str,
    from_status: str,
    to_status: str,
    actor_type: str,
    actor: Any = None,
    **fields: Any,
) -> Any:
    from workflows.models import CaseEvent

    made = CaseEvent.objects.create(
        case=case,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_type=actor_type,
        actor=actor,
        **fields,
    )
    CaseEvent.objects.filter(pk=made.pk).update(created_at=when)
    return made


@pytest.fixture
def cases_world(member: Any, client_for: Any, settings: Any) -> dict[str, Any]:
    return build_cases_world(member=member, client_for=client_for, settings=settings)


def build_cases_world(*, member: Any, client_for: Any, settings: Any) -> dict[str, Any]:
    """Workflow "line" with five cases (A to E, oldest first) and its people; workflow
    "other" with its own admin and one case.

    * A: decided by model v1 as ok, routed partial, not audited.
    * B: decided by model v2 as scratch, in the audit sample, audited as crack (disagree).
    * C: decided by a human as crack, shadow mode; v1 said ok (disagree); two verdicts.
    * D: in review (human only), external id "ext-d", no label.
    * E: failed.
    """
    from django.contrib.auth import get_user_model

    from tests.review.factories import workflow_create

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    line = workflow_create("line", level="partial")
    other = workflow_create("other", level="human_only")
    v1 = model_version_create()
    v2 = model_version_create()
    data = tiny_png((200, 40, 40))
    image = (stored_image(data, f"{uuid.uuid4()}.png"), data)

    def at(hours: int) -> dt.datetime:
        return T0 + dt.timedelta(hours=hours)

    a = make_case(
        line,
        created=at(0),
        image=image,
        external_id="ext-a",
        metadata={"line": 1},
        status="decided",
        routed_level="partial",
        decision_label="ok",
        decision_source="model",
        decision_confidence=0.97,
        decision_model_version=v1,
        decided_at=at(0),
    )
    predict(a, v1, "ok", 0.97)
    b = make_case(
        line,
        created=at(24),
        image=image,
        external_id="ext-b",
        status="decided",
        routed_level="full",
        review_reason="audit",
        decision_label="scratch",
        decision_source="model",
        decision_confidence=0.93,
        decision_model_version=v2,
        decided_at=at(25),
        human_label="crack",
        labelled_at=at(26),
    )
    predict(b, v2, "scratch", 0.93)
    c = make_case(
        line,
        created=at(48),
        image=image,
        external_id="=cmd",
        metadata={"note": "needs, a comma"},
        status="decided",
        routed_level="shadow",
        review_reason="shadow",
        decision_label="crack",
        decision_source="human",
        decided_at=at(50),
        human_label="crack",
        labelled_at=at(50),
    )
    predict(c, v1, "ok", 0.6)
    d = make_case(
        line,
        created=at(72),
        image=image,
        external_id="ext-d",
        status="in_review",
        routed_level="human_only",
        review_reason="human_only",
    )
    e = make_case(line, created=at(96), image=image, status="failed", failure_reason="gone")
    other_case = make_case(
        other,
        created=at(1),
        image=image,
        status="decided",
        decision_label="ok",
        decision_source="human",
        decided_at=at(1),
        human_label="ok",
    )

    users = get_user_model().objects
    admin = users.create_user(username="ada", password="pw-for-tests-only")
    reviewer = users.create_user(username="rita", password="pw-for-tests-only")
    submitter = users.create_user(username="camera", password="pw-for-tests-only")
    other_admin = users.create_user(username="olga", password="pw-for-tests-only")
    outsider = users.create_user(username="nobody", password="pw-for-tests-only")
    member(admin, line, review=True, admin=True)
    member(reviewer, line, review=True)
    member(submitter, line, submit=True)
    member(other_admin, other, review=True, admin=True)
    verdict(c, reviewer, "crack", comment="clear crack on the left")
    verdict(c, admin, "crack")
    verdict(b, reviewer, "crack", kind="audit")
    event(c, at(48), "status", "", "received", "system", reason="stored")
    event(c, at(49), "status", "received", "in_review", "system", reason="shadow mode")
    event(
        c, at(50), "status", "in_review", "decided", "user", reviewer, reason="2 reviewers agreed"
    )
    event(b, at(25), "status", "processing", "decided", "model", reason="model decided; audit")
    event(b, at(26), "audit_label", "", "", "user", reviewer, data={"label": "crack"})
    return {
        "line": line,
        "other": other,
        "cases": {"a": a, "b": b, "c": c, "d": d, "e": e, "other": other_case},
        "versions": {"v1": v1, "v2": v2},
        "image": data,
        "users": {
            "admin": admin,
            "reviewer": reviewer,
            "submitter": submitter,
            "other_admin": other_admin,
            "outsider": outsider,
        },
        "client": {
            name: client_for(user)
            for name, user in (
                ("admin", admin),
                ("reviewer", reviewer),
                ("submitter", submitter),
                ("other_admin", other_admin),
                ("outsider", outsider),
            )
        },
    }
