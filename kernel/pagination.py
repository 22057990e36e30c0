"""Limit/offset pages with bounds: a bad or out-of-range ``limit``/``offset`` is a 400.

DRF's ``LimitOffsetPagination`` ignores a value it cannot read and passes any size of
``offset`` to the database, where one beyond 64 bits is a server error on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from kernel.bounds import INT32_MAX, bounded_int

MAX_LIMIT = 500
MAX_OFFSET = INT32_MAX


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int | None:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None or raw == "":
            return self.default_limit
        return bounded_int(raw, name=self.limit_query_param, minimum=1, maximum=MAX_LIMIT)

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None or raw == "":
            return 0
        return bounded_int(raw, name=self.offset_query_param, minimum=0, maximum=MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: (1, MAX_LIMIT),
            self.offset_query_param: (0, MAX_OFFSET),
        }
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"].update({"minimum": low, "maximum": high})
        return parameters


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"Page size, 1 to {MAX_LIMIT} (default 50).",
    ),
    OpenApiParameter(
        "offset",
        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
        description=f"Items to skip, 0 to {MAX_OFFSET}.",
    ),
]


def paginated(name: str, item: Any) -> Any:
    """The OpenAPI shape of a page of ``item`` serializers (``count``, links, ``results``)."""
    from rest_framework import serializers

    return inline_serializer(
        name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )
