from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inference.loader import clear_cache
from tests.modelops import factories


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_model_cache() -> Any:
    """Versions in different tests share ids and paths; never serve a cached one across."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def weights_file(tmp_path: Path) -> Callable[..., Path]:
    def make(labels: tuple[str, ...] = factories.PART_LABELS, *, seed: int = 0) -> Path:
        return factories.tiny_weights(tmp_path / f"w-{len(labels)}-{seed}.pt", labels, seed=seed)

    return make


@pytest.fixture
def parts_workflow(make_workflow: Any) -> Any:
    """A workflow with the two labels the tiny models know, and no deployment yet."""
    return make_workflow("parts", level="shadow", serving=False, labels=list(factories.PART_LABELS))


@pytest.fixture
def two_versions(parts_workflow: Any, weights_file: Any) -> tuple[Any, Any]:
    """Version 1 serving and version 2 as shadow challenger in ``parts_workflow``."""
    first = factories.version_create(parts_workflow, weights_file(seed=1), factories.PART_LABELS)
    second = factories.version_create(parts_workflow, weights_file(seed=2), factories.PART_LABELS)
    factories.deploy(parts_workflow, first, "serving")
    factories.deploy(parts_workflow, second, "shadow")
    return first, second


@pytest.fixture
def people(parts_workflow: Any, make_user: Any, member: Any, client_for: Any) -> dict[str, Any]:
    """API clients: a workflow admin, a reviewer, a submitter, and a stranger."""
    users = {
        "admin": make_user("ada"),
        "reviewer": make_user("rita"),
        "submitter": make_user("cam"),
        "stranger": make_user("sam"),
    }
    member(users["admin"], parts_workflow, admin=True)
    member(users["reviewer"], parts_workflow, review=True)
    member(users["submitter"], parts_workflow, submit=True)
    return {
        **{role: client_for(user) for role, user in users.items()},
        "users": users,
    }
