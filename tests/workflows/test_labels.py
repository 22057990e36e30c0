"""Label keys: each label its own key, never a screen key, digits respected."""

from hypothesis import given
from hypothesis import strategies as st

from workflows.labels import SCREEN_KEYS, key_problem, label_keys


def keys_of(labels, settings=None):
    return {k.label: k.keys for k in label_keys(labels, settings)}


def test_digit_labels_get_their_own_digit():
    labels = [str(d) for d in range(10)]
    assert keys_of(labels) == {str(d): (str(d),) for d in range(10)}


def test_demo_labels_get_a_digit_and_an_unconfusable_letter():
    keys = keys_of(["ok", "scratch", "dent", "stain"])
    assert keys["ok"] == ("1", "k")  # never "o", which reads as the digit 0
    assert keys["scratch"] == ("2", "c")  # "s" is the skip key
    assert keys["dent"] == ("3", "d")
    assert keys["stain"] == ("4", "t")


def test_admin_key_wins_and_is_not_given_twice():
    keys = keys_of(["ok", "dent"], {"dent": {"key": "k"}})
    assert keys["dent"] == ("k",)
    assert "k" not in keys["ok"]


def test_an_admin_key_that_is_a_screen_key_is_ignored():
    assert keys_of(["ok"], {"ok": {"key": "s"}})["ok"][0] != "s"


def test_key_problem_names_the_reason():
    assert "screen key" in key_problem("s")
    assert "one printable character" in key_problem("ab")
    assert key_problem("k") is None


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30, unique=True))
def test_keys_never_collide_and_never_shadow_the_screen(labels):
    given_keys = [key for k in label_keys(labels) for key in k.keys]
    assert len(given_keys) == len(set(given_keys))
    assert not set(given_keys) & SCREEN_KEYS
    # Up to ten labels each get at least one key.
    if len(labels) <= 10:
        assert all(k.keys for k in label_keys(labels))
