"""One input grammar per operation, shared by the model API and the models page.

A page's form and the API's multipart body are read by the same definitions here, so
the same input gives the same result, or the same error, on both paths. A blank field
counts as not given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from inference.runtimes import RUNTIMES
from inference.sweep import MAX_TRIALS
from kernel import strictjson
from kernel.bounds import INT32_MAX
from kernel.errors import InvalidInput
from kernel.exceptions import first_message
from kernel.serializers import Serializer
from modelops.retraining import MAX_SEED, TrainingRequest
from modelops.services import MAX_INPUT_SIZE, MIN_INPUT_SIZE

JSON_FIELD_MAX_BYTES = 64 * 1024
NUMBER_SEPARATORS = re.compile(r"[,\s]+")


def json_field(
    data: Mapping[str, Any], name: str, *, kind: type, default: Any = None, numbers: bool = False
) -> Any:
    """A text field holding JSON; a list may also be given as comma-separated values
    (``numbers=True``: separated by commas or spaces, as in ``0.485 0.456 0.406``)."""
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, kind):
        return raw
    if not isinstance(raw, str):
        raise InvalidInput(f"{name}: must be a text field", field=name)
    try:
        value = strictjson.loads(raw, what=name, max_bytes=JSON_FIELD_MAX_BYTES)
    except strictjson.JSONRefused as exc:
        if kind is list and not raw.lstrip().startswith("["):
            separators = NUMBER_SEPARATORS if numbers else re.compile(",")
            value = [item.strip() for item in separators.split(raw) if item.strip()]
            _refuse_bad_text(value, name)
        else:
            raise InvalidInput(exc.message, field=name) from None
    if not isinstance(value, kind):
        raise InvalidInput(f"{name}: must be a JSON {kind.__name__}", field=name)
    return value


def _refuse_bad_text(values: list[str], name: str) -> None:
    try:
        strictjson.check_value(values, what=name)
    except strictjson.JSONRefused as exc:
        raise InvalidInput(exc.message, field=name) from None


def _given(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that carry a value: a blank form field is the same as an absent one."""
    return {key: data.get(key) for key in data if data.get(key) not in (None, "")}


def validated(serializer_class: type[serializers.Serializer], data: Mapping[str, Any]) -> Any:
    """``data`` validated by ``serializer_class``; the first problem as an InvalidInput."""
    serializer = serializer_class(data=_given(data))
    if not serializer.is_valid():
        message, field = first_message(serializer.errors)
        code = next(iter(serializer.errors.values()))[0].code if serializer.errors else None
        raise InvalidInput(message, field=field, code=code if isinstance(code, str) else None)
    return serializer.validated_data


class ModelVersionRegisterInput(Serializer):
    weights = serializers.FileField(help_text="State dict (.pt) or TorchScript archive.")
    name = serializers.CharField(max_length=100, help_text="e.g. surface-cnn")
    architecture = serializers.CharField(
        max_length=64, help_text="A torchvision architecture name, or 'torchscript'."
    )
    labels = serializers.CharField(
        required=False,
        help_text="JSON list in the model's output order, or comma-separated; default: the "
        "workflow's.",
    )
    input_size = serializers.IntegerField(
        default=96, min_value=MIN_INPUT_SIZE, max_value=MAX_INPUT_SIZE
    )
    mean = serializers.CharField(
        required=False, help_text="JSON list of 3 numbers, or 3 numbers separated by spaces."
    )
    std = serializers.CharField(
        required=False, help_text="JSON list of 3 numbers, or 3 numbers separated by spaces."
    )
    arch_kwargs = serializers.CharField(required=False, help_text="JSON object.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    training = serializers.CharField(
        required=False, help_text="JSON object: how it was trained (recorded as given)."
    )
    runtime = serializers.ChoiceField(
        choices=list(RUNTIMES),
        default="eager",
        help_text="What serves it: 'eager' (PyTorch), 'onnx' (ONNX Runtime, accepted only "
        "when it matches PyTorch on the workflow's labelled cases) or 'onnx_int8' (the "
        "ONNX graph quantised to int8, accepted only when it agrees within its own "
        "tolerance and is faster than the fp32 graph).",
    )


