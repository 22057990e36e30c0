"""The paired comparison on simulated labels: the right cases, the right numbers, and a
verdict that follows the exact McNemar test."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.utils import timezone

from decisions.stats import mcnemar_exact
from modelops.models import TrainingRun
from tests.modelops import factories
from workflows.models import Case, CaseStatus, Prediction

pytestmark = pytest.mark.django_db

LABELS = factories.PART_LABELS


def simulate(
    workflow: Any,
    baseline: Any,
    challenger: Any,
    n: int,
    *,
    baseline_accuracy: float,
    challenger_accuracy: float,
    seed: int = 0,
) -> list[Case]:
    """``n`` labelled cases both versions scored, right with the given probabilities."""
    rng = random.Random(seed)
    image = factories.png_bytes(factories.part_image("ok", 0))
    cases = []
    for k in range(n):
        truth = LABELS[k % 2]
        wrong = LABELS[(k + 1) % 2]
        case = Case.objects.create(
            workflow=workflow,
            image=f"cases/sim/{k}.png",
            image_format="PNG",
            image_width=40,
            image_height=40,
            image_bytes=len(image),
            image_sha256="0" * 64,
            status=CaseStatus.DECIDED,
            human_label=truth,
            labelled_at=timezone.now(),
        )
        for version, accuracy, role, latency in (
            (baseline, baseline_accuracy, "serving", 4.0),
            (challenger, challenger_accuracy, "shadow", 6.0),
        ):
            right = rng.random() < accuracy
            confidence = 0.55 + 0.4 * rng.random()
            Prediction.objects.create(
                case=case,
                model_version=version,
                role=role,
                label=truth if right else wrong,
                confidence=confidence,
                scores={truth if right else wrong: confidence},
                latency_ms=latency + rng.random(),
            )
        cases.append(case)
    return cases


def correctness(cases: list[Case], version: Any) -> list[bool]:
    return [
        Prediction.objects.get(case=case, model_version=version).label == case.human_label
        for case in cases
    ]


def test_a_better_challenger_is_called_better_with_the_exact_numbers(
    people: dict[str, Any], parts_workflow: Any, two_versions: Any
) -> None:
    baseline, challenger = two_versions
    cases = simulate(
        parts_workflow, baseline, challenger, 240, baseline_accuracy=0.72, challenger_accuracy=0.9
    )
    # Cases only one version scored, gold cases and unlabelled cases do not count.
    extra = simulate(
        parts_workflow, baseline, challenger, 6, baseline_accuracy=1, challenger_accuracy=1, seed=1
    )
    Prediction.objects.filter(case=extra[0], model_version=challenger).delete()
    Case.objects.filter(pk=extra[1].pk).update(is_gold=True)
    Case.objects.filter(pk=extra[2].pk).update(human_label="")
    trained_on = extra[3:]
    TrainingRun.objects.create(
        workflow=parts_workflow,
        status="succeeded",
        architecture="squeezenet1_1",
        input_size=32,
        seed=1,
        epochs_total=1,
        result_version=challenger,
        split={"train": [str(trained_on[0].id)], "val": [str(trained_on[1].id)], "test": []},
    )
    response = people["admin"].get("/api/v1/workflows/parts/model-comparison/")
    assert response.status_code == 200, response.content
    body = response.json()
    expected = mcnemar_exact(
        correctness([*cases, trained_on[2]], baseline),
        correctness([*cases, trained_on[2]], challenger),
    )
    assert body["n_cases"] == 241
    assert body["excluded_training_cases"] == 2
    assert body["mcnemar"]["baseline_only_correct"] == expected.b
    assert body["mcnemar"]["challenger_only_correct"] == expected.c
    assert body["mcnemar"]["p_value"] == pytest.approx(expected.p_value)
    assert body["verdict"] == "challenger_better"
    assert "tiny:v2 is better than tiny:v1" in body["verdict_text"]
    base, chal = body["baseline"], body["challenger"]
    assert base["accuracy"]["n"] == chal["accuracy"]["n"] == 241
    assert base["accuracy"]["low"] < base["accuracy"]["estimate"] < base["accuracy"]["high"]
    assert chal["accuracy"]["estimate"] > base["accuracy"]["estimate"]
    assert sum(map(sum, chal["confusion"])) == 241
    assert [c["label"] for c in chal["per_class"]] == list(LABELS)
    assert sum(c["support"] for c in chal["per_class"]) == 241
    assert len(chal["reliability"]) == 10
    assert 0.0 <= chal["expected_calibration_error"] <= 1.0
    assert 4.0 <= base["latency_ms"]["p50"] <= 5.0 and 6.0 <= chal["latency_ms"]["p50"] <= 7.0


def test_equal_versions_show_no_difference_and_few_cases_no_verdict(
    people: dict[str, Any], parts_workflow: Any, two_versions: Any
) -> None:
    baseline, challenger = two_versions
    simulate(
        parts_workflow, baseline, challenger, 12, baseline_accuracy=0.8, challenger_accuracy=0.8
    )
    body = people["admin"].get("/api/v1/workflows/parts/model-comparison/").json()
    assert body["verdict"] == "not_enough_data" and body["n_cases"] == 12
    simulate(
        parts_workflow,
        baseline,
        challenger,
        200,
        baseline_accuracy=0.8,
        challenger_accuracy=0.8,
        seed=5,
    )
    body = (
        people["admin"]
        .get(
            f"/api/v1/workflows/parts/model-comparison/?baseline={baseline.pk}&challenger={challenger.pk}"
        )
        .json()
    )
    assert body["verdict"] == "no_difference", body["verdict_text"]


def test_a_worse_challenger_is_called_worse(
    people: dict[str, Any], parts_workflow: Any, two_versions: Any
) -> None:
    baseline, challenger = two_versions
    simulate(
        parts_workflow, baseline, challenger, 200, baseline_accuracy=0.92, challenger_accuracy=0.7
    )
    body = people["admin"].get("/api/v1/workflows/parts/model-comparison/").json()
    assert body["verdict"] == "baseline_better"


def test_comparison_page_draws_the_pictures(
    people: dict[str, Any], parts_workflow: Any, two_versions: Any, client: Any
) -> None:
    baseline, challenger = two_versions
    simulate(
        parts_workflow, baseline, challenger, 60, baseline_accuracy=0.7, challenger_accuracy=0.95
    )
    client.force_login(people["users"]["admin"])
    response = client.get("/models/parts/compare/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 3
    assert "Confusion matrices" in html and "Reliability" in html
    assert "tiny:v2 is better" in html
    client.force_login(people["users"]["reviewer"])
    assert client.get("/models/parts/compare/").status_code == 403
    client.force_login(people["users"]["stranger"])
    assert client.get("/models/parts/compare/").status_code == 404


def test_only_admins_compare(people: dict[str, Any], two_versions: Any) -> None:
    assert people["reviewer"].get("/api/v1/workflows/parts/model-comparison/").status_code == 403
    assert people["stranger"].get("/api/v1/workflows/parts/model-comparison/").status_code == 404


def test_a_repeated_image_counts_once_and_goes_with_its_training_group(
    parts_workflow: Any, two_versions: Any
) -> None:
    from modelops.comparison import paired_cases

    baseline, challenger = two_versions
    cases = simulate(
        parts_workflow, baseline, challenger, 40, baseline_accuracy=0.8, challenger_accuracy=0.9
    )
    # cases 1-5 repeat case 0; case 7 repeats case 6, which the challenger trained on
    Case.objects.filter(pk__in=[c.pk for c in cases[1:6]]).update(duplicate_of=cases[0])
    Case.objects.filter(pk=cases[7].pk).update(duplicate_of=cases[6])
    TrainingRun.objects.create(
        workflow=parts_workflow,
        status="succeeded",
        architecture="squeezenet1_1",
        input_size=32,
        seed=1,
        epochs_total=1,
        result_version=challenger,
        split={"train": [str(cases[6].pk)], "val": [], "test": []},
    )
    pairs, left_out = paired_cases(
        workflow=parts_workflow, baseline=baseline, challenger=challenger
    )
    ids = {pair.case_id for pair in pairs}
    assert left_out == 2, "the training case and its repeat"
    assert str(cases[7].pk) not in ids and str(cases[6].pk) not in ids
    assert len(pairs) == 40 - 5 - 2
    assert not ids & {str(c.pk) for c in cases[1:6]}
