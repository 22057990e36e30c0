from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.review import factories


@pytest.fixture
def workflow(db: None) -> Any:
    return factories.workflow_create("inspect")


@pytest.fixture
def reviewer(workflow: Any) -> Any:
    return factories.reviewer_create("rita", workflow)


@pytest.fixture
def make_reviewer(db: None) -> Callable[..., Any]:
    return factories.reviewer_create


@pytest.fixture
def queue_case(db: None) -> Callable[..., Any]:
    return factories.case_in_review


@pytest.fixture
def stub_model_version(db: None) -> Any:
    return factories.model_version_create()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Tests create many users; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
