"""API tokens: hashed at rest, shown once, refused when expired or revoked; the migration
from DRF's plaintext tokens; the token_create command."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.selectors import api_token_for_key
from accounts.services import api_token_create, api_token_revoke
from tests.conftest import cache_calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(make_user: Any, make_workflow: Any, member: Any) -> Any:
    user = make_user("camera")
    member(user, make_workflow("line", level="human_only", serving=False), submit=True)
    return user


def get_workflow(key: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/workflows/line/")


def test_the_key_is_stored_only_as_its_hash(reader: Any) -> None:
    token, key = api_token_create(user=reader, name="line camera")
    assert len(key) >= 43  # 32 random bytes
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.key_prefix == key[:8]
    for field in ApiToken._meta.concrete_fields:
        value = str(getattr(stored, field.attname))
        assert key not in value, field.name
    assert get_workflow(key).status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None


def test_a_wrong_key_with_a_right_prefix_is_refused(reader: Any) -> None:
    _, key = api_token_create(user=reader, name="camera")
    forged = key[:8] + "x" * (len(key) - 8)
    response = get_workflow(forged)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid token."
    assert response["WWW-Authenticate"] == "Token"


def test_expired_and_revoked_tokens_are_refused_with_a_reason(reader: Any) -> None:
    token, key = api_token_create(
        user=reader, name="short", expires_at=timezone.now() + timedelta(hours=1)
    )
    assert get_workflow(key).status_code == 200
    # An ORM write, as the admin makes it: the cached token is forgotten (D125).
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save(update_fields=["expires_at"])
    response = get_workflow(key)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]

    token, key = api_token_create(user=reader, name="long")
    api_token_revoke(token_id=token.pk)
    first_revocation = ApiToken.objects.get(pk=token.pk).revoked_at
    api_token_revoke(token_id=token.pk)  # idempotent
    assert ApiToken.objects.get(pk=token.pk).revoked_at == first_revocation
    response = get_workflow(key)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_a_user_revokes_only_their_own_tokens(reader: Any, make_user: Any) -> None:
    from kernel.errors import NotFound

    token, _ = api_token_create(user=reader, name="camera")
    with pytest.raises(NotFound):
        api_token_revoke(token_id=token.pk, user=make_user("someone-else"))
    assert api_token_revoke(token_id=token.pk, user=reader).revoked_at is not None


def test_a_token_of_an_inactive_user_is_refused(reader: Any) -> None:
    _, key = api_token_create(user=reader, name="camera")
    reader.is_active = False
    reader.save()
    assert get_workflow(key).status_code == 401


def test_bad_input_is_refused(reader: Any) -> None:
    from kernel.errors import InvalidInput

    with pytest.raises(InvalidInput):
        api_token_create(user=reader, name=" ")
    with pytest.raises(InvalidInput):
        api_token_create(user=reader, name="x", expires_at=timezone.now() - timedelta(days=1))
    with pytest.raises(InvalidInput):
        api_token_create(user=reader, name="x", throttle_rate="lots")


def test_malformed_headers_get_401() -> None:
    for header in ("Token", "Token a b", "Token short"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/v1/workflows/").status_code == 401, header


def test_token_create_prints_the_key_once(reader: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "token_create", "camera", "--name", "line 2", "--expires-days", "30", stdout=out, stderr=err
    )
    key = out.getvalue().strip()
    token = api_token_for_key(key)
    assert token is not None and token.name == "line 2" and token.user == reader
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert "shown only now" in err.getvalue()
    assert get_workflow(key).status_code == 200
    with pytest.raises(CommandError):
        call_command("token_create", "nobody", "--name", "x", stdout=out, stderr=err)


def test_the_migration_hashes_existing_plaintext_keys(reader: Any) -> None:
    """The data migration, run against a copy of DRF's old table: the key keeps working,
    and the plaintext table is gone afterwards."""
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("accounts.migrations.0002_import_plaintext_tokens")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "user_id integer NOT NULL, created timestamp with time zone NOT NULL)"
            if connection.vendor == "postgresql"
            else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "user_id integer NOT NULL, created datetime NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, user_id, created) VALUES (%s, %s, %s)",
            [old_key, reader.pk, timezone.now()],
        )
    with connection.schema_editor() as editor:
        migration.import_plaintext_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    token = api_token_for_key(old_key)
    assert token is not None and token.user == reader and token.name == "migrated"
    assert get_workflow(old_key).status_code == 200


def test_the_admin_revokes_tokens_and_checks_rates(reader: Any, make_user: Any) -> None:
    from django.test import Client

    token, key = api_token_create(user=reader, name="camera")
    client = Client()
    client.force_login(make_user("root", superuser=True))
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
    change = f"/admin/accounts/apitoken/{token.pk}/change/"
    page = client.get(change)
    assert page.status_code == 200 and key not in page.content.decode()
    refused = client.post(change, {"throttle_rate": "lots", "expires_at_0": "", "expires_at_1": ""})
    assert refused.status_code == 200 and b"not a rate" in refused.content
    client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert get_workflow(key).status_code == 401


def test_a_cached_token_still_expires_on_time(reader: Any, monkeypatch: Any) -> None:
    """The expiry is checked on every request against the clock, cached token or not."""
    from accounts import authentication

    _token, key = api_token_create(
        user=reader, name="short", expires_at=timezone.now() + timedelta(hours=1)
    )
    assert get_workflow(key).status_code == 200
    assert get_workflow(key).status_code == 200  # from the access cache
    later = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(authentication.timezone, "now", lambda: later)
    response = get_workflow(key)
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_a_busy_token_is_stamped_once_per_resolution_without_a_cache_call_each(
    reader: Any, monkeypatch: Any
) -> None:
    """``last_used_at`` moves at most once a minute; between stamps a process does not ask
    the shared cache for the marker on every request (D142)."""
    from django.core.cache import cache

    from accounts import services

    token, key = api_token_create(user=reader, name="camera")
    adds = cache_calls(monkeypatch, "add")
    clock = [1000.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: clock[0])
    assert get_workflow(key).status_code == 200
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    markers = [marker for marker in adds if "token-used" in marker]
    assert len(markers) == 1
    # The cached token's stamp is a minute old: without the process's memo every request
    # would ask for the marker again.
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    for _ in range(3):
        assert get_workflow(key).status_code == 200
    assert [marker for marker in adds if "token-used" in marker] == markers
    # A resolution later (and the shared marker gone with it) the use is stamped again.
    clock[0] += services.LAST_USED_RESOLUTION.total_seconds() + 1
    cache.delete(markers[0])
    assert get_workflow(key).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == later
