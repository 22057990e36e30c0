"""Refusals of the review queue. Each maps to HTTP through kernel.exceptions."""

from __future__ import annotations

from kernel.errors import Conflict, Gone, InvalidInput, NotFound


class UnknownLabel(InvalidInput):
    code = "unknown_label"


class NotAssigned(Conflict):
    """The task is not leased to this reviewer (never was, or they let it go)."""

    code = "not_assigned"


class LeaseExpired(Gone):
    code = "lease_expired"


class CaseAlreadyDecided(Conflict):
    code = "already_decided"


class VerdictAlreadyGiven(Conflict):
    code = "verdict_exists"


class NotLastVerdict(Conflict):
    code = "not_last_verdict"


class AlreadyUndone(Conflict):
    code = "already_undone"


class CaseMovedOn(Conflict):
    """Someone else acted on the case after the verdict: undoing it would rewrite theirs."""

    code = "case_moved_on"


class UndoWindowPassed(Gone):
    code = "undo_window_passed"


class InvalidLeaseTransition(Conflict):
    """An assignment's state move that ``ASSIGNMENT_TRANSITIONS`` does not allow."""

    code = "invalid_transition"


class InvalidTaskTransition(Conflict):
    """A review task's status move that ``REVIEW_TASK_TRANSITIONS`` does not allow."""

    code = "invalid_transition"


class ChangeAlreadyRequested(Conflict):
    code = "change_already_requested"


class ChangeAlreadyDecided(Conflict):
    code = "change_already_decided"


class NoChangeRequested(NotFound):
    """No reviewer asked to change this verdict: there is nothing to decide."""

    code = "no_change_requested"
