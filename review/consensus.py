"""Consensus among reviewers, as a pure function of the verdicts given so far.

The rule (a workflow setting, ``consensus_required`` = N):

* A case is decided as soon as N standing verdicts carry the same label.
* Until then verdicts are collected, one reviewer at a time, up to ``verdicts_required``
  (N at first). When that many verdicts are in and no label has N of them, the reviewers
  disagree: one more reviewer is asked (``verdicts_required`` + 1), at most
  ``MAX_EXTRA_REVIEWERS`` times.
* When agreement can no longer be reached within that cap, the task waits for an
  adjudicator (a workflow admin, or a superuser), whose one verdict decides the case.

With N = 1 the first verdict decides. The outcome is recomputed from the standing
verdicts in the order they were given, so undoing a verdict simply replays the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

MAX_EXTRA_REVIEWERS = 1


@dataclass(frozen=True)
class ConsensusState:
    """Where a review task stands after the verdicts so far.

    ``label`` is set when the case is decided; ``adjudicated`` says the deciding verdict
    was an adjudicator's.
    """

    label: str | None
    verdicts_required: int
    needs_adjudication: bool
    adjudicated: bool = False

    @property
    def decided(self) -> bool:
        return self.label is not None


def consensus_state(labels: Sequence[str], *, agreement_required: int) -> ConsensusState:
    """Replay ``labels`` (standing verdicts, oldest first) through the consensus rule."""
    if agreement_required < 1:
        raise ValueError("agreement_required must be at least 1")
    max_verdicts = agreement_required + MAX_EXTRA_REVIEWERS
    verdicts_required = agreement_required
    needs_adjudication = False
    counts: Counter[str] = Counter()
    for given, label in enumerate(labels, start=1):
        if needs_adjudication:
            return ConsensusState(label, verdicts_required, True, adjudicated=True)
        counts[label] += 1
        top_count = counts.most_common(1)[0][1]
        if top_count >= agreement_required:
            return ConsensusState(label, verdicts_required, False)
        still_possible = top_count + (max_verdicts - given) >= agreement_required
        if not still_possible:
            needs_adjudication = True
        elif given >= verdicts_required:
            verdicts_required = given + 1
    return ConsensusState(None, verdicts_required, needs_adjudication)
