"""Retraining from reviewer labels: starting, running, cancelling runs, and the rule that
starts them by itself.

A run trains on the workflow's human-labelled cases (gold cases excluded), holds out a
stratified, seeded test split it never trains on, and reports every epoch to its
``TrainingRun`` row. When it finishes, the result is registered like any uploaded
model (same sandboxed load check) and deployed as the shadow challenger. Serving is
never touched: a failed or cancelled run changes nothing but its own row, and a
finished one only replaces the shadow challenger.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from accounts.types import User
from decisions.stats import clopper_pearson
from inference.architectures import SUPPORTED_ARCHITECTURES
from inference.augment import DEFAULT as DEFAULT_AUGMENTATION
from inference.augment import Augmentation
from inference.devices import resolve_device
from inference.loader import TORCHSCRIPT, resize_to_uint8
from inference.retrain import RetrainOutcome, retrain, stratified_split
from inference.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from inference.sweep import MAX_SEED, Sweep, Trial
from inference.training import TrainingCancelled
from kernel.bounds import INT32_MAX
from kernel.errors import Conflict, InvalidInput
from modelops.conf import modelops_setting
from modelops.hooks import last_step_down
from modelops.models import (
    DeploymentRole,
    ModelSource,
    ModelVersion,
    RetrainRule,
    TrainingRun,
    TrainingRunEvent,
    TrainingStatus,
)
from modelops.selectors import serving_version
from modelops.services import deployment_create, model_version_register
from workflows.models import ActorType, Case, Workflow

logger = logging.getLogger(__name__)

# The training run state machine: a table of allowed moves, changed only by
# training_run_transition. Succeeded, failed and cancelled are final.
TRAINING_RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    TrainingStatus.QUEUED: frozenset({TrainingStatus.RUNNING, TrainingStatus.CANCELLED}),
    TrainingStatus.RUNNING: frozenset(
        {TrainingStatus.SUCCEEDED, TrainingStatus.FAILED, TrainingStatus.CANCELLED}
    ),
    TrainingStatus.SUCCEEDED: frozenset(),
    TrainingStatus.FAILED: frozenset(),
    TrainingStatus.CANCELLED: frozenset(),
}
FINAL_TRAINING_STATUSES = frozenset(
    status for status, moves in TRAINING_RUN_TRANSITIONS.items() if not moves
)


class InvalidRunTransition(Conflict):
    code = "invalid_transition"


def training_run_transition(
    *,
    run: TrainingRun,
    to_status: str,
    actor_type: str,
    actor: Any = None,
    reason: str,
    data: dict[str, Any] | None = None,
    fields: tuple[str, ...] = (),
) -> TrainingRunEvent:
    """Move ``run`` to ``to_status`` and record why. Raises InvalidRunTransition.

    Call inside a transaction, holding the run's row lock (``select_for_update``).
    ``started_at`` is set on starting and ``finished_at`` on reaching a final status;
    ``fields`` names the other fields the caller changed, saved in the same UPDATE.
    """
    from_status = run.status
    if to_status not in TRAINING_RUN_TRANSITIONS[from_status]:
        raise InvalidRunTransition(
            f"training run {run.pk} cannot go from {from_status} to {to_status}"
        )
    now = timezone.now()
    run.status = to_status
    changed = ["status", *fields]
    if to_status == TrainingStatus.RUNNING:
        run.started_at = now
        changed.append("started_at")
    if to_status in FINAL_TRAINING_STATUSES:
        run.finished_at = now
        changed.append("finished_at")
    run.save(update_fields=changed)
    return TrainingRunEvent.objects.create(
        run=run,
        from_status=from_status,
        to_status=to_status,
        actor_type=actor_type,
        actor=actor if getattr(actor, "pk", None) else None,
        reason=reason,
        data=data or {},
    )


DEFAULT_EPOCHS = 8
DEFAULT_LR = 3e-3
DEFAULT_BATCH_SIZE = 32
DEFAULT_TEST_SHARE = 0.2
DEFAULT_VAL_SHARE = 0.1
DEFAULT_SCRATCH_INPUT_SIZE = 96
MAX_EPOCHS = 200


@dataclass(frozen=True)
class TrainingRequest:
    """What an admin (or the rule) asks for. ``architecture`` set and different from the
    serving version's, or ``from_scratch``, trains from random weights; otherwise the run
    fine-tunes the serving version."""

    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    test_share: float = DEFAULT_TEST_SHARE
    val_share: float = DEFAULT_VAL_SHARE
    seed: int | None = None
    architecture: str | None = None
    from_scratch: bool = False
    input_size: int | None = None
    arch_kwargs: dict[str, Any] | None = None
    # None: the workflow's default (Workflow.training_augmentation), else the platform's
    # orientation-safe ``inference.augment.DEFAULT``.
    augmentation: dict[str, Any] | None = None
    # A small sweep, e.g. {"seeds": [1, 2, 3], "lrs": [0.003, 0.001]} (inference.sweep):
    # one training per (seed, lr), at most MAX_TRIALS; the best on the validation split is
    # kept and only it is evaluated on the test split. ``seed`` still seeds the split (and
    # is the trials' seed when no seeds are given), ``lr`` likewise.
    sweep: dict[str, Any] | None = None


def _check_request(request: TrainingRequest) -> None:
    if not 1 <= request.epochs <= MAX_EPOCHS:
        raise InvalidInput(f"epochs: from 1 to {MAX_EPOCHS}", field="epochs")
    if not 0.0 < request.lr <= 1.0:
        raise InvalidInput("lr: a learning rate above 0 and at most 1", field="lr")
    if not 2 <= request.batch_size <= 1024:
        raise InvalidInput("batch_size: from 2 to 1024", field="batch_size")
    if not 0.05 <= request.test_share <= 0.5:
        raise InvalidInput("test_share: from 0.05 to 0.5", field="test_share")
    if not 0.0 <= request.val_share <= 0.3:
        raise InvalidInput("val_share: from 0 to 0.3", field="val_share")
    if request.architecture is not None and request.architecture not in SUPPORTED_ARCHITECTURES:
        raise InvalidInput(
            f"architecture: {request.architecture!r} cannot be trained; choose one of "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}",
            field="architecture",
        )
    if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
        raise InvalidInput(f"seed: from 0 to {MAX_SEED}", field="seed")
    if request.input_size is not None and not 16 <= request.input_size <= 1024:
        raise InvalidInput("input_size: from 16 to 1024 pixels", field="input_size")
    if request.augmentation is not None:
        augmentation_clean(request.augmentation, field="augmentation")
    if request.sweep is not None:
        training_sweep(request)


def augmentation_clean(data: Any, *, field: str) -> Augmentation:
    """``data`` as an ``Augmentation``, or InvalidInput on ``field`` saying what is wrong.

    The one rule for augmentation settings: a training run's (API, models page, command)
    and a workflow's default (API, settings page, Django admin) are all read here.
    """
    try:
        return Augmentation.from_dict(data)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if field != "augmentation":
            # "augmentation.rotation: ..." names the setting as the caller knows it.
            message = field + message.removeprefix("augmentation")
        raise InvalidInput(message, field=field) from exc


def training_sweep(request: TrainingRequest) -> Sweep | None:
    """The request's sweep, or None; InvalidInput naming ``sweep`` when it is malformed
    (a sweep also needs a validation split to choose on)."""
    if request.sweep is None:
        return None
    try:
        sweep = Sweep.from_dict(request.sweep, seed=request.seed, lr=request.lr)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="sweep") from exc
    if request.val_share <= 0:
        raise InvalidInput(
            "sweep: a sweep chooses its best trial on the validation split; give val_share above 0",
            field="sweep",
        )
    return sweep


def training_augmentation(*, workflow: Workflow, request: TrainingRequest) -> Augmentation:
    """The run's augmentation: the request's, else the workflow's, else ``DEFAULT``."""
    if request.augmentation is not None:
        return augmentation_clean(request.augmentation, field="augmentation")
    if workflow.training_augmentation:
        return augmentation_clean(workflow.training_augmentation, field="training_augmentation")
    return DEFAULT_AUGMENTATION


