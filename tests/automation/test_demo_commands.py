"""The demo commands: a (drifted) stream of synthetic cases, and simulated reviewers.

The workflow is at ``human_only`` here so that no model has to run: the commands'
own behaviour (submission through case_create, the answer key kept out of the cases,
claiming and answering through the review services) is what is tested.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from loopgate.demo import demo_truth_load, demo_truth_path
from workflows.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(
    automation_workflow: Any, make_user: Any, member: Any, settings: Any, tmp_path: Path
) -> Any:
    settings.VAR_DIR = tmp_path
    workflow = automation_workflow("surface-inspection", level="human_only")
    member(make_user("line-camera-1"), workflow, submit=True)
    member(make_user("reviewer"), workflow, review=True)
    return workflow


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_stream_submits_cases_and_keeps_the_answer_key_apart(demo: Any) -> None:
    output = run("demo_stream", "--cases", "6", "--seed", "4", "--drift", "lighting")
    assert "sent 6 cases to surface-inspection (6 new, 0 already there)" in output
    assert "drift: lighting" in output
    cases = list(Case.objects.filter(workflow=demo))
    assert len(cases) == 6
    assert {case.status for case in cases} == {"in_review"}
    truth = demo_truth_load("surface-inspection")
    assert set(truth) == {str(case.id) for case in cases}
    assert set(truth.values()) <= {"ok", "scratch", "crack", "stain"}
    for case in cases:
        assert set(case.metadata) == {"station", "stream"}, "no label in what reviewers see"
        assert case.submitted_by.username == "line-camera-1"
    assert demo_truth_path("surface-inspection").is_file()
    again = run("demo_stream", "--cases", "6", "--seed", "4", "--drift", "lighting")
    assert "(0 new, 6 already there)" in again, "the same seed is the same stream"


def test_simulated_reviewers_answer_through_the_review_services(demo: Any) -> None:
    run("demo_stream", "--cases", "5", "--seed", "1")
    output = run("demo_simulate_reviewers", "--accuracy", "1.0", "--limit", "3")
    assert output.startswith("3 verdicts (review 3), 0 deliberately wrong, 0 skipped")
    output = run("demo_simulate_reviewers", "--accuracy", "1.0")
    assert output.startswith("2 verdicts")
    truth = demo_truth_load("surface-inspection")
    for case in Case.objects.filter(workflow=demo):
        assert case.status == "decided" and case.decision_source == "human"
        assert case.human_label == truth[str(case.id)]
        assert case.verdicts.get().reviewer.username == "reviewer"


def test_wrong_answers_at_the_given_rate_and_unknown_cases_skipped(demo: Any) -> None:
    run("demo_stream", "--cases", "4", "--seed", "2")
    stranger = Case.objects.filter(workflow=demo).first()
    truth_file = demo_truth_path("surface-inspection")
    lines = [line for line in truth_file.read_text().splitlines() if str(stranger.id) not in line]
    truth_file.write_text("\n".join(lines) + "\n")
    output = run("demo_simulate_reviewers", "--accuracy", "0.0")
    assert output.startswith("3 verdicts (review 3), 3 deliberately wrong, 1 skipped")


def test_bad_arguments_are_refused(demo: Any) -> None:
    with pytest.raises(CommandError):
        run("demo_stream", "--cases", "0")
    with pytest.raises(CommandError):
        run("demo_stream", "--cases", "1", "--workflow", "nope")
    with pytest.raises(CommandError):
        run("demo_simulate_reviewers", "--accuracy", "1.5")
