"""Prometheus: decisions counted by source (people's too), across processes; every metric
the Grafana dashboard and the alert rules use exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from monitoring.metrics import DECIDED
from tests.conftest import image_bytes

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def decided(workflow: str, source: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "loopgate_decided_total", {"workflow": workflow, "source": source}
        )
        or 0.0
    )


@pytest.mark.django_db
def test_model_and_human_decisions_are_counted_once_they_commit(
    make_workflow: Any, make_user: Any, member: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from processing.services import case_create, cases_process
    from review.services import review_next, verdict_submit

    workflow = make_workflow("counted", level="full", confidence_threshold=0.0, audit_rate=0.0)
    reviewer = make_user("rita")
    member(reviewer, workflow, review=True)
    before_model, before_human = decided("counted", "model"), decided("counted", "human")

    def send(seed: int) -> str:
        return str(
            case_create(
                workflow=workflow,
                image_data=image_bytes("ok", seed=seed),
                external_id=None,
                metadata={},
                submitted_by=None,
            ).case.id
        )

    with django_capture_on_commit_callbacks(execute=True):
        cases_process(case_ids=[send(1), send(2)])
    assert decided("counted", "model") == before_model + 2

    workflow.level = "shadow"
    workflow.save(update_fields=["level"])
    with django_capture_on_commit_callbacks(execute=True):
        cases_process(case_ids=[send(3)])
    assert decided("counted", "human") == before_human
    assignment = review_next(workflow=workflow, reviewer=reviewer)
    assert assignment is not None
    # A verdict whose transaction rolls back decides nothing and counts nothing.
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        verdict_submit(task_id=assignment.task_id, reviewer=reviewer, label="scratch")
        raise RuntimeError("the request failed after the verdict")
    assert decided("counted", "human") == before_human
    with django_capture_on_commit_callbacks(execute=True):
        verdict_submit(task_id=assignment.task_id, reviewer=reviewer, label="scratch")
    assert decided("counted", "human") == before_human + 1
    assert decided("counted", "model") == before_model + 2


COUNT_IN_A_PROCESS = """
import sys
from monitoring.metrics import DECIDED
DECIDED.labels("line", sys.argv[1]).inc(int(sys.argv[2]))
"""


def test_the_counter_sums_over_processes_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two processes (a web process's verdicts, a worker's routing) write their own
    samples; ``/metrics`` sums them with the multiprocess collector."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for source, n in (("human", "3"), ("human", "4"), ("model", "5")):
        subprocess.run(
            [sys.executable, "-c", COUNT_IN_A_PROCESS, source, n],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    labels = {"workflow": "line"}
    assert registry.get_sample_value("loopgate_decided_total", labels | {"source": "human"}) == 7
    assert registry.get_sample_value("loopgate_decided_total", labels | {"source": "model"}) == 5


# --- The names deploy/ uses --------------------------------------------------------------

# A sample's suffix and the kinds of family that expose it.
SUFFIXES = (
    ("_bucket", {"histogram"}),
    ("_count", {"histogram"}),
    ("_sum", {"histogram"}),
    ("_total", {"counter"}),
    ("_created", {"counter", "histogram"}),
)


def names_used_in_deploy() -> set[str]:
    text = (DEPLOY / "prometheus" / "loopgate-rules.yml").read_text()
    dashboard = json.loads((DEPLOY / "grafana" / "loopgate-pipeline.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    return set(re.findall(r"\bloopgate_[a-z0-9_]+", text + "\n".join(exprs)))


@pytest.mark.django_db
def test_every_metric_in_the_dashboard_and_the_rules_is_exposed() -> None:
    from loopgate.metrics import LoopgateCollector

    families = {family.name: family.type for family in LoopgateCollector().collect()}
    families |= {
        family.name: family.type
        for family in REGISTRY.collect()
        if family.name.startswith("loopgate_")
    }
    assert DECIDED._name in families  # the instruments of monitoring.metrics are registered

    def exposed(name: str) -> bool:
        if name in families:
            return True
        return any(
            name.endswith(suffix) and families.get(name.removesuffix(suffix)) in kinds
            for suffix, kinds in SUFFIXES
        )

    used = names_used_in_deploy()
    assert {"loopgate_decided_total", "loopgate_stage_seconds_bucket"} <= used
    assert sorted(name for name in used if not exposed(name)) == []


def test_the_issue_s_instruments_exist() -> None:
    """Decision latency by stage and model latency (histograms); cases, decisions by
    source and errors by stage (counters); worker and GPU memory (gauges)."""
    from monitoring import metrics

    kinds = {
        "loopgate_stage_seconds": "histogram",
        "loopgate_model_seconds": "histogram",
        "loopgate_cases_routed": "counter",
        "loopgate_decided": "counter",
        "loopgate_stage_errors": "counter",
        "loopgate_worker_memory_bytes": "gauge",
        "loopgate_worker_gpu_memory_bytes": "gauge",
    }
    found = {
        instrument._name: instrument._type
        for instrument in vars(metrics).values()
        if hasattr(instrument, "_name") and hasattr(instrument, "_type")
    }
    assert {name: found.get(name) for name in kinds} == kinds
    assert found["loopgate_decided"] == "counter" and DECIDED._labelnames == ("workflow", "source")
