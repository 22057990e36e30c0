"""The embedded broker: kombu's filesystem transport, made safe for concurrent processes.

kombu's stock filesystem transport creates a message file under its final name and then
writes into it, while a consumer in another process lists the folder, moves the file
and parses it: a consumer that comes between the two reads an empty or partial file,
and the ``JSONDecodeError`` stops the worker for good ("Unrecoverable error"). The
exchange tables in the control folder are rewritten in place the same way.

This transport keeps the stock file layout and names (so ``_size`` and ``_purge``
work unchanged) and changes how files appear and disappear:

* a message is written under a hidden temporary name that no consumer matches, flushed
  and fsynced, then renamed into place: a consumer sees a whole message or none;
* a consumer claims a message by renaming it into a claim folder (one rename wins, on
  one filesystem), reads it there and removes it;
* a file that is still unreadable or malformed (left by a crash of an older writer, or a
  disk error) is logged and moved to the bad folder, never fatal to the worker;
* exchange tables are replaced by rename under a lock file, so a reader never sees a
  table half rewritten.

Select it with ``broker_transport = "loopgate.broker:Transport"`` and a
``filesystem://`` URL (the settings do so for the embedded default).
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from queue import Empty
from time import monotonic_ns
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

logger = logging.getLogger(__name__)

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    The temporary name starts with a dot, so the transport's consumers (which match
    ``<stamp>_<uuid>.<queue>.msg``) never pick it up.
    """
    temp = path.with_name(f"{TEMP_PREFIX}{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise


class Channel(filesystem.Channel):
    """A filesystem channel whose consumers never read a message half written."""

    # The signature of kombu's filesystem channel, whose _put_fanout passes **kwargs; it
    # differs from AbstractChannel._put in kombu itself.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # Zero-padded nanoseconds: consumers take files in name order, so messages from
        # one producer come out in the order they went in (the stock name has ms only).
        name = f"{monotonic_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        path = Path(self.data_folder_out) / name
        try:
            write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {str(path)!r} to directory") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = self.claim_folder / name
            try:
                # One rename wins: another consumer that listed the same file gets
                # FileNotFoundError and moves on.
                os.rename(folder / name, claimed)
            except OSError:
                continue
            try:
                message = loads(bytes_to_str(claimed.read_bytes()))
                if not isinstance(message, dict):
                    raise ValueError(f"a message is a JSON object, not {type(message).__name__}")
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                self._set_aside(claimed, exc)
                continue
            self._finish(claimed)
            return message
        raise Empty()

    def _finish(self, claimed: Path) -> None:
        try:
            if self.store_processed:
                os.replace(claimed, Path(self.processed_folder) / claimed.name)
            else:
                os.unlink(claimed)
        except OSError:
            logger.warning("could not remove the consumed message %s", claimed, exc_info=True)

    def _set_aside(self, claimed: Path, exc: BaseException) -> None:
        target = self.bad_folder / claimed.name
        try:
            os.replace(claimed, target)
        except OSError:
            target = claimed
        logger.error(
            "broker: malformed message file set aside at %s (%s: %s)",
            target,
            type(exc).__name__,
            exc,
        )

    # --- exchange tables --------------------------------------------------------------

    @contextmanager
    def _table_lock(self, file: Path) -> Iterator[None]:
        with open(file.with_name(file.name + ".lock"), "a+b") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _read_table(self, file: Path) -> list[filesystem.exchange_queue_t]:
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        try:
            return [filesystem.exchange_queue_t(*row) for row in loads(bytes_to_str(raw))]
        except (ValueError, TypeError) as exc:
            # Left half written by an older writer: the next bind rewrites it whole.
            logger.error("broker: unreadable exchange table %s (%s); ignored", file, exc)
            return []

    def get_table(self, exchange: str) -> list[filesystem.exchange_queue_t]:
        return self._read_table(self._exchange_file(exchange))

    def _write_table(self, file: Path, queues: list[filesystem.exchange_queue_t]) -> None:
        try:
            write_atomically(file, str_to_bytes(dumps(queues)))
        except OSError as exc:
            raise ChannelError(f"Cannot write {file}") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_lock(file):
            queues = self._read_table(file)
            if binding in queues and file.exists():
                return
            if binding not in queues:
                queues.insert(0, binding)
            self._write_table(file, queues)

    def _delete(
        self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any
    ) -> None:
        # The virtual channel's own bookkeeping, skipping the stock in-place rewrite.
        super(filesystem.Channel, self)._delete(
            queue, exchange, routing_key, pattern, *args, **kwargs
        )
        file = self._exchange_file(exchange)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if not file.exists():
            return
        with self._table_lock(file):
            queues = self._read_table(file)
            if binding in queues:
                queues.remove(binding)
                self._write_table(file, queues)

    # --- folders ----------------------------------------------------------------------

    def _folder(self, option: str, default: str) -> Path:
        path = Path(self.transport_options.get(option) or Path(self.data_folder_in) / default)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def claim_folder(self) -> Path:
        """Where a consumer moves a message while it reads it (same filesystem as the queue)."""
        return self._folder("claim_folder", ".claimed")

    @cached_property
    def bad_folder(self) -> Path:
        """Where malformed message files are set aside for a person to look at."""
        return self._folder("bad_folder", ".bad")


class Transport(filesystem.Transport):
    """kombu's filesystem transport with atomic publishing and tolerant consuming."""

    Channel = Channel
