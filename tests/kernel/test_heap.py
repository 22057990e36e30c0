"""What a web or worker process loads at start is kept out of the collector's full passes
(``kernel.heap``, D144)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(program: str, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SECRET_KEY": "heap-test", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_the_web_application_loads_every_view_then_freezes_what_it_holds() -> None:
    """gunicorn imports ``loopgate.wsgi``: by then every app's views are imported (so the
    first request does not make a collector's worth of new objects) and frozen."""
    before, after, views = _run(
        "import gc, sys; before = gc.get_freeze_count(); import loopgate.wsgi; "
        "print(before, gc.get_freeze_count(), 'review.apis' in sys.modules)"
    )
    assert before == "0"
    # Django, DRF, the apps and torch: far more than a hundred thousand objects.
    assert int(after) > 100_000
    assert views == "True"


def test_a_worker_process_freezes_what_it_holds_once_its_models_are_loaded(
    tmp_path: Path,
) -> None:
    """A Celery pool process settles after the model warm-up, which runs in a thread; a
    warm-up that fails (here: a database without tables) still settles."""
    program = (
        "import gc, threading, django; django.setup(); "
        "from loopgate.celery import _warm_models; _warm_models(); "
        "[t.join(120) for t in threading.enumerate() if t.name == 'loopgate-warm-models']; "
        "print(gc.get_freeze_count())"
    )
    database = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    (frozen,) = _run(program, DATABASE_URL=database, LOOPGATE_WARM_MODELS="1")
    assert int(frozen) > 100_000
    (frozen,) = _run(program, DATABASE_URL=database, LOOPGATE_WARM_MODELS="0")
    assert int(frozen) > 100_000
