"""One rule for user-typed times: naive is shop (Beijing) time, a date is shop midnight, an offset is honoured."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli import app
from orderguard.clock import SHOP_TZ, as_utc, parse_day, parse_moment, shop_day
from orderguard.errors import InvalidInputError


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-11-11", datetime(2024, 11, 10, 16, 0, tzinfo=UTC)),
    ("2024-11-11T08:00", datetime(2024, 11, 11, 0, 0, tzinfo=UTC)),
    ("2024-11-11 08:00:00", datetime(2024, 11, 11, 0, 0, tzinfo=UTC)),
    ("2024-11-11T08:00Z", datetime(2024, 11, 11, 8, 0, tzinfo=UTC)),
    ("2024-11-11T08:00+00:00", datetime(2024, 11, 11, 8, 0, tzinfo=UTC)),
    (" 2024-11-11T09:30+09:00 ", datetime(2024, 11, 11, 0, 30, tzinfo=UTC)),
])
def test_user_typed_times_follow_one_rule(text: str, expected: datetime) -> None:
    assert parse_moment(text, field="cutoff") == expected
    assert parse_moment(text, field="cutoff").tzinfo == UTC


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "", "0001-01-01T00:00+08:00", "\ud800"])
def test_bad_times_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_moment(text, field="--cutoff")
    assert caught.value.field == "--cutoff" and "`--cutoff` must be an ISO date" in caught.value.message


def test_a_day_is_a_calendar_date() -> None:
    assert parse_day("2024-09-01", field="start") == date(2024, 9, 1)
    with pytest.raises(InvalidInputError, match="`start` must be a date"):
        parse_day("2024-09", field="start")


@given(st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2100, 1, 1)))
def test_naive_moments_are_shop_time_and_land_on_the_same_shop_day(naive: datetime) -> None:
    moment = as_utc(naive)
    assert moment.astimezone(SHOP_TZ).replace(tzinfo=None) == naive
    assert shop_day(moment) == naive.date()


def test_every_time_option_of_the_cli_says_the_rule() -> None:
    runner = CliRunner()
    for command in (["train"], ["promote"], ["backfill"]):
        text = " ".join(runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output.split())
        assert "without an offset is Beijing time" in text, command
