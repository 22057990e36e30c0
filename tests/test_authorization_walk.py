"""The authorization walk: every URL pattern, every method it answers, every kind of caller.

The URL patterns are enumerated from the resolver, so a new endpoint is walked without
anyone remembering to add it; ``EXPECT`` must name it (with each of its methods), or the
walk fails and its author has to decide who may call it.

Callers (all against the workflow "home" and its objects):

* ``anon`` — nobody;
* ``upstream`` — an upstream system's API token (submit-only membership of home);
* ``reviewer`` / ``admin`` — a reviewer / a workflow admin of home (session login);
* ``other_reviewer`` / ``other_admin`` — the same, of ANOTHER workflow only;
* ``staff`` — a staff account without memberships;
* ``superuser``.

Outcomes: ``through`` (the request got past every access check: 2xx, a redirect that is
not to a login page, or a 4xx about the input or the state), ``forbidden`` (403),
``hidden`` (404: the workflow or object does not exist for the caller), ``denied``
(401, 403 or a redirect to a login page: no identity, or not enough of one).

Every request runs in a savepoint that is rolled back, so callers do not change what the
next one sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

# --- The rules -----------------------------------------------------------------------------
PUBLIC = "public"  # anyone, no identity needed
PERSON = "person"  # any logged-in person (the page shows only what they may see)
AUTHENTICATED = "authenticated"  # any identity: a session or an API token
STAFF = "staff"  # staff or superuser session, or the metrics bearer token
SUPERUSER_ONLY = "superuser_only"  # the Django admin
MEMBER = "member"  # any member of the workflow
SUBMIT = "submit"  # members with the submit right
REVIEW = "review"  # members with the review right (admins review too)
ADMIN = "admin"  # workflow admins
CASE_READER = "case_reader"  # members; reviewers see a blind case without the model's output
SUGGESTION_READER = "suggestion_reader"  # submitters and admins; blind reviewers get 404
OWN_VERDICT = "own_verdict"  # only the reviewer who gave the verdict; 404 for anyone else
CREATOR = "creator"  # superusers and holders of workflows.add_workflow (none of the others)

# Every named URL pattern, with every method it answers, and who may call it.
EXPECT: dict[tuple[str, str], str] = {
    # Project level
    ("login", "GET"): PUBLIC,
    ("login", "POST"): PUBLIC,
    ("login", "PUT"): PUBLIC,  # Django's form view treats PUT as POST
    ("logout", "POST"): PUBLIC,
    ("healthz", "GET"): PUBLIC,
    ("readyz", "GET"): PUBLIC,
    ("metrics", "GET"): STAFF,
    ("schema", "GET"): AUTHENTICATED,
    ("api-docs", "GET"): AUTHENTICATED,
    # Workflows and cases
    ("workflow-list", "GET"): AUTHENTICATED,
    ("workflow-list", "POST"): CREATOR,
    ("workflow-detail", "GET"): MEMBER,
    ("workflow-detail", "PATCH"): ADMIN,
    ("workflow-archive", "POST"): ADMIN,
    ("workflow-unarchive", "POST"): ADMIN,
    ("member-list", "GET"): ADMIN,
    ("member-list", "POST"): ADMIN,
    ("member-detail", "PATCH"): ADMIN,
    ("member-detail", "DELETE"): ADMIN,
    ("member-link", "POST"): ADMIN,
    ("token-list", "GET"): ADMIN,
    ("token-list", "POST"): ADMIN,
    ("token-detail", "DELETE"): ADMIN,
    # Example images of the labels: the workflow's members see them, its admins change them.
    ("label-example-list", "GET"): MEMBER,
    ("label-example-list", "POST"): ADMIN,
    ("label-example-detail", "DELETE"): ADMIN,
    ("label-example-image", "GET"): MEMBER,
    # Workspace pages
    ("workspace:create", "GET"): CREATOR,
    ("workspace:create", "POST"): CREATOR,
    ("workspace:settings", "GET"): ADMIN,
    ("workspace:settings", "POST"): ADMIN,
    ("workspace:settings-labels", "GET"): ADMIN,
    ("workspace:settings-labels", "POST"): ADMIN,
    ("workspace:settings-review", "GET"): ADMIN,
    ("workspace:settings-review", "POST"): ADMIN,
    ("workspace:settings-members", "GET"): ADMIN,
    ("workspace:settings-members", "POST"): ADMIN,
    ("workspace:settings-tokens", "GET"): ADMIN,
    ("workspace:settings-tokens", "POST"): ADMIN,
    ("workspace:settings-training", "GET"): ADMIN,
    ("workspace:settings-training", "POST"): ADMIN,
    # The one-time link of an invited person: anyone holding it (a bad link says so).
    ("workspace:set-password", "GET"): PUBLIC,
    ("workspace:set-password", "POST"): PUBLIC,
    ("workspace:set-password", "PUT"): PUBLIC,
    ("case-create", "POST"): SUBMIT,
    ("case-create", "GET"): REVIEW,  # the case list (same URL)
    ("workflow-export", "GET"): ADMIN,
    ("workspace:cases", "GET"): REVIEW,
    ("processing:upload", "GET"): SUBMIT,
    ("processing:upload", "POST"): SUBMIT,
    ("workspace:case", "GET"): CASE_READER,
    ("workflow-stats", "GET"): MEMBER,
    ("case-detail", "GET"): CASE_READER,
    ("case-events", "GET"): CASE_READER,
    ("case-image", "GET"): CASE_READER,
    ("case-retry", "POST"): ADMIN,
    ("case-bulk-create", "POST"): SUBMIT,
    ("workflow-fallback", "GET"): ADMIN,
    ("workflow-fallback", "PUT"): ADMIN,
    # Webhooks
    ("webhook-list", "GET"): ADMIN,
    ("webhook-list", "POST"): ADMIN,
    ("webhook-detail", "GET"): ADMIN,
    ("webhook-detail", "PATCH"): ADMIN,
    ("webhook-detail", "DELETE"): ADMIN,
    ("webhook-rotate-secret", "POST"): ADMIN,
    ("webhook-deliveries", "GET"): ADMIN,
    ("webhook-redeliver", "POST"): ADMIN,
    # Review
    ("review-next", "POST"): REVIEW,
    ("review-verdicts-recent", "GET"): REVIEW,
    ("review-stats", "GET"): REVIEW,
    ("review-verdict", "POST"): REVIEW,
    ("review-skip", "POST"): REVIEW,
    ("review-heartbeat", "POST"): REVIEW,
    ("review-queue", "GET"): REVIEW,
    ("review-release", "POST"): REVIEW,
    ("review-undo", "POST"): OWN_VERDICT,
    ("review-change-request", "POST"): OWN_VERDICT,
    ("review-change-decide", "POST"): ADMIN,
    ("review:home", "GET"): PERSON,
    ("review:screen", "GET"): REVIEW,
    ("review:stats-page", "GET"): ADMIN,
    ("review:history", "GET"): REVIEW,
    # Automation
    ("workflow-automation", "GET"): ADMIN,
    ("workflow-automation", "PATCH"): ADMIN,
    ("workflow-automation-evidence", "GET"): ADMIN,
    ("workflow-automation-threshold", "GET"): ADMIN,
    ("workflow-automation-threshold", "POST"): ADMIN,
    ("workflow-automation-changes", "GET"): ADMIN,
    ("workflow-alerts", "GET"): MEMBER,
    ("workflow-alert-acknowledge", "POST"): ADMIN,
    ("workflow-alert-resolve", "POST"): ADMIN,
    # Monitoring
    ("workflow-monitoring", "GET"): MEMBER,
    ("workflow-monitoring-settings", "GET"): ADMIN,
    ("workflow-monitoring-settings", "PATCH"): ADMIN,
    ("monitoring:index", "GET"): PERSON,
    ("monitoring:page", "GET"): MEMBER,
    ("monitoring:page", "POST"): ADMIN,
    ("automation:index", "GET"): PERSON,
    ("automation:page", "GET"): ADMIN,
    ("automation:page", "POST"): ADMIN,
    # Models
    ("model-version-list", "GET"): ADMIN,
    ("model-version-list", "POST"): ADMIN,
    ("model-version-detail", "GET"): ADMIN,
    ("deployment-list", "GET"): ADMIN,
    ("deployment-list", "POST"): ADMIN,
    ("deployment-promote", "POST"): ADMIN,
    ("deployment-rollback", "POST"): ADMIN,
    ("deployment-canary", "PATCH"): ADMIN,
    ("deployment-end", "POST"): ADMIN,
    ("model-comparison", "GET"): ADMIN,
    ("training-run-list", "GET"): ADMIN,
    ("training-run-list", "POST"): ADMIN,
    ("training-run-detail", "GET"): ADMIN,
    ("training-run-cancel", "POST"): ADMIN,
    ("retrain-rule", "GET"): ADMIN,
    ("retrain-rule", "PUT"): ADMIN,
    ("case-saliency", "GET"): SUGGESTION_READER,
    ("modelops:home", "GET"): PERSON,
    ("modelops:workflow", "GET"): ADMIN,
    ("modelops:compare", "GET"): ADMIN,
    ("modelops:register", "POST"): ADMIN,
    ("modelops:deploy", "POST"): ADMIN,
    ("modelops:promote", "POST"): ADMIN,
    ("modelops:rollback", "POST"): ADMIN,
    ("modelops:end", "POST"): ADMIN,
    ("modelops:canary", "POST"): ADMIN,
    ("modelops:train", "POST"): ADMIN,
    ("modelops:training-cancel", "POST"): ADMIN,
    ("modelops:retrain-rule", "POST"): ADMIN,
}

# The Django admin: every one of its URL names (they come and go with the registered
# models) is for superusers only, read with GET; the login page is public.
ADMIN_PUBLIC = {"admin:login", "admin:logout"}

# The public allow-list: what answers without any identity.
PUBLIC_ALLOW_LIST = {
    "login",
    "logout",
    "healthz",
    "readyz",
    "admin:login",
    "admin:logout",
    "workspace:set-password",
}

# What each caller may do in the workflow "home" (None: not a member of it).
HOME_RIGHTS: dict[str, set[str] | None] = {
    "anon": None,
    "upstream": {"submit"},
    "reviewer": {"review"},
    "admin": {"admin", "review"},
    "other_reviewer": None,
    "other_admin": None,
    "staff": None,
    "superuser": {"submit", "review", "admin"},
}
ACTORS = tuple(HOME_RIGHTS)


def expected(rule: str, actor: str, *, api: bool, verdict_author: str) -> str | None:
    """What ``actor`` must get under ``rule``; None where the walk does not judge it."""
    if actor == "upstream" and not api:
        actor = "anon"  # an API token is not a session: pages treat it as nobody
    if rule == PUBLIC:
        return "through"
    if actor == "anon":
        return "denied"
    if rule in (AUTHENTICATED, PERSON):
        return "through"
    if rule == STAFF:
        return "through" if actor in ("staff", "superuser") else "forbidden"
    if rule == SUPERUSER_ONLY:
        return None if actor == "superuser" else "denied"
    if rule == CREATOR:
        return "through" if actor == "superuser" else "forbidden"
    if rule == OWN_VERDICT:
        return "through" if actor == verdict_author else "hidden"
    rights = HOME_RIGHTS[actor]
    if rights is None:
        return "hidden"
    if rule in (MEMBER, CASE_READER):
        return "through"
    if rule == SUGGESTION_READER:
        return "through" if rights & {"submit", "admin"} else "hidden"
    needed = {SUBMIT: {"submit"}, REVIEW: {"review", "admin"}, ADMIN: {"admin"}}[rule]
    return "through" if rights & needed else "forbidden"


def outcome(response: Any, route_name: str = "") -> str:
    status = response.status_code
    if route_name in ("logout", "admin:logout") and status == 302:
        return "through"  # logging out ends on the login page
    if status == 401:
        return "denied"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "hidden"
    if status in (301, 302) and "login" in response.get("Location", ""):
        return "denied"
    return "through"


def matches(got: str, want: str) -> bool:
    if want == "denied":
        return got in ("denied", "forbidden")
    return got == want


# --- The URL patterns ----------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    pattern: URLPattern
    api: bool

    @property
    def params(self) -> list[str]:
        regex = self.pattern.pattern.regex
        return list(regex.groupindex)


def routes() -> Iterator[Route]:
    def walk(patterns: list[Any], namespace: str | None) -> Iterator[Route]:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = ":".join(part for part in (namespace, entry.namespace) if part) or None
                yield from walk(entry.url_patterns, inner)
                continue
            if entry.name is None:
                # Only the Django admin has unnamed patterns (its catch-all redirect).
                assert namespace == "admin", f"unnamed URL pattern {entry.pattern}"
                continue
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            view = entry.callback
            api = hasattr(view, "cls")
            yield Route(name=name, pattern=entry, api=api)

    # A name may be repeated by different patterns (reverse() picks the last); walk each
    # name once.
    seen: set[str] = set()
    unique = []
    for route in walk(get_resolver().url_patterns, None):
        if route.name not in seen:
            seen.add(route.name)
            unique.append(route)
    # Logging out ends the caller's session: walk it last.
    yield from sorted(unique, key=lambda route: route.name.endswith("logout"))


def implemented_methods(route: Route) -> set[str]:
    """The methods a class-based view answers (function views: unknown, None)."""
    view = route.pattern.callback
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    if cls is None:
        return set()
    allowed = getattr(cls, "http_method_names", ())
    return {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)} & {
        m.upper() for m in allowed
    }


# --- The world -----------------------------------------------------------------------------


@pytest.fixture
def world(make_user: Any, make_workflow: Any, member: Any, client_for: Any, settings: Any) -> Any:
    from modelops.models import Deployment, TrainingRun
    from review.services import review_next, verdict_change_request, verdict_submit
    from tests.review.factories import case_in_review

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOOPGATE_METRICS_TOKEN = "metrics-token-for-the-walk"
    cache.clear()
    home = make_workflow("home", level="human_only")
    other = make_workflow("other", level="human_only", serving=False)
    version = Deployment.objects.get(workflow=home, role="serving").model_version
    Deployment.objects.create(workflow=home, model_version=version, role="shadow")

    users = {
        "upstream": make_user("line-camera"),
        "reviewer": make_user("rita"),
        "admin": make_user("ada"),
        "other_reviewer": make_user("otto"),
        "other_admin": make_user("olga"),
        "staff": make_user("stan"),
        "superuser": make_user("root", superuser=True),
    }
    users["staff"].is_staff = True
    users["staff"].save()
    member(users["upstream"], home, submit=True)
    member(users["reviewer"], home, review=True)
    member(users["admin"], home, review=True, admin=True)
    member(users["other_reviewer"], other, review=True)
    member(users["other_admin"], other, review=True, admin=True)

    # A blind case (human only) that the model scored: its output is for submitters and
    # admins, not for reviewers.
    case, _task = case_in_review(home, prediction=(version, "ok", 0.9), show_suggestion=False)
    _open_case, open_task = case_in_review(home)
    assignment = review_next(workflow=home, reviewer=users["reviewer"])
    verdict = verdict_submit(
        task_id=assignment.task_id, reviewer=users["reviewer"], label="ok", comment=""
    )
    verdict_change_request(
        reviewer=users["reviewer"], verdict_id=verdict.pk, label="crack", reason="walk"
    )
    from automation.models import Alert

    alert = Alert.objects.create(workflow=home, kind="input_drift", message="drift")
    run = TrainingRun.objects.create(
        workflow=home,
        architecture=version.architecture,
        input_size=version.input_size,
        seed=1,
        epochs_total=1,
        base_version=version,
    )
    from django.utils import timezone

    from integrations.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
    from workspace.services import workflow_token_create

    home_token, _key = workflow_token_create(workflow=home, actor=users["admin"], name="walk")
    from tests.conftest import image_bytes
    from workspace.services import label_example_add

    example = label_example_add(
        workflow=home, actor=users["admin"], label="ok", image_data=image_bytes("ok")
    )
    webhook = Webhook.objects.create(
        workflow=home, url="https://93.184.215.14/hook", events=["case.decided"], secret="s"
    )
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        event=WebhookEvent.objects.create(
            workflow=home, type="case.decided", ordering_key="k", payload={}
        ),
        ordering_key="k",
        status=DeliveryStatus.DEAD,
        next_attempt_at=timezone.now(),
    )
    params = {
        "slug": home.slug,
        "username": users["reviewer"].username,
        "token_id": home_token.token_id,
        "example_id": example.pk,
        "uidb64": "MQ",
        "token": "not-a-token",
        "webhook_id": webhook.pk,
        "delivery_id": delivery.pk,
        "case_id": str(case.pk),
        "task_id": open_task.pk,
        "verdict_id": verdict.pk,
        "version_id": version.pk,
        "run_id": run.pk,
        "alert_id": alert.pk,
        "role": "shadow",
        # The Django admin
        "app_label": "workflows",
        "object_id": str(home.pk),
        "content_type_id": 1,
        "id": users["reviewer"].pk,
    }
    clients: dict[str, APIClient] = {"anon": APIClient()}
    clients["upstream"] = client_for(users["upstream"])
    for actor in ("reviewer", "admin", "other_reviewer", "other_admin", "staff", "superuser"):
        client = APIClient()
        client.force_login(users[actor])
        clients[actor] = client
    return {"params": params, "clients": clients, "verdict_author": "reviewer"}


# Bodies valid enough that a request is judged on who sends it, not on its input.
BODIES: dict[str, dict[str, Any]] = {
    "workflow-list": {"slug": "walked", "name": "Walked", "labels": ["a", "b"]},
    "workflow-detail": {"name": "Walked"},
    "member-list": {"username": "walk-newcomer", "role": "reviewer"},
    "member-detail": {"role": "reviewer"},
    "token-list": {"name": "walk"},
    "workspace:create": {"slug": "walked", "name": "Walked", "labels": "a\nb"},
    "review-verdict": {"label": "ok"},
    "review-skip": {"reason": "unclear"},
    "review-change-request": {"label": "crack", "reason": "walk"},
    "review-change-decide": {"decision": "accept", "reason": "walk"},
    "workflow-automation": {"audit_rate": 0.1, "reason": "walk"},
    "workflow-automation-threshold": {"reason": "walk"},
    "deployment-end": {"reason": "walk"},
    "deployment-promote": {"reason": "walk"},
    "deployment-rollback": {"reason": "walk"},
    "deployment-canary": {"traffic_share": 0.1, "reason": "walk"},
    "training-run-cancel": {"reason": "walk"},
    "retrain-rule": {"enabled": False},
    "webhook-list": {"url": "https://93.184.215.14/hook", "events": ["case.decided"]},
    "webhook-detail": {"description": "walk"},
    "workflow-fallback": {"action": "escalate"},
}


def call(client: APIClient, method: str, url: str, route: Route) -> Any:
    data = BODIES.get(route.name)
    with transaction.atomic():
        if method == "GET":
            response = client.get(url)
        elif route.api:
            response = client.generic(
                method, url, data=_json(data or {}), content_type="application/json"
            )
        else:
            response = getattr(client, method.lower())(url, data or {})
        transaction.set_rollback(True)
    return response


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data)


def route_url(route: Route, params: dict[str, Any]) -> str:
    return reverse(route.name, kwargs={p: params[p] for p in route.params})


# --- The tests -----------------------------------------------------------------------------


def test_every_url_and_method_has_an_expectation() -> None:
    missing = []
    for route in routes():
        if route.name.startswith("admin:"):
            continue
        named = {method for (name, method) in EXPECT if name == route.name}
        if not named:
            missing.append(f"{route.name} (no entry at all)")
        for method in implemented_methods(route) - named:
            missing.append(f"{route.name} {method}")
    assert not missing, "decide who may call these, in EXPECT: " + ", ".join(missing)
    known = {route.name for route in routes()}
    stale = sorted({name for name, _ in EXPECT} - known)
    assert not stale, f"EXPECT names URLs that no longer exist: {stale}"


def test_only_the_allow_list_answers_without_an_identity() -> None:
    public = {name for (name, _), rule in EXPECT.items() if rule == PUBLIC} | ADMIN_PUBLIC
    assert public == PUBLIC_ALLOW_LIST


@pytest.mark.django_db
@pytest.mark.parametrize("actor", ACTORS)
def test_the_walk(actor: str, world: dict[str, Any]) -> None:
    client = world["clients"][actor]
    failures = []
    for route in routes():
        if route.name.startswith("admin:"):
            continue
        for (name, method), rule in EXPECT.items():
            if name != route.name:
                continue
            want = expected(rule, actor, api=route.api, verdict_author=world["verdict_author"])
            if want is None:
                continue
            url = route_url(route, world["params"])
            response = call(client, method, url, route)
            got = outcome(response, route.name)
            if not matches(got, want):
                failures.append(
                    f"{method} {url} ({route.name}, {rule}): want {want}, got {got} "
                    f"{response.status_code} {_snippet(response)}"
                )
    assert not failures, f"{actor}:\n" + "\n".join(failures)


def _snippet(response: Any) -> str:
    if response.get("Content-Type", "").startswith("application/json"):
        return response.content.decode()[:160]
    return response.get("Location", "")


@pytest.mark.django_db
@pytest.mark.parametrize("actor", [a for a in ACTORS if a not in ("staff", "superuser")])
def test_the_django_admin_is_closed_to_everyone_but_superusers(
    actor: str, world: dict[str, Any]
) -> None:
    _walk_admin(actor, world)


@pytest.mark.django_db
def test_the_django_admin_is_closed_to_staff_who_are_not_superusers(
    world: dict[str, Any],
) -> None:
    _walk_admin("staff", world)


def _walk_admin(actor: str, world: dict[str, Any]) -> None:
    client = world["clients"][actor]
    failures = []
    walked = 0
    for route in routes():
        if not route.name.startswith("admin:") or route.name in ADMIN_PUBLIC:
            continue
        url = route_url(route, world["params"])
        method = "GET"
        response = call(client, method, url, route)
        walked += 1
        if response.status_code == 200 or not matches(outcome(response), "denied"):
            failures.append(f"{method} {url} ({route.name}): {response.status_code}")
    assert walked > 20
    assert not failures, f"{actor}:\n" + "\n".join(failures)
