from __future__ import annotations

import hashlib
import hmac

from integrations.signing import signature_header, signature_verify

BODY = b'{"id":"e1","type":"case.decided"}'


def test_header_is_hmac_sha256_of_timestamp_dot_body() -> None:
    header = signature_header(secret="s3cret", body=BODY, timestamp=1_700_000_000)
    expected = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert signature_verify(secret="s3cret", header=header, body=BODY, now=1_700_000_010)


def test_tampered_body_wrong_secret_stale_or_malformed_fail() -> None:
    header = signature_header(secret="s3cret", body=BODY, timestamp=1_700_000_000)
    now = 1_700_000_000
    assert not signature_verify(secret="s3cret", header=header, body=BODY + b" ", now=now)
    assert not signature_verify(secret="other", header=header, body=BODY, now=now)
    assert not signature_verify(secret="s3cret", header=header, body=BODY, now=now + 301)
    for bad in ("", "t=x,v1=00", "v1=00", "t=1700000000", "garbage"):
        assert not signature_verify(secret="s3cret", header=bad, body=BODY, now=now)
