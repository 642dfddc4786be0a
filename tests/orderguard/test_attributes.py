"""Source attributes: carried by every channel's order document, validated, stored and hashed as before."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orderguard.errors import InvalidInputError
from orderguard.ingest import codec
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import AppendOutcome, OrderLog
from orderguard.ingest.service import parse_payload

SAMPLES = Path(__file__).parents[1] / "contracts" / "samples"
CTX = ParseContext(received_at=datetime(2030, 1, 1, tzinfo=UTC), hasher=PiiHasher(b"k"))


def sample(channel: str, kind: str = "order") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{channel}_{kind}.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("channel", ["tmall", "jd", "douyin", "kuaishou", "wechat", "site"])
def test_every_channel_carries_attributes_on_the_order(channel: str) -> None:
    payload = {**sample(channel), "attributes": {"card_type": "debit", "risk": 37.5, "vip": True, "blank": ""}}
    event = parse_payload(get_adapter(channel), payload, ctx=CTX)
    assert event.details is not None
    assert dict(event.details.attributes) == {"card_type": "debit", "risk": 37.5, "vip": True}
    assert "attributes" not in event.raw  # kept once
    again = codec.event_from_dict(codec.event_to_dict(event))
    assert again.details is not None and dict(again.details.attributes) == dict(event.details.attributes)


def test_an_after_sale_document_keeps_them_raw() -> None:
    payload = {**sample("site", "after_sale"), "attributes": {"x": 1}}
    event = parse_payload(get_adapter("site"), payload, ctx=CTX)
    assert event.details is None and event.raw["attributes"] == {"x": 1}


@pytest.mark.parametrize(("attributes", "field"), [
    (["a"], "attributes"),
    ({"Card Type": "x"}, "attributes.Card Type"),
    ({"a" * 49: 1}, "attributes." + "a" * 49),
    ({"note": "x" * 257}, "attributes.note"),
    ({"note": "a\u0000b"}, "attributes.note"),
    ({"nested": {"a": 1}}, "attributes.nested"),
    ({f"a{i}": i for i in range(129)}, "attributes"),
])
def test_bad_attributes_are_refused_naming_the_field(attributes: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_payload(get_adapter("site"), {**sample("site"), "attributes": attributes}, ctx=CTX)
    assert caught.value.field == field


def test_a_resend_without_attributes_is_still_a_duplicate(order_log: OrderLog) -> None:
    log = order_log
    plain = parse_payload(get_adapter("site"), sample("site"), ctx=CTX)
    assert plain.details is not None and not plain.details.attributes
    assert codec.content_hash(plain) == codec.content_hash_of({
        k: v for k, v in codec.event_to_dict(plain).items()
        if k != "details"} | {"details": {k: v for k, v in codec.event_to_dict(plain)["details"].items()
                                          if k != "attributes"}})
    first = log.append([plain])
    again = log.append([parse_payload(get_adapter("site"), sample("site"), ctx=CTX)])
    assert first.outcomes == (AppendOutcome.INSERTED,) and again.outcomes == (AppendOutcome.DUPLICATE,)
    changed = parse_payload(get_adapter("site"), {**sample("site"), "attributes": {"risk": 1}}, ctx=CTX)
    assert log.append([changed]).outcomes == (AppendOutcome.CONFLICT,)  # the same version with other content
    order = log.get(plain.key)
    assert order is not None and not order.details.attributes
