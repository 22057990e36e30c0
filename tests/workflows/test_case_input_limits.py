"""Hostile case input: each refused with a 400 naming the problem, nothing stored.

Runs on SQLite and on PostgreSQL (where jsonb refuses NUL and the columns have ranges).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import image_bytes
from tests.workflows.test_case_api import assert_error, assert_nothing_stored, post_case, upload
from workflows.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitter(make_user: Any, make_workflow: Any, member: Any, client_for: Any) -> Any:
    workflow = make_workflow("line", level="human_only", serving=False)
    user = make_user("camera")
    member(user, workflow, submit=True)
    return client_for(user)


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ('{"a":' * 2000 + "1" + "}" * 2000, "nested deeper than 32 levels"),
        ('{"a":' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 32 levels"),
        ('{"a":' * 5000 + "1" + "}" * 5000, "over the limit of 16384 bytes"),
        ('{"a": "x\\u0000"}', "nul character"),
        ('{"a\\u0000": 1}', "nul character"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"a": NaN}', "nan is not a json number"),
        ('{"a": Infinity}', "infinity is not a json number"),
        ('{"a": -Infinity}', "-infinity is not a json number"),
        ('{"a": 1e400}', "out of range"),
        ('{"a": ' + "7" * 5000 + "}", "5000 digits"),
        ('{"a": 18446744073709551616}', "out of range"),
    ],
)
def test_hostile_metadata_is_refused(submitter: Any, metadata: str, words: str) -> None:
    response = post_case(submitter, "line", image=upload(image_bytes()), metadata=metadata)
    assert_error(response, 400, "metadata", "metadata:", words)
    assert_nothing_stored()


def test_metadata_at_the_limits_is_stored_as_sent(submitter: Any) -> None:
    nested: Any = "deep"
    for _ in range(31):
        nested = {"k": nested}
    metadata = {
        "nested": nested,
        "big": 2**63 - 1,
        "small": -(2**63),
        "f": 0.1,
        "tiny": 1.5e-300,
        "u": "é😀",
    }
    response = post_case(
        submitter, "line", image=upload(image_bytes()), metadata=json.dumps(metadata)
    )
    assert response.status_code == 201, response.content
    assert Case.objects.get().metadata == metadata
    assert response.json()["metadata"] == metadata


@pytest.mark.parametrize(
    ("external_id", "words"),
    [
        ("part\x00one", "control character u+0000"),
        ("part\none", "control character u+000a"),
        ("part\x7f", "control character u+007f"),
        ("part\ufffd", "u+fffd"),
        ("x" * 256, "at most 255 characters"),
        ("   ", "blank"),
    ],
)
def test_bad_external_id_is_refused(submitter: Any, external_id: str, words: str) -> None:
    response = post_case(submitter, "line", image=upload(image_bytes()), external_id=external_id)
    assert_error(response, 400, "external_id", words)
    assert_nothing_stored()


def multipart(fields: dict[str, bytes], image: bytes) -> tuple[bytes, str]:
    boundary = b"loopgate-test-boundary"
    parts = []
    for name, value in fields.items():
        parts.append(
            b"--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="'
            + name.encode()
            + b'"\r\n\r\n'
            + value
            + b"\r\n"
        )
    parts.append(
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; '
        b'filename="part.png"\r\nContent-Type: image/png\r\n\r\n' + image + b"\r\n"
    )
    body = b"".join(parts) + b"--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


@pytest.mark.parametrize("raw", [b"part-\xff", b"part-\xfe", b"part-\xc3"])
def test_external_id_that_is_not_utf8_is_refused_not_replaced(submitter: Any, raw: bytes) -> None:
    """Django would decode each to U+FFFD: two different keys would collide."""
    body, content_type = multipart({"external_id": raw}, image_bytes())
    response = submitter.generic(
        "POST", "/api/v1/workflows/line/cases/", body, content_type=content_type
    )
    assert_error(response, 400, None, "multipart field", "not valid utf-8")
    assert_nothing_stored()


def test_valid_utf8_external_id_is_kept(submitter: Any) -> None:
    body, content_type = multipart({"external_id": "teil-ä-😀".encode()}, image_bytes())
    response = submitter.generic(
        "POST", "/api/v1/workflows/line/cases/", body, content_type=content_type
    )
    assert response.status_code == 201, response.content
    assert Case.objects.get().external_id == "teil-ä-😀"


def test_multipart_metadata_that_is_not_utf8_is_refused(submitter: Any) -> None:
    body, content_type = multipart({"metadata": b'{"station": "\xe9"}'}, image_bytes())
    response = submitter.generic(
        "POST", "/api/v1/workflows/line/cases/", body, content_type=content_type
    )
    assert_error(response, 400, None, "multipart field", "not valid utf-8")
    assert_nothing_stored()


def test_metadata_sent_as_a_file_is_refused(submitter: Any) -> None:
    response = post_case(
        submitter, "line", image=upload(image_bytes()), metadata=upload(b"{}", "meta.json")
    )
    assert_error(response, 400, "metadata", "expected a json object as text")
    assert_nothing_stored()
