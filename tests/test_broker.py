"""The embedded broker: a consumer never reads a message half written, and never dies on one.

The stock kombu filesystem transport is run beside ours on the same race, to show what
the fix is for: its consumer parses a message file its writer has created but not yet
filled, and fails.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection
from kombu.transport import filesystem as stock

from loopgate import broker


def channel_of(transport: Any, root: Path) -> Any:
    for folder in ("queue", "control"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    conn = Connection(
        "filesystem://",
        transport=transport,
        transport_options={
            "data_folder_in": str(root / "queue"),
            "data_folder_out": str(root / "queue"),
            "control_folder": str(root / "control"),
            "claim_folder": str(root / "claimed"),
            "bad_folder": str(root / "bad"),
        },
    )
    return conn.default_channel


class SlowWriter:
    """Serialises a payload, then waits until released: the file is open but empty."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, payload: Any) -> str:
        text = json.dumps(payload)
        self.started.set()
        assert self.release.wait(10)
        return text


def publish_slowly(
    monkeypatch: pytest.MonkeyPatch, module: Any, channel: Any, payload: dict
) -> tuple[SlowWriter, threading.Thread]:
    writer = SlowWriter()
    monkeypatch.setattr(module, "dumps", writer)
    thread = threading.Thread(target=channel._put, args=("inference", payload))
    thread.start()
    assert writer.started.wait(10)
    time.sleep(0.05)  # the stock writer has created its file by now
    return writer, thread


MESSAGE = {"body": "e30=", "headers": {}, "properties": {"delivery_tag": "x"}}


def test_the_stock_transport_reads_a_message_its_writer_has_not_finished(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    channel = channel_of("kombu.transport.filesystem:Transport", tmp_path)
    writer, thread = publish_slowly(monkeypatch, stock, channel, MESSAGE)
    try:
        with pytest.raises(json.JSONDecodeError):
            channel._get("inference")
    finally:
        writer.release.set()
        thread.join()


def test_a_message_being_written_is_invisible_until_it_is_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    channel = channel_of(broker.Transport, tmp_path)
    writer, thread = publish_slowly(monkeypatch, broker, channel, MESSAGE)
    try:
        with pytest.raises(Empty):
            channel._get("inference")
        assert channel._size("inference") == 0
    finally:
        writer.release.set()
        thread.join()
    assert channel._get("inference") == MESSAGE
    assert list((tmp_path / "queue").iterdir()) == []
    assert list((tmp_path / "claimed").iterdir()) == []


@pytest.mark.parametrize(
    "content", [b"", b'{"body": "e30=", "head', b"\xff\xfe not json", b"[1, 2]"]
)
def test_a_malformed_message_file_is_set_aside_and_the_next_one_delivered(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    channel = channel_of(broker.Transport, tmp_path)
    (tmp_path / "queue" / "1_bad.inference.msg").write_bytes(content)
    channel._put("inference", MESSAGE)
    assert channel._get("inference") == MESSAGE
    with pytest.raises(Empty):
        channel._get("inference")
    assert [p.name for p in (tmp_path / "bad").iterdir()] == ["1_bad.inference.msg"]
    assert "malformed message file set aside" in caplog.text
    assert list((tmp_path / "queue").iterdir()) == []


def test_the_stock_transport_dies_on_a_truncated_file(tmp_path: Path) -> None:
    channel = channel_of("kombu.transport.filesystem:Transport", tmp_path)
    (tmp_path / "queue" / "1_bad.inference.msg").write_bytes(b'{"body": "e30=", "head')
    with pytest.raises(json.JSONDecodeError):
        channel._get("inference")


def test_concurrent_producers_and_consumers_deliver_every_message_once(tmp_path: Path) -> None:
    """Four publishers and three consumers, each with its own channel, on one folder."""
    per_producer = 150
    received: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    done_publishing = threading.Event()

    def produce(offset: int) -> None:
        channel = channel_of(broker.Transport, tmp_path)
        for i in range(per_producer):
            channel._put("inference", {"n": offset + i})

    def consume() -> None:
        channel = channel_of(broker.Transport, tmp_path)
        try:
            while True:
                try:
                    message = channel._get("inference")
                except Empty:
                    if done_publishing.is_set() and channel._size("inference") == 0:
                        return
                    continue
                with lock:
                    received.append(message["n"])
        except Exception as exc:  # noqa: BLE001 - the failure is asserted
            errors.append(exc)

    consumers = [threading.Thread(target=consume) for _ in range(3)]
    producers = [threading.Thread(target=produce, args=(k * per_producer,)) for k in range(4)]
    for thread in consumers + producers:
        thread.start()
    for thread in producers:
        thread.join()
    done_publishing.set()
    for thread in consumers:
        thread.join(30)
    assert not errors
    assert sorted(received) == list(range(4 * per_producer))
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").iterdir())


def test_exchange_tables_are_never_seen_half_rewritten(tmp_path: Path) -> None:
    channel = channel_of(broker.Transport, tmp_path)
    stop = threading.Event()
    seen_errors: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                channel.get_table("celery")
            except Exception as exc:  # noqa: BLE001 - the failure is asserted
                seen_errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            channel._queue_bind("celery", f"key{i}", "", f"queue{i}")
    finally:
        stop.set()
        reader.join()
    assert not seen_errors
    assert len(channel.get_table("celery")) == 200
    channel._delete("queue0", "celery", "key0", "")
    assert len(channel.get_table("celery")) == 199


def test_kombu_publishes_and_consumes_through_it(tmp_path: Path) -> None:
    # A queue name of its own: kombu's virtual transports keep declared bindings in one
    # process-wide state, which other tests' connections have filled.
    name = f"simple-{uuid.uuid4().hex}"
    channel = channel_of(broker.Transport, tmp_path)
    with channel.connection.client as conn:
        queue = conn.SimpleQueue(name)
        for i in range(5):
            queue.put({"n": i})
        got = []
        for _ in range(5):
            message = queue.get(timeout=5)
            got.append(message.payload["n"])
            message.ack()
        queue.close()
    assert got == [0, 1, 2, 3, 4]


def test_the_embedded_default_selects_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "test-only",
        "LOOPGATE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "loopgate.settings",
    }
    code = (
        "import django; django.setup(); from loopgate.celery import app;"
        "c = app.connection_for_write(); print(type(c.transport).__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "loopgate.broker"
    assert (tmp_path / "broker" / "bad").is_dir()
