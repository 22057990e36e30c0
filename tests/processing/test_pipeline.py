"""Processing with the real demo model: every level routes as the table in
docs/architecture.md ("Automation levels") says, processing is idempotent, and a model
that fails sends cases to humans."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from decisions.routing import Level
from inference.loader import clear_cache
from processing import services
from review.models import ReviewTask
from tests.conftest import image_bytes
from workflows import services as case_services
from workflows.models import Case, CaseStatus, Prediction

pytestmark = pytest.mark.django_db


@pytest.fixture
def system(make_user: Any, member: Any, client_for: Any) -> Any:
    def setup(workflow: Any) -> Any:
        user = make_user(f"camera-{workflow.slug}")
        member(user, workflow, submit=True)
        return client_for(user)

    return setup


def submit(client: Any, slug: str, capture: Any, *, label: str = "ok", seed: int = 0) -> dict:
    buffer = io.BytesIO(image_bytes(label, seed=seed))
    buffer.name = "part.png"
    with capture(execute=True):
        response = client.post(
            f"/api/v1/workflows/{slug}/cases/", {"image": buffer}, format="multipart"
        )
    assert response.status_code == 201, response.content
    return client.get(f"/api/v1/cases/{response.json()['id']}/").json()


def new_case(workflow: Any, *, seed: int = 0) -> Case:
    return services.case_create(
        workflow=workflow,
        image_data=image_bytes(seed=seed),
        external_id=None,
        metadata={},
        submitted_by=None,
    ).case


class TestLevels:
    def test_human_only_does_not_run_the_model(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("h", level=Level.HUMAN_ONLY)
        case = submit(system(workflow), "h", django_capture_on_commit_callbacks)
        assert case["status"] == "in_review"
        assert case["predictions"] == []
        assert case["review_reason"] == "human_only"
        assert case["routing"]["suggestion_visible"] is False

    def test_shadow_records_the_prediction_but_hides_it(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("s", level=Level.SHADOW)
        case = submit(system(workflow), "s", django_capture_on_commit_callbacks, label="crack")
        assert case["status"] == "in_review"
        assert case["review_reason"] == "shadow"
        assert case["routing"]["suggestion_visible"] is False
        [prediction] = case["predictions"]
        assert prediction["role"] == "serving"
        assert prediction["model_version"] == "surface-cnn:v1"
        assert set(prediction["scores"]) == {"ok", "scratch", "crack", "stain"}
        assert sum(prediction["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert ReviewTask.objects.get(case_id=case["id"]).show_suggestion is False

    def test_assistance_shows_the_suggestion(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("a", level=Level.ASSISTANCE)
        case = submit(system(workflow), "a", django_capture_on_commit_callbacks)
        assert case["status"] == "in_review"
        assert case["review_reason"] == "assistance"
        assert case["routing"]["suggestion_visible"] is True
        assert ReviewTask.objects.get(case_id=case["id"]).show_suggestion is True

    def test_partial_decides_at_or_above_threshold_and_reviews_below(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("p", level=Level.PARTIAL, confidence_threshold=0.0)
        client = system(workflow)
        decided = submit(client, "p", django_capture_on_commit_callbacks, seed=1)
        assert decided["status"] == "decided"
        decision = decided["decision"]
        assert decision["source"] == "model"
        assert decision["model_version"] == "surface-cnn:v1"
        assert decision["level"] == "partial"
        assert decision["threshold"] == 0.0
        assert decision["label"] == decided["predictions"][0]["label"]
        assert decision["confidence"] == decided["predictions"][0]["confidence"]

        workflow.confidence_threshold = 1.0
        workflow.save()
        reviewed = submit(client, "p", django_capture_on_commit_callbacks, seed=2)
        confidence = reviewed["predictions"][0]["confidence"]
        if confidence < 1.0:
            assert reviewed["status"] == "in_review"
            assert reviewed["review_reason"] == "low_confidence"
            assert reviewed["routing"]["suggestion_visible"] is True

    def test_threshold_splits_cases_exactly_at_their_confidence(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("edge", level=Level.PARTIAL, confidence_threshold=0.0)
        client = system(workflow)
        first = submit(client, "edge", django_capture_on_commit_callbacks, seed=7)
        confidence = first["predictions"][0]["confidence"]
        workflow.confidence_threshold = confidence
        workflow.save()
        again = submit(client, "edge", django_capture_on_commit_callbacks, seed=7)
        assert again["predictions"][0]["confidence"] == confidence
        assert again["status"] == "decided"

    def test_full_decides_and_audits_a_share(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("f", level=Level.FULL, audit_rate=0.0)
        client = system(workflow)
        case = submit(client, "f", django_capture_on_commit_callbacks)
        assert case["status"] == "decided"
        assert case["decision"]["source"] == "model"
        assert not ReviewTask.objects.filter(case_id=case["id"]).exists()

        workflow.audit_rate = 1.0
        workflow.save()
        audited = submit(client, "f", django_capture_on_commit_callbacks, seed=3)
        assert audited["status"] == "decided"
        assert audited["review_reason"] == "audit"
        assert audited["routing"]["audit"] is True
        task = ReviewTask.objects.get(case_id=audited["id"])
        assert task.kind == "audit"
        assert task.show_suggestion is False

    def test_a_reviewer_cannot_read_the_model_output_of_a_blind_audit(
        self,
        make_workflow: Any,
        system: Any,
        make_user: Any,
        member: Any,
        client_for: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        workflow = make_workflow("blind", level=Level.FULL, audit_rate=1.0)
        audited = submit(system(workflow), "blind", django_capture_on_commit_callbacks)
        assert audited["review_reason"] == "audit"
        reviewer = make_user("blind-reviewer")
        member(reviewer, workflow, review=True)
        seen = client_for(reviewer).get(f"/api/v1/cases/{audited['id']}/").json()
        assert seen["status"] == "decided"
        assert seen["decision"] is None
        assert seen["predictions"] == []
        assert seen["routing"] is None
        assert seen["review_reason"] is None
        events = client_for(reviewer).get(f"/api/v1/cases/{audited['id']}/events/").json()
        assert all(event["data"] == {} for event in events)

    def test_per_class_rule_sends_a_class_to_review(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("cls", level=Level.FULL)
        client = system(workflow)
        first = submit(client, "cls", django_capture_on_commit_callbacks, seed=11)
        label = first["predictions"][0]["label"]
        workflow.class_thresholds = {label: None}
        workflow.save()
        second = submit(client, "cls", django_capture_on_commit_callbacks, seed=11)
        assert second["status"] == "in_review"
        assert second["review_reason"] == "class_rule"

    def test_canary_share_one_decides_with_the_canary(
        self,
        make_workflow: Any,
        system: Any,
        demo_model_version: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        from modelops.models import Deployment, ModelVersion

        canary_version = ModelVersion.objects.create(
            **{
                f.name: getattr(demo_model_version, f.name)
                for f in ModelVersion._meta.fields
                if f.name not in {"id", "version", "created_at"}
            },
            version=2,
        )
        workflow = make_workflow("c", level=Level.FULL)
        Deployment.objects.create(
            workflow=workflow, model_version=canary_version, role="canary", traffic_share=1.0
        )
        case = submit(system(workflow), "c", django_capture_on_commit_callbacks)
        assert case["decision"]["model_version"] == "surface-cnn:v2"
        assert [p["role"] for p in case["predictions"]] == ["canary"]


class TestFaults:
    def test_missing_weights_go_to_review_with_the_reason(
        self,
        make_workflow: Any,
        system: Any,
        demo_model_version: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        clear_cache()
        demo_model_version.weights.storage.delete(demo_model_version.weights.name)
        workflow = make_workflow("m", level=Level.FULL)
        case = submit(system(workflow), "m", django_capture_on_commit_callbacks)
        assert case["status"] == "in_review"
        assert case["review_reason"] == "model_error"
        assert "could not be loaded" in case["failure_reason"]
        assert case["decision"] is None
        assert case["predictions"] == []

    def test_corrupt_weights_go_to_review(
        self,
        make_workflow: Any,
        system: Any,
        demo_model_version: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:
        clear_cache()
        path = demo_model_version.weights.path
        with open(path, "r+b") as handle:
            handle.seek(200)
            handle.write(b"\x00garbage\x00" * 50)
        workflow = make_workflow("corrupt", level=Level.PARTIAL, confidence_threshold=0.0)
        case = submit(system(workflow), "corrupt", django_capture_on_commit_callbacks)
        assert case["status"] == "in_review"
        assert case["review_reason"] == "model_error"
        assert case["decision"] is None

    def test_no_serving_model_goes_to_review(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("none", level=Level.FULL, serving=False)
        case = submit(system(workflow), "none", django_capture_on_commit_callbacks)
        assert case["status"] == "in_review"
        assert case["review_reason"] == "model_error"
        assert "no serving model" in case["failure_reason"]

    def test_processing_twice_decides_once(
        self, make_workflow: Any, system: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        workflow = make_workflow("idem", level=Level.FULL)
        case = submit(system(workflow), "idem", django_capture_on_commit_callbacks)
        events_before = Case.objects.get(id=case["id"]).events.count()
        assert services.cases_process(case_ids=[case["id"]]) == 0
        assert Prediction.objects.filter(case_id=case["id"]).count() == 1
        assert Case.objects.get(id=case["id"]).events.count() == events_before

    def test_a_redelivered_case_mid_processing_is_finished_once(
        self, make_workflow: Any, demo_model_version: Any, make_user: Any
    ) -> None:
        """A worker died after scoring: the prediction exists, the case is still processing."""
        workflow = make_workflow("crash", level=Level.FULL)
        case = new_case(workflow)
        assert case.status == CaseStatus.RECEIVED
        services.cases_process(case_ids=[str(case.id)])
        Case.objects.filter(id=case.id).update(
            status=CaseStatus.PROCESSING,
            processing_started_at=timezone.now() - timedelta(hours=1),
            decision_source="",
        )
        # A live duplicate delivery of a case being processed right now does nothing.
        Case.objects.filter(id=case.id).update(processing_started_at=timezone.now())
        assert services.cases_process(case_ids=[str(case.id)]) == 0
        # Once stalled, the sweeper's delivery finishes it, reusing the prediction.
        Case.objects.filter(id=case.id).update(
            processing_started_at=timezone.now() - timedelta(hours=1)
        )
        assert services.cases_stalled(older_than=timedelta(minutes=1)) == [str(case.id)]
        assert services.cases_process(case_ids=[str(case.id)]) == 1
        assert Prediction.objects.filter(case=case).count() == 1
        case.refresh_from_db()
        assert case.status == CaseStatus.DECIDED

    def test_a_retried_case_keeps_the_versions_it_started_with(
        self, make_workflow: Any, demo_model_version: Any
    ) -> None:
        """A promotion between two attempts does not change which version decides."""
        from modelops.models import Deployment, ModelVersion

        workflow = make_workflow("keep", level=Level.FULL)
        case = new_case(workflow)
        first_plan = {"deciding": demo_model_version.pk, "role": "serving", "shadows": []}
        Case.objects.filter(id=case.id).update(planned_versions=first_plan)
        promoted = ModelVersion.objects.create(
            **{
                f.name: getattr(demo_model_version, f.name)
                for f in ModelVersion._meta.fields
                if f.name not in {"id", "version", "created_at"}
            },
            version=2,
        )
        Deployment.objects.filter(workflow=workflow).update(active=False)
        Deployment.objects.create(workflow=workflow, model_version=promoted, role="serving")
        services.cases_process(case_ids=[str(case.id)])
        case.refresh_from_db()
        assert case.decision_model_version_id == demo_model_version.pk
        assert case.planned_versions == first_plan

        fresh = new_case(workflow, seed=1)
        services.cases_process(case_ids=[str(fresh.id)])
        fresh.refresh_from_db()
        assert fresh.decision_model_version_id == promoted.pk
        assert fresh.planned_versions["deciding"] == promoted.pk

    def test_a_case_that_keeps_killing_workers_goes_to_humans(self, make_workflow: Any) -> None:
        workflow = make_workflow("poison", level=Level.FULL)
        case = new_case(workflow)
        Case.objects.filter(id=case.id).update(
            status=CaseStatus.PROCESSING,
            processing_attempts=services.MAX_PROCESSING_ATTEMPTS,
            processing_started_at=timezone.now() - timedelta(hours=1),
        )
        assert services.cases_process(case_ids=[str(case.id)]) == 1
        case.refresh_from_db()
        assert case.status == CaseStatus.IN_REVIEW
        assert case.review_reason == "model_error"
        assert "attempts" in case.failure_reason

    def test_batching_scores_waiting_cases_of_the_workflow_together(
        self, make_workflow: Any
    ) -> None:
        workflow = make_workflow("batch", level=Level.FULL)
        for i in range(5):
            new_case(workflow, seed=i)
        assert services.workflow_drain(workflow_id=workflow.id) == 5
        assert Case.objects.filter(status=CaseStatus.DECIDED).count() == 5
        # One batch: every case's prediction has the batch's latency.
        assert len(set(Prediction.objects.values_list("latency_ms", flat=True))) == 1

    def test_a_mixed_batch_claims_only_what_has_work_left(self, make_workflow: Any) -> None:
        """One batch holding a waiting, a decided, a live and a stalled case."""
        workflow = make_workflow("mixed", level=Level.FULL)
        cases = [new_case(workflow, seed=i) for i in range(4)]
        waiting, decided, live, stalled = cases
        services.cases_process(case_ids=[str(decided.id)])
        long_ago = timezone.now() - timedelta(hours=1)
        Case.objects.filter(id=live.id).update(
            status=CaseStatus.PROCESSING, processing_started_at=timezone.now()
        )
        Case.objects.filter(id=stalled.id).update(
            status=CaseStatus.PROCESSING, processing_started_at=long_ago, processing_attempts=1
        )
        decided_events = decided.events.count()

        routed = services.cases_process(case_ids=[str(c.id) for c in cases])

        assert routed == 2
        statuses = dict(Case.objects.filter(workflow=workflow).values_list("id", "status"))
        assert statuses[waiting.id] == CaseStatus.DECIDED
        assert statuses[stalled.id] == CaseStatus.DECIDED
        assert statuses[live.id] == CaseStatus.PROCESSING
        assert decided.events.count() == decided_events
        assert Prediction.objects.filter(case=decided).count() == 1
        assert Prediction.objects.filter(case=live).count() == 0
        kinds = list(stalled.events.values_list("kind", flat=True))
        assert kinds.count("retry") == 1
        assert Case.objects.get(id=stalled.id).processing_attempts == 2
        started = waiting.events.get(kind="status", to_status=CaseStatus.PROCESSING)
        assert started.from_status == CaseStatus.RECEIVED
        assert started.data == {"attempt": 1}

    def test_a_prediction_stored_by_a_racing_worker_is_reused(
        self, make_workflow: Any, monkeypatch: Any
    ) -> None:
        """Another delivery stored one case's prediction while this batch was scoring."""
        workflow = make_workflow("race", level=Level.FULL)
        cases = [new_case(workflow, seed=i) for i in range(3)]
        real_predict = services.predict_images_with_embeddings
        theirs: list[Prediction] = []

        def predict_while_another_worker_stores(version: Any, images: Any) -> Any:
            results, embeddings = real_predict(version, images)
            theirs.append(
                Prediction.objects.create(
                    case=cases[1],
                    model_version=version,
                    role="serving",
                    scores=results[1].scores_dict(),
                    label=results[1].label,
                    confidence=results[1].confidence,
                )
            )
            return results, embeddings

        monkeypatch.setattr(
            services, "predict_images_with_embeddings", predict_while_another_worker_stores
        )
        assert services.cases_process(case_ids=[str(c.id) for c in cases]) == 3
        assert Prediction.objects.filter(case__workflow=workflow).count() == 3
        racer = Case.objects.get(id=cases[1].id)
        assert racer.deciding_prediction_id == theirs[0].pk
        assert racer.status == CaseStatus.DECIDED


