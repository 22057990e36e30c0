import pytest

from review.consensus import MAX_EXTRA_REVIEWERS, consensus_state


@pytest.mark.parametrize(
    ("labels", "required", "expected"),
    [
        # (label, verdicts_required, needs_adjudication, adjudicated)
        ([], 1, (None, 1, False, False)),
        (["ok"], 1, ("ok", 1, False, False)),
        ([], 2, (None, 2, False, False)),
        (["ok"], 2, (None, 2, False, False)),
        (["ok", "ok"], 2, ("ok", 2, False, False)),
        (["ok", "crack"], 2, (None, 3, False, False)),
        (["ok", "crack", "crack"], 2, ("crack", 3, False, False)),
        (["ok", "crack", "stain"], 2, (None, 3, True, False)),
        (["ok", "crack", "stain", "stain"], 2, ("stain", 3, True, True)),
        (["ok", "ok", "ok"], 3, ("ok", 3, False, False)),
        (["ok", "ok", "crack"], 3, (None, 4, False, False)),
        (["ok", "ok", "crack", "ok"], 3, ("ok", 4, False, False)),
        (["ok", "crack", "stain"], 3, (None, 3, True, False)),
    ],
)
def test_consensus_rule(labels, required, expected):
    state = consensus_state(labels, agreement_required=required)
    assert (
        state.label,
        state.verdicts_required,
        state.needs_adjudication,
        state.adjudicated,
    ) == expected
    assert state.decided == (expected[0] is not None)


def test_disagreement_asks_at_most_the_extra_reviewers_before_adjudication():
    state = consensus_state(["a", "b"], agreement_required=2)
    assert state.verdicts_required == 2 + MAX_EXTRA_REVIEWERS


def test_agreement_required_must_be_positive():
    with pytest.raises(ValueError):
        consensus_state(["ok"], agreement_required=0)