def workflow_augmentation_summary(workflow: Workflow) -> str:
    """The augmentation a run of ``workflow`` uses unless it names its own, in words."""
    if not workflow.training_augmentation:
        return f"{DEFAULT_AUGMENTATION.describe()} (the platform's default)"
    return training_augmentation(workflow=workflow, request=TrainingRequest()).describe()


def labelled_cases(*, workflow: Workflow) -> list[tuple[str, str]]:
    """(case id, human label) of the cases a run may use: labelled, not gold, a label of
    the workflow; the newest ``LOOPGATE_RETRAIN_MAX_LABELS`` of them."""
    rows = (
        Case.objects.filter(workflow=workflow, is_gold=False, human_label__in=workflow.labels)
        .order_by("-labelled_at", "-id")
        .values_list("id", "human_label")[: modelops_setting("LOOPGATE_RETRAIN_MAX_LABELS")]
    )
    return [(str(case_id), label) for case_id, label in rows]


def _training_plan(
    workflow: Workflow, request: TrainingRequest
) -> tuple[ModelVersion | None, str, int, dict[str, Any]]:
    """(base version or None, architecture, input size, arch kwargs) for a request."""
    serving = serving_version(workflow_id=workflow.pk)
    wants_other = request.architecture is not None and (
        serving is None or request.architecture != serving.architecture
    )
    if request.from_scratch or wants_other or serving is None:
        architecture = request.architecture or (serving.architecture if serving else None)
        if architecture is None or architecture == TORCHSCRIPT:
            raise InvalidInput(
                "architecture: name one to train from scratch "
                f"({', '.join(SUPPORTED_ARCHITECTURES)})",
                field="architecture",
            )
        kwargs = request.arch_kwargs
        if kwargs is None:
            kwargs = serving.arch_kwargs if serving and serving.architecture == architecture else {}
        size = request.input_size or (serving.input_size if serving else DEFAULT_SCRATCH_INPUT_SIZE)
        return None, architecture, size, dict(kwargs or {})
    if serving.architecture == TORCHSCRIPT:
        raise InvalidInput(
            f"architecture: {serving.tag} is TorchScript and cannot be fine-tuned; name an "
            "architecture to train from scratch",
            field="architecture",
        )
    return serving, serving.architecture, serving.input_size, dict(serving.arch_kwargs or {})