class TestStateMachine:
    @pytest.mark.parametrize(
        ("start", "target"),
        [
            (CaseStatus.DECIDED, CaseStatus.PROCESSING),
            (CaseStatus.IN_REVIEW, CaseStatus.RECEIVED),
            (CaseStatus.RECEIVED, CaseStatus.DECIDED),
            (CaseStatus.FAILED, CaseStatus.DECIDED),
        ],
    )
    def test_bad_moves_are_refused_and_leave_no_event(
        self, make_workflow: Any, start: str, target: str
    ) -> None:
        workflow = make_workflow("sm", level=Level.HUMAN_ONLY, serving=False)
        case = new_case(workflow)
        Case.objects.filter(id=case.id).update(status=start)
        case.refresh_from_db()
        events = case.events.count()
        with pytest.raises(case_services.InvalidTransition):
            case_services.case_transition(
                case=case, to_status=target, actor_type="system", reason="test"
            )
        assert case.events.count() == events
        assert Case.objects.get(id=case.id).status == start

    def test_a_batch_with_one_bad_move_changes_nothing(self, make_workflow: Any) -> None:
        workflow = make_workflow("smb", level=Level.HUMAN_ONLY, serving=False)
        cases = [new_case(workflow, seed=i) for i in range(2)]
        # Both are in review (human only); one is moved back to received.
        Case.objects.filter(id=cases[0].id).update(status=CaseStatus.RECEIVED)
        for case in cases:
            case.refresh_from_db()
        events = sum(case.events.count() for case in cases)
        with pytest.raises(case_services.InvalidTransition):
            case_services.cases_transition(
                cases=cases, to_status=CaseStatus.PROCESSING, actor_type="system", reason="t"
            )
        assert sum(case.events.count() for case in cases) == events
        statuses = set(Case.objects.filter(workflow=workflow).values_list("status", flat=True))
        assert statuses == {CaseStatus.RECEIVED, CaseStatus.IN_REVIEW}

    def test_every_status_has_a_row_in_the_table(self) -> None:
        assert set(case_services.CASE_TRANSITIONS) == set(CaseStatus.values)
