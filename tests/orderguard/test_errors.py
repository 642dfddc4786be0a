"""Errors carry structure (field, constraint, value) and render their message from it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.specs import FeatureSet
from orderguard.errors import ConfigError, InvalidInputError, join_path


def test_a_structured_error_keeps_its_parts_and_renders_the_convention() -> None:
    error = InvalidInputError.must("lines[0].qty", "a positive integer", -1)
    assert (error.field, error.constraint, error.value) == ("lines[0].qty", "a positive integer", -1)
    assert error.message == "`lines[0].qty` must be a positive integer; got -1"
    assert error.to_dict() == {"code": "invalid_input", "message": error.message, "field": "lines[0].qty"}


@given(st.from_regex(r"[a-z]{1,8}(\[[0-9]\])?", fullmatch=True), st.from_regex(r"[a-z]{1,8}", fullmatch=True))
def test_nesting_joins_paths_and_re_renders_even_when_the_field_name_is_in_the_value(prefix: str,
                                                                                   field: str) -> None:
    error = ConfigError.must(field, "a duration", f"`{field}`").under(prefix)
    assert error.field == f"{prefix}.{field}"
    # the value mentions the old field name; only the field is re-rooted, the value is shown as given
    assert error.message == f"`{prefix}.{field}` must be a duration; got {f'`{field}`'!r}"
    assert type(error) is ConfigError


def test_index_paths_join_without_a_dot_and_unstructured_errors_say_where() -> None:
    assert join_path("features", "[2]") == "features[2]" and join_path("features", None) == "features"
    plain = ConfigError("`x` is odd", field="x").under("rules[1]")
    assert plain.field == "rules[1].x" and plain.message == "`rules[1].x`: `x` is odd"


def test_a_bad_window_deep_in_a_feature_set_names_its_full_path() -> None:
    data = {"features": [
        {"entity": "device", "field": "orders", "agg": "count", "window": "5m"},
        {"entity": "device", "field": "orders", "agg": "count", "window": "5 parsecs"},
    ]}
    with pytest.raises(ConfigError) as caught:
        FeatureSet.from_data(data)
    assert caught.value.field == "features[1].window"
    assert caught.value.message.startswith("`features[1].window` must be a positive duration")


def test_an_error_needs_a_message_or_its_parts() -> None:
    with pytest.raises(TypeError):
        ConfigError(field="x")
