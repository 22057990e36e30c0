"""Play the demo's reviewers: claim cases, answer with the true label (mostly).

    manage.py demo_simulate_reviewers --accuracy 0.98 [--limit 500] [--seed 3]

Cases are claimed and answered through the review services (``review_next``,
``verdict_submit``), exactly as a person in the review UI would. The answer is the true
label from the answer key ``demo_stream`` wrote (gold cases: their gold label), or, with
probability 1 - accuracy, another label. Cases without a known answer are skipped.
At the end the automation checks run once (they also run after each audit verdict and
periodically).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from automation.services import automation_check_workflow
from loopgate.demo import demo_truth_load
from review.services import review_next, verdict_skip, verdict_submit
from workflows.models import Workflow

DEMO_SLUG = "surface-inspection"


class Command(BaseCommand):
    help = "Answer the demo workflow's review queue like reviewers of a given accuracy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--accuracy", type=float, default=0.98)
        parser.add_argument("--limit", type=int, default=None, help="At most this many verdicts.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--workflow", default=DEMO_SLUG)
        parser.add_argument("--reviewer", default="reviewer", help="Username of the reviewer.")

    def handle(self, *args: Any, **options: Any) -> None:
        accuracy = options["accuracy"]
        if not 0.0 <= accuracy <= 1.0:
            raise CommandError("--accuracy must be within [0, 1]")
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"workflow {options['workflow']!r} not found")
        reviewer = get_user_model().objects.filter(username=options["reviewer"]).first()
        if reviewer is None:
            raise CommandError(f"user {options['reviewer']!r} not found")
        truth = demo_truth_load(workflow.slug)
        rng = np.random.default_rng(options["seed"])
        limit = options["limit"]
        tally: Counter[str] = Counter()

        while limit is None or tally["verdicts"] < limit:
            assignment = review_next(workflow=workflow, reviewer=reviewer)
            if assignment is None:
                break
            task = assignment.task
            case = task.case
            answer = truth.get(str(case.id)) or (case.gold_label if case.is_gold else "")
            if not answer:
                verdict_skip(
                    task_id=task.pk,
                    reviewer=reviewer,
                    reason="simulated reviewer: no true label recorded for this case",
                )
                tally["skipped"] += 1
                continue
            label = answer
            if rng.random() >= accuracy:
                others = [other for other in workflow.labels if other != answer]
                label = str(rng.choice(others)) if others else answer
            verdict_submit(
                task_id=task.pk, reviewer=reviewer, label=label, comment="simulated reviewer"
            )
            tally["verdicts"] += 1
            tally[f"kind:{task.kind}"] += 1
            tally["wrong"] += label != answer

        change = automation_check_workflow(workflow_id=workflow.pk)
        workflow.refresh_from_db()
        kinds = ", ".join(
            f"{key.removeprefix('kind:')} {value}"
            for key, value in sorted(tally.items())
            if key.startswith("kind:")
        )
        self.stdout.write(
            f"{tally['verdicts']} verdicts ({kinds or 'none'}), {tally['wrong']} deliberately "
            f"wrong, {tally['skipped']} skipped; level now {workflow.level}"
        )
        if change is not None:
            self.stdout.write(self.style.WARNING(f"automatic step down: {change.reason}"))
