"""Window semantics: open lower edge, closed upper edge, delays, strict windows, exact times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.windows import Duration, Window, from_us, to_us
from orderguard.errors import ConfigError

MINUTE = 60_000_000


def contains(w: Window, ts: int, *, t: int, strict: bool = False) -> bool:
    """Whether a fact stamped ``ts`` counts for a query at ``t``: the engines' reading of ``Window.frame``."""
    a, b = w.frame(strict=strict)
    return t - a <= ts <= t - b


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("10m", 600), ("1h", 3600), ("48h", 172800),
                                                ("3d", 259200), ("30d", 2592000), ("90s", 90), ("2w", 1209600)])
def test_duration_parses_every_unit(text: str, seconds: int) -> None:
    duration = Duration.parse(text)
    assert duration.to_timedelta() == timedelta(seconds=seconds)
    assert duration.text == text


@pytest.mark.parametrize("bad", ["0m", "-5m", "5", "m", "5 minutes", "1.5h", "", "5y"])
def test_duration_rejects_non_positive_or_malformed(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        Duration.parse(bad, field="features[3].window")
    assert info.value.field == "features[3].window"
    assert "features[3].window" in info.value.message


def test_window_edges_are_open_below_and_closed_above() -> None:
    w = Window(length_us=5 * MINUTE)
    t = 1_000 * MINUTE
    assert not contains(w, t - 5 * MINUTE, t=t)  # exactly w before: out
    assert contains(w, t - 5 * MINUTE + 1, t=t)  # one microsecond later: in
    assert contains(w, t, t=t)  # the current instant (the order itself and its peers): in
    assert not contains(w, t + 1, t=t)  # the future: out


def test_delayed_window_is_shifted_by_its_offset() -> None:
    w = Window(length_us=10 * MINUTE, offset_us=5 * MINUTE)
    t = 1_000 * MINUTE
    assert not contains(w, t, t=t)
    assert contains(w, t - 5 * MINUTE, t=t)
    assert not contains(w, t - 15 * MINUTE, t=t)
    assert contains(w, t - 15 * MINUTE + 1, t=t)


def test_strict_window_excludes_its_upper_edge_only() -> None:
    w = Window(length_us=MINUTE)
    assert not contains(w, 100 * MINUTE, t=100 * MINUTE, strict=True)
    assert contains(w, 100 * MINUTE - 1, t=100 * MINUTE, strict=True)


def test_window_rejects_empty_length_or_negative_offset() -> None:
    with pytest.raises(ValueError, match="window length"):
        Window(length_us=0)
    with pytest.raises(ValueError, match="window length"):
        Window(length_us=1, offset_us=-1)


@given(length=st.integers(1, 10**12), offset=st.integers(0, 10**12), t=st.integers(0, 10**15),
       ts=st.integers(0, 10**15), strict=st.booleans())
def test_frame_bounds_match_the_written_definition(length: int, offset: int, t: int, ts: int,
                                                   strict: bool) -> None:
    w = Window(length_us=length, offset_us=offset)
    upper_ok = ts < t - offset if strict else ts <= t - offset
    assert contains(w, ts, t=t, strict=strict) == (t - offset - length < ts and upper_ok)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC)))
def test_microsecond_time_round_trips(at: datetime) -> None:
    assert from_us(to_us(at)) == at


def test_to_us_is_offset_aware_and_refuses_naive_times() -> None:
    beijing = timezone(timedelta(hours=8))
    assert to_us(datetime(2024, 1, 1, 8, tzinfo=beijing)) == to_us(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="tz-aware"):
        to_us(datetime(2024, 1, 1))
