"""The request-body parser of the API: strict JSON (``loopgate.strictjson``), objects only.

Replaces DRF's ``JSONParser`` (settings ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``).
Every JSON body the API takes is an object, so ``null``, a number, a string or an
array is refused here with ``body: expected a JSON object`` before any view runs.
"""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from loopgate import strictjson
from loopgate.errors import PayloadTooLarge


class StrictJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: dict | None = None
    ) -> dict[str, Any]:
        limit = settings.LOOPGATE_MAX_JSON_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"body: over the limit of {limit} bytes", field="body")
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        data: str | bytes = raw
        if codecs.lookup(encoding).name != "utf-8":
            try:
                data = raw.decode(encoding)
            except (UnicodeDecodeError, LookupError) as exc:
                raise ParseError(f"body: not valid {encoding}") from exc
        try:
            return strictjson.loads(data, what="body", expect_object=True)
        except strictjson.JSONRefused as exc:
            raise ParseError(exc.message) from None
