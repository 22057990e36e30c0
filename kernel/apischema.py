"""The API's error body as an OpenAPI component, for views to name in ``extend_schema``.

Its shape is what ``kernel.exceptions.api_exception_handler`` renders.
"""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERROR_RESPONSE = inline_serializer(
    "Error",
    fields={
        "error": inline_serializer(
            "ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "field": serializers.CharField(allow_null=True),
            },
        )
    },
)
