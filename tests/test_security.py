"""Closed doors: /metrics needs a token or staff, logins lock out, the API throttles,
pages carry CSP, and production settings pass Django's deployment check."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[1]
WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def _fast_hashing_and_empty_cache(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()


# --- /metrics -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_need_the_bearer_token_or_a_staff_session(
    settings: Any, make_user: Any, make_workflow: Any
) -> None:
    make_workflow("secret-line", level="human_only", serving=False)
    settings.LOOPGATE_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client()

    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"secret-line" not in anonymous.content
    assert anonymous.json()["error"]["code"] == "not_authenticated"

    wrong_headers = (
        "Bearer nope",
        "Bearer s3cret-scrape-toke",
        "Bearer ",
        "Token s3cret-scrape-token",
    )
    for wrong in wrong_headers:
        response = client.get("/metrics", HTTP_AUTHORIZATION=wrong)
        assert response.status_code == 401, wrong
        assert b"secret-line" not in response.content

    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert right.status_code == 200
    assert b'workflow="secret-line"' in right.content or b"loopgate_cases" in right.content

    client.force_login(make_user("reviewer"))
    assert client.get("/metrics").status_code == 403

    staff = make_user("ops")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200
    client.force_login(make_user("root", superuser=True))
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_without_a_metrics_token_setting_no_bearer_token_works(settings: Any) -> None:
    settings.LOOPGATE_METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 401


# --- Login lockout ------------------------------------------------------------------------


def _login(client: Client, path: str, username: str, password: str, **extra: Any) -> Any:
    return client.post(path, {"username": username, "password": password}, **extra)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_fifty_wrong_passwords_lock_the_account_out_from_that_client(
    path: str, make_user: Any, settings: Any
) -> None:
    user = make_user("rita", superuser=path.startswith("/admin/"), password="right-password")
    client = Client()
    for _ in range(50):
        response = _login(client, path, "rita", WRONG)
        assert response.status_code in {200, 429}
    locked = _login(client, path, "rita", "right-password")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session

    # Another client address is not locked out (failures count per account and client).
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    ok = _login(elsewhere, path, "rita", "right-password")
    assert ok.status_code == 302
    assert elsewhere.session["_auth_user_id"] == str(user.pk)

    # After the cool-off the right password works again from the first client.
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.first().attempt_time
        - settings.AXES_COOLOFF_TIME * timedelta(hours=1)
        - timedelta(seconds=1)
    )
    assert _login(client, path, "rita", "right-password").status_code == 302


@pytest.mark.django_db
def test_fewer_failures_than_the_limit_do_not_lock(make_user: Any, settings: Any) -> None:
    make_user("sam", password="right-password")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "/login/", "sam", WRONG).status_code == 200
    assert _login(client, "/login/", "sam", "right-password").status_code == 302


# --- API throttling -----------------------------------------------------------------------


def _rates(settings: Any, **rates: str) -> None:
    from rest_framework.settings import api_settings

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }
    api_settings.reload()


@pytest.fixture
def restore_api_settings() -> Any:
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    original = SimpleRateThrottle.THROTTLE_RATES
    yield
    SimpleRateThrottle.THROTTLE_RATES = original
    api_settings.reload()


def _set_rates(settings: Any, **rates: str) -> None:
    from rest_framework.throttling import SimpleRateThrottle

    _rates(settings, **rates)
    SimpleRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]


class _Caller:
    """What the throttle reads of a request and a view, for the rate alone."""

    throttle_cost: int | None = None


def test_the_rate_lets_a_whole_burst_through_then_one_per_interval(monkeypatch: Any) -> None:
    from django.core.cache import cache

    from loopgate.throttling import CostedRateThrottle

    clock = [1000.0]

    class Rate(CostedRateThrottle):
        rate = "6/min"
        timer = staticmethod(lambda: clock[0])

        def get_cache_key(self, request: Any, view: Any) -> str:
            return "throttle_tat_test_one"

    cache.clear()
    view = _Caller()

    def ask(cost: int = 1) -> tuple[bool, float | None]:
        view.throttle_cost = cost
        throttle = Rate()
        return throttle.allow_request(None, view), throttle.wait()  # type: ignore[arg-type]

    assert [ask()[0] for _ in range(6)] == [True] * 6
    allowed, wait = ask()
    assert not allowed and wait == pytest.approx(10.0)  # one unit every 60 / 6 s
    clock[0] += 9.9
    assert not ask()[0]
    clock[0] += 0.1
    assert ask()[0]
    # A costed request is all or nothing: two units take 20 s to come back.
    clock[0] += 10
    allowed, wait = ask(2)
    assert not allowed and wait == pytest.approx(10.0)
    clock[0] += 10
    assert ask(2)[0]
    # Over a long span, at most the rate: 10 calls a second for 2 minutes let the burst
    # and one per 10 s through (the last may fall either side of the span's end).
    clock[0] += 600
    let_through = 0
    for _ in range(120 * 10):
        clock[0] += 0.1
        let_through += ask()[0]
    assert 6 + 11 <= let_through <= 6 + 12


def test_a_rate_of_none_refuses_every_request_as_a_throttle() -> None:
    from django.core.cache import cache

    from loopgate.throttling import CostedRateThrottle

    class Closed(CostedRateThrottle):
        rate = "0/min"

        def get_cache_key(self, request: Any, view: Any) -> str:
            return "throttle_tat_test_closed"

    cache.clear()
    for cost in (1, 5):
        view = _Caller()
        view.throttle_cost = cost
        throttle = Closed()
        assert throttle.allow_request(None, view) is False  # type: ignore[arg-type]
        assert throttle.wait() == 60.0


@pytest.mark.django_db
def test_a_token_over_its_rate_gets_429_with_retry_after(
    settings: Any,
    restore_api_settings: None,
    make_user: Any,
    make_workflow: Any,
    member: Any,
    client_for: Any,
) -> None:
    _set_rates(settings, token="3/min")
    user = make_user("camera")
    member(user, make_workflow("line", level="human_only", serving=False), submit=True)
    client = client_for(user)
    for _ in range(3):
        assert client.get("/api/v1/workflows/line/").status_code == 200
    throttled = client.get("/api/v1/workflows/line/")
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    error = throttled.json()["error"]
    assert error["code"] == "throttled"
    assert "throttled" in error["message"].lower()

    # Each token has its own budget; a token's own rate overrides the default.
    other = client_for(user)
    assert other.get("/api/v1/workflows/line/").status_code == 200
    generous = client_for(user)
    generous.api_token.throttle_rate = "100/min"
    generous.api_token.save()
    for _ in range(5):
        assert generous.get("/api/v1/workflows/line/").status_code == 200


@pytest.mark.django_db
def test_session_users_have_their_own_rate(
    settings: Any, restore_api_settings: None, make_user: Any
) -> None:
    _set_rates(settings, user="2/min")
    client = APIClient()
    client.force_login(make_user("rita"))
    assert client.get("/api/v1/workflows/").status_code == 200
    assert client.get("/api/v1/workflows/").status_code == 200
    response = client.get("/api/v1/workflows/")
    assert response.status_code == 429
    assert "Retry-After" in response


def test_client_ip_trusts_only_the_proxies_it_was_told_about(settings: Any) -> None:
    from django.test import RequestFactory

    from loopgate.throttling import client_ip

    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"
    )
    settings.PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"
    settings.PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"
    settings.PROXY_COUNT = 5
    assert client_ip(request) == "6.6.6.6"


# --- Content Security Policy --------------------------------------------------------------


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(make_user: Any) -> None:
    client = Client()
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy


@pytest.mark.django_db
def test_the_api_docs_page_alone_may_load_swagger_from_its_cdn(make_user: Any) -> None:
    client = Client()
    client.force_login(make_user("reader"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"<script>" not in response.content  # the start-up script is a separate file
    assert "https://cdn.jsdelivr.net" in response["Content-Security-Policy"]
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200


# --- Production settings ------------------------------------------------------------------


def _production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOOPGATE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="loopgate.settings",
        DJANGO_SECRET_KEY="k7#Qz!" + "Vb9x2Lr8Wm4Tn6Yp1Hs3Jd5Fg0Ck" * 2,
        DJANGO_ALLOWED_HOSTS="loopgate.example.com",
        DJANGO_BEHIND_TLS_PROXY="1",
        LOOPGATE_VAR_DIR=os.environ.get("LOOPGATE_VAR_DIR", "/tmp"),
        **extra,
    )
    return env


def test_manage_check_deploy_is_clean_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_behind_a_tls_proxy_https_is_enforced() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(DJANGO_HSTS_PRELOAD="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == (
        "True True True True True True ('HTTP_X_FORWARDED_PROTO', 'https')"
    )


@pytest.mark.django_db
def test_hsts_header_and_redirect_when_behind_the_proxy(settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    client = Client()
    plain = client.get("/login/")
    assert plain.status_code == 301
    assert plain["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    secure = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
