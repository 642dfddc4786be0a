"""The quick paths of ingest's normalisation answer exactly as the general ones: a plain yuan amount read
with integer arithmetic as with ``Decimal``, a cached time string as parsed afresh."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from hypothesis import example, given
from hypothesis import strategies as st

from orderguard.clock import as_utc
from orderguard.errors import InvalidInputError
from orderguard.ingest.normalize import parse_time, yuan_to_fen

_MAX_YUAN = Decimal(10) ** 12


def _by_decimal(value: object) -> int | None:
    """What ``yuan_to_fen`` answered before its quick path: ``Decimal`` for every value (None: refused)."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > _MAX_YUAN:
        return None
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _yuan_or_none(value: object) -> int | None:
    try:
        return yuan_to_fen(value, field="p")
    except InvalidInputError:
        return None


_DIGITS = st.from_regex(r"[0-9]{1,15}(\.[0-9]{0,4})?", fullmatch=True)


@example("1000000000000.00")
@example("1000000000000.01")
@example("٣.5")
@example(10**12 + 1)
@given(st.one_of(_DIGITS, st.integers(-5, 10**13), st.text("0123456789.-+ e٣", max_size=8), st.booleans()))
def test_a_plain_amount_is_read_as_decimal_reads_it(value: object) -> None:
    assert _yuan_or_none(value) == _by_decimal(value)


def _fresh(text: str) -> datetime | None:
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("/", "-")))
    except (ValueError, OverflowError):
        return None


_STAMPS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
    lambda t: t.strftime("%Y-%m-%d %H:%M:%S"))


@example("0001-01-01 00:00:00")
@example("2024/11/11 08:00:00")
@example("2024-13-01 00:00:00")
@given(st.one_of(_STAMPS, st.text("0123456789-/: T+Z", max_size=25)))
def test_a_time_string_reads_the_same_the_second_time(text: str) -> None:
    answers: list[datetime | None] = []
    for _ in range(2):  # the second read comes from the cache
        try:
            answers.append(parse_time(text, field="t"))
        except InvalidInputError:
            answers.append(None)
    if text.strip() and not (text.isascii() and text.isdigit()):  # digits alone are epoch times
        assert answers[0] == answers[1] == _fresh(text)
    else:
        assert answers[0] == answers[1]
