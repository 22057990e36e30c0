"""``manage.py automation_set``: the command line goes through the same gate and log."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from automation.models import LevelChange

pytestmark = pytest.mark.django_db


def run(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("automation_set", *args, stdout=out)
    return json.loads(out.getvalue())


BYPASS = (
    "--level",
    "full",
    "--min-evidence",
    "0",
    "--target-accuracy",
    "0",
    "--audit-rate",
    "0",
    "--reason",
    "x",
)


def test_the_bypass_is_refused_with_the_missing_evidence(automation_workflow: Any) -> None:
    workflow = automation_workflow("line", level="shadow")
    with pytest.raises(CommandError) as refused:
        run("line", *BYPASS)
    message = str(refused.value)
    assert message.startswith("refused (insufficient_evidence): cannot raise the level to full")
    assert "only 0 human-labelled cases, 100 needed" in message
    workflow.refresh_from_db()
    assert workflow.level == "shadow"
    assert not LevelChange.objects.exists()


def test_a_change_with_evidence_is_logged_with_who_and_why(
    automation_workflow: Any, labelled: Any, make_user: Any
) -> None:
    workflow = automation_workflow("line", level="shadow")
    labelled.simulate(workflow, 200, accuracy=0.98, reason="shadow", seed=2)
    make_user("alice")
    change = run("line", "--level", "partial", "--reason", "earned", "--by", "alice")
    assert (change["from_level"], change["to_level"]) == ("shadow", "partial")
    assert change["actor"] == "alice" and change["reason"] == "earned"
    assert change["overridden"] is False and change["evidence"]["gate"]["sufficient"] is True


def test_loosening_at_full_is_judged_like_anywhere_else(automation_workflow: Any) -> None:
    automation_workflow("line", level="full")
    with pytest.raises(CommandError, match="cannot loosen audit_rate at full"):
        run("line", "--audit-rate", "0.02", "--reason", "less audit")
    assert run("line", "--audit-rate", "0.5", "--reason", "more audit")["overridden"] is False


def test_override_needs_a_named_superuser(automation_workflow: Any, make_user: Any) -> None:
    workflow = automation_workflow("line", level="shadow")
    with pytest.raises(CommandError, match="--override needs --by"):
        run("line", *BYPASS, "--override")
    make_user("alice")
    with pytest.raises(CommandError, match=r"refused \(override\): only a superuser"):
        run("line", *BYPASS, "--override", "--by", "alice")
    assert not LevelChange.objects.exists()
    make_user("root", superuser=True)
    change = run("line", *BYPASS, "--override", "--by", "root")
    assert change["overridden"] is True and change["actor"] == "root"
    workflow.refresh_from_db()
    assert workflow.level == "full" and LevelChange.objects.get().overridden


def test_unknown_workflow_user_and_bad_input(automation_workflow: Any) -> None:
    automation_workflow("line", level="shadow")
    with pytest.raises(CommandError, match="no workflow 'nope'"):
        run("nope", "--level", "shadow", "--reason", "x")
    with pytest.raises(CommandError, match="no user 'ghost'"):
        run("line", "--level", "assistance", "--reason", "x", "--by", "ghost")
    with pytest.raises(CommandError, match="class_thresholds: unknown label 'dent'"):
        run("line", "--class-thresholds", '{"dent": 0.5}', "--reason", "x")
    with pytest.raises(CommandError, match="nothing to change"):
        run("line", "--reason", "x")
