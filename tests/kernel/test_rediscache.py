"""The Redis cache backend keeps one client per connection pool (kernel.rediscache)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from kernel.rediscache import RedisCache
from tests.conftest import require_postgres_and_redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache() -> RedisCache:
    require_postgres_and_redis()
    from django.conf import settings

    return RedisCache(settings.CELERY_BROKER_URL, {"KEY_PREFIX": f"t-{uuid.uuid4().hex}"})


def test_one_client_serves_every_call(cache: RedisCache) -> None:
    first = cache._cache.get_client(write=True)
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client(write=False) is first  # one server: reads go there too
    # Django's own backend builds a client per call; this is what the subclass saves.
    django_cache = DjangoRedisCache(cache._servers[0], {})
    assert django_cache._cache.get_client() is not django_cache._cache.get_client()


def test_it_stores_reads_counts_and_deletes_like_django_s(cache: RedisCache) -> None:
    cache.set("rate", 1.5, 30)
    assert cache.get("rate") == 1.5
    assert cache.add("rate", 9.0) is False
    cache.set("n", 1)
    assert cache.incr("n", 2) == 3
    cache.set_many({"a": [1, 2], "b": {"x": "y"}})
    assert cache.get_many(["a", "b", "missing"]) == {"a": [1, 2], "b": {"x": "y"}}
    cache.delete_many(["a", "b", "n", "rate"])
    assert cache.get("rate") is None


def test_settings_use_it_for_a_redis_cache_url() -> None:
    """In a fresh process, as production starts: a redis:// cache URL gets this backend."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOOPGATE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="loopgate.settings",
        DJANGO_SECRET_KEY="x" * 50,
        LOOPGATE_CACHE_URL="redis://127.0.0.1:6379/9",
    )
    code = (
        "import django; django.setup(); from django.core.cache import caches; "
        "c = caches['default']; print(type(c).__module__, type(c).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["kernel.rediscache", "RedisCache"]
