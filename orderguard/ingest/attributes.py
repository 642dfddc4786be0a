"""Source attributes: the payload's own fields the unified order model has no place for.

A shop moving to orderguard brings columns from its other systems - a payment-risk
score, a card type, an email domain, a counter from upstream - and a feature set may
learn from them once it declares them (``features.specs.Declarations``). Every channel
carries them the same way, under one top-level object of the payload::

    {"type": "order", "order_id": "S1", ..., "attributes": {"card_type": "debit", "risk_score": 37.5}}

and a file mapping writes them with a target path ``attributes.<name>``
(``orderguard.ingest.files``). They are validated here, once for every way in, because
a stored order is replayed at every start: names are short snake_case words, values are
text, finite numbers or true/false, and an empty value is left out (missing). What a
value *means* (its type, unit and missing-value policy) is the feature set's to say, not
ingest's, so a new column never needs a new ingest release.

Personal data belongs in an attribute only hashed: a mapping hashes it at read time
(``pii('email', col)``), and a declared entity marked ``pii`` is hashed again before it
becomes a key.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

from orderguard.errors import InvalidInputError
from orderguard.schema import AttributeValue, OrderEvent

#: The payload's top-level field holding source attributes.
ATTRIBUTES_FIELD = "attributes"
#: Most attributes one order may carry.
MAX_ATTRIBUTES = 128
#: Longest text value of one attribute.
MAX_VALUE_CHARS = 256
#: An attribute name: snake_case, at most 48 characters (it becomes part of feature names).
NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def parse_attributes(value: object) -> dict[str, AttributeValue]:
    """Validate a payload's ``attributes`` object; every refusal names ``attributes.<name>``.

    >>> parse_attributes({"card_type": "debit", "risk": 37.5, "vip": True, "note": ""})
    {'card_type': 'debit', 'risk': 37.5, 'vip': True}
    >>> parse_attributes({"Card Type": "x"})
    Traceback (most recent call last):
    ...
    orderguard.errors.InvalidInputError: `attributes.Card Type` must be a snake_case name of at most 48 \
characters (a-z, 0-9, _); got 'Card Type'
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError.must(ATTRIBUTES_FIELD, "an object of name to value", value)
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidInputError.must(ATTRIBUTES_FIELD, f"an object of at most {MAX_ATTRIBUTES} attributes",
                                     f"{len(value)} attributes")
    out: dict[str, AttributeValue] = {}
    for name, item in value.items():
        where = f"{ATTRIBUTES_FIELD}.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            raise InvalidInputError.must(where, "a snake_case name of at most 48 characters (a-z, 0-9, _)", name)
        if item is None or item == "":
            continue
        if isinstance(item, bool | int):
            out[name] = item
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInputError.must(where, "a finite number", item)
            out[name] = item
        elif isinstance(item, str):
            if len(item) > MAX_VALUE_CHARS or not item.isprintable():
                raise InvalidInputError.must(where, f"printable text of at most {MAX_VALUE_CHARS} characters",
                                             item)
            out[name] = item
        else:
            raise InvalidInputError.must(where, "text, a number or true/false", item)
    return out


def with_attributes(event: OrderEvent, payload: Mapping[str, object]) -> OrderEvent:
    """``event`` with the payload's source attributes on its details (an order document's only).

    Taken out of ``raw`` as well, so they are stored once. An after-sale document's
    attributes stay in ``raw``: features read the order document's.
    """
    if ATTRIBUTES_FIELD not in payload or event.details is None:
        return event
    attributes = parse_attributes(payload[ATTRIBUTES_FIELD])
    raw = {k: v for k, v in event.raw.items() if k != ATTRIBUTES_FIELD}
    details = dataclasses.replace(event.details, attributes=attributes)
    return dataclasses.replace(event, details=details, raw=raw)
