"""Deployments: canary traffic share and per-case stability, shadow challengers, blue/green
promotion and rollback (atomic, audit-logged, never touching the automation level)."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from modelops.models import Deployment, DeploymentEvent
from modelops.selectors import deployment_plan, unit_draw
from processing.services import cases_process
from tests.modelops import factories
from workflows.models import Case, Prediction

pytestmark = pytest.mark.django_db


def active_roles(workflow: Any) -> dict[str, str]:
    return {
        d.role: d.model_version.tag
        for d in Deployment.objects.filter(workflow=workflow, active=True).select_related(
            "model_version"
        )
    }


class TestCanary:
    def test_share_holds_within_tolerance_and_each_case_keeps_its_version(
        self, parts_workflow: Any, two_versions: Any, weights_file: Any
    ) -> None:
        serving, _shadow = two_versions
        canary = factories.version_create(
            parts_workflow, weights_file(seed=3), factories.PART_LABELS
        )
        factories.deploy(parts_workflow, canary, "canary", share=0.1)
        case_ids = [str(uuid.UUID(int=k * 7919 + 13)) for k in range(2000)]
        plans = {
            cid: deployment_plan(workflow_id=parts_workflow.pk, case_id=cid) for cid in case_ids
        }
        on_canary = [cid for cid, plan in plans.items() if plan.deciding_role == "canary"]
        n, p = len(case_ids), 0.1
        # 4.5 standard deviations: a false alarm about once in 150,000 runs.
        assert abs(len(on_canary) - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))
        for cid in case_ids[:300]:
            again = deployment_plan(workflow_id=parts_workflow.pk, case_id=cid)
            assert again.deciding == plans[cid].deciding
        for plan in plans.values():
            expected = canary if plan.deciding_role == "canary" else serving
            assert plan.deciding == expected
            # The shadow challenger runs on every case, whoever decides.
            assert [v.tag for v in plan.shadows] == ["tiny:v2"]

    def test_raising_the_share_only_adds_cases(self) -> None:
        draws = [unit_draw(f"canary:{uuid.UUID(int=k)}") for k in range(20_000)]
        at_5 = {k for k, d in enumerate(draws) if d < 0.05}
        at_20 = {k for k, d in enumerate(draws) if d < 0.20}
        assert at_5 < at_20
        assert abs(len(at_20) / len(draws) - 0.20) < 0.015

    def test_every_prediction_records_its_version_and_role(
        self, parts_workflow: Any, two_versions: Any, weights_file: Any
    ) -> None:
        canary = factories.version_create(
            parts_workflow, weights_file(seed=3), factories.PART_LABELS
        )
        factories.deploy(parts_workflow, canary, "canary", share=0.5)
        cases = [
            factories.case_create(parts_workflow, factories.part_image("ok", k)) for k in range(16)
        ]
        assert cases_process(case_ids=[str(c.id) for c in cases]) == 16
        for case in Case.objects.filter(workflow=parts_workflow):
            roles = dict(
                Prediction.objects.filter(case=case).values_list("model_version__version", "role")
            )
            decided_by_canary = unit_draw(f"canary:{case.id}") < 0.5
            if decided_by_canary:
                assert roles == {3: "canary", 2: "shadow"}
            else:
                assert roles == {1: "serving", 2: "shadow"}
            assert case.deciding_prediction.role == ("canary" if decided_by_canary else "serving")


class TestDeployApi:
    def test_deploy_replace_and_end_a_shadow(
        self, people: dict[str, Any], parts_workflow: Any, two_versions: Any, weights_file: Any
    ) -> None:
        third = factories.version_create(
            parts_workflow, weights_file(seed=3), factories.PART_LABELS
        )
        client = people["admin"]
        response = client.post(
            "/api/v1/workflows/parts/deployments/",
            {"model_version": third.pk, "role": "shadow", "reason": "try the May retrain"},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert active_roles(parts_workflow) == {"serving": "tiny:v1", "shadow": "tiny:v3"}
        event = DeploymentEvent.objects.filter(action="deploy").get()
        assert (event.from_version.tag, event.to_version.tag, event.reason) == (
            "tiny:v2",
            "tiny:v3",
            "try the May retrain",
        )
        response = client.post(
            "/api/v1/workflows/parts/deployments/shadow/end/", {"reason": "done"}, format="json"
        )
        assert response.status_code == 200
        assert active_roles(parts_workflow) == {"serving": "tiny:v1"}
        body = client.get("/api/v1/workflows/parts/deployments/").json()
        assert body["active"]["shadow"] is None
        assert [e["action"] for e in body["events"]] == ["end", "deploy"]

    def test_refusals_say_why(
        self,
        people: dict[str, Any],
        parts_workflow: Any,
        two_versions: Any,
        make_workflow: Any,
        weights_file: Any,
    ) -> None:
        client = people["admin"]
        url = "/api/v1/workflows/parts/deployments/"
        serving, shadow = two_versions
        other = make_workflow("other", serving=False, labels=list(factories.PART_LABELS))
        foreign = factories.version_create(other, weights_file(seed=9), factories.PART_LABELS)
        cases = [
            ({"model_version": foreign.pk, "role": "shadow", "reason": "x"}, 404, "not registered"),
            ({"model_version": shadow.pk, "role": "serving", "reason": "x"}, 409, "promote"),
            (
                {
                    "model_version": serving.pk,
                    "role": "canary",
                    "traffic_share": 0.1,
                    "reason": "x",
                },
                409,
                "one role per version",
            ),
            (
                {"model_version": shadow.pk, "role": "canary", "traffic_share": 0.9, "reason": "x"},
                400,
                "at most 0.5",
            ),
            ({"model_version": shadow.pk, "role": "canary", "reason": ""}, 400, "reason"),
        ]
        for body, code, words in cases:
            response = client.post(url, body, format="json")
            assert response.status_code == code, (body, response.content)
            assert words in response.json()["error"]["message"], response.json()
        assert active_roles(parts_workflow) == {"serving": "tiny:v1", "shadow": "tiny:v2"}

    def test_canary_share_update_is_audited(
        self, people: dict[str, Any], parts_workflow: Any, two_versions: Any
    ) -> None:
        _, shadow = two_versions
        client = people["admin"]
        client.post(
            "/api/v1/workflows/parts/deployments/shadow/end/",
            {"reason": "to canary"},
            format="json",
        )
        client.post(
            "/api/v1/workflows/parts/deployments/",
            {"model_version": shadow.pk, "role": "canary", "traffic_share": 0.05, "reason": "5%"},
            format="json",
        )
        response = client.patch(
            "/api/v1/workflows/parts/deployments/canary/",
            {"traffic_share": 0.2, "reason": "looks fine"},
            format="json",
        )
        assert response.status_code == 200 and response.json()["traffic_share"] == 0.2
        event = DeploymentEvent.objects.filter(action="traffic").get()
        assert event.data == {"from_share": 0.05, "to_share": 0.2}

    def test_only_admins(self, people: dict[str, Any], two_versions: Any) -> None:
        for who, code in (("reviewer", 403), ("submitter", 403), ("stranger", 404)):
            client = people[who]
            assert client.get("/api/v1/workflows/parts/deployments/").status_code == code
            response = client.post(
                "/api/v1/workflows/parts/deployments/promote/", {"reason": "x"}, format="json"
            )
            assert response.status_code == code
            response = client.post(
                "/api/v1/workflows/parts/deployments/rollback/", {"reason": "x"}, format="json"
            )
            assert response.status_code == code
        assert not DeploymentEvent.objects.exists()


class TestPromoteAndRollback:
    def test_promote_then_roll_back_in_one_action_each(
        self, people: dict[str, Any], parts_workflow: Any, two_versions: Any
    ) -> None:
        serving, shadow = two_versions
        client = people["admin"]
        parts_workflow.level = "partial"
        parts_workflow.save()
        response = client.post(
            "/api/v1/workflows/parts/deployments/promote/",
            {"role": "shadow", "model_version": shadow.pk, "reason": "better on 400 cases"},
            format="json",
        )
        assert response.status_code == 200, response.content
        assert response.json()["replaces"] == "tiny:v1"
        assert active_roles(parts_workflow) == {"serving": "tiny:v2"}
        parts_workflow.refresh_from_db()
        assert parts_workflow.level == "partial", "promotion must not change the level"
        promote = DeploymentEvent.objects.get(action="promote")
        assert (promote.actor.username, promote.reason) == ("ada", "better on 400 cases")
        assert (promote.from_version, promote.to_version) == (serving, shadow)
        assert (
            client.get("/api/v1/workflows/parts/deployments/").json()["rollback_target"]
            == "tiny:v1"
        )

        response = client.post(
            "/api/v1/workflows/parts/deployments/rollback/",
            {"reason": "false alarms on line 2"},
            format="json",
        )
        assert response.status_code == 200
        assert active_roles(parts_workflow) == {"serving": "tiny:v1"}
        rollback = DeploymentEvent.objects.get(action="rollback")
        assert (rollback.from_version, rollback.to_version) == (shadow, serving)
        assert rollback.reason == "false alarms on line 2"
        parts_workflow.refresh_from_db()
        assert parts_workflow.level == "partial"

        response = client.post(
            "/api/v1/workflows/parts/deployments/rollback/", {"reason": "again"}, format="json"
        )
        assert response.status_code == 409
        assert "no previous serving version" in response.json()["error"]["message"]
        assert (
            Deployment.objects.filter(workflow=parts_workflow, active=True, role="serving").count()
            == 1
        )

    def test_promote_refuses_a_version_other_than_the_one_chosen(
        self, people: dict[str, Any], two_versions: Any
    ) -> None:
        serving, _ = two_versions
        response = people["admin"].post(
            "/api/v1/workflows/parts/deployments/promote/",
            {"model_version": serving.pk, "reason": "x"},
            format="json",
        )
        assert response.status_code == 409 and "reload" in response.json()["error"]["message"]
        assert not DeploymentEvent.objects.exists()

    def test_rolling_back_walks_back_through_promotions(
        self, people: dict[str, Any], parts_workflow: Any, two_versions: Any, weights_file: Any
    ) -> None:
        client = people["admin"]
        third = factories.version_create(
            parts_workflow, weights_file(seed=3), factories.PART_LABELS
        )
        client.post("/api/v1/workflows/parts/deployments/promote/", {"reason": "v2"}, format="json")
        client.post(
            "/api/v1/workflows/parts/deployments/",
            {"model_version": third.pk, "role": "canary", "traffic_share": 0.1, "reason": "v3"},
            format="json",
        )
        client.post(
            "/api/v1/workflows/parts/deployments/promote/",
            {"role": "canary", "reason": "v3"},
            format="json",
        )
        assert active_roles(parts_workflow) == {"serving": "tiny:v3"}
        client.post("/api/v1/workflows/parts/deployments/rollback/", {"reason": "a"}, format="json")
        assert active_roles(parts_workflow) == {"serving": "tiny:v2"}
        client.post("/api/v1/workflows/parts/deployments/rollback/", {"reason": "b"}, format="json")
        assert active_roles(parts_workflow) == {"serving": "tiny:v1"}
