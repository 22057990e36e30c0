"""Explicit hooks: what model operations learn from the apps above them.

The retraining rule "after a step down" needs to know when the automation level was
last stepped down automatically. The automation app sits above this one, so it
registers the lookup here when it is ready; with nothing registered there is no step
down to react to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StepDown:
    """An automatic step down of a workflow's automation level."""

    at: datetime
    reason: str


class StepDownLookup(Protocol):
    def __call__(self, *, workflow_id: int) -> StepDown | None: ...


_step_down_lookups: list[StepDownLookup] = []


def provide_last_step_down(lookup: StepDownLookup) -> StepDownLookup:
    """Register ``lookup`` (once) as the source of a workflow's latest step down."""
    if lookup not in _step_down_lookups:
        _step_down_lookups.append(lookup)
    return lookup


def last_step_down(*, workflow_id: int) -> StepDown | None:
    """The newest automatic step down any registered source knows of, or None."""
    found = [step for lookup in _step_down_lookups if (step := lookup(workflow_id=workflow_id))]
    return max(found, key=lambda step: step.at, default=None)
