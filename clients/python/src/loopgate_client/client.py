"""The API client: one ``requests.Session`` with the token, typed results."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import requests

Case = dict[str, Any]
ROUTED = frozenset({"decided", "in_review", "failed"})
ImageSource = str | Path | bytes | IO[bytes]


class LoopgateError(Exception):
    """A refusal from the server: the HTTP status and its ``{"error": {...}}`` body."""

    def __init__(self, status: int, code: str, message: str, field: str | None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def _image(source: ImageSource, default_name: str) -> tuple[str, bytes]:
    if isinstance(source, bytes):
        return default_name, source
    if isinstance(source, (str, Path)):
        path = Path(source)
        return path.name, path.read_bytes()
    return getattr(source, "name", default_name) or default_name, source.read()


class Loopgate:
    def __init__(self, base_url: str, *, token: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.session.headers["User-Agent"] = "loopgate-client/0.1"

    # --- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        response = self.session.request(method, f"{self.base_url}/api/v1{path}", **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:500], "field": None}
            raise LoopgateError(
                response.status_code,
                error.get("code", ""),
                error.get("message", ""),
                error.get("field"),
            )
        return response.json() if response.content else None

    # --- cases ---------------------------------------------------------------------------

    def submit(
        self,
        workflow: str,
        image: ImageSource,
        *,
        external_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        wait: int = 0,
    ) -> Case:
        """Submit one image; with ``wait`` the answer holds the routing if it came in time."""
        name, data = _image(image, "image.png")
        fields: dict[str, str] = {}
        if external_id is not None:
            fields["external_id"] = external_id
        if metadata is not None:
            fields["metadata"] = json.dumps(metadata)
        query = f"?wait={int(wait)}" if wait else ""
        return self._request(  # type: ignore[no-any-return]
            "POST",
            f"/workflows/{workflow}/cases/{query}",
            files={"image": (name, data)},
            data=fields,
            timeout=self.timeout + wait,
        )

    def submit_bulk(
        self,
        workflow: str,
        images: Sequence[ImageSource],
        *,
        external_ids: Sequence[str | None] | None = None,
        metadata: Sequence[dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """Submit many images in one request: ``{"results": [...], "created", ...}``."""
        files = []
        manifest: list[dict[str, Any]] = []
        for index, source in enumerate(images):
            name, data = _image(source, f"image-{index}.png")
            if any(entry["file"] == name for entry in manifest):
                name = f"{index}-{name}"
            files.append(("images", (name, data)))
            entry: dict[str, Any] = {"file": name}
            if external_ids is not None and external_ids[index] is not None:
                entry["external_id"] = external_ids[index]
            if metadata is not None and metadata[index] is not None:
                entry["metadata"] = metadata[index]
            manifest.append(entry)
        return self._request(  # type: ignore[no-any-return]
            "POST",
            f"/workflows/{workflow}/cases/bulk/",
            files=files,
            data={"manifest": json.dumps(manifest)},
        )

    def get(self, case_id: str) -> Case:
        return self._request("GET", f"/cases/{case_id}/")  # type: ignore[no-any-return]

    def wait_routed(self, case_id: str, *, timeout: float = 30.0, every: float = 0.5) -> Case:
        """Poll a case until it is routed (decided, in review or failed) or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            case = self.get(case_id)
            if case["status"] in ROUTED or time.monotonic() >= deadline:
                return case
            time.sleep(every)

    def cases(
        self, workflow: str, *, page_size: int = 200, filters: dict[str, str] | None = None
    ) -> Iterator[Case]:
        """Every case of the workflow, page by page (the server's case list, whose pages
        are keyset cursors: each page's ``next`` link carries the next cursor)."""
        params: dict[str, str | int] = {"limit": page_size, **(filters or {})}
        while True:
            page = self._request("GET", f"/workflows/{workflow}/cases/", params=params)
            yield from page["results"]
            following = page.get("next")
            if not following:
                return
            cursor = parse_qs(urlsplit(following).query).get("cursor")
            if not cursor:
                return
            params = {**params, "cursor": cursor[0]}

    def export(
        self, workflow: str, path: str | Path, *, filters: dict[str, str] | None = None
    ) -> int:
        """Write the workflow's cases as JSON lines to ``path``; returns how many."""
        count = 0
        with Path(path).open("w", encoding="utf-8") as out:
            for case in self.cases(workflow, filters=filters):
                out.write(json.dumps(case) + "\n")
                count += 1
        return count

    # --- webhooks ------------------------------------------------------------------------

    def webhook_create(self, workflow: str, url: str, events: Sequence[str]) -> dict[str, Any]:
        """Register a webhook; the answer's ``secret`` is shown this once."""
        return self._request(  # type: ignore[no-any-return]
            "POST", f"/workflows/{workflow}/webhooks/", json={"url": url, "events": list(events)}
        )
