"""Domain errors. Services raise these; the API maps them to HTTP in one place.

Nothing here knows about requests: the ML core and the services stay free of HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a message meant for the caller. ``field`` names the bad input."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "too_large"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class Gone(DomainError):
    """The thing existed but can no longer be acted on (an expired lease)."""

    status_code = 410
    code = "gone"
