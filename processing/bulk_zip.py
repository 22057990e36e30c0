"""A zip of images as a bulk ingest: the archive is read, never extracted.

``zip_upload_open`` reads the archive's directory and decides, before anything is
stored, whether the upload as a whole is acceptable; each entry is then decompressed
only when its item is stored (one entry in memory at a time) and goes through the same
``processing.bulk.cases_bulk_create`` as ``POST …/cases/bulk/``.

What guards the server against a hostile archive:

* the archive's own size is bounded by the caller (``LOOPGATE_BULK_MAX_BYTES``);
* at most ``LOOPGATE_BULK_MAX_ITEMS`` images, and at most twice that many entries of
  any kind (folders and ignored files included), read from the end-of-directory record
  before ``zipfile`` parses the directory (an object per entry), whose size is bounded
  too (``DIRECTORY_BYTES_PER_ENTRY``);
* the sizes the directory declares add up to at most ``LOOPGATE_BULK_MAX_BYTES``, and
  an entry over ``LOOPGATE_MAX_UPLOAD_BYTES`` is that item's 413 without being
  decompressed. ``zipfile`` stops decompressing an entry at its declared size and checks
  its CRC, so a directory that lies about a size yields a corrupt entry, not a bomb;
  an image that decodes to too many pixels is refused by the image validation of
  ``case_create`` like any upload;
* names are only names: nothing is written to disk, folders are flattened (the item is
  the file's base name, which must be unique), and entries with an absolute path, a
  ``..`` part, a link, or a hidden or ``__MACOSX`` name are ignored and listed;
* an encrypted, corrupt or unsupported entry, and a file that is not an image, is that
  item's error; the other items go on.

A ``manifest.json`` (the bulk endpoint's JSON list) or ``manifest.csv`` (columns
``file``, ``external_id``, ``metadata`` as JSON text, ``deadline_seconds``; any other
column becomes a metadata key) anywhere in the archive gives keys and metadata per file;
files it does not name are items without a key.
"""

from __future__ import annotations

import csv
import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings

from kernel import strictjson
from kernel.errors import InvalidInput, PayloadTooLarge
from processing.bulk import BulkItem, _manifest_json, manifest_items

MANIFEST_NAMES = ("manifest.json", "manifest.csv")
# A directory entry is 46 bytes and the name (plus extra fields); a generous bound per
# entry keeps an archive of long names from costing memory before it is refused.
DIRECTORY_BYTES_PER_ENTRY = 1024
CSV_FIELDS = frozenset({"file", "external_id", "metadata", "deadline_seconds", "deadline"})


@dataclass(frozen=True)
class IgnoredEntry:
    path: str
    why: str


