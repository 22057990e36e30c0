"""Fixtures shared by the Django-side tests: users, workflows, the demo model, images."""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

REQUIRE_SERVICES = os.environ.get("LOOPGATE_REQUIRE_SERVICES") == "1"
ASSETS = Path(__file__).resolve().parents[1] / "inference" / "assets"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_postgres_and_redis() -> None:
    """Fail (in CI) or skip (a developer without them) when the real services are absent."""
    problems = []
    if connection.vendor != "postgresql":
        problems.append("DATABASE_URL does not point at PostgreSQL")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        problems.append("CELERY_BROKER_URL does not point at Redis")
    elif not _reachable("127.0.0.1", int(settings.CELERY_BROKER_URL.split(":")[2].split("/")[0])):
        problems.append("Redis is unreachable")
    if problems:
        message = "needs real PostgreSQL and Redis: " + "; ".join(problems)
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        message = "needs real PostgreSQL: DATABASE_URL does not point at it"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with an empty cache: rows cached by one test (the access cache,
    kernel.readcache) must not answer for another test's rows with the same names."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _claims_noted_afresh() -> None:
    """Each test's first claim notes itself (processing.services notes a process's claims
    at most once a second, D139; the database it noted them in was rolled back)."""
    from processing import services

    services._claim_recorded.clear()


@pytest.fixture(autouse=True)
def _isolated_media_root(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Each test stores uploads in its own folder, so it can assert what was stored."""
    try:
        django_settings = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        return
    django_settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def make_user(db: None) -> Callable[..., Any]:
    from django.contrib.auth import get_user_model

    def make(username: str, *, superuser: bool = False, password: str = "pw-for-tests-only") -> Any:
        user_model = get_user_model()
        if superuser:
            return user_model.objects.create_superuser(username=username, password=password)
        return user_model.objects.create_user(username=username, password=password)

    return make


@pytest.fixture
def demo_model_version(db: None) -> Any:
    """The shipped demo model, registered as a version (its file copied into media)."""
    import json

    from django.core.files import File

    from inference.loader import sha256_of
    from modelops.models import ModelVersion

    card = json.loads((ASSETS / "demo_model.json").read_text())
    version = ModelVersion(
        name="surface-cnn",
        version=1,
        architecture=card["architecture"],
        arch_kwargs=card.get("arch_kwargs") or {},
        labels=card["labels"],
        input_size=card["input_size"],
        mean=card["mean"],
        std=card["std"],
        sha256=sha256_of(ASSETS / "demo_model.pt"),
    )
    with (ASSETS / "demo_model.pt").open("rb") as handle:
        version.weights.save("surface-cnn-v1.pt", File(handle), save=False)
    version.save()
    return version


DEMO_LABELS = ("ok", "scratch", "crack", "stain")


@pytest.fixture
def make_workflow(db: None, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Make a workflow; with ``serving=True`` the demo model is deployed as its serving version."""
    from modelops.models import Deployment
    from workflows.models import Workflow

    def make(
        slug: str = "inspect", *, level: str = "shadow", serving: bool = True, **fields: Any
    ) -> Any:
        fields.setdefault("labels", list(DEMO_LABELS))
        fields.setdefault("audit_rate", 0.0)
        workflow = Workflow.objects.create(slug=slug, name=slug.title(), level=level, **fields)
        if serving:
            Deployment.objects.create(
                workflow=workflow,
                model_version=request.getfixturevalue("demo_model_version"),
                role="serving",
            )
        return workflow

    return make


@pytest.fixture
def member(db: None) -> Callable[..., Any]:
    from workflows.models import WorkflowMembership

    def grant(
        user: Any, workflow: Any, *, submit: bool = False, review: bool = False, admin: bool = False
    ) -> Any:
        return WorkflowMembership.objects.create(
            user=user, workflow=workflow, can_submit=submit, can_review=review, can_admin=admin
        )

    return grant


@pytest.fixture
def client_for() -> Callable[[Any], Any]:
    """An API client that sends a new API token of ``user`` (``client.api_token`` is its row)."""
    from rest_framework.test import APIClient

    from accounts.services import api_token_create

    def make(user: Any) -> APIClient:
        client = APIClient()
        token, key = api_token_create(user=user, name="tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        client.api_token = token
        return client

    return make


def image_bytes(
    label: str = "ok", *, seed: int = 0, fmt: str = "PNG", drift: str | None = None
) -> bytes:
    import numpy as np

    from inference.synthetic import generate_image

    image = generate_image(label, np.random.default_rng(seed), drift=drift)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def cache_calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """The keys the shared cache's ``method`` ("get", "add", …) is called with from now on."""
    from django.core.cache import cache

    keys: list[str] = []
    original = getattr(cache, method)

    def spy(key: str, *args: Any, **kwargs: Any) -> Any:
        keys.append(key)
        return original(key, *args, **kwargs)

    monkeypatch.setattr(cache, method, spy)
    return keys


def case_unsaved(workflow: Any, **fields: Any) -> Any:
    """A case as ``case_row`` stores it, not saved yet (for ``bulk_create``)."""
    from workflows.models import Case

    values: dict[str, Any] = {
        "image": "cases/test.png",
        "image_format": "PNG",
        "image_width": 8,
        "image_height": 8,
        "image_bytes": 64,
        "image_sha256": "0" * 64,
    }
    return Case(workflow=workflow, **{**values, **fields})


def case_row(workflow: Any, **fields: Any) -> Any:
    """A case row as stored, with a placeholder image name (no file, no event, no
    processing): for tests of what reads or writes rows."""
    case = case_unsaved(workflow, **fields)
    case.save(force_insert=True)
    return case


@pytest.fixture
def clean_media() -> Iterator[None]:
    yield
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
