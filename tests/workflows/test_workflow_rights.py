"""``workflow_rights`` (every workflow at once, for the navigation bar) gives the same
answer as ``has_right`` for every kind of membership."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.utils import timezone

from workflows.access import RIGHTS, has_right, workflow_rights

pytestmark = pytest.mark.django_db


def test_workflow_rights_agrees_with_has_right(
    make_user: Any, make_workflow: Any, member: Any
) -> None:
    user = make_user("mia")
    combinations = list(itertools.product((False, True), repeat=3))
    workflows = []
    for index, (submit, review, admin) in enumerate(combinations):
        workflow = make_workflow(f"w{index}", serving=False)
        member(user, workflow, submit=submit, review=review, admin=admin)
        workflows.append(workflow)
    make_workflow("not-a-member", serving=False)
    workflows[0].archived_at = timezone.now()
    workflows[0].save(update_fields=["archived_at"])

    rights = {entry.slug: entry for entry in workflow_rights(user)}
    assert set(rights) == {w.slug for w in workflows}, "members only"
    for workflow in workflows:
        expected = {right for right in RIGHTS if has_right(user, workflow, right)}
        assert rights[workflow.slug].rights == expected, workflow.slug
    assert rights["w0"].archived and not rights["w1"].archived


def test_superusers_hold_every_right_everywhere(make_user: Any, make_workflow: Any) -> None:
    make_workflow("one", serving=False)
    make_workflow("two", serving=False)
    everything = workflow_rights(make_user("root", superuser=True))
    assert [entry.slug for entry in everything] == ["one", "two"]
    assert all(entry.rights == frozenset(RIGHTS) for entry in everything)


def test_nobody_signed_in_holds_nothing(make_workflow: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    make_workflow("one", serving=False)
    assert workflow_rights(AnonymousUser()) == []