@dataclass
class ZipUpload:
    """An opened archive: its items (in archive order, or manifest order first) and the
    entries left out, with ``read(name)`` giving one item's bytes."""

    archive: zipfile.ZipFile
    entries: dict[str, zipfile.ZipInfo]
    items: list[BulkItem]
    ignored: list[IgnoredEntry] = field(default_factory=list)

    def read(self, name: str) -> bytes:
        """The entry's bytes (at most one byte over the image limit, which the item's
        size check then refuses); an entry that cannot be read raises a ``DomainError``,
        which ``cases_bulk_create`` makes that item's result."""
        info = self.entries[name]
        if info.flag_bits & 0x1:
            raise EntryUnreadable(f"{name}: the entry is encrypted", field="image")
        if info.file_size > settings.LOOPGATE_MAX_UPLOAD_BYTES:
            raise EntryTooLarge(
                f"image: {info.file_size} bytes is over the limit of "
                f"{settings.LOOPGATE_MAX_UPLOAD_BYTES} bytes",
                field="image",
            )
        try:
            with self.archive.open(info) as stream:
                return stream.read(settings.LOOPGATE_MAX_UPLOAD_BYTES + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise EntryUnreadable(f"{name}: the entry is corrupt ({exc})", field="image") from None
        except NotImplementedError:
            raise EntryUnreadable(
                f"{name}: the entry's compression is not supported", field="image"
            ) from None

    def close(self) -> None:
        self.archive.close()


class EntryUnreadable(InvalidInput):
    """An entry that cannot be read: that item's 400."""


class EntryTooLarge(PayloadTooLarge):
    """An entry over the image size limit: that item's 413."""


def _unsafe_reason(info: zipfile.ZipInfo, path: str) -> str | None:
    parts = path.split("/")
    if path.startswith("/") or (len(parts[0]) == 2 and parts[0][1] == ":"):
        return "an absolute path: ignored"
    if ".." in parts:
        return "a path leading out of the archive: ignored"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a link: ignored"
    if parts[0] == "__MACOSX" or parts[-1].startswith("."):
        return "a hidden or system file: ignored"
    return None


def zip_upload_open(stream: IO[bytes]) -> ZipUpload:
    """Open an uploaded archive and check it as a whole (nothing is stored yet).

    Raises ``InvalidInput`` / ``PayloadTooLarge`` for what makes the whole upload
    unacceptable: not a zip, too many entries, too many bytes once decompressed, two
    files with one name once folders are flattened, two manifests, a bad manifest.
    """
    not_a_zip = InvalidInput("file: not a zip archive (or a damaged one)", field="file")
    try:
        directory = _directory_extent(stream)
    except (OSError, struct.error):
        raise not_a_zip from None
    if directory is None:
        raise not_a_zip
    # Checked before ``ZipFile`` reads the directory: it builds an object per entry.
    entries, size = directory
    max_entries = 2 * settings.LOOPGATE_BULK_MAX_ITEMS
    if entries > max_entries:
        raise InvalidInput(
            f"file: the archive holds {entries} entries; at most {max_entries}", field="file"
        )
    if size > max_entries * DIRECTORY_BYTES_PER_ENTRY:
        raise InvalidInput(
            f"file: the archive directory is {size} bytes; at most "
            f"{max_entries * DIRECTORY_BYTES_PER_ENTRY}",
            field="file",
        )
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise not_a_zip from None
    try:
        return _checked(archive)
    except Exception:
        archive.close()
        raise


END_OF_DIRECTORY = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_END_OF_DIRECTORY = b"PK\x06\x06"


def _directory_extent(stream: IO[bytes]) -> tuple[int, int] | None:
    """The archive's entry count and directory size, from its end-of-directory record
    (zip64 too), or None where there is none."""
    stream.seek(0, io.SEEK_END)
    length = stream.tell()
    tail_length = min(length, 22 + 65535)  # the record, and a comment of at most 64 KiB
    stream.seek(length - tail_length)
    tail = stream.read(tail_length)
    stream.seek(0)
    at = tail.rfind(END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < 22:
        return None
    entries, size, offset = struct.unpack("<2xHLL", tail[at + 8 : at + 20])
    if entries == 0xFFFF or size == 0xFFFFFFFF or offset == 0xFFFFFFFF:
        locator = tail[at - 20 : at] if at >= 20 else b""
        if locator[:4] != ZIP64_LOCATOR:
            return None
        (record_at,) = struct.unpack("<Q", locator[8:16])
        stream.seek(record_at)
        record = stream.read(56)
        stream.seek(0)
        if len(record) < 56 or record[:4] != ZIP64_END_OF_DIRECTORY:
            return None
        entries, size = struct.unpack("<QQ", record[32:48])
    return int(entries), int(size)


def _checked(archive: zipfile.ZipFile) -> ZipUpload:
    infos = archive.infolist()
    max_items = settings.LOOPGATE_BULK_MAX_ITEMS
    if len(infos) > 2 * max_items:
        raise InvalidInput(
            f"file: the archive holds {len(infos)} entries; at most {2 * max_items}",
            field="file",
        )
    declared = sum(info.file_size for info in infos)
    max_bytes = settings.LOOPGATE_BULK_MAX_BYTES
    if declared > max_bytes:
        raise PayloadTooLarge(
            f"file: the archive holds {declared} bytes once decompressed; "
            f"at most {max_bytes} bytes",
            field="file",
        )
    ignored: list[IgnoredEntry] = []
    entries: dict[str, zipfile.ZipInfo] = {}
    paths: dict[str, str] = {}
    manifests: list[zipfile.ZipInfo] = []
    for info in infos:
        if info.is_dir():
            continue
        path = info.filename.replace("\\", "/")
        why = _unsafe_reason(info, path)
        if why is not None:
            ignored.append(IgnoredEntry(path=info.filename, why=why))
            continue
        name = path.rsplit("/", 1)[-1]
        if name.lower() in MANIFEST_NAMES:
            manifests.append(info)
            continue
        if name in entries:
            raise InvalidInput(
                f"file: {paths[name]!r} and {path!r} have the same name {name!r}; folders "
                "are flattened, so file names must be unique",
                field="file",
            )
        entries[name] = info
        paths[name] = path
    if not entries:
        raise InvalidInput("file: the archive holds no file to submit", field="file")
    if len(entries) > max_items:
        raise InvalidInput(
            f"file: {len(entries)} files is over the limit of {max_items}", field="file"
        )
    if len(manifests) > 1:
        raise InvalidInput(
            "manifest: the archive holds more than one manifest "
            f"({', '.join(info.filename for info in manifests)})",
            field="manifest",
        )
    names = list(entries)
    if manifests:
        raw = _manifest_bytes(archive, manifests[0])
        rows = _csv_rows(raw) if manifests[0].filename.lower().endswith(".csv") else _json_rows(raw)
        items = manifest_items(rows, file_names=names, every_file_named=False)
    else:
        items = [BulkItem(file=name, external_id=None, metadata=None) for name in names]
    return ZipUpload(archive=archive, entries=entries, items=items, ignored=ignored)


def _manifest_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    limit = settings.LOOPGATE_MAX_JSON_BODY_BYTES
    if info.file_size > limit:
        raise InvalidInput(
            f"manifest: {info.file_size} bytes is over the limit of {limit} bytes",
            field="manifest",
        )
    try:
        with archive.open(info) as stream:
            return stream.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError):
        raise InvalidInput("manifest: the entry cannot be read", field="manifest") from None


def _flattened(name: Any) -> Any:
    return name.replace("\\", "/").rsplit("/", 1)[-1] if isinstance(name, str) else name


def _json_rows(raw: bytes) -> list[Any]:
    """The JSON manifest, read by the bulk API's own rule, with its file names flattened."""
    return [
        {**entry, "file": _flattened(entry.get("file"))} if isinstance(entry, dict) else entry
        for entry in _manifest_json(raw)
    ]


def _csv_rows(raw: bytes) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("manifest: manifest.csv must be UTF-8 text", field="manifest") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header: Sequence[str] = reader.fieldnames or []
        if "file" not in header:
            raise InvalidInput(
                "manifest: manifest.csv needs a header row with a 'file' column",
                field="manifest",
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            if None in row:
                raise InvalidInput(
                    f"manifest: manifest.csv line {line} has more cells than the header",
                    field="manifest",
                )
            entry: dict[str, Any] = {}
            extra: dict[str, str] = {}
            for column, value in row.items():
                if column in CSV_FIELDS:
                    if value not in (None, ""):
                        entry[column] = value
                elif column and value not in (None, ""):
                    extra[column] = value
            entry["file"] = _flattened(entry.get("file", ""))
            if extra:
                metadata = entry.get("metadata")
                base = _csv_metadata(metadata, line) if metadata else {}
                entry["metadata"] = {**base, **extra}
            rows.append(entry)
    except csv.Error as exc:
        raise InvalidInput(f"manifest: manifest.csv: {exc}", field="manifest") from None
    return rows


def _csv_metadata(text: str, line: int) -> dict[str, Any]:
    try:
        value = strictjson.loads(
            text,
            what=f"manifest.csv line {line} metadata",
            max_bytes=settings.LOOPGATE_MAX_METADATA_BYTES,
            expect_object=True,
        )
    except strictjson.JSONRefused as exc:
        raise InvalidInput(exc.message, field="manifest") from None
    return dict(value)
