"""Send a stream of synthetic inspection images to the demo workflow, like a line camera.

    manage.py demo_stream --cases 500 [--drift lighting] [--seed 7]

Each case goes through ``processing.services.case_create`` (so it is processed and routed
like any upstream submission); its true label is written to the demo answer key under
``VAR_DIR`` (loopgate.demo), never into the case, for ``demo_simulate_reviewers``.
``--drift`` changes the look of the parts (new lighting, a new defect look, a defocused
lens, a new surface finish) to show the automatic step-down.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference.synthetic import DEFAULT_CLASS_WEIGHTS, DEMO_LABELS, DRIFTS, generate_image
from loopgate.demo import demo_truth_path, demo_truth_record
from processing.services import case_create
from workflows.models import Workflow

DEMO_SLUG = "surface-inspection"
DEMO_SUBMITTER = "line-camera-1"


class Command(BaseCommand):
    help = "Submit synthetic cases to the demo workflow, optionally drifted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=int, required=True, help="How many cases to send.")
        parser.add_argument("--drift", choices=DRIFTS, default=None, help="A production change.")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same stream.")
        parser.add_argument("--workflow", default=DEMO_SLUG)
        parser.add_argument("--submitter", default=DEMO_SUBMITTER, help="User who submits.")

    def handle(self, *args: Any, **options: Any) -> None:
        count = options["cases"]
        if count < 1:
            raise CommandError("--cases must be at least 1")
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(
                f"workflow {options['workflow']!r} not found; run manage.py bootstrap_demo first"
            )
        submitter = get_user_model().objects.filter(username=options["submitter"]).first()
        if submitter is None:
            raise CommandError(f"user {options['submitter']!r} not found")
        labels = [label for label in DEMO_LABELS if label in workflow.labels]
        if not labels:
            raise CommandError(f"workflow {workflow.slug!r} has none of the demo labels")
        weights = np.array([DEFAULT_CLASS_WEIGHTS[label] for label in labels], dtype=float)
        seed, drift = options["seed"], options["drift"]
        label_rng = np.random.default_rng([seed, 1])
        children = np.random.SeedSequence([seed, 2]).spawn(count)
        stream = f"stream-s{seed}-{drift or 'clean'}"

        created = existing = 0
        for index, child in enumerate(children):
            label = str(label_rng.choice(labels, p=weights / weights.sum()))
            image = generate_image(label, np.random.default_rng(child), drift=drift)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            result = case_create(
                workflow=workflow,
                image_data=buffer.getvalue(),
                external_id=f"{stream}-{index:06d}",
                metadata={"station": "line-1/camera-a", "stream": stream},
                submitted_by=submitter,
            )
            demo_truth_record(workflow.slug, [(str(result.case.id), label)])
            if result.created:
                created += 1
            else:
                existing += 1
        self.stdout.write(
            f"sent {count} cases to {workflow.slug} ({created} new, {existing} already there); "
            f"drift: {drift or 'none'}; answer key: {demo_truth_path(workflow.slug)}"
        )
