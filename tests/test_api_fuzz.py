"""The whole API fuzzed from its own OpenAPI schema (schemathesis), over real HTTP.

Every operation gets schema-shaped requests (positive) and schema-breaking ones
(negative) with an admin's token and with an upstream system's (submit-only) token.
The guarantees: no 5xx, ever; every status is one the schema lists for the operation;
every response matches the schema it documents.
The figures are printed (``-s`` shows them) and recorded in ``docs/benchmarks.md``.

Bounded for CI: ``LOOPGATE_FUZZ_EXAMPLES`` examples per operation, mode and token.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("LOOPGATE_FUZZ_EXAMPLES", "8"))
# Comma-separated parts of operation paths to fuzz alone (a developer's shortcut; CI: all).
ONLY = [part for part in os.environ.get("LOOPGATE_FUZZ_ONLY", "").split(",") if part]
SLUG = "fuzz"


@pytest.fixture
def fuzz_world(make_user: Any, make_workflow: Any, member: Any, monkeypatch: Any) -> dict:
    """A workflow with a serving model, a case in review, and its admin and upstream users."""
    from modelops import tasks as modelops_tasks
    from processing.services import case_create

    # A valid training request must not train a network inside the web request.
    monkeypatch.setattr(modelops_tasks.training_run_execute, "delay", lambda *a, **k: None)
    workflow = make_workflow(SLUG, level="assistance")
    admin = make_user("fuzz-admin")
    upstream = make_user("fuzz-upstream")
    member(admin, workflow, submit=True, review=True, admin=True)
    member(upstream, workflow, submit=True)
    case = case_create(
        workflow=workflow,
        image_data=image_bytes("ok", seed=1),
        external_id="fuzz-1",
        metadata={"station": "line-1"},
        submitted_by=upstream,
    ).case
    version = workflow.deployments.get(role="serving").model_version
    # Registered for the workflow as well as deployed in it: both ways to reach a version.
    version.workflow = workflow
    version.save(update_fields=["workflow"])
    from django.utils import timezone

    from integrations.models import Webhook, WebhookDelivery, WebhookEvent

    webhook = Webhook.objects.create(
        workflow=workflow, url="https://93.184.215.14/hook", events=["case.decided"], secret="s"
    )
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        event=WebhookEvent.objects.create(
            workflow=workflow, type="case.decided", ordering_key="k", payload={}
        ),
        ordering_key="k",
        status="dead",
        next_attempt_at=timezone.now(),
    )
    return {
        "admin": admin,
        "upstream": upstream,
        "case": case,
        "version": version,
        "webhook": webhook,
        "delivery": delivery,
    }


@pytest.fixture
def fuzz_tokens(fuzz_world: dict) -> dict[str, str]:
    """API tokens of the two callers."""
    from accounts.services import api_token_create

    return {
        role: api_token_create(user=fuzz_world[role], name="fuzz")[1]
        for role in ("admin", "upstream")
    }


def known_path_parameters(world: dict) -> dict[str, Any]:
    """Real ids for the path parameters, so that requests reach the views, not only 404s."""
    return {
        "slug": SLUG,
        "case_id": str(world["case"].pk),
        "version_id": str(world["version"].pk),
        "webhook_id": world["webhook"].pk,
        "delivery_id": world["delivery"].pk,
    }


@dataclass
class Record:
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    undocumented: Counter[str] = field(default_factory=Counter)


def fuzz_operation(
    strategy: Any,
    examples: int,
    base_url: str,
    session: requests.Session,
    role: str,
    headers: dict[str, str],
    record: Record,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers)
        record.statuses[response.status_code] += 1
        label = f"{role} {case.operation.label} -> {response.status_code}"
        documented = case.operation.definition.raw.get("responses", {})
        if str(response.status_code) not in documented and "default" not in documented:
            record.undocumented[f"{case.operation.label} -> {response.status_code}"] += 1
        if response.status_code >= 500:
            record.server_errors.append(f"{label}: {response.text[:300]}")
            return
        try:
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance],
                headers=headers,
            )
        except FailureGroup as group:  # every failure is recorded, then asserted on
            for failure in group.exceptions:
                record.violations.append(f"{label}: {failure.title}: {failure.message[:400]}")
        except Failure as failure:
            record.violations.append(f"{label}: {failure.title}: {failure.message[:400]}")

    exercise()


def test_api_fuzz_no_server_errors_and_responses_match_schema(
    live_server: Any, fuzz_world: dict, fuzz_tokens: dict[str, str]
) -> None:
    raw_schema = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(raw_schema)
    fixed = known_path_parameters(fuzz_world)
    record = Record()
    # The upstream token is refused (403) by most operations: fewer examples suffice there.
    examples = {"admin": EXAMPLES, "upstream": max(2, EXAMPLES // 2)}
    operations = 0
    started = time.monotonic()
    # Closed before the live server stops: a kept-alive connection would keep its
    # request thread, and that thread's database connection, open past the test.
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if ONLY and not any(part in operation.path for part in ONLY):
                continue
            operations += 1
            names = {p.name for p in operation.path_parameters}
            path_parameters = {k: v for k, v in fixed.items() if k in names}
            for role, token in fuzz_tokens.items():
                headers = {"Authorization": f"Token {token}"}
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    strategy = operation.as_strategy(
                        generation_mode=mode, path_parameters=path_parameters
                    )
                    try:
                        fuzz_operation(
                            strategy,
                            examples[role],
                            live_server.url,
                            session,
                            role,
                            headers,
                            record,
                        )
                    except Unsatisfiable:
                        continue  # e.g. no negative variant for an operation without input

    elapsed = time.monotonic() - started
    requests_made = sum(record.statuses.values())
    print(
        f"\napi fuzz: {operations} operations, {requests_made} requests in {elapsed:.0f} s, "
        f"{len(record.server_errors)} server errors, {len(record.violations)} schema "
        f"violations, {sum(record.undocumented.values())} undocumented statuses; "
        f"statuses {dict(sorted(record.statuses.items()))}"
    )
    assert requests_made > operations * 4
    assert not record.server_errors, "\n".join(record.server_errors[:20])
    assert not record.violations, "\n".join(record.violations[:20])
    assert not record.undocumented, f"statuses missing from the schema: {dict(record.undocumented)}"