@transaction.atomic
def training_run_start(
    *,
    workflow: Workflow,
    actor: User | None,
    request: TrainingRequest,
    reason: str = "",
    trigger: str = "manual",
) -> TrainingRun:
    """Queue a retraining run on the training queue (once the transaction commits).

    Refused (409) while another run of the workflow is queued or running, or when there
    are fewer than ``LOOPGATE_RETRAIN_MIN_LABELS`` labelled cases.
    """
    _check_request(request)
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    active = TrainingRun.objects.filter(
        workflow=workflow, status__in=[TrainingStatus.QUEUED, TrainingStatus.RUNNING]
    ).first()
    if active is not None:
        raise Conflict(
            f"training run {active.pk} is still {active.status}; cancel it or wait",
            code="training_active",
        )
    needed = modelops_setting("LOOPGATE_RETRAIN_MIN_LABELS")
    available = len(labelled_cases(workflow=workflow))
    if available < needed:
        raise Conflict(
            f"retraining needs at least {needed} human-labelled cases; this workflow has "
            f"{available}",
            code="not_enough_labels",
        )
    base, architecture, input_size, arch_kwargs = _training_plan(workflow, request)
    augmentation = training_augmentation(workflow=workflow, request=request)
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    sweep = training_sweep(request)
    trials = sweep.trials(seed=seed, lr=request.lr) if sweep else ()
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                workflow=workflow,
                trigger=trigger,
                reason=reason.strip(),
                base_version=base,
                architecture=architecture,
                input_size=input_size,
                seed=seed,
                epochs_total=request.epochs * max(1, len(trials)),
                hyperparameters={
                    "epochs": request.epochs,
                    "lr": request.lr,
                    "batch_size": request.batch_size,
                    "test_share": request.test_share,
                    "val_share": request.val_share,
                    "arch_kwargs": arch_kwargs,
                    "from_scratch": base is None,
                    "mode": "from_scratch" if base is None else "fine_tune",
                    "architecture": architecture,
                    "input_size": input_size,
                    "augmentation": augmentation.as_dict(),
                    "augmentation_summary": augmentation.describe(),
                    "sweep": (
                        {**sweep.as_dict(), "trials": [[t.seed, t.lr] for t in trials]}
                        if sweep
                        else None
                    ),
                },
                created_by=actor if getattr(actor, "pk", None) else None,
            )
    except IntegrityError as exc:
        raise Conflict("another training run was started at the same time") from exc
    run_id = run.pk

    def queue() -> None:
        from modelops.tasks import training_run_execute

        training_run_execute.delay(run_id)

    transaction.on_commit(queue)
    return run


