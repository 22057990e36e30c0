"""Celery tasks for the model lifecycle. They take IDs, re-fetch, and call a service.

``modelops.tasks.*`` is routed to the ``training`` queue (loopgate/settings.py), where
one worker with prefetch 1 runs one long job at a time (on the GPU when it has one).
The saliency task is sent to the inference workers' queue instead (the queue given to
``apply_async`` wins over the route map), because it needs the model cache those
workers hold and is short.
"""

from __future__ import annotations

import os

from celery import shared_task

INFERENCE_QUEUE = os.environ.get("LOOPGATE_INFERENCE_QUEUE", "inference")


@shared_task(acks_late=False, ignore_result=True)
def training_run_execute(run_id: int) -> None:
    """Run one retraining run.

    ``acks_late=False`` on purpose: a run takes minutes to hours, far beyond what a
    redelivery should repeat behind the admin's back, and with late acks a worker lost
    mid-run (or a broker visibility timeout shorter than the run) would hand the message
    to a second worker that trains it again. The message is acknowledged on receipt; a
    worker that dies leaves its run ``running`` without heartbeats, and
    ``training_runs_fail_stale`` marks it failed, so the admin sees it and starts anew.
    The service is idempotent anyway: only a ``queued`` run is started.
    """
    from modelops.retraining import training_run_execute as execute

    execute(run_id=run_id)


@shared_task(ignore_result=True)
def training_runs_fail_stale() -> int:
    """Periodic: mark runs whose worker stopped reporting as failed."""
    from modelops.retraining import training_runs_fail_stale as fail_stale

    return fail_stale()


@shared_task(ignore_result=True)
def retrain_rules_check() -> int:
    """Periodic: start the retraining runs that the workflows' rules ask for."""
    from modelops.retraining import retrain_rules_check as check

    return check()


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def saliency_compute(saliency_id: int) -> None:
    """Compute one Grad-CAM overlay; send it with ``queue=INFERENCE_QUEUE``.

    Idempotent (a ready overlay is left alone), so late acks with reject-on-worker-lost
    are safe."""
    from modelops.saliency import saliency_compute as compute

    compute(saliency_id=saliency_id)
