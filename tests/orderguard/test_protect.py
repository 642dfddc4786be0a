"""Personal data at rest: no stored row holds a whole phone, street address, device id or IP; features still
match on them; a log written before protection is rewritten in place, and re-sent payloads stay duplicates."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st

from features.facts import address_key, order_attributes
from features.settings import Settings
from orderguard.enrich import pickup_keyword
from orderguard.errors import InvalidInputError
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.migrations import VERSION_TABLE
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import AppendOutcome, OrderLog
from orderguard.ingest.protect import ip_network, network_by_ipaddress, protect_address, stored_key
from orderguard.ingest.service import parse_payload
from orderguard.schema import Address, Order, OrderEvent
from tests.serving.test_labels_api import NOW, site_order

HASHER = PiiHasher(Settings().pii.hash_key.get_secret_value().encode())


def _payload(order_id: str = "P1", detail: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = site_order(order_id, device="dev-secret-7")["payload"]
    if detail is not None:
        payload["address"]["detail"] = detail
    return payload


def _event(payload: dict[str, Any], *, protected: bool = True) -> OrderEvent:
    ctx = ParseContext(received_at=NOW, hasher=HASHER)
    if protected:
        return parse_payload(get_adapter("site"), payload, ctx=ctx)
    return get_adapter("site").parse(payload, ctx=ctx)  # what ingest stored before protection


@pytest.fixture
def log(tmp_path: Path) -> Iterator[OrderLog]:
    with OrderLog.open(f"sqlite:///{tmp_path / 'log.db'}") as opened:
        yield opened


def _stored_text(log: OrderLog) -> str:
    with log.engine.connect() as conn:
        rows = [*conn.execute(sa.text("select payload from order_events")),
                *conn.execute(sa.text("select state from orders"))]
    return "\n".join(str(r[0]) for r in rows)


def test_an_ingested_order_is_stored_without_its_clear_address_device_ip_or_phone(log: OrderLog) -> None:
    payload = _payload()
    clear = _event(payload, protected=False).details
    assert clear is not None and clear.address is not None and clear.client is not None
    log.append([_event(payload)])
    text = _stored_text(log)
    phone = payload["user"]["phone"]
    for value in (clear.address.detail, clear.client.device_id, clear.client.ip, phone, phone[-4:] + '"'):
        assert value and value not in text, value
    order = log.get(_event(payload).key)
    assert order is not None and order.details.address is not None and order.details.client is not None
    assert order.details.address.detail == "文三路 ****"  # what a reviewer sees
    assert order.details.client.device_id == stored_key("device", "dev-secret-7", HASHER)


def test_features_match_on_the_stored_keys_as_they_did_on_clear_values() -> None:
    a, b = _event(_payload("A", "文三路88号3幢2单元301室")), _event(_payload("B", "文三路88号3-2-301"))
    assert a.details is not None and b.details is not None
    assert a.details.address is not None and b.details.address is not None
    assert address_key(a.details.address) == address_key(b.details.address)  # one flat, however written
    other = _event(_payload("C", "文三路89号3-2-301")).details
    assert other is not None and other.address is not None
    assert address_key(other.address) != address_key(a.details.address)
    station_event = _event(_payload("D", "文三路 菜鸟驿站 取件码 8-3-1201"))
    station = station_event.details
    assert station is not None and station.address is not None
    assert "驿站" not in station.address.detail and pickup_keyword(station.address) == "驿站"
    log_order = Order(key=station_event.key, status=station_event.status, event_version=1,
                      updated_at=station_event.event_time, details=station, timeline=())
    assert order_attributes(log_order)["pickup_address"] is True


def test_a_different_key_gives_different_stored_values() -> None:
    other = PiiHasher(b"another deployment")
    assert stored_key("device", "dev-1", HASHER) != stored_key("device", "dev-1", other)
    address = Address("浙江省", "杭州市", "西湖区", "文三路1号")
    assert protect_address(address, HASHER).key != protect_address(address, other).key
    assert protect_address(address, HASHER).detail == "文三路1****"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


def test_a_log_written_before_protection_is_rewritten_and_a_resent_payload_stays_a_duplicate(log_url: str) -> None:
    url = log_url
    payloads = [_payload(f"O{i}") for i in range(3)]
    with OrderLog.open(url) as old:
        old.append([_event(p, protected=False) for p in payloads])  # the clear form, as stored before
        assert "dev-secret-7" in _stored_text(old)
        with old.engine.begin() as conn:  # the schema as it was at 0003, before protection and what came after
            conn.execute(sa.text(f"update {VERSION_TABLE} set version_num = '0003'"))
            for later in ("api_keys", "users", "desk_claims", "outbox", "verifications", "fulfilment_events",
                          "health_findings", "health_snapshots", "rule_packs"):  # made by 0005 and later
                conn.execute(sa.text(f"drop table {later}"))
            conn.execute(sa.text("drop index ix_score_records_shadow"))  # and what 0010 added to score_records
            for column in ("rules_version", "shadow_version", "shadow_score", "shadow_decision"):
                conn.execute(sa.text(f"alter table score_records drop column {column}"))
    with OrderLog.open(url) as upgraded:  # opening migrates to the newest revision
        text = _stored_text(upgraded)
        assert "dev-secret-7" not in text and "文三路 O1 号" not in text
        again = upgraded.append([_event(p) for p in payloads])
        assert again.outcomes == (AppendOutcome.DUPLICATE,) * 3  # the content hashes were recomputed
        order = upgraded.get(_event(payloads[0]).key)
        assert order is not None and order.details.client is not None
        assert order.details.client.device_id == stored_key("device", "dev-secret-7", HASHER)
        assert order.details.address is not None and order.details.address.key is not None


@pytest.mark.parametrize("bad", ["1994293788X", "110105194912310021", "110105194913310028", "11010518991231002X",
                                 "ABCDEFGHIJKLMNOPQR"])
def test_a_malformed_clear_id_card_is_a_field_error(bad: str) -> None:
    payload = _payload()
    payload["user"]["id_card"] = bad
    with pytest.raises(InvalidInputError) as refused:
        _event(payload)
    assert refused.value.field == "user.id_card"
    assert not re.search(r"\d{11,}", refused.value.message)  # long digit runs are masked in messages


def test_a_valid_id_card_is_stored_only_as_its_keyed_hash(log: OrderLog) -> None:
    payload = _payload()
    payload["user"]["id_card"] = "11010519491231002x"  # a lower-case check letter is the same number
    event = _event(payload)
    assert event.details is not None
    assert event.details.buyer.id_card_hash == HASHER.hash("id_card", "11010519491231002X")
    log.append([event])
    assert "11010519491231002" not in _stored_text(log)


def test_address_defects_are_kept_and_an_order_stored_before_them_stays_a_duplicate(log: OrderLog) -> None:
    payload = _payload("D1", detail="翠湖花园东门 到了打电话")
    event = _event(payload)
    assert event.details is not None and event.details.address is not None
    assert event.details.address.defects == ("no_street", "no_number") and "打电话" not in event.details.address.detail
    before = dataclasses.replace(event, details=dataclasses.replace(
        event.details, address=dataclasses.replace(event.details.address, defects=())))  # as stored before
    assert log.append([before]).outcomes == (AppendOutcome.INSERTED,)
    assert log.append([_event(payload)]).outcomes == (AppendOutcome.DUPLICATE,)  # a retry is not a conflict


def _with_ip(payload: dict[str, Any], ip: str) -> dict[str, Any]:
    return {**payload, "client": {**payload["client"], "ip": ip}}


def test_the_ip_range_is_stored_as_a_keyed_hash_shared_by_its_24_or_48_and_none_without_a_readable_ip() -> None:
    def client(ip: str) -> Any:
        details = _event(_with_ip(_payload(), ip)).details
        assert details is not None and details.client is not None
        return details.client

    a, b, other = client("203.0.113.7"), client("203.0.113.250"), client("203.0.114.7")
    assert a.ip != b.ip and a.ip_prefix == b.ip_prefix != other.ip_prefix
    assert a.ip_prefix is not None and "203.0.113" not in a.ip_prefix
    v6 = client("2001:db8:1:2::9").ip_prefix
    assert v6 == client("2001:db8:1:ffff::1").ip_prefix != client("2001:db8:2::1").ip_prefix
    assert client("::ffff:203.0.113.9").ip_prefix == a.ip_prefix
    assert client("not-an-ip").ip_prefix is None and client("not-an-ip").ip is not None


def test_an_order_stored_before_the_ip_range_stays_a_duplicate_and_keeps_no_range(log: OrderLog) -> None:
    payload = _with_ip(_payload("R1"), "198.51.100.23")
    event = _event(payload)
    assert event.details is not None and event.details.client is not None
    assert event.details.client.ip_prefix is not None
    before = dataclasses.replace(event, details=dataclasses.replace(
        event.details, client=dataclasses.replace(event.details.client, ip_prefix=None)))  # as stored before
    assert log.append([before]).outcomes == (AppendOutcome.INSERTED,)
    assert log.append([_event(payload)]).outcomes == (AppendOutcome.DUPLICATE,)  # a retry is not a conflict
    stored = log.get(event.key)
    assert stored is not None and stored.details.client is not None and stored.details.client.ip_prefix is None
    changed = _with_ip(payload, "198.51.101.23")  # another IP is another document: still a conflict
    assert log.append([_event(changed)]).outcomes != (AppendOutcome.DUPLICATE,)


_OCTET = st.one_of(st.integers(0, 300).map(str), st.integers(0, 255).map(str),
                   st.from_regex(r"0[0-9]{1,3}", fullmatch=True),
                   st.sampled_from(["", "-1", "+1", "1 ", "٣", "0x1", "1e2", "2_5"]))
_DOTTED = st.one_of(st.lists(_OCTET, min_size=4, max_size=4), st.lists(_OCTET, min_size=1, max_size=6)).map(".".join)
_SPACES = st.sampled_from(["", " ", "\t", "\n "])


@example("10.01.2.3")
@example("10.1.2.٣")
@given(st.one_of(st.tuples(_SPACES, _DOTTED, _SPACES).map("".join), st.text("0123456789.: abcdef٣\u00a0", max_size=20),
                 st.ip_addresses().map(str)))
def test_the_ip_network_shortcut_answers_as_ipaddress_does(ip: str) -> None:
    assert ip_network(ip) == network_by_ipaddress(ip)