@transaction.atomic
def training_run_cancel(*, run: TrainingRun, actor: User | None) -> TrainingRun:
    """Cancel a queued run at once, or ask a running one to stop (it checks between batches)."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    who = getattr(actor, "username", None) or "the system"
    if run.status == TrainingStatus.QUEUED:
        run.cancel_requested = True
        run.error = f"cancelled by {who} before it started"
        training_run_transition(
            run=run,
            to_status=TrainingStatus.CANCELLED,
            actor_type=ActorType.USER if getattr(actor, "pk", None) else ActorType.SYSTEM,
            actor=actor,
            reason=run.error,
            fields=("cancel_requested", "error"),
        )
    elif run.status == TrainingStatus.RUNNING:
        run.cancel_requested = True
        run.error = f"cancellation requested by {who}"
        run.save(update_fields=["cancel_requested", "error"])
    else:
        raise Conflict(f"training run {run.pk} already {run.status}", code="finished")
    return run


# --- The worker side ----------------------------------------------------------------------


def training_device() -> str:
    setting = modelops_setting("LOOPGATE_TRAINING_DEVICE") or settings.LOOPGATE_INFERENCE_DEVICE
    return resolve_device(setting)


def _begin(run_id: int) -> TrainingRun | None:
    with transaction.atomic():
        run = (
            TrainingRun.objects.select_for_update(of=("self",))
            .select_related("workflow", "base_version", "created_by")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != TrainingStatus.QUEUED:
            return None
        run.heartbeat_at = timezone.now()
        training_run_transition(
            run=run,
            to_status=TrainingStatus.RUNNING,
            actor_type=ActorType.SYSTEM,
            reason="a training worker took the run",
            fields=("heartbeat_at",),
        )
        return run


def _finish(run_id: int, status: str, *, reason: str, error: str | None = None) -> None:
    """End a running run as ``status``; a run that already ended (the stale-run sweeper
    failed it meanwhile) keeps its status, and the late outcome is only logged."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        _finish_locked(run, status, reason=reason, error=error)


def _finish_locked(run: TrainingRun, status: str, *, reason: str, error: str | None) -> bool:
    """``_finish`` holding the run's row lock; False when the run had already ended."""
    if run.status != TrainingStatus.RUNNING:
        logger.warning(
            "training run %s is already %s; its outcome %s is not recorded (%s)",
            run.pk,
            run.status,
            status,
            reason,
        )
        return False
    run.heartbeat_at = timezone.now()
    fields = ["heartbeat_at"]
    if error is not None:
        run.error = error
        fields.append("error")
    training_run_transition(
        run=run,
        to_status=status,
        actor_type=ActorType.SYSTEM,
        reason=reason,
        fields=tuple(fields),
    )
    return True


def _image_at_size(case: Case, size: int) -> Image.Image:
    """The case image, already squashed to the model's square input (as serving does)."""
    with case.image.open("rb") as handle:
        image = Image.open(handle, formats=list(settings.LOOPGATE_ALLOWED_IMAGE_FORMATS))
        image.load()
    return Image.fromarray(resize_to_uint8(image, size).permute(1, 2, 0).numpy())


def _cancel_check(run_id: int) -> Callable[[], bool]:
    interval = modelops_setting("LOOPGATE_TRAINING_CANCEL_POLL_SECONDS")
    state = {"checked": 0.0, "cancel": False}

    def should_cancel() -> bool:
        now = time.monotonic()
        if not state["cancel"] and now - state["checked"] >= interval:
            state["checked"] = now
            state["cancel"] = TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()
        return bool(state["cancel"])

    return should_cancel


