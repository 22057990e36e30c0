"""Serializer fields built once per class (``kernel.serializers``, D145)."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from kernel.serializers import FieldTemplates, ModelSerializer, Serializer
from workflows.models import Workflow

PROJECT_APPS = {
    "accounts", "automation", "decisions", "inference", "integrations", "kernel", "loopgate",
    "modelops", "monitoring", "processing", "review", "workflows", "workspace",
}  # fmt: skip


class Item(Serializer):
    name = serializers.CharField(max_length=5)
    shown = serializers.SerializerMethodField()

    def get_shown(self, item: dict[str, Any]) -> str:
        return f"{self.context.get('prefix', '')}{item['name']}"


class Basket(Serializer):
    owner = serializers.CharField()
    items = Item(many=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=3))
    choice = serializers.ChoiceField(choices=["a", "b"])
    extra = serializers.JSONField(required=False, default={})


class WorkflowBrief(ModelSerializer):
    class Meta:
        model = Workflow
        fields = ["slug", "name"]


def test_each_instance_gets_its_own_fields_bound_to_it() -> None:
    first, second = Basket(), Basket()
    assert (
        first.fields.keys()
        == second.fields.keys()
        == {
            "owner",
            "items",
            "tags",
            "choice",
            "extra",
        }
    )
    for name in first.fields:
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first
        assert second.fields[name].parent is second
    # A nested serializer and a list field's child are their parent's own, bound to it.
    assert first.fields["items"].child is not second.fields["items"].child
    assert first.fields["items"].child.parent is first.fields["items"]
    assert first.fields["tags"].child.parent is first.fields["tags"]
    # A change to one instance's field (as a view might make) does not reach another.
    first.fields["owner"].read_only = True
    first.fields["owner"].validators.append(lambda value: None)
    assert Basket().fields["owner"].read_only is False
    # A container default is each instance's own, as DRF's deep copy makes it.
    first.fields["extra"].get_default()["grown"] = True
    assert Basket().fields["extra"].get_default() == {}
    assert len(Basket().fields["owner"].validators) == len(second.fields["owner"].validators)


def test_nested_serializers_read_the_context_of_the_instance_they_belong_to() -> None:
    data = {"owner": "ann", "items": [{"name": "x"}], "tags": [], "choice": "a"}
    assert Basket(data, context={"prefix": "1:"}).data["items"] == [{"name": "x", "shown": "1:x"}]
    assert Basket(data, context={"prefix": "2:"}).data["items"] == [{"name": "x", "shown": "2:x"}]


def test_validation_works_on_every_instance_as_drf_does_it() -> None:
    for _ in range(3):
        good = Basket(
            data={"owner": "ann", "items": [{"name": "abc"}], "tags": ["t"], "choice": "b"}
        )
        assert good.is_valid(), good.errors
        bad = Basket(
            data={"owner": "", "items": [{"name": "toolong"}], "tags": ["four"], "choice": "c"}
        )
        with pytest.raises(ValidationError) as caught:
            bad.is_valid(raise_exception=True)
        errors = caught.value.detail
        assert set(errors) == {"owner", "items", "tags", "choice"}
        assert good.validated_data["extra"] == {}
        assert "5 characters" in str(errors["items"])
        assert "3 characters" in str(errors["tags"])


@pytest.mark.django_db
def test_a_model_serializer_builds_its_fields_once_and_renders_as_drf() -> None:
    workflow = Workflow.objects.create(slug="brief", name="Brief", labels=["ok", "bad"])
    assert WorkflowBrief(workflow).data == {"slug": "brief", "name": "Brief"}
    template = WorkflowBrief.__dict__["_loopgate_field_template"]
    again = WorkflowBrief(workflow)
    assert again.data == {"slug": "brief", "name": "Brief"}
    assert WorkflowBrief.__dict__["_loopgate_field_template"] is template
    assert all(again.fields[name] is not template[name] for name in template)
    refused = WorkflowBrief(data={"slug": "brief", "name": "Other"})
    assert not refused.is_valid()
    assert "slug" in refused.errors  # the model's unique validator, on every instance


def _project_modules() -> None:
    for app in apps.get_app_configs():
        root = app.name.split(".")[0]
        if root not in PROJECT_APPS:
            continue
        package = importlib.import_module(app.name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{app.name}."):
            if ".migrations" in module.name or module.name.endswith(".tests"):
                continue
            importlib.import_module(module.name)
    importlib.import_module(settings.ROOT_URLCONF)


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_serializer_of_the_project_builds_its_fields_once() -> None:
    """Each serializer class of the apps has the project's base, so no endpoint pays for
    DRF building its fields on every request."""
    _project_modules()
    ours = [
        cls
        for cls in _subclasses(serializers.Serializer)
        if cls.__module__.split(".")[0] in PROJECT_APPS and not cls.__module__.startswith("tests")
    ]
    assert len(ours) > 50, "the project's serializers were not found"
    missing = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in ours
        if not issubclass(cls, FieldTemplates)
    )
    assert not missing, f"derive from kernel.serializers.Serializer / ModelSerializer: {missing}"
