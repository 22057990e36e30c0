"""The one place where domain errors and DRF errors become HTTP responses.

Every error body has the same shape::

    {"error": {"code": "...", "message": "...", "field": "..." | null, "details": {...}}}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from kernel.errors import DomainError


def first_message(detail: Any) -> tuple[str, str | None]:
    """The first human message in a DRF error detail, and the field it belongs to."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            message, _ = first_message(value)
            field = None if key == "non_field_errors" else str(key)
            return (f"{field}: {message}" if field else message), field
        return "invalid input", None
    if isinstance(detail, list) and detail:
        return first_message(detail[0])
    return str(detail), None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
        return Response(body, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(str(exc) or "not found")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.APIException):
        message, field = first_message(exc.detail)
        code = exc.get_codes()
        while isinstance(code, (list, dict)) and code:
            code = next(iter(code.values())) if isinstance(code, dict) else code[0]
        response.data = {
            "error": {
                "code": code if isinstance(code, str) else "invalid",
                "message": message,
                "field": field,
                "details": exc.detail if isinstance(exc.detail, (dict, list)) else None,
            }
        }
    return response
