"""The error responses every operation can give, added to the OpenAPI schema in one place.

The kernel answers the same way everywhere: 401 without a valid token, 403/404 from the
access checks, 400 from the strict parsers and bounds (a body, a query parameter, an id),
413/415 for a body too large or of the wrong type. Views document their own specific
errors with ``extend_schema``; this hook adds what they leave out, so that the schema
lists every status a client can meet (the API fuzz test checks it).
"""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {
    "400": "Bad input: the message names the field and what is wrong.",
    "401": "Missing or invalid credentials.",
    "403": "A member without the right for this.",
    "404": "Not found, or not visible to the caller.",
    "413": "The body is over the size limit.",
    "415": "The body's media type is not accepted.",
}


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = ["401", "403", "404"]
            if operation.get("requestBody") or any(
                parameter.get("in") == "query" for parameter in operation.get("parameters", [])
            ):
                statuses.append("400")
            if operation.get("requestBody"):
                statuses += ["413", "415"]
            for status in statuses:
                operation["responses"].setdefault(
                    status,
                    {
                        "description": DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
    return result