def _progress_reporter(run_id: int) -> Callable[[int, float, float | None], None]:
    history: list[dict[str, Any]] = []

    def report(epoch: int, loss: float, val_accuracy: float | None) -> None:
        history.append({"epoch": epoch, "loss": loss, "val_accuracy": val_accuracy})
        TrainingRun.objects.filter(pk=run_id).update(
            progress=list(history), heartbeat_at=timezone.now()
        )

    return report


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Run a queued training run to its end; called by the Celery task. Returns the run,
    or None when it was not queued (a duplicate delivery, or cancelled before it began).

    Every failure ends the run as ``failed`` with the reason, a cancellation as
    ``cancelled``; neither touches any deployment.
    """
    run = _begin(run_id)
    if run is None:
        return None
    if run.cancel_requested:
        _finish(run.pk, TrainingStatus.CANCELLED, reason="cancelled before training began")
        return TrainingRun.objects.get(pk=run.pk)
    try:
        device = training_device()
        TrainingRun.objects.filter(pk=run.pk).update(device=device)
        _train_register_deploy(run, device)
    except TrainingCancelled:
        _finish(run.pk, TrainingStatus.CANCELLED, reason="cancelled while training")
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        error = f"{type(exc).__name__}: {exc}"[:4000]
        _finish(run.pk, TrainingStatus.FAILED, reason=error, error=error)
    return TrainingRun.objects.get(pk=run.pk)


def _train_register_deploy(run: TrainingRun, device: str) -> None:
    workflow = run.workflow
    base = run.base_version
    params = run.hyperparameters
    spec = ModelSpec(
        architecture=run.architecture,
        labels=tuple(base.labels if base else workflow.labels),
        input_size=run.input_size,
        mean=tuple(base.mean) if base else IMAGENET_MEAN,
        std=tuple(base.std) if base else IMAGENET_STD,
        arch_kwargs=tuple(sorted((params.get("arch_kwargs") or {}).items())),
    )
    cases = {
        str(case.id): case
        for case in Case.objects.filter(
            id__in=[case_id for case_id, _ in labelled_cases(workflow=workflow)]
        )
    }
    images: dict[str, Image.Image] = {}
    unreadable: list[str] = []
    for case_id, case in sorted(cases.items()):
        try:
            images[case_id] = _image_at_size(case, spec.input_size)
        except Exception:  # noqa: BLE001 - a lost file leaves the case out, recorded
            unreadable.append(case_id)
    labels_of = {case_id: cases[case_id].human_label for case_id in images}
    # A repeated image and its first case are one group: never on both sides of a split.
    groups = {case_id: str(cases[case_id].duplicate_of_id or case_id) for case_id in labels_of}
    split = stratified_split(
        sorted(labels_of.items()),
        test_share=params["test_share"],
        val_share=params["val_share"],
        seed=run.seed,
        groups=groups,
    )
    # ... and counts once in the held-out figures.
    first_of_group: dict[str, str] = {}
    for key in split.test:
        first_of_group.setdefault(groups[key], key)
    split = replace(split, test=tuple(sorted(first_of_group.values())))
    if len(split.train) < 2 or not split.test:
        raise ValueError(
            f"too few usable labelled cases: {len(split.train)} to train on and "
            f"{len(split.test)} to test on"
        )
    if params.get("sweep") and not split.val:
        raise ValueError(
            "the sweep has no validation cases to choose on; raise val_share or label more"
        )
    recorded_split = {
        **split.as_dict(),
        "grouped_duplicates": sum(1 for key, group in groups.items() if key != group),
        "unreadable": unreadable,
        "seed": run.seed,
        "stratified": True,
        "test_share": params["test_share"],
        "val_share": params["val_share"],
    }
    TrainingRun.objects.filter(pk=run.pk).update(split=recorded_split)

    def part(keys: tuple[str, ...]) -> tuple[list[Image.Image], list[str]]:
        return [images[key] for key in keys], [labels_of[key] for key in keys]

    with tempfile.TemporaryDirectory(prefix="loopgate-train-") as workdir:
        weights_path = Path(workdir) / f"training-run-{run.pk}.pt"
        outcome = retrain(
            spec,
            train=part(split.train),
            val=part(split.val),
            test=part(split.test),
            out_path=weights_path,
            seed=run.seed,
            epochs=params["epochs"],
            lr=params["lr"],
            batch_size=params["batch_size"],
            augmentation=augmentation_clean(
                params.get("augmentation", DEFAULT_AUGMENTATION.as_dict()), field="augmentation"
            ),
            trials=_trials_of(params),
            base_weights=(base.weights.path, base.sha256) if base else None,
            device=device,
            num_threads=modelops_setting("LOOPGATE_RETRAIN_THREADS"),
            progress=_progress_reporter(run.pk),
            should_cancel=_cancel_check(run.pk),
        )
        metrics = _run_metrics(outcome, split)
        TrainingRun.objects.filter(pk=run.pk).update(
            metrics=metrics,
            hyperparameters={**params, **outcome.hyperparameters},
        )
        with weights_path.open("rb") as handle:
            version = model_version_register(
                workflow=workflow,
                name=base.name if base else f"{workflow.slug}-{spec.architecture}"[:100],
                architecture=spec.architecture,
                weights=handle,
                filename=weights_path.name,
                actor=run.created_by,
                source=ModelSource.TRAINING,
                labels=list(spec.labels),
                input_size=spec.input_size,
                mean=list(spec.mean),
                std=list(spec.std),
                arch_kwargs=spec.arch_kwargs_dict(),
                note=f"retrained by training run {run.pk}",
                metrics=metrics,
                provenance={
                    "training_run": run.pk,
                    "base_version": base.tag if base else None,
                    "mode": "from_scratch" if base is None else "fine_tune",
                    "augmentation": params.get("augmentation"),
                    # The chosen trial's seed in a sweep; the split's seed is run.seed.
                    "seed": outcome.seed,
                    "split_seed": run.seed,
                    "sweep": outcome.sweep,
                    "hyperparameters": {**params, **outcome.hyperparameters},
                    "split": {
                        "n_train": len(split.train),
                        "n_val": len(split.val),
                        "n_test": len(split.test),
                        "test_share": params["test_share"],
                        "val_share": params["val_share"],
                        "stratified": True,
                        "case_ids": f"recorded on training run {run.pk}",
                    },
                    "device": device,
                },
            )
    test, baseline = metrics["test"], metrics["baseline_test"]
    summary = (
        f"training run {run.pk} finished: held-out accuracy {test['accuracy']:.3f} "
        f"against {baseline['accuracy']:.3f} for the {outcome.baseline} on "
        f"{test['n']} test cases"
    )
    if outcome.sweep:
        summary += (
            f"; best of {len(outcome.sweep['trials'])} trials on the validation split "
            f"(seed {outcome.sweep['chosen_seed']}, lr {outcome.sweep['chosen_lr']:g})"
        )
    # The run row locked first: a run the stale-run sweeper failed meanwhile deploys nothing.
    with transaction.atomic():
        locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != TrainingStatus.RUNNING:
            _finish_locked(locked, TrainingStatus.SUCCEEDED, reason=summary, error=None)
            return
        locked.result_version = version
        deployment_create(
            workflow=workflow,
            model_version=version,
            role=DeploymentRole.SHADOW,
            actor=run.created_by,
            reason=summary,
        )
        locked.heartbeat_at = timezone.now()
        training_run_transition(
            run=locked,
            to_status=TrainingStatus.SUCCEEDED,
            actor_type=ActorType.SYSTEM,
            reason=summary,
            data={"result_version": version.tag},
            fields=("result_version", "heartbeat_at"),
        )


def _run_metrics(outcome: RetrainOutcome, split: Any) -> dict[str, Any]:
    test = outcome.test
    interval = clopper_pearson(test["correct"], test["n"], 0.95)
    return {
        "test": test,
        "test_accuracy": test["accuracy"],
        "test_accuracy_interval": [interval.low, interval.high],
        "baseline": outcome.baseline,
        "baseline_test": outcome.baseline_test,
        "improvement": test["accuracy"] - outcome.baseline_test["accuracy"],
        "history": [
            {"epoch": r.epoch, "loss": r.loss, "val_accuracy": r.val_accuracy}
            for r in outcome.history
        ],
        "train_seconds": outcome.train_seconds,
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "sweep": outcome.sweep,
    }


def _trials_of(params: dict[str, Any]) -> tuple[Trial, ...] | None:
    """The trials recorded on the run when it was started (a sweep), else None."""
    sweep = params.get("sweep")
    if not sweep:
        return None
    return tuple(Trial(seed=int(seed), lr=float(lr)) for seed, lr in sweep["trials"])


def training_runs_fail_stale() -> int:
    """End runs whose worker stopped reporting (killed, or lost with its message)."""
    cutoff = timezone.now() - timedelta(seconds=modelops_setting("LOOPGATE_TRAINING_STALE_SECONDS"))
    error = "the training worker stopped reporting (killed or lost); serving is unchanged"
    ended = 0
    with transaction.atomic():
        stale = TrainingRun.objects.select_for_update(skip_locked=True).filter(
            status=TrainingStatus.RUNNING, heartbeat_at__lt=cutoff
        )
        # One run at a time: at most one runs per workflow, so the loop is short.
        for run in stale.order_by("pk"):
            run.error = error
            training_run_transition(
                run=run,
                to_status=TrainingStatus.FAILED,
                actor_type=ActorType.SYSTEM,
                reason=error,
                data={"last_heartbeat": run.heartbeat_at.isoformat() if run.heartbeat_at else None},
                fields=("error",),
            )
            ended += 1
    return ended


# --- The retraining rule ----------------------------------------------------------------


@transaction.atomic
def retrain_rule_update(
    *,
    workflow: Workflow,
    actor: User | None,
    enabled: bool,
    every_n_labels: int | None,
    after_step_down: bool,
    epochs: int = DEFAULT_EPOCHS,
) -> RetrainRule:
    """Set the rule. Label counting restarts when the rule is switched on."""
    if every_n_labels is not None and not 10 <= every_n_labels <= INT32_MAX:
        raise InvalidInput(
            f"every_n_labels: from 10 to {INT32_MAX}, or empty", field="every_n_labels"
        )
    if enabled and every_n_labels is None and not after_step_down:
        raise InvalidInput(
            "enabled: a rule needs every_n_labels or after_step_down", field="enabled"
        )
    if not 1 <= epochs <= MAX_EPOCHS:
        raise InvalidInput(f"epochs: from 1 to {MAX_EPOCHS}", field="epochs")
    rule, _ = RetrainRule.objects.select_for_update().get_or_create(workflow=workflow)
    if enabled and not rule.enabled:
        rule.labels_at_last_trigger = len(labelled_cases(workflow=workflow))
        rule.last_triggered_at = timezone.now()
    rule.enabled = enabled
    rule.every_n_labels = every_n_labels
    rule.after_step_down = after_step_down
    rule.epochs = epochs
    rule.updated_by = actor if getattr(actor, "pk", None) else None
    rule.save()
    return rule


@transaction.atomic
def retraining_trigger(
    *, workflow: Workflow, trigger: str, why: str, labelled: int | None = None
) -> TrainingRun:
    """Start a run the way the retraining rule does: the rule's epochs (the default
    without a rule row), no actor, ``trigger`` and ``why`` recorded on the run.

    The one way a run starts by itself (the rule, an alert an admin armed). The rule's
    bookkeeping moves on with it, whoever triggered it, so a step down that an alert
    made (or the labels it counted) does not start a second run once this one ends.
    Raises what ``training_run_start`` raises: ``Conflict`` while a run is queued or
    running or with too few labels; ``InvalidInput`` when the serving version cannot be
    fine-tuned. ``labelled``: the caller's count of labelled cases, if it has one.
    """
    rule = RetrainRule.objects.filter(workflow=workflow).first()
    run = training_run_start(
        workflow=workflow,
        actor=None,
        request=TrainingRequest(epochs=rule.epochs if rule is not None else DEFAULT_EPOCHS),
        reason=why,
        trigger=trigger,
    )
    if rule is not None:
        if labelled is None:
            labelled = len(labelled_cases(workflow=workflow))
        RetrainRule.objects.filter(pk=rule.pk).update(
            labels_at_last_trigger=labelled, last_triggered_at=timezone.now()
        )
    return run


def retrain_rule_check(*, rule: RetrainRule) -> TrainingRun | None:
    """Start a run if the rule says so and none is active; returns the run started."""
    workflow = rule.workflow
    labelled = len(labelled_cases(workflow=workflow))
    trigger = ""
    if rule.every_n_labels and labelled - rule.labels_at_last_trigger >= rule.every_n_labels:
        trigger = "rule:labels"
        why = f"{labelled - rule.labels_at_last_trigger} new labels since the last rule run"
    if not trigger and rule.after_step_down:
        step_down = last_step_down(workflow_id=workflow.pk)
        since = rule.last_triggered_at
        if step_down is not None and (since is None or step_down.at > since):
            trigger = "rule:step_down"
            why = f"the automation level was stepped down: {step_down.reason}"
    if not trigger:
        return None
    try:
        return retraining_trigger(
            workflow=workflow,
            trigger=trigger,
            why=f"started by the retraining rule: {why}",
            labelled=labelled,
        )
    except (Conflict, InvalidInput) as exc:
        logger.info("retraining rule of %s did not start a run: %s", workflow.slug, exc.message)
        return None


def retrain_rules_check() -> int:
    """Check every enabled rule; returns how many runs were started."""
    started = 0
    for rule in RetrainRule.objects.filter(enabled=True).select_related("workflow"):
        if retrain_rule_check(rule=rule) is not None:
            started += 1
    return started
