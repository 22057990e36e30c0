"""The project's serializer bases: each class builds its fields once (D145).

DRF builds a serializer's fields for every instance: a ``Serializer`` deep-copies its
declared fields, which re-runs each field's ``__init__`` (validators, error messages),
and a ``ModelSerializer`` works its fields out from the model again. Every API request
makes one or two serializers, so this was paid on every request: 0.1 to 0.25 ms of CPU
for the review and ingest endpoints' serializers on the benchmark machine.

Here a class builds its fields once, as DRF would (``get_fields``), and keeps them
unbound as its template; each instance gets its own shallow copy of each field, which
DRF then binds to that instance as usual. What is shared between the copies is what DRF
itself never changes after a field's ``__init__`` (its arguments, error messages,
choices, a related field's queryset, which DRF clones before each use); each copy gets
its own list of validators all the same. A field that holds other fields bound to it
(a nested serializer, a list or dict field's child, a many-related field) is
deep-copied, as DRF does, so that its children's parent and context are this
instance's.

A subclass may still override ``get_fields`` (to pick or change fields per instance):
it changes its own copies. The template must not depend on the instance, so a subclass
does not override what ``ModelSerializer.get_fields`` builds from (``build_field`` and
the like) with anything that reads ``self.context`` or ``self.instance``.
"""

from __future__ import annotations

import copy

from rest_framework import serializers

_TEMPLATE = "_loopgate_field_template"


def _own_copy(field: serializers.Field) -> serializers.Field:
    if (
        isinstance(field, serializers.BaseSerializer)
        or hasattr(field, "child")
        or hasattr(field, "child_relation")
    ):
        return copy.deepcopy(field)
    clone = copy.copy(field)
    validators = field.__dict__.get("_validators")
    if validators is not None:
        clone.validators = list(validators)
    if isinstance(field.default, dict | list | set):
        # A container given as a default (``default={}``) is each instance's own, as
        # DRF's deep copy makes it: validated data that grows it must not reach the next
        # request.
        clone.default = copy.deepcopy(field.default)
    return clone


class FieldTemplates:
    """Fields built once per class and copied per instance (see the module docstring).
    Mixed in before DRF's ``Serializer`` or ``ModelSerializer``."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        # Each class its own template (a subclass declares other fields); two threads
        # that build it at once build the same thing, and either is kept.
        template: dict[str, serializers.Field] | None = cls.__dict__.get(_TEMPLATE)
        if template is None:
            template = super().get_fields()  # type: ignore[misc]  # DRF's, after this mixin
            setattr(cls, _TEMPLATE, template)
        return {name: _own_copy(field) for name, field in template.items()}


class Serializer(FieldTemplates, serializers.Serializer):
    """``rest_framework.serializers.Serializer`` with its fields built once per class."""


class ModelSerializer(FieldTemplates, serializers.ModelSerializer):
    """``rest_framework.serializers.ModelSerializer`` with its fields built once per class."""


__all__ = ["FieldTemplates", "ModelSerializer", "Serializer"]