def model_version_registration(data: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``model_version_register`` that ``data`` asks for
    (all but the workflow, the actor and the source); InvalidInput when it is malformed."""
    fields = validated(ModelVersionRegisterInput, data)
    upload = fields["weights"]
    training = json_field(data, "training", kind=dict, default=None)
    return {
        "name": fields["name"],
        "architecture": fields["architecture"],
        "weights": upload,
        "filename": upload.name,
        "labels": json_field(data, "labels", kind=list),
        "input_size": fields["input_size"],
        "mean": json_field(data, "mean", kind=list, numbers=True),
        "std": json_field(data, "std", kind=list, numbers=True),
        "arch_kwargs": json_field(data, "arch_kwargs", kind=dict, default={}),
        "note": fields.get("note", ""),
        "provenance": {"training": training} if training else None,
        "runtime": fields["runtime"],
    }


class TrainingRunStartInput(Serializer):
    epochs = serializers.IntegerField(default=8, min_value=1, max_value=200)
    lr = serializers.FloatField(default=3e-3, min_value=1e-12, max_value=1.0)
    batch_size = serializers.IntegerField(default=32, min_value=2, max_value=1024)
    test_share = serializers.FloatField(default=0.2, min_value=0.05, max_value=0.5)
    val_share = serializers.FloatField(default=0.1, min_value=0.0, max_value=0.3)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEED)
    architecture = serializers.CharField(required=False, max_length=64)
    from_scratch = serializers.BooleanField(default=False)
    input_size = serializers.IntegerField(
        required=False, min_value=MIN_INPUT_SIZE, max_value=MAX_INPUT_SIZE
    )
    augmentation = serializers.JSONField(
        required=False,
        help_text='Training augmentation, e.g. {"hflip": false, "vflip": false, "rotation": 0, '
        '"brightness": 0.1, "contrast": 0.1, "colour": 0, "crop": 0}; absent: the workflow\'s '
        "default, else no flips with a mild brightness and contrast jitter.",
    )
    sweep = serializers.JSONField(
        required=False,
        help_text=f'A small hyper-parameter sweep, e.g. {{"seeds": [1, 2, 3], "lrs": [0.003, '
        f"0.001]}}: one training per (seed, lr) pair, at most {MAX_TRIALS}; the trial with "
        "the best validation accuracy is kept and only it is evaluated on the test split. "
        "A key left out uses the run's own seed or lr. Needs val_share above 0.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")


def sweep_from_text(seeds: str | None, lrs: str | None) -> dict[str, Any] | None:
    """A sweep from two text fields of comma- or space-separated values (the models page,
    the management command); None when both are blank. A value that is not a number is
    passed on as text, for the service to refuse with its name."""

    def values(text: str | None, kind: type) -> list[Any]:
        items = [item for item in NUMBER_SEPARATORS.split(text or "") if item]
        parsed: list[Any] = []
        for item in items:
            try:
                parsed.append(kind(item))
            except ValueError:
                parsed.append(item)
        return parsed

    seed_values, lr_values = values(seeds, int), values(lrs, float)
    if not seed_values and not lr_values:
        return None
    return {"seeds": seed_values, "lrs": lr_values}


def training_run_start_input(data: Mapping[str, Any]) -> tuple[TrainingRequest, str]:
    """The training run ``data`` asks for, and the reason given; InvalidInput if malformed."""
    fields = dict(validated(TrainingRunStartInput, data))
    reason = fields.pop("reason", "")
    return TrainingRequest(**fields), reason


class RetrainRuleInput(Serializer):
    enabled = serializers.BooleanField()
    every_n_labels = serializers.IntegerField(
        required=False, allow_null=True, min_value=10, max_value=INT32_MAX
    )
    after_step_down = serializers.BooleanField(default=False)
    epochs = serializers.IntegerField(default=8, min_value=1, max_value=200)


def retrain_rule_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``retrain_rule_update`` that ``data`` asks for."""
    fields = validated(RetrainRuleInput, data)
    return {
        "enabled": fields["enabled"],
        "every_n_labels": fields.get("every_n_labels"),
        "after_step_down": fields["after_step_down"],
        "epochs": fields["epochs"],
    }
