"""The request-body parsers of the API (settings ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``).

``StrictJSONParser`` replaces DRF's ``JSONParser``: strict JSON (``kernel.strictjson``),
objects only. Every JSON body the API takes is an object, so ``null``, a number, a
string or an array is refused with ``body: expected a JSON object`` before a view runs.

``StrictMultiPartParser`` replaces DRF's ``MultiPartParser``: Django decodes multipart
field names, values and file names with ``errors="replace"``, so invalid UTF-8 becomes
U+FFFD silently (two different idempotency keys would arrive as the same text). Here it
is decoded strictly, and refused.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import JSONRenderer

from kernel import strictjson

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
from kernel.errors import InvalidInput, PayloadTooLarge


class StrictJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
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


STRICT_UTF8 = "loopgate-strict-utf-8"


def _strict_utf8_decode(data: ReadableBuffer, errors: str = "strict") -> tuple[str, int]:
    # ``errors`` is ignored on purpose: Django asks for "replace".
    return codecs.utf_8_decode(data, "strict", True)


@functools.cache
def _register_strict_utf8() -> None:
    info = codecs.lookup("utf-8")
    strict = codecs.CodecInfo(
        name=STRICT_UTF8,
        encode=info.encode,
        decode=_strict_utf8_decode,
        streamreader=info.streamreader,
        streamwriter=info.streamwriter,
    )
    codecs.register(lambda name: strict if name == STRICT_UTF8.replace("-", "_") else None)


class StrictMultiPartParser(MultiPartParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parser_context = dict(parser_context or {})
        encoding = parser_context.get("encoding") or settings.DEFAULT_CHARSET
        if codecs.lookup(encoding).name == "utf-8":
            _register_strict_utf8()
            parser_context["encoding"] = STRICT_UTF8
        try:
            return super().parse(stream, media_type, parser_context)
        except UnicodeDecodeError:
            raise ParseError(
                "body: a multipart field name, value or file name is not valid UTF-8"
            ) from None


def body_object(data: object) -> Mapping[str, Any]:
    """A request's parsed body as the mapping the parsers guarantee (typed for callers).

    The JSON parser refuses any body that is not an object and form parsers give a
    ``QueryDict``, so anything else means a parser was bypassed: refuse it, do not guess.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(f"body: expected a JSON object, not {type(data).__name__}")
    return data
