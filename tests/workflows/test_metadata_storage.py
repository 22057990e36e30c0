"""Whatever ``metadata_parse`` accepts, the database stores: a property, on both databases."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.errors import InvalidInput
from workflows.services import metadata_parse

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=15,
)


def stored(text: str) -> object:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT %s::jsonb::text", [text])
        else:
            cursor.execute("SELECT json(%s)", [text])
        return json.loads(cursor.fetchone()[0])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
def test_accepted_metadata_is_storable(value: dict) -> None:
    text = json.dumps(value)  # may hold NaN, Infinity, \\u0000, lone surrogates, huge ints
    try:
        parsed = metadata_parse(text)
    except InvalidInput as exc:
        assert exc.field == "metadata"
        assert exc.message.startswith("metadata: ")
        return
    # As the JSONField would send it; the database must take it without an error.
    assert isinstance(stored(json.dumps(parsed)), dict)
