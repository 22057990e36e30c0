"""Input and output shapes of the review API."""

from __future__ import annotations

from rest_framework import serializers

from kernel.bounds import ID_MAX
from kernel.serializers import Serializer
from review.services import MAX_CHANGE_REASON_LENGTH, MAX_COMMENT_LENGTH, MAX_SKIP_REASON_LENGTH


class ReviewNextInput(Serializer):
    after = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=ID_MAX,
        help_text="The task on your screen: prefetch the one after it (you may hold both).",
    )


class VerdictInput(Serializer):
    label = serializers.CharField(max_length=64, help_text="One of the workflow's labels.")  # type: ignore[assignment]  # field, not the attribute (stubs)
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_COMMENT_LENGTH
    )


class SkipInput(Serializer):
    reason = serializers.CharField(max_length=MAX_SKIP_REASON_LENGTH, help_text="Why you skip.")


class LabelKeyOutput(Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    keys = serializers.ListField(
        child=serializers.CharField(), help_text="Its keys on the review screen, first is main."
    )
    key = serializers.CharField(allow_null=True, help_text="The main key (keys[0]), if any.")
    color = serializers.CharField(help_text="CSS colour of the label.")


class SuggestionOutput(Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    confidence = serializers.FloatField()
    scores = serializers.DictField(child=serializers.FloatField())
    model_version = serializers.CharField()


class ReviewImageOutput(Serializer):
    format = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class ReviewCaseOutput(Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    image_url = serializers.CharField(help_text="GET it with the same session or token.")
    image = ReviewImageOutput()
    metadata = serializers.DictField(help_text="As sent by the upstream system: untrusted.")
    created_at = serializers.DateTimeField()


class PreviousVerdictOutput(Serializer):
    reviewer = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    comment = serializers.CharField()


class ReviewTaskOutput(Serializer):
    id = serializers.IntegerField(help_text="The review task id: post the verdict to it.")
    workflow = serializers.CharField()
    reason = serializers.CharField(help_text="Why the case is in review.")
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(help_text="When your lease on the case runs out.")
    now = serializers.DateTimeField(help_text="The server's time when it answered.")
    seconds_left = serializers.FloatField(
        help_text="expires_at - now: count down from this, not from your own clock."
    )
    lease_seconds = serializers.IntegerField()
    case = ReviewCaseOutput()
    labels = LabelKeyOutput(many=True)
    adjudication = serializers.BooleanField(help_text="Reviewers disagreed: your verdict decides.")
    escalated = serializers.BooleanField(
        help_text="Skipped too often: sent to the workflow's admins."
    )
    skip_count = serializers.IntegerField(help_text="How often the case was skipped.")
    previous_verdicts = PreviousVerdictOutput(
        many=True, required=False, help_text="Only on adjudication."
    )
    suggestion = SuggestionOutput(
        required=False,
        help_text="The model's suggestion; absent unless the task allows it (never in shadow).",
    )


class VerdictOutput(Serializer):
    id = serializers.IntegerField()
    task = serializers.IntegerField()
    case = serializers.UUIDField()
    image_url = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # field, not the attribute (stubs)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()
    retracted_at = serializers.DateTimeField(allow_null=True)
    undo_until = serializers.DateTimeField()
    undoable = serializers.BooleanField()


class UndoOutput(Serializer):
    verdict = VerdictOutput()
    task = ReviewTaskOutput(
        allow_null=True,
        help_text="The case handed back to you, or null if another reviewer holds it now.",
    )


class QueueStatsOutput(Serializer):
    depth = serializers.IntegerField()
    needs_adjudication = serializers.IntegerField()
    leased_now = serializers.IntegerField()
    oldest_age_seconds = serializers.FloatField(allow_null=True)


class ReviewerThroughputOutput(Serializer):
    reviewer = serializers.CharField()
    verdicts_24h = serializers.IntegerField()
    median_seconds_per_verdict = serializers.FloatField(allow_null=True)


class ThroughputOutput(Serializer):
    verdicts_last_hour = serializers.IntegerField()
    verdicts_last_24h = serializers.IntegerField()
    reviewers = ReviewerThroughputOutput(many=True)


class AgreementOutput(Serializer):
    cases = serializers.IntegerField(help_text="Cases with two or more verdicts.")
    percent_agreement = serializers.FloatField(allow_null=True)
    cohen_kappa = serializers.FloatField(allow_null=True)
    fleiss_kappa = serializers.FloatField(allow_null=True)
    fleiss_raters = serializers.IntegerField()
    fleiss_cases = serializers.IntegerField()
    adjudicated = serializers.IntegerField()


class GoldAccuracyOutput(Serializer):
    reviewer = serializers.CharField()
    n = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class LeaseOutput(Serializer):
    task = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    now = serializers.DateTimeField()
    seconds_left = serializers.FloatField()
    limit_at = serializers.DateTimeField(help_text="The lease is never renewed past this.")


class QueueCountsOutput(Serializer):
    open = serializers.IntegerField(help_text="Open cases in the queue.")
    available = serializers.IntegerField(help_text="Waiting for you to take now.")
    leased = serializers.IntegerField(help_text="Being reviewed now.")
    cooling = serializers.IntegerField(help_text="Skipped, back in the queue at next_back_at.")
    next_back_at = serializers.DateTimeField(allow_null=True)
    escalated = serializers.IntegerField(help_text="Skipped too often: with the admins.")
    needs_adjudication = serializers.IntegerField()
    answered = serializers.IntegerField(help_text="You answered; waiting for other reviewers.")
    oldest_age_seconds = serializers.FloatField(allow_null=True)
    is_admin = serializers.BooleanField()


class ModelAgreementOutput(Serializer):
    reviewer = serializers.CharField()
    shown_n = serializers.IntegerField()
    shown_agreement = serializers.FloatField(allow_null=True)
    hidden_n = serializers.IntegerField()
    hidden_agreement = serializers.FloatField(allow_null=True)
    gap = serializers.FloatField(allow_null=True, help_text="shown - hidden agreement.")


class EscalatedTaskOutput(Serializer):
    task = serializers.IntegerField()
    case = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    skip_count = serializers.IntegerField()
    skip_reasons = serializers.ListField(child=serializers.CharField())


class ChangeRequestInput(Serializer):
    label = serializers.CharField(max_length=64, help_text="The label it should have been.")  # type: ignore[assignment]  # field, not the attribute (stubs)
    reason = serializers.CharField(max_length=MAX_CHANGE_REASON_LENGTH, help_text="Why.")


class ChangeRequestOutput(Serializer):
    case = serializers.UUIDField()
    verdict = serializers.IntegerField()
    reviewer = serializers.CharField()
    from_label = serializers.CharField()
    to_label = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class ChangeRequestListedOutput(ChangeRequestOutput):
    status = serializers.ChoiceField(choices=["open", "accepted", "declined"])
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField(allow_blank=True)


class ChangeDecisionInput(Serializer):
    decision = serializers.ChoiceField(
        choices=["accept", "decline"], help_text="accept applies the change; decline keeps it."
    )
    reason = serializers.CharField(max_length=MAX_CHANGE_REASON_LENGTH, help_text="Why.")


class ChangeDecisionOutput(Serializer):
    verdict = serializers.IntegerField()
    case = serializers.UUIDField()
    decision = serializers.ChoiceField(choices=["accept", "decline"])
    from_label = serializers.CharField()
    to_label = serializers.CharField()
    requested_by = serializers.CharField()
    reason = serializers.CharField()
    decided_by = serializers.CharField()
    decided_at = serializers.DateTimeField()
    verdict_label = serializers.CharField(help_text="The verdict's label now.")
    case_status = serializers.CharField(help_text="The case's status now.")
    decision_label = serializers.CharField(
        allow_blank=True, help_text="The case's decision now (blank while undecided)."
    )


class ReviewStatsOutput(Serializer):
    workflow = serializers.CharField()
    consensus_required = serializers.IntegerField()
    gold_rate = serializers.FloatField()
    queue = QueueStatsOutput()
    throughput = ThroughputOutput()
    agreement = AgreementOutput()
    gold_accuracy = GoldAccuracyOutput(many=True)
    hidden_suggestion_rate = serializers.FloatField()
    model_agreement = ModelAgreementOutput(
        many=True, help_text="Agreement with the model, suggestion shown vs hidden."
    )
    escalated = EscalatedTaskOutput(many=True, help_text="Admins only; empty otherwise.")
    change_requests = ChangeRequestListedOutput(
        many=True, help_text="Reviewers asking to change older verdicts; admins only."
    )
