"""The automatic step down measured through the real service, on a scratch database.

    python bench/step_down_service.py [--streams 20] [--stable-audits 2000] [--seed 1]

bench/simulate_guarantees.py measures the statistical rule over many thousands of
streams with numpy. This one checks that the service (windows per level, the row lock,
the log and the alert) behaves as that rule predicts: audits arrive one at a time and
``automation_check_workflow`` runs after each, exactly as after an audit verdict.

* drop: 200 audits at 97%, then 87% (a 10-point drop); the delay is the number of audits
  after the drop until the workflow steps down from full to partial;
* stable: a model at 97% over ``--stable-audits`` audits; any step down is a false one.

Target accuracy 95%; the settings in force (window 200, 99%, at least 20 audits).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loopgate.test_settings")
os.environ.setdefault("LOOPGATE_VAR_DIR", tempfile.mkdtemp(prefix="loopgate-bench-"))

import django

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

TARGET, GOOD, DROPPED = 0.95, 0.97, 0.87


def setup_database() -> None:
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)


def new_workflow(slug: str, version: object) -> object:
    from modelops.models import Deployment
    from workflows.models import Workflow

    workflow = Workflow.objects.create(
        slug=slug,
        name=slug,
        labels=["ok", "defect"],
        level="full",
        target_accuracy=TARGET,
        audit_rate=0.1,
    )
    Deployment.objects.create(workflow=workflow, model_version=version, role="serving")
    return workflow


def audit(workflow: object, version: object, right: bool) -> None:
    """One model-decided case of ``workflow``'s level with its blind audit label."""
    from workflows.models import Case, Prediction

    now = timezone.now()
    case = Case.objects.create(
        id=uuid.uuid4(),
        workflow=workflow,
        image="cases/bench.png",
        image_format="PNG",
        image_width=8,
        image_height=8,
        image_bytes=100,
        image_sha256="0" * 64,
        status="decided",
        routed_level=workflow.level,
        review_reason="audit",
        decision_label="ok",
        decision_source="model",
        decision_confidence=0.97,
        decision_model_version=version,
        decided_at=now,
        human_label="ok" if right else "defect",
        labelled_at=now,
    )
    Prediction.objects.create(
        case=case,
        model_version=version,
        role="serving",
        scores={"ok": 0.97},
        label="ok",
        confidence=0.97,
    )


def run_stream(workflow: object, version: object, outcomes: np.ndarray) -> int | None:
    from automation.services import automation_check_workflow

    for index, right in enumerate(outcomes, start=1):
        audit(workflow, version, bool(right))
        if automation_check_workflow(workflow_id=workflow.pk) is not None:
            workflow.refresh_from_db()
            return index
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--stable-audits", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    logging.getLogger("automation").setLevel(logging.ERROR)
    setup_database()

    from modelops.models import ModelVersion

    version = ModelVersion.objects.create(
        name="bench",
        version=1,
        architecture="fake",
        labels=["ok", "defect"],
        weights="models/bench.pt",
        sha256="0" * 64,
    )
    rng = np.random.default_rng(options.seed)
    started = time.perf_counter()
    delays, early, checks = [], 0, 0
    for stream in range(options.streams):
        workflow = new_workflow(f"drop-{stream}", version)
        before = run_stream(workflow, version, rng.random(200) < GOOD)
        checks += before or 200
        if before is not None:
            early += 1
            continue
        delay = run_stream(workflow, version, rng.random(600) < DROPPED)
        checks += delay or 600
        delays.append(delay if delay is not None else np.inf)
    stable = new_workflow("stable", version)
    false_at = run_stream(stable, version, rng.random(options.stable_audits) < GOOD)
    checks += false_at or options.stable_audits
    elapsed = time.perf_counter() - started

    finite = np.array([d for d in delays if np.isfinite(d)])
    print(f"drop {GOOD:.0%} -> {DROPPED:.0%}, target {TARGET:.0%}, {len(delays)} streams:")
    if finite.size:
        print(
            f"  audits after the drop until the step down: median {np.median(finite):.0f}, "
            f"min {finite.min():.0f}, max {finite.max():.0f}; "
            f"missed within 600: {len(delays) - finite.size}"
        )
    print(f"  step downs before the drop (false): {early}")
    print(
        f"stable at {GOOD:.0%} over {options.stable_audits} audits: "
        f"{'no step down' if false_at is None else f'FALSE step down after {false_at}'}"
    )
    print(
        f"{checks} checks in {elapsed:.1f} s ({1000 * elapsed / max(checks, 1):.1f} ms per audit)"
    )


if __name__ == "__main__":
    main()
