"""The demo's answer key: the true label of every synthetic case ``demo_stream`` sent.

It lives in a file under ``settings.VAR_DIR``, never in the case's metadata: reviewers
can read metadata, and a simulated reviewer that peeks at the answer would make the
evidence meaningless. One JSON object per line: ``{"case": "<uuid>", "label": "ok"}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings


def demo_truth_path(slug: str) -> Path:
    return Path(settings.VAR_DIR) / "demo" / f"truth-{slug}.jsonl"


def demo_truth_record(slug: str, entries: Iterable[tuple[str, str]]) -> int:
    """Append (case id, true label) pairs to the workflow's answer key. Returns how many."""
    path = demo_truth_path(slug)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("a", encoding="utf-8") as handle:
        for case_id, label in entries:
            handle.write(json.dumps({"case": str(case_id), "label": label}) + "\n")
            count += 1
    return count


def demo_truth_load(slug: str) -> dict[str, str]:
    """Case id -> true label (the last entry wins); empty when nothing was recorded."""
    path = demo_truth_path(slug)
    if not path.exists():
        return {}
    truth: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                entry = json.loads(line)
                truth[entry["case"]] = entry["label"]
    return truth
