"""A real Celery worker (with beat) over real Redis, against the real PostgreSQL test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from kombu import pools as kombu_pools

from loopgate.celery import app as celery_app
from tests.conftest import require_postgres_and_redis

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One ``celery worker --beat`` subprocess; start, kill -9, start again."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        schedule = self.log_path.with_suffix(".schedule")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "loopgate",
                "worker",
                "--beat",
                "--schedule",
                str(schedule),
                "-Q",
                "inference,training,default",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if "ready." in self.log_path.read_text():
                return
            time.sleep(0.5)
        raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), like a crash."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.log_path.write_text(self.log_path.read_text().replace("ready.", "ready (before kill)"))

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)

    def pool_children(self) -> list[int]:
        """The pids of the worker's pool processes (and its embedded beat)."""
        assert self.process is not None
        # A replacement pool process is forked by the pool's supervising thread: read the
        # children of every thread, not only the main one's.
        pids: list[int] = []
        for children in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            try:
                pids += [int(pid) for pid in children.read_text().split()]
            except OSError:
                continue
        return pids

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def app_use_broker(
    url: str, *, transport: str | None = None, options: dict[str, Any] | None = None
) -> Callable[[], None]:
    """Point this process's Celery app (publishing, not eager) at another broker.

    Returns the function that puts the previous configuration back.
    """
    conf = celery_app.conf
    previous = (
        conf.task_always_eager,
        conf.broker_url,
        conf.broker_transport,
        conf.broker_transport_options,
    )

    def reset_pools() -> None:
        # kombu keeps its connection and producer pools in a global registry keyed by the
        # connection: clear it, or the next publish reuses a closed pool.
        kombu_pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    previous_env = os.environ.get("CELERY_BROKER_URL")
    reset_pools()
    os.environ["CELERY_BROKER_URL"] = url
    conf.task_always_eager = False
    conf.broker_url = url
    conf.broker_transport = transport
    conf.broker_transport_options = options or {}

    def restore() -> None:
        reset_pools()
        if previous_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous_env
        (
            conf.task_always_eager,
            conf.broker_url,
            conf.broker_transport,
            conf.broker_transport_options,
        ) = previous

    return restore


def tests_database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker subprocess on the test database, with its own media."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loopgate.test_settings",
        "DATABASE_URL": tests_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOOPGATE_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
        "LOOPGATE_VAR_DIR": str(tmp_path / "var"),
        "LOOPGATE_INFERENCE_DEVICE": "cpu",
        **extra,
    }


def purge_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()


@pytest.fixture
def worker(transactional_db: None, settings: Any, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A live worker on the test database; web-side tasks go to Redis, not eager."""
    require_postgres_and_redis()
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loopgate.test_settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOOPGATE_MEDIA_ROOT": str(media),
        "LOOPGATE_VAR_DIR": str(tmp_path / "var"),
        "LOOPGATE_SWEEP_INTERVAL_SECONDS": "2",
        "LOOPGATE_STALLED_AFTER_SECONDS": "4",
        "CELERY_VISIBILITY_TIMEOUT": "3600",
        "LOOPGATE_INFERENCE_DEVICE": "cpu",
    }
    purge_broker()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()
        celery_app.conf.task_always_eager = previous
        purge_broker()
        log = (tmp_path / "worker.log").read_text()
        out = ROOT / "test-output"
        out.mkdir(exist_ok=True)
        (out / "integration-worker.log").write_text(log[-200_000:])


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
