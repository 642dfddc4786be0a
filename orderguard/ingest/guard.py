"""The bounds every channel payload keeps before an adapter reads it, and every event after.

An order that is stored is replayed at every start (the warm start folds the order log
into the online features), so one value the rest of the system cannot hold - an amount
beyond 64 bits, a lone UTF-16 surrogate, a year 9999 - would not just be one bad answer:
it would stop the service from starting again. Adapters check what each channel's
contract says (types, codes, formats); this module checks what every channel shares, in
two places that every way in goes through (``orderguard.ingest.service.parse_payload``):

* :func:`check_payload` on the raw JSON: text is valid Unicode and of a bounded length,
  numbers are finite and fit 64 bits, nesting and lists are bounded - before any parsing
  work is spent on it;
* :func:`check_event` on the parsed event: a non-empty order id, amounts and quantities a
  shop can have, times between :attr:`IngestLimits.earliest` and a little after receipt
  (a clock skew), a version the order log can store.

Error messages quote at most a short excerpt of the value (``orderguard.errors``), so a
50 MB string is not echoed back, and never a whole phone or id-card number.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Final

from orderguard.errors import InvalidInputError, join_path
from orderguard.schema import OrderEvent
from orderguard.settings import IngestLimits

#: Largest integer the order log stores (SQLite and PostgreSQL BIGINT).
MAX_INT64 = 2**63 - 1


def _path(parts: list[str | int]) -> str:
    """``["items", 0, "title"]`` → ``items[0].title``; built only for an error, not for every value walked."""
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else (join_path(text, part) if text else part)
    return text or "payload"


def _walk(value: object, parts: list[str | int], limits: IngestLimits) -> None:
    if len(parts) > limits.max_depth:
        raise InvalidInputError.must(_path(parts), f"nested at most {limits.max_depth} levels deep", "...")
    if isinstance(value, str):
        _check_text(value, parts, limits)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -MAX_INT64 <= value <= MAX_INT64:
            raise InvalidInputError.must(_path(parts), "an integer that fits 64 bits", value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError.must(_path(parts), "a finite number", value)
    elif isinstance(value, Mapping):
        if len(value) > limits.max_list_items:
            raise InvalidInputError.must(_path(parts), f"an object of at most {limits.max_list_items} fields",
                                         f"{len(value)} fields")
        leaves = len(parts) < limits.max_depth  # a child one level down is within the depth bound
        longest = limits.max_text_chars
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            if len(name) > longest or not name.isascii():
                _check_text(name, [*parts, name], limits)
            if leaves:  # the plain leaves, the bulk of a payload, inline (a call each cost more than the check)
                kind = type(item)
                if kind is str:
                    if len(item) <= longest and item.isascii():
                        continue
                elif kind is int:
                    if -MAX_INT64 <= item <= MAX_INT64:
                        continue
                elif item is None:
                    continue
            parts.append(name)
            _walk(item, parts, limits)
            parts.pop()
    elif isinstance(value, list | tuple):
        if len(value) > limits.max_list_items:
            raise InvalidInputError.must(_path(parts), f"a list of at most {limits.max_list_items} items",
                                         f"{len(value)} items")
        leaves = len(parts) < limits.max_depth
        for i, item in enumerate(value):
            if leaves and _plain_leaf(item, limits):
                continue
            parts.append(i)
            _walk(item, parts, limits)
            parts.pop()


def _plain_leaf(value: object, limits: IngestLimits) -> bool:
    """Whether a value is short ASCII text, a 64-bit int or None: the bulk of a payload, passed without a
    recursive call (anything else, and every refusal, goes through :func:`_walk` and its messages).

    :func:`_walk`'s object branch makes the same test inline, where a call per field cost more than the test;
    keep the two in step."""
    kind = type(value)
    if kind is str:
        return len(value) <= limits.max_text_chars and value.isascii()  # type: ignore[arg-type,attr-defined]
    if kind is int:
        return -MAX_INT64 <= value <= MAX_INT64  # type: ignore[operator]
    return value is None


def _check_text(text: str, parts: list[str | int], limits: IngestLimits) -> None:
    if len(text) > limits.max_text_chars:
        raise InvalidInputError.must(_path(parts), f"text of at most {limits.max_text_chars:,} characters",
                                     f"{len(text):,} characters")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidInputError.must(_path(parts), "valid Unicode text (a lone surrogate cannot be stored)",
                                         text[max(e.start - 8, 0):e.end + 8]) from e


def check_payload(payload: Mapping[str, object], limits: IngestLimits) -> None:
    """Refuse a raw payload that holds text, numbers or nesting the system cannot keep."""
    _walk(payload, [], limits)


def _times(event: OrderEvent) -> Iterator[tuple[str, datetime]]:
    yield "event_time", event.event_time
    if event.details is not None:
        yield "details.created_at", event.details.created_at
        if event.details.paid_at is not None:
            yield "details.paid_at", event.details.paid_at
    if event.refund is not None:
        yield "refund.requested_at", event.refund.requested_at


def _amounts(event: OrderEvent) -> Iterator[tuple[str, int]]:
    if event.details is not None:
        a = event.details.amounts
        for name in ("goods_fen", "paid_fen", "shipping_fen", "discount_fen", "coupon_fen"):
            yield f"details.amounts.{name}", getattr(a, name)
        for i, line in enumerate(event.details.lines):
            yield f"details.lines[{i}].unit_price_fen", line.unit_price_fen
            if line.list_price_fen is not None:
                yield f"details.lines[{i}].list_price_fen", line.list_price_fen
    if event.refund is not None:
        yield "refund.amount_fen", event.refund.amount_fen


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """The fields of a schema dataclass that can hold an integer, but ``raw`` (the payload's own, checked before
    parsing); None for any other type. Cached per class, so walking an event asks ``dataclasses`` once per type,
    not once per value.

    Fields declared text, times, floats or enums are not walked: a value of another type in one of them is
    refused by the order log's codec (``orderguard.ingest.codec``) with its field named, so it is never
    stored either way, and skipping them halves the walk.
    """
    if not dataclasses.is_dataclass(cls):
        return None
    hints = typing.get_type_hints(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "raw" and _may_hold_integer(hints[f.name]))


def _may_hold_integer(hint: object, seen: frozenset[type] = frozenset()) -> bool:
    """Whether a value of type ``hint`` can be or contain an integer.

    >>> _may_hold_integer(str | None), _may_hold_integer(tuple[int, ...]), _may_hold_integer(typing.Any)
    (False, True, True)
    """
    if hint in (str, float, bool, datetime, type(None)):
        return False
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return False
        if dataclasses.is_dataclass(hint):
            if hint in seen:
                return False  # already being looked at further up
            hints = typing.get_type_hints(hint)
            return any(_may_hold_integer(hints[f.name], seen | {hint}) for f in dataclasses.fields(hint))
    if typing.get_origin(hint) in (types.UnionType, typing.Union, tuple):
        return any(_may_hold_integer(arg, seen) for arg in typing.get_args(hint) if arg is not Ellipsis)
    return True  # int, and anything open (Any, mappings)


#: Types that never hold an integer: skipped without a call.
_NO_INTEGERS: Final = frozenset({str, float, type(None), datetime})


def _big_integer(value: object, parts: list[str | int]) -> int | None:
    """The first integer of a parsed event beyond 64 bits (``parts`` left at its path), or None."""
    kind: type = type(value)
    if kind is int:
        return value if not -MAX_INT64 <= value <= MAX_INT64 else None  # type: ignore[operator,return-value]
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if not -MAX_INT64 <= value <= MAX_INT64 else None
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            if type(item) in _NO_INTEGERS:
                continue
            parts.append(i)
            if (found := _big_integer(item, parts)) is not None:
                return found
            parts.pop()
    elif (names := _field_names(kind)) is not None:
        for name in names:
            item = getattr(value, name)
            if type(item) in _NO_INTEGERS:
                continue
            parts.append(name)
            if (found := _big_integer(item, parts)) is not None:
                return found
            parts.pop()
    return None


def check_event(event: OrderEvent, limits: IngestLimits) -> None:
    """Refuse a parsed event whose identity, amounts or times the shop cannot have had.

    Times must lie between ``limits.earliest`` and ``received_at + limits.future_skew``:
    an order exported years ago is history worth learning from, an order from next week
    is a broken clock or a forgery.
    """
    order_id = event.key.channel_order_id
    if not order_id.strip():
        raise InvalidInputError.must("order_id", "a non-empty order id", order_id)
    if len(order_id) > limits.max_id_chars or not order_id.isprintable():
        raise InvalidInputError.must("order_id", f"a printable id of at most {limits.max_id_chars} characters",
                                     order_id)
    if not 0 < event.event_version <= MAX_INT64:
        raise InvalidInputError.must("version", "a positive 64-bit integer", event.event_version)
    parts: list[str | int] = []
    if (big := _big_integer(event, parts)) is not None:
        raise InvalidInputError.must(_path(parts), "an integer that fits 64 bits", big)
    latest = event.received_at + limits.future_skew
    for name, moment in _times(event):
        if not limits.earliest <= moment <= latest:
            raise InvalidInputError.must(name, f"a time between {limits.earliest:%Y-%m-%d} and "
                                               f"{_skew(limits.future_skew)} after receipt",
                                         moment.isoformat())
    for name, fen in _amounts(event):
        if not 0 <= fen <= limits.max_fen:
            raise InvalidInputError.must(name, f"an amount between 0 and {limits.max_fen // 100:,} yuan",
                                         f"{fen} fen")
    if event.details is not None:
        if not event.details.lines:
            raise InvalidInputError.must("details.lines", "at least one order line", "none")
        for i, line in enumerate(event.details.lines):
            if not 0 < line.qty <= limits.max_qty:
                raise InvalidInputError.must(f"details.lines[{i}].qty", f"a quantity between 1 and {limits.max_qty:,}",
                                             line.qty)


def _skew(skew: timedelta) -> str:
    """``10 minutes`` / ``1 day`` for messages.

    >>> _skew(timedelta(minutes=10)), _skew(timedelta(days=1))
    ('10 minutes', '1 day')
    """
    minutes = int(skew.total_seconds() // 60)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return f"{days} day" + ("s" if days != 1 else "")
    return f"{minutes} minute" + ("s" if minutes != 1 else "")
