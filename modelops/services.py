"""Writes for the model registry and deployments.

Every deployment change takes the workflow's row lock first and then the active
deployment rows (in id order), changes them in one transaction, and writes a
``DeploymentEvent`` in that same transaction. ``deployment_plan`` reads the active
deployments in a single query when a case is claimed, so a case sees either the
deployments before a change or those after it, never a mix, and keeps the plan it
read until it is routed: cases in flight finish on the version that started them.

No service here touches the workflow's automation level: a promoted version starts
at whatever evidence it has, and the automation checks take it from there.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.types import User
from inference.architectures import SUPPORTED_ARCHITECTURES
from inference.loader import TORCHSCRIPT, sha256_of
from inference.model_check import RuntimeRequest, check_model_file
from inference.runtimes import RUNTIMES
from inference.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec
from integrations.models import EventType
from integrations.services import event_emit
from kernel.errors import Conflict, InvalidInput, PayloadTooLarge
from modelops.conf import modelops_setting
from modelops.models import (
    Deployment,
    DeploymentAction,
    DeploymentEvent,
    DeploymentRole,
    ModelRuntime,
    ModelSource,
    ModelVersion,
)
from workflows.models import Case, Workflow

REGISTRABLE_ARCHITECTURES: tuple[str, ...] = (*SUPPORTED_ARCHITECTURES, TORCHSCRIPT)
MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 1024
_COPY_CHUNK_BYTES = 1 << 20


class ModelRefused(InvalidInput):
    """The model file or its description was refused at registration; nothing was stored."""

    code = "model_refused"


def _actor_or_none(actor: User | None) -> User | None:
    return actor if getattr(actor, "pk", None) else None


def _required_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why; it is recorded in the audit log", field="reason")
    return reason.strip()


def deployment_event_record(
    *,
    workflow: Workflow,
    action: str,
    actor: User | None,
    reason: str,
    role: str = "",
    from_version: ModelVersion | None = None,
    to_version: ModelVersion | None = None,
    data: dict[str, Any] | None = None,
) -> DeploymentEvent:
    return DeploymentEvent.objects.create(
        workflow=workflow,
        action=action,
        actor=_actor_or_none(actor),
        reason=reason,
        role=role,
        from_version=from_version,
        to_version=to_version,
        data=data or {},
    )


# --- Registration -------------------------------------------------------------------------


def labels_mismatch(*, expected: Sequence[str], given: Sequence[str]) -> str | None:
    """Why ``given`` is not the same label set as ``expected``, or None when it is.

    The order may differ (a model's scores are matched to labels by name), but every
    label must appear exactly once.
    """
    repeated = sorted({label for label in given if list(given).count(label) > 1})
    missing = [label for label in expected if label not in given]
    unexpected = [label for label in given if label not in expected]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"not in the workflow {unexpected}")
    if repeated:
        problems.append(f"repeated {repeated}")
    if not problems:
        return None
    return (
        f"the model's {len(given)} labels {list(given)} do not match the workflow's "
        f"{len(expected)} labels {list(expected)}: {'; '.join(problems)}"
    )


def model_spec_build(
    *,
    workflow: Workflow,
    architecture: str,
    labels: Sequence[str] | None,
    input_size: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    arch_kwargs: dict[str, Any] | None,
) -> ModelSpec:
    """The spec a registration describes, checked against the workflow; raises ModelRefused."""
    if architecture not in REGISTRABLE_ARCHITECTURES:
        raise ModelRefused(
            f"architecture: {architecture!r} is not supported; choose one of "
            f"{', '.join(REGISTRABLE_ARCHITECTURES)}",
            field="architecture",
        )
    labels = list(workflow.labels) if labels is None else [str(label) for label in labels]
    problem = labels_mismatch(expected=list(workflow.labels), given=labels)
    if problem:
        raise ModelRefused(f"labels: {problem}", field="labels")
    if not isinstance(input_size, int) or not MIN_INPUT_SIZE <= input_size <= MAX_INPUT_SIZE:
        raise ModelRefused(
            f"input_size: must be a whole number of pixels from {MIN_INPUT_SIZE} to "
            f"{MAX_INPUT_SIZE}, got {input_size!r}",
            field="input_size",
        )
    if arch_kwargs and architecture == TORCHSCRIPT:
        raise ModelRefused(
            "arch_kwargs: a TorchScript file carries its own graph", field="arch_kwargs"
        )
    try:
        return ModelSpec(
            architecture=architecture,
            labels=tuple(labels),
            input_size=input_size,
            mean=_three("mean", IMAGENET_MEAN if mean is None else mean),
            std=_three("std", IMAGENET_STD if std is None else std),
            arch_kwargs=tuple(sorted((arch_kwargs or {}).items())),
        )
    except ValueError as exc:
        raise ModelRefused(str(exc)) from exc


def _three(name: str, values: Sequence[float]) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(value) for value in values)
    except (TypeError, ValueError) as exc:
        raise ModelRefused(f"{name}: three numbers (R, G, B) are needed", field=name) from exc
    if len(numbers) != 3 or not all(math.isfinite(value) for value in numbers):
        raise ModelRefused(f"{name}: three finite numbers (R, G, B) are needed", field=name)
    if name == "std" and any(value <= 0 for value in numbers):
        raise ModelRefused("std: every value must be positive", field="std")
    return numbers[0], numbers[1], numbers[2]


def _copy_limited(source: IO[bytes], destination: Path, limit: int) -> int:
    written = 0
    if hasattr(source, "seek"):
        source.seek(0)
    with destination.open("wb") as handle:
        while chunk := source.read(_COPY_CHUNK_BYTES):
            written += len(chunk)
            if written > limit:
                raise PayloadTooLarge(
                    f"weights: the file is over the limit of {limit} bytes", field="weights"
                )
            handle.write(chunk)
    if written == 0:
        raise ModelRefused("weights: the file is empty", field="weights")
    return written


def model_version_register(
    *,
    workflow: Workflow,
    name: str,
    architecture: str,
    weights: IO[bytes],
    filename: str,
    actor: User | None,
    source: str,
    labels: Sequence[str] | None = None,
    input_size: int = 96,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    note: str = "",
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    runtime: str = ModelRuntime.EAGER,
) -> ModelVersion:
    """Check a model file and register it as the next version of ``name``.

    The description is validated first (architecture allow-list, label set equal to
    the workflow's, input size, normalisation). The file is copied to a private
    temporary file, checksummed, and loaded once in a sandboxed child process (safe
    loading only; see ``inference.model_check``): a file that is corrupt, unsafe to
    unpickle, a mismatch for the architecture, or that gives the wrong output shape is
    refused with the reason (``ModelRefused``, 400). Only then is it stored and the row
    written, in one transaction with its audit event; on any failure the stored file is
    removed, so nothing is left half-stored.

    ``runtime`` is what will serve it: ``eager`` (PyTorch), or ``onnx`` (ONNX Runtime),
    which the same child exports and runs on the workflow's newest labelled cases (a
    generated sample when it has none) and refuses when its probabilities differ from
    torch's beyond ``LOOPGATE_RUNTIME_MAX_ABS_DIFF`` or its top label agrees on less
    than ``LOOPGATE_RUNTIME_MIN_TOP1_AGREEMENT`` of them (D80). The figures are kept in
    ``runtime_check``, the exported graph beside the weights with its checksum.
    """
    name = (name or "").strip()
    if not MODEL_NAME_PATTERN.match(name):
        raise ModelRefused(
            "name: 1-100 lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
            field="name",
        )
    if source not in ModelSource.values:
        raise ValueError(f"unknown source {source!r}")
    if runtime not in RUNTIMES:
        raise ModelRefused(
            f"runtime: {runtime!r} is not a runtime; choose one of {', '.join(RUNTIMES)}",
            field="runtime",
        )
    spec = model_spec_build(
        workflow=workflow,
        architecture=architecture,
        labels=labels,
        input_size=input_size,
        mean=mean,
        std=std,
        arch_kwargs=arch_kwargs,
    )
    display_name = Path(filename or "weights").name[:200]
    with tempfile.TemporaryDirectory(prefix="loopgate-register-") as workdir:
        candidate = Path(workdir) / "candidate.bin"
        size = _copy_limited(weights, candidate, modelops_setting("LOOPGATE_MAX_MODEL_BYTES"))
        sha256 = sha256_of(candidate)
        exported = Path(workdir) / "runtime.onnx"
        check = check_model_file(
            spec,
            candidate,
            timeout_seconds=modelops_setting("LOOPGATE_MODEL_CHECK_TIMEOUT_SECONDS"),
            memory_bytes=modelops_setting("LOOPGATE_MODEL_CHECK_MEMORY_BYTES"),
            display_name=display_name,
            runtime=None
            if runtime == ModelRuntime.EAGER
            else _runtime_request(workflow, runtime, exported),
        )
        if not check.ok:
            if check.runtime.get("error"):
                raise ModelRefused(check.error, field="runtime")
            raise ModelRefused(
                f"weights: refused by the load check: {check.error}", field="weights"
            )
        record = {
            "source": source,
            "registered_by": getattr(actor, "username", None) or "system",
            "registered_at": timezone.now().isoformat(),
            "original_filename": display_name,
            "bytes": size,
            "note": note,
            "load_check": check.as_dict(),
            **(provenance or {}),
        }
        return _store_version(
            workflow=workflow,
            name=name,
            spec=spec,
            sha256=sha256,
            candidate=candidate,
            actor=actor,
            source=source,
            provenance=record,
            metrics=metrics or {},
            runtime=runtime,
            runtime_file=exported if runtime != ModelRuntime.EAGER else None,
            runtime_check=check.runtime,
        )


def _runtime_request(workflow: Workflow, runtime: str, output: Path) -> RuntimeRequest:
    """What the runtime is checked on: the workflow's newest human-labelled cases whose
    image is stored on a local path, or, when there are none, a generated sample."""
    names = list(
        Case.objects.filter(workflow=workflow, human_label__in=list(workflow.labels))
        .exclude(image="")
        .order_by("-labelled_at", "-id")
        .values_list("image", flat=True)[: modelops_setting("LOOPGATE_RUNTIME_CHECK_SAMPLES")]
    )
    paths = []
    for name in names:
        try:
            paths.append(Case._meta.get_field("image").storage.path(name))
        except NotImplementedError:  # remote storage: no local path to hand the child
            break
    # An int8 graph is held to its own tolerance (D133).
    int8 = runtime == ModelRuntime.ONNX_INT8
    tolerance = "LOOPGATE_RUNTIME_INT8" if int8 else "LOOPGATE_RUNTIME"
    return RuntimeRequest(
        runtime=runtime,
        output=str(output),
        samples=tuple(paths),
        sample_origin="labelled cases",
        max_abs_diff=modelops_setting(f"{tolerance}_MAX_ABS_DIFF"),
        min_top1_agreement=modelops_setting(f"{tolerance}_MIN_TOP1_AGREEMENT"),
        require_faster=modelops_setting("LOOPGATE_RUNTIME_INT8_REQUIRE_FASTER"),
    )


def _store_version(
    *,
    workflow: Workflow,
    name: str,
    spec: ModelSpec,
    sha256: str,
    candidate: Path,
    actor: User | None,
    source: str,
    provenance: dict[str, Any],
    metrics: dict[str, Any],
    runtime: str = ModelRuntime.EAGER,
    runtime_file: Path | None = None,
    runtime_check: dict[str, Any] | None = None,
) -> ModelVersion:
    """Store the checked file (and the runtime's) and write the row; two registrations
    racing for the same version number are settled by the (name, version) constraint
    and the loser retries."""
    for _attempt in range(5):
        version = ModelVersion(
            name=name,
            workflow=workflow,
            architecture=spec.architecture,
            arch_kwargs=spec.arch_kwargs_dict(),
            labels=list(spec.labels),
            input_size=spec.input_size,
            mean=list(spec.mean),
            std=list(spec.std),
            sha256=sha256,
            source=source,
            provenance=provenance,
            metrics=metrics,
            created_by=_actor_or_none(actor),
            runtime=runtime,
            runtime_check=runtime_check or {},
        )
        try:
            with transaction.atomic():
                latest = ModelVersion.objects.filter(name=name).aggregate(v=Max("version"))["v"]
                version.version = (latest or 0) + 1
                with candidate.open("rb") as handle:
                    version.weights.save(
                        f"{name}-v{version.version}-{sha256[:12]}.pt", File(handle), save=False
                    )
                if runtime_file is not None:
                    version.runtime_sha256 = sha256_of(runtime_file)
                    with runtime_file.open("rb") as handle:
                        version.runtime_file.save(
                            f"{name}-v{version.version}-{sha256[:12]}.{runtime}",
                            File(handle),
                            save=False,
                        )
                version.save(force_insert=True)
                deployment_event_record(
                    workflow=workflow,
                    action=DeploymentAction.REGISTER,
                    actor=actor,
                    reason=provenance.get("note") or f"registered from the {source}",
                    to_version=version,
                    data={"sha256": sha256, "source": source, "runtime": runtime},
                )
        except IntegrityError:
            _delete_stored(version)
            continue
        except BaseException:
            _delete_stored(version)
            raise
        return version
    raise Conflict(f"name: could not allocate a version number for {name!r}; try again")


def _delete_stored(version: ModelVersion) -> None:
    if version.weights.name:
        version.weights.storage.delete(version.weights.name)
    if version.runtime_file.name:
        version.runtime_file.storage.delete(version.runtime_file.name)


# --- Deployments ------------------------------------------------------------------------


def _locked(workflow: Workflow) -> tuple[Workflow, dict[str, Deployment]]:
    """Lock the workflow row, then its active deployments in id order (the fixed lock order)."""
    locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
    active = {
        deployment.role: deployment
        for deployment in Deployment.objects.select_for_update(of=("self",))
        .filter(workflow=locked, active=True)
        .select_related("model_version")
        .order_by("id")
    }
    return locked, active


def _end(deployment: Deployment, now: Any) -> None:
    deployment.active = False
    deployment.ended_at = now
    deployment.save(update_fields=["active", "ended_at"])


def _check_deployable(workflow: Workflow, version: ModelVersion) -> None:
    problem = labels_mismatch(expected=list(workflow.labels), given=list(version.labels))
    if problem:
        raise Conflict(f"model_version: {version.tag} cannot serve this workflow: {problem}")


def _check_share(role: str, traffic_share: float | None) -> float:
    if role == DeploymentRole.CANARY:
        if traffic_share is None or not 0.0 < float(traffic_share) <= 0.5:
            raise InvalidInput(
                "traffic_share: a canary decides a share of cases above 0 and at most 0.5",
                field="traffic_share",
            )
        return float(traffic_share)
    if traffic_share:
        raise InvalidInput(
            f"traffic_share: only a canary takes a traffic share, not a {role}",
            field="traffic_share",
        )
    return 0.0


@transaction.atomic
def deployment_create(
    *,
    workflow: Workflow,
    model_version: ModelVersion,
    role: str,
    actor: User | None,
    reason: str,
    traffic_share: float | None = None,
) -> Deployment:
    """Give ``model_version`` a role in ``workflow``: a shadow challenger, a canary with its
    traffic share, or the first serving version. A shadow or canary already in that role is
    replaced (and the audit entry says so). A serving version is replaced only by
    ``deployment_promote``, so that its predecessor stays the rollback target."""
    reason = _required_reason(reason)
    if role not in DeploymentRole.values:
        raise InvalidInput(f"role: one of {DeploymentRole.values}", field="role")
    share = _check_share(role, traffic_share)
    workflow, active = _locked(workflow)
    _check_deployable(workflow, model_version)
    if role == DeploymentRole.SERVING and DeploymentRole.SERVING in active:
        raise Conflict(
            f"role: {active[DeploymentRole.SERVING].model_version.tag} is serving; deploy "
            "the new version as a shadow challenger or canary and promote it",
            code="serving_exists",
        )
    for other_role, deployment in active.items():
        if deployment.model_version_id == model_version.pk and other_role != role:
            raise Conflict(
                f"model_version: {model_version.tag} is already the {other_role} version here; "
                "one role per version",
                code="already_deployed",
            )
    replaced = active.get(role)
    if replaced is not None and replaced.model_version_id == model_version.pk:
        raise Conflict(f"model_version: {model_version.tag} is already the {role} version")
    if replaced is not None:
        _end(replaced, timezone.now())
    deployment = Deployment.objects.create(
        workflow=workflow,
        model_version=model_version,
        role=role,
        traffic_share=share,
        created_by=_actor_or_none(actor),
    )
    deployment_event_record(
        workflow=workflow,
        action=DeploymentAction.DEPLOY,
        actor=actor,
        reason=reason,
        role=role,
        from_version=replaced.model_version if replaced else None,
        to_version=model_version,
        data={"traffic_share": share, "level": workflow.level},
    )
    return deployment


@transaction.atomic
def deployment_end(*, workflow: Workflow, role: str, actor: User | None, reason: str) -> Deployment:
    """Take the shadow challenger or the canary out. The serving version cannot be ended
    (roll back or promote instead; set the level to human only to stop using models)."""
    reason = _required_reason(reason)
    if role not in (DeploymentRole.SHADOW, DeploymentRole.CANARY):
        raise InvalidInput(
            "role: only a shadow challenger or a canary can be ended; the serving version "
            "changes by promotion or rollback",
            field="role",
        )
    workflow, active = _locked(workflow)
    deployment = active.get(role)
    if deployment is None:
        raise Conflict(f"role: there is no active {role} deployment", code="not_deployed")
    _end(deployment, timezone.now())
    deployment_event_record(
        workflow=workflow,
        action=DeploymentAction.END,
        actor=actor,
        reason=reason,
        role=role,
        from_version=deployment.model_version,
    )
    return deployment


@transaction.atomic
def canary_share_update(
    *, workflow: Workflow, traffic_share: float, actor: User | None, reason: str
) -> Deployment:
    """Change the canary's share of traffic. Cases keep their draw, so raising the share
    only adds cases to the canary, and lowering it only removes some."""
    reason = _required_reason(reason)
    share = _check_share(DeploymentRole.CANARY, traffic_share)
    workflow, active = _locked(workflow)
    canary = active.get(DeploymentRole.CANARY)
    if canary is None:
        raise Conflict("there is no canary deployed", code="not_deployed")
    before = canary.traffic_share
    canary.traffic_share = share
    canary.save(update_fields=["traffic_share"])
    deployment_event_record(
        workflow=workflow,
        action=DeploymentAction.TRAFFIC,
        actor=actor,
        reason=reason,
        role=DeploymentRole.CANARY,
        from_version=canary.model_version,
        to_version=canary.model_version,
        data={"from_share": before, "to_share": share},
    )
    return canary


@transaction.atomic
def deployment_promote(
    *,
    workflow: Workflow,
    actor: User | None,
    reason: str,
    role: str = DeploymentRole.SHADOW,
    expected_version_id: int | None = None,
) -> Deployment:
    """Blue/green: make the shadow challenger (or the canary) the serving version.

    One transaction under the row locks: the old serving deployment and the challenger's
    deployment end, and a new serving deployment starts that ``replaces`` the old one
    (the rollback target). ``expected_version_id`` guards against promoting a different
    version than the one the admin looked at (409 when it changed meanwhile). The
    automation level is not touched.
    """
    reason = _required_reason(reason)
    if role not in (DeploymentRole.SHADOW, DeploymentRole.CANARY):
        raise InvalidInput("role: promote the shadow challenger or the canary", field="role")
    workflow, active = _locked(workflow)
    challenger = active.get(role)
    if challenger is None:
        raise Conflict(f"there is no {role} deployment to promote", code="not_deployed")
    if expected_version_id is not None and challenger.model_version_id != expected_version_id:
        raise Conflict(
            f"the {role} version is now {challenger.model_version.tag}, not the one you "
            "chose; reload and try again",
            code="changed",
        )
    _check_deployable(workflow, challenger.model_version)
    old = active.get(DeploymentRole.SERVING)
    now = timezone.now()
    if old is not None:
        _end(old, now)
    _end(challenger, now)
    serving = Deployment.objects.create(
        workflow=workflow,
        model_version=challenger.model_version,
        role=DeploymentRole.SERVING,
        replaces=old,
        created_by=_actor_or_none(actor),
    )
    deployment_event_record(
        workflow=workflow,
        action=DeploymentAction.PROMOTE,
        actor=actor,
        reason=reason,
        role=DeploymentRole.SERVING,
        from_version=old.model_version if old else None,
        to_version=challenger.model_version,
        data={"promoted_from_role": role, "level": workflow.level, "level_unchanged": True},
    )
    event_emit(
        workflow=workflow,
        type=EventType.MODEL_PROMOTED,
        payload={
            "deployment": {
                "id": serving.pk,
                "role": serving.role,
                "model_version": challenger.model_version.tag,
                "model_version_id": challenger.model_version_id,
                "promoted_from_role": role,
                "replaces_version": old.model_version.tag if old else None,
                "reason": reason,
                "created_at": serving.created_at,
            }
        },
    )
    return serving


@transaction.atomic
def deployment_rollback(*, workflow: Workflow, actor: User | None, reason: str) -> Deployment:
    """Return serving to the version the current one replaced, in one transaction.

    Rolling back again walks further back (the restored deployment replaces what its
    predecessor replaced). If the restored version is the shadow or canary at the time,
    that deployment ends: a version has one role. The automation level is not touched.
    """
    reason = _required_reason(reason)
    workflow, active = _locked(workflow)
    current = active.get(DeploymentRole.SERVING)
    if current is None:
        raise Conflict("there is no serving version to roll back", code="not_deployed")
    previous = None
    if current.replaces_id is not None:
        previous = (
            Deployment.objects.select_related("model_version", "replaces")
            .filter(pk=current.replaces_id)
            .first()
        )
    if previous is None:
        raise Conflict(
            f"nothing to roll back to: {current.model_version.tag} has no previous serving version",
            code="no_previous",
        )
    target = previous.model_version
    weights_name = target.weights.name
    if not weights_name or not target.weights.storage.exists(weights_name):
        raise Conflict(
            f"cannot roll back to {target.tag}: its weights file is missing", code="missing"
        )
    now = timezone.now()
    _end(current, now)
    for role in (DeploymentRole.SHADOW, DeploymentRole.CANARY):
        other = active.get(role)
        if other is not None and other.model_version_id == target.pk:
            _end(other, now)
    restored = Deployment.objects.create(
        workflow=workflow,
        model_version=target,
        role=DeploymentRole.SERVING,
        replaces=previous.replaces,
        created_by=_actor_or_none(actor),
    )
    deployment_event_record(
        workflow=workflow,
        action=DeploymentAction.ROLLBACK,
        actor=actor,
        reason=reason,
        role=DeploymentRole.SERVING,
        from_version=current.model_version,
        to_version=target,
        data={"level": workflow.level, "level_unchanged": True},
    )
    return restored
