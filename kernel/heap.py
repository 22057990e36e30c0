"""Keep what a process loads at start out of the garbage collector's full passes (D144).

A web or worker process holds about half a million objects once Django, the apps, torch
and the models are loaded, and holds them until it exits. Python's collector walks every
tracked object on each full (oldest-generation) pass: about 110 to 140 ms of CPU in a web
process on the benchmark machine. A pass is due each time the objects that survived
since the last one reach a quarter of those it kept, so a process that has just started
pays several of them in its first minutes, in the middle of requests
(``docs/benchmarks.md``, seventh round).

``heap_settle`` collects once and then freezes what is left (``gc.freeze``): those
objects move to a generation the collector never walks, and later full passes walk only
what the process made since. A frozen object that later becomes garbage is freed by
reference counting as usual; only one caught in a reference cycle is never freed, which
for start-up objects (modules, classes, compiled URL patterns, loaded models) is the
point of freezing them.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def heap_settle(what: str) -> int:
    """Collect, then freeze every object this process holds now; returns how many are
    frozen in all (``gc.get_freeze_count``). ``what`` names the moment, for the log."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("heap settled after %s: %d objects frozen", what, frozen)
    return frozen
