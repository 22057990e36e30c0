"""Wake-up flags: "a drain of workflow W is queued and has not started yet".

Ingest publishes a workflow's drain message only when it sets this flag (SET NX), so a
burst of cases costs one message, not one per case. The drain clears the flag *before*
its first claim (``processing.services.workflow_drain``); a case committed after that
sets the flag again and publishes a new drain, and a case committed before it is
visible to the drain's claims. So every committed case is either claimed by a drain
that started after it was committed, or wakes one itself.

The flag lives beside the messages, in the broker's own store, so that every web and
worker process sees the same flag and a broker that loses its messages loses the flags
with them: Redis (``SET NX EX``) when the broker is Redis, a file created exclusively in
the broker's folder for the embedded filesystem broker, and this process's memory when
tasks run eagerly (tests, scripts). A flag expires after
``LOOPGATE_WAKEUP_TTL_SECONDS``: if its message was lost some other way, the next case
publishes again (and the stall sweeper remains the last resort).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings


class WakeFlags(Protocol):
    def set_if_absent(self, workflow_id: int) -> bool:
        """Set the flag; True when it was not set (the caller publishes a drain)."""

    def set(self, workflow_id: int) -> None: ...

    def clear(self, workflow_id: int) -> None: ...


class MemoryWakeFlags:
    """One process's flags: for eager tasks, where the drain runs inside the publish."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._flags: dict[int, float] = {}
        self._lock = threading.Lock()

    def set_if_absent(self, workflow_id: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._flags.get(workflow_id, 0.0) > now:
                return False
            self._flags[workflow_id] = now + self.ttl
            return True

    def set(self, workflow_id: int) -> None:
        with self._lock:
            self._flags[workflow_id] = time.monotonic() + self.ttl

    def clear(self, workflow_id: int) -> None:
        with self._lock:
            self._flags.pop(workflow_id, None)


class RedisWakeFlags:
    """Flags as Redis keys with an expiry, in the broker's database."""

    def __init__(self, url: str, ttl: float) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.ttl_ms = max(1, int(ttl * 1000))

    @staticmethod
    def key(workflow_id: int) -> str:
        return f"loopgate:wake:{workflow_id}"

    def set_if_absent(self, workflow_id: int) -> bool:
        return bool(self.client.set(self.key(workflow_id), b"1", nx=True, px=self.ttl_ms))

    def set(self, workflow_id: int) -> None:
        self.client.set(self.key(workflow_id), b"1", px=self.ttl_ms)

    def clear(self, workflow_id: int) -> None:
        self.client.delete(self.key(workflow_id))


class FileWakeFlags:
    """Flags as files in the embedded broker's folder, created with ``O_EXCL``.

    A flag older than the expiry counts as absent and is replaced; two processes that
    both find it expired may both publish, which costs one extra message, never a case.
    """

    def __init__(self, folder: Path, ttl: float) -> None:
        self.folder = folder
        self.ttl = ttl
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, workflow_id: int) -> Path:
        return self.folder / f"{int(workflow_id)}.wake"

    def set_if_absent(self, workflow_id: int) -> bool:
        path = self.path(workflow_id)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return True
        except FileExistsError:
            try:
                expired = time.time() - path.stat().st_mtime >= self.ttl
            except FileNotFoundError:
                expired = True  # cleared in between: set it again
            if expired:
                self.set(workflow_id)
            return expired

    def set(self, workflow_id: int) -> None:
        path = self.path(workflow_id)
        path.touch(mode=0o600, exist_ok=True)
        os.utime(path)

    def clear(self, workflow_id: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(workflow_id))


_stores: dict[tuple[int, str], WakeFlags] = {}
_stores_lock = threading.Lock()


def wake_flags() -> WakeFlags:
    """The flag store of the broker this process publishes to (one per process and broker)."""
    from celery import current_app

    conf = current_app.conf
    ttl = settings.LOOPGATE_WAKEUP_TTL_SECONDS
    url = str(conf.broker_url or "")
    if conf.task_always_eager:
        where = "eager"
    elif url.startswith(("redis://", "rediss://", "unix://")):
        where = url
    elif url.startswith("filesystem://"):
        options: dict[str, Any] = conf.broker_transport_options or {}
        folder = options.get("wake_folder") or Path(options["data_folder_in"]).parent / "wake"
        where = f"file:{folder}"
    else:
        raise RuntimeError(f"no wake-up flags for the broker {url.split('://')[0]}://")
    key = (os.getpid(), where)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            if where == "eager":
                store = MemoryWakeFlags(ttl)
            elif where.startswith("file:"):
                store = FileWakeFlags(Path(where.removeprefix("file:")), ttl)
            else:
                store = RedisWakeFlags(url, ttl)
            _stores[key] = store
    return store
