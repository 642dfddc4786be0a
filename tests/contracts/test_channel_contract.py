"""The one contract every channel adapter fulfils.

Parametrised over ``ADAPTERS``: a new channel registered there (with its encoder in
``simulate.channels.ENCODERS``) is checked by every test below without
editing this file, except for adding its hand-written samples to ``SAMPLES``.

Samples come from two sources: the encoders (rendering hand-written clear-text
events) and literal platform payloads in ``samples/*.json``, whose expected values
below were worked out by hand (Beijing time minus eight hours, yuan × 100).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderguard.errors import InvalidInputError, UnknownChannelError, UnknownStatusError
from orderguard.ingest.channels import ADAPTERS, get_adapter
from orderguard.ingest.channels.kit import DocumentAdapter
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.schema import (
    Amounts,
    Channel,
    EventKind,
    OrderEvent,
    OrderKey,
    OrderLine,
    OrderStatus,
    RefundReason,
)
from simulate.channels import ENCODERS, encode
from simulate.plain import PlainAddress, PlainBuyer, PlainClient, PlainEvent, PlainRefund

SAMPLES_DIR = Path(__file__).parent / "samples"
SECRET = b"simulator-secret"
CHANNELS = list(ADAPTERS)
KINDS = [EventKind.ORDER, EventKind.AFTER_SALE]


@pytest.fixture
def ctx() -> ParseContext:
    return ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"test-key"))


def spec(channel: Channel) -> DocumentAdapter:
    adapter = ADAPTERS[channel]
    assert isinstance(adapter, DocumentAdapter)
    return adapter


def floor_to(moment: datetime, resolution: timedelta) -> datetime:
    """Truncate a UTC time to a resolution, computed independently of the encoders."""
    step = resolution // timedelta(microseconds=1)
    return moment - timedelta(microseconds=moment.microsecond % step)


# --------------------------------------------------------------------------- plain events

T0 = datetime(2024, 11, 11, 0, 3, 12, 654321, tzinfo=UTC)


def plain_event(channel: Channel, *, kind: EventKind = EventKind.ORDER, status: OrderStatus | None = None,
                order_id: str = "2024111100012345", phone: str | None = "13800138000",
                two_lines: bool = True) -> PlainEvent:
    """A realistic clear-text event; two SKU lines unless the channel allows only one."""
    lines = [OrderLine("SKU-CUP-350", 1, 17910, "保温杯 350ml", list_price_fen=19900)]
    if two_lines and ENCODERS[channel].max_lines is None:
        lines.append(OrderLine("SKU-SLEEVE", 2, 3750, "杯套"))
    goods = sum(line.unit_price_fen * line.qty for line in lines)
    if status is None:
        status = OrderStatus.SHIPPED if kind is EventKind.ORDER else OrderStatus.REFUND_REQUESTED
    refund = None
    if kind is EventKind.AFTER_SALE:
        refund = PlainRefund("RF-778899", RefundReason.DAMAGED, 17910, T0 + timedelta(days=2, minutes=5),
                             reason_text="杯身凹陷", sku_id="SKU-CUP-350")
    return PlainEvent(
        channel=channel,
        order_id=order_id,
        shop_id="shop-88",
        kind=kind,
        status=status,
        update_time=T0 + timedelta(days=2, hours=3, microseconds=250000),
        created_at=T0,
        buyer=PlainBuyer("buyer-001", phone=phone, id_card="110101199003071233", member_level=2,
                         registered_at=datetime(2023, 1, 5, 2, 0, tzinfo=UTC)),
        lines=tuple(lines),
        amounts=Amounts(goods_fen=goods, paid_fen=goods - 1500, shipping_fen=800, discount_fen=1300,
                        coupon_fen=1000),
        address=PlainAddress("浙江省", "杭州市", "西湖区", "文三路 398 号菜鸟驿站", "李小明"),
        paid_at=T0 + timedelta(seconds=28),
        buyer_message="请用顺丰",
        client=PlainClient("dev-1", "183.62.14.9", "a4:5e:60:c2:11:9f", "Mozilla/5.0"),
        tracking_no="SF1400229988776",
        refund=refund,
    )


def wire(payload: dict[str, Any]) -> dict[str, Any]:
    """Through JSON and back: the simulator writes JSONL, ingest reads it."""
    text = json.dumps(payload, ensure_ascii=False)
    back = json.loads(text)
    assert back == payload, "encoder output must be plain JSON types"
    return cast(dict[str, Any], back)


def encoded(plain: PlainEvent) -> dict[str, Any]:
    return wire(encode(plain, secret=SECRET))


def parse(channel: Channel, payload: object, ctx: ParseContext) -> OrderEvent:
    return ADAPTERS[channel].parse(cast(Mapping[str, Any], payload), ctx=ctx)


# --------------------------------------------------------------------------- path helpers


def _steps(path: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in path.split(".")]


def get_path(doc: Any, path: str) -> Any:
    for step in _steps(path):
        doc = doc[step]
    return doc


def set_path(doc: Any, path: str, value: Any) -> None:
    *parents, last = _steps(path)
    for step in parents:
        doc = doc[step]
    doc[last] = value


def del_path(doc: Any, path: str) -> None:
    *parents, last = _steps(path)
    for step in parents:
        doc = doc[step]
    del doc[last]


def as_wire_type(code: str, current: Any) -> Any:
    """A status code in the JSON type the channel uses for it (integer or string)."""
    return int(code) if isinstance(current, int) else code


# --------------------------------------------------------------------------- registry


def test_registry_covers_every_channel_and_is_immutable() -> None:
    assert set(ADAPTERS) == set(Channel)
    assert set(ENCODERS) == set(ADAPTERS)
    with pytest.raises(TypeError):
        cast(dict[Channel, Any], ADAPTERS)[Channel.JD] = None


@pytest.mark.parametrize("channel", CHANNELS)
def test_get_adapter_by_name(channel: Channel) -> None:
    assert get_adapter(channel.value) is ADAPTERS[channel]
    assert get_adapter(channel.value.upper()).channel is channel


def test_get_adapter_unknown_name() -> None:
    with pytest.raises(UnknownChannelError) as info:
        get_adapter("nope")
    assert info.value.field == "channel"
    assert "nope" in info.value.message


@pytest.mark.parametrize("channel", CHANNELS)
def test_adapter_describes_itself(channel: Channel) -> None:
    adapter = spec(channel)
    assert adapter.channel is channel
    assert isinstance(adapter.order_status_codes, MappingProxyType)
    assert isinstance(adapter.after_sale_status_codes, MappingProxyType)
    assert adapter.required_fields, "an order document has required fields"
    assert adapter.time_resolution in (timedelta(seconds=1), timedelta(milliseconds=1))


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", KINDS)
def test_encoder_codes_agree_with_adapter_tables(channel: Channel, kind: EventKind) -> None:
    """Each status a channel's documents can state has one representative code, which
    the adapter maps back to it; and no status the table yields lacks one."""
    adapter, encoder = spec(channel), ENCODERS[channel]
    table = adapter.order_status_codes if kind is EventKind.ORDER else adapter.after_sale_status_codes
    codes = encoder.order_codes if kind is EventKind.ORDER else encoder.after_sale_codes
    assert set(codes) == set(table.values())
    for status, code in codes.items():
        assert table[code] is status
    assert encoder.time_resolution == adapter.time_resolution


# --------------------------------------------------------------------------- valid samples


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", KINDS)
def test_encoded_samples_parse(channel: Channel, kind: EventKind, ctx: ParseContext) -> None:
    event = parse(channel, encoded(plain_event(channel, kind=kind)), ctx)
    assert event.kind is kind
    assert event.received_at == ctx.received_at
    assert event.event_time.utcoffset() == timedelta(0)
    if kind is EventKind.ORDER:
        assert event.details is not None and event.refund is None
    else:
        assert event.details is None and event.refund is not None


@dataclass(frozen=True)
class Expected:
    """Hand-worked expectations for one literal sample."""

    channel: Channel
    kind: EventKind
    order_id: str
    status: OrderStatus
    channel_status: str
    event_time: datetime
    amounts: Amounts | None = None
    first_line: tuple[str, int, int] | None = None
    address: tuple[str, str, str, str] | None = None
    phone_prefix: str | None = None
    paid_at: datetime | None = None
    refund: tuple[str, RefundReason, int, datetime] | None = None


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


SAMPLES: Mapping[str, Expected] = MappingProxyType({
    "tmall_order.json": Expected(
        Channel.TMALL, EventKind.ORDER, "3912458877120450123", OrderStatus.PAID, "WAIT_SELLER_SEND_GOODS",
        _utc(2024, 11, 11, 12, 15, 30),
        amounts=Amounts(goods_fen=29900, paid_fen=25410, shipping_fen=0, discount_fen=4490, coupon_fen=0),
        first_line=("4866587219", 1, 17910),
        address=("浙江省", "杭州市", "西湖区", "文三路 398 号东信大厦"), phone_prefix="138",
        paid_at=_utc(2024, 11, 10, 16, 3, 40)),
    "tmall_after_sale.json": Expected(
        Channel.TMALL, EventKind.AFTER_SALE, "3912458877120450123", OrderStatus.REFUND_REQUESTED,
        "WAIT_SELLER_AGREE", _utc(2024, 11, 13, 2, 0, 0),
        refund=("168854312044450123", RefundReason.DAMAGED, 17910, _utc(2024, 11, 13, 2, 0, 0))),
    "jd_order.json": Expected(
        Channel.JD, EventKind.ORDER, "295512347788", OrderStatus.SHIPPED, "WAIT_GOODS_RECEIVE_CONFIRM",
        _utc(2024, 6, 18, 15, 59, 59),
        amounts=Amounts(goods_fen=599900, paid_fen=559900, shipping_fen=0, discount_fen=30000, coupon_fen=10000),
        first_line=("100012043978", 1, 599900),
        address=("广东", "深圳市", "南山区", "科技园科苑路 15 号"), phone_prefix="139",
        paid_at=_utc(2024, 6, 17, 16, 0, 31)),
    "jd_after_sale.json": Expected(
        Channel.JD, EventKind.AFTER_SALE, "295512347788", OrderStatus.REFUNDED, "3",
        _utc(2024, 6, 20, 6, 2, 10),
        refund=("18320045", RefundReason.NO_REASON, 559900, _utc(2024, 6, 20, 3, 30, 0))),
    "douyin_order.json": Expected(
        Channel.DOUYIN, EventKind.ORDER, "6919823445123456789", OrderStatus.PAID, "105",
        _utc(2024, 11, 11, 12, 15, 30),
        amounts=Amounts(goods_fen=12900, paid_fen=9900, shipping_fen=0, discount_fen=3000, coupon_fen=0),
        first_line=("1765432109876543", 1, 9900),
        address=("浙江省", "杭州市", "余杭区", "五常街道文一西路 969 号菜鸟驿站"), phone_prefix="158",
        paid_at=_utc(2024, 11, 11, 1, 2, 30)),
    "douyin_after_sale.json": Expected(
        Channel.DOUYIN, EventKind.AFTER_SALE, "6919823445123456789", OrderStatus.REFUNDED, "12",
        _utc(2024, 11, 13, 3, 0, 0),
        refund=("7301122334455667788", RefundReason.NOT_RECEIVED, 9900, _utc(2024, 11, 13, 2, 0, 0))),
    "kuaishou_order.json": Expected(
        Channel.KUAISHOU, EventKind.ORDER, "2412345678901234", OrderStatus.SHIPPED, "40",
        _utc(2024, 3, 10, 9, 45, 12, 345000),
        amounts=Amounts(goods_fen=6900, paid_fen=5900, shipping_fen=0, discount_fen=1000, coupon_fen=0),
        first_line=("88990011", 1, 6900),
        address=("四川省", "成都市", "武侯区", "天府大道北段 1700 号"), phone_prefix="186",
        paid_at=_utc(2024, 3, 8, 4, 1, 0)),
    "kuaishou_after_sale.json": Expected(
        Channel.KUAISHOU, EventKind.AFTER_SALE, "2412345678901234", OrderStatus.REFUND_REQUESTED, "10",
        _utc(2024, 3, 11, 9, 40, 0),
        refund=("1990011223344", RefundReason.WRONG_ITEM, 5900, _utc(2024, 3, 11, 9, 40, 0))),
    "wechat_order.json": Expected(
        Channel.WECHAT, EventKind.ORDER, "3718522345678901234", OrderStatus.PAID, "20",
        _utc(2024, 12, 12, 11, 11, 11),
        amounts=Amounts(goods_fen=15800, paid_fen=14800, shipping_fen=0, discount_fen=1000, coupon_fen=0),
        first_line=("2100000654321", 1, 11800),
        address=("上海市", "上海市", "浦东新区", "张江高科技园区博云路 2 号"), phone_prefix="137",
        paid_at=_utc(2024, 12, 12, 11, 9, 50)),
    "wechat_after_sale.json": Expected(
        Channel.WECHAT, EventKind.AFTER_SALE, "3718522345678901234", OrderStatus.REFUND_REJECTED,
        "MERCHANT_REJECT_REFUND", _utc(2024, 12, 14, 14, 26, 40),
        refund=("4400012345678", RefundReason.NO_REASON, 11800, _utc(2024, 12, 13, 14, 26, 40))),
    "site_order.json": Expected(
        Channel.SITE, EventKind.ORDER, "S20240618000123", OrderStatus.DELIVERED, "delivered",
        _utc(2024, 6, 18, 15, 59, 59, 500000),
        amounts=Amounts(goods_fen=25800, paid_fen=23300, shipping_fen=0, discount_fen=1500, coupon_fen=1000),
        first_line=("SKU-COF-1KG", 2, 12900),
        address=("北京市", "北京市", "朝阳区", "望京街道阜通东大街 6 号"), phone_prefix="1391234",
        paid_at=_utc(2024, 6, 17, 16, 0, 40)),
    "site_after_sale.json": Expected(
        Channel.SITE, EventKind.AFTER_SALE, "S20240618000123", OrderStatus.REFUND_REJECTED, "rejected",
        _utc(2024, 6, 20, 10, 30, 0, 250000),
        refund=("RF-0000881", RefundReason.WRONG_ITEM, 12900, _utc(2024, 6, 20, 1, 0, 0))),
})


def load_sample(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((SAMPLES_DIR / name).read_text(encoding="utf-8")))


def test_every_channel_has_hand_written_samples() -> None:
    for channel in CHANNELS:
        for kind in KINDS:
            assert any(e.channel is channel and e.kind is kind for e in SAMPLES.values()), (channel, kind)
    assert {p.name for p in SAMPLES_DIR.glob("*.json")} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_hand_written_sample(name: str, ctx: ParseContext) -> None:
    exp = SAMPLES[name]
    event = parse(exp.channel, load_sample(name), ctx)
    assert event.key == OrderKey(exp.channel, exp.order_id)
    assert event.kind is exp.kind
    assert event.status is exp.status
    assert event.channel_status == exp.channel_status
    assert event.event_time == exp.event_time
    if exp.kind is EventKind.ORDER:
        details = event.details
        assert details is not None
        assert details.amounts == exp.amounts
        first = details.lines[0]
        assert (first.sku_id, first.qty, first.unit_price_fen) == exp.first_line
        assert details.address is not None
        a = details.address
        assert (a.province, a.city, a.district, a.detail) == exp.address
        assert a.receiver_name_hash is not None
        assert details.buyer.phone is not None and details.buyer.phone.prefix == exp.phone_prefix
        assert details.paid_at == exp.paid_at
    else:
        assert event.refund is not None and exp.refund is not None
        r = event.refund
        assert (r.refund_id, r.reason, r.amount_fen, r.requested_at) == exp.refund
        assert r.reason_text


def test_site_sample_carries_device_and_identity(ctx: ParseContext) -> None:
    event = parse(Channel.SITE, load_sample("site_order.json"), ctx)
    assert event.details is not None
    buyer, client = event.details.buyer, event.details.client
    assert event.event_version == 5
    assert buyer.member_level == 3
    assert buyer.registered_at == _utc(2023, 1, 5, 2, 0, 0)
    assert buyer.id_card_hash == ctx.hasher.hash("id_card", "110101199003071233")
    assert buyer.phone is not None and buyer.phone.hash == ctx.hasher.hash("phone", "13912345678")
    assert client is not None and client.device_id == "A1B2C3D4-E5F6-7890-ABCD-EF0123456789"
    assert client.wifi_hash == ctx.hasher.hash("wifi", "A4:5E:60:C2:11:9F")
    assert event.details.coupon_ids == ("CPN-2024-618",)
    assert event.raw == {"channel_source": "wxapp"}


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("channel", CHANNELS)
def test_order_round_trip(channel: Channel, ctx: ParseContext) -> None:
    plain = plain_event(channel)
    resolution = spec(channel).time_resolution
    event = parse(channel, encoded(plain), ctx)
    details = event.details
    assert details is not None
    assert event.key == OrderKey(channel, plain.order_id)
    assert event.status is plain.status
    assert event.event_time == floor_to(plain.update_time, resolution)
    assert details.created_at == floor_to(plain.created_at, resolution)
    assert plain.paid_at is not None and details.paid_at == floor_to(plain.paid_at, resolution)
    assert details.shop_id == plain.shop_id
    assert details.buyer.account_id == plain.buyer.account_id
    assert details.buyer_message == plain.buyer_message
    assert details.tracking_no == plain.tracking_no
    got, want = details.amounts, plain.amounts
    assert (got.goods_fen, got.paid_fen, got.shipping_fen) == (want.goods_fen, want.paid_fen, want.shipping_fen)
    # How reductions split between promotion and coupon is the channel's own business.
    assert got.discount_fen + got.coupon_fen == want.discount_fen + want.coupon_fen
    assert [(x.sku_id, x.qty, x.unit_price_fen, x.title) for x in details.lines] == [
        (x.sku_id, x.qty, x.unit_price_fen, x.title) for x in plain.lines]
    for line, source in zip(details.lines, plain.lines, strict=True):
        listed = source.list_price_fen if source.list_price_fen is not None else source.unit_price_fen
        assert line.list_price_fen in (None, listed)
    assert details.address is not None and plain.address is not None
    a, p = details.address, plain.address
    assert (a.province, a.city, a.district, a.detail) == (p.province, p.city, p.district, p.detail)
    assert a.receiver_name_hash is not None
    phone = details.buyer.phone
    assert phone is not None and phone.prefix is not None and phone.masked is not None
    assert plain.buyer.phone is not None and plain.buyer.phone.startswith(phone.prefix)
    assert len(phone.prefix) >= 3
    assert phone.masked.endswith(plain.buyer.phone[-2:])
    # what is stored in clear - the prefix and the shown digits - never makes the whole number
    shown = {i for i, ch in enumerate(phone.masked) if ch.isdigit()} if len(phone.masked) == len(plain.buyer.phone) \
        else set(range(len(phone.masked)))
    assert len(set(range(len(phone.prefix))) | shown) < len(plain.buyer.phone)


@pytest.mark.parametrize("channel", CHANNELS)
def test_after_sale_round_trip(channel: Channel, ctx: ParseContext) -> None:
    plain = plain_event(channel, kind=EventKind.AFTER_SALE, status=OrderStatus.REFUND_REQUESTED)
    resolution = spec(channel).time_resolution
    event = parse(channel, encoded(plain), ctx)
    assert event.kind is EventKind.AFTER_SALE and event.details is None
    assert event.key == OrderKey(channel, plain.order_id)
    assert event.status is OrderStatus.REFUND_REQUESTED
    assert event.event_time == floor_to(plain.update_time, resolution)
    assert event.refund is not None and plain.refund is not None
    got, want = event.refund, plain.refund
    assert (got.refund_id, got.amount_fen, got.sku_id) == (want.refund_id, want.amount_fen, want.sku_id)
    assert got.requested_at == floor_to(want.requested_at, resolution)
    assert got.reason_text == want.reason_text


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("reason", list(RefundReason))
def test_refund_reason_round_trip(channel: Channel, reason: RefundReason, ctx: ParseContext) -> None:
    plain = plain_event(channel, kind=EventKind.AFTER_SALE)
    assert plain.refund is not None
    plain = replace(plain, refund=replace(plain.refund, reason=reason, reason_text=""))
    event = parse(channel, encoded(plain), ctx)
    assert event.refund is not None and event.refund.reason is reason


@pytest.mark.parametrize("channel", CHANNELS)
def test_same_phone_same_hash_within_channel(channel: Channel, ctx: ParseContext) -> None:
    def phone_hash(order_id: str, phone: str) -> str:
        plain = plain_event(channel, order_id=order_id, phone=phone)
        details = parse(channel, encoded(plain), ctx).details
        assert details is not None and details.buyer.phone is not None
        return details.buyer.phone.hash

    first = phone_hash("90001", "13800138000")
    assert phone_hash("90002", "13800138000") == first
    assert phone_hash("90003", "13900139000") != first


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_phone_no_phone_identity(channel: Channel, ctx: ParseContext) -> None:
    details = parse(channel, encoded(plain_event(channel, phone=None)), ctx).details
    assert details is not None and details.buyer.phone is None


@pytest.mark.parametrize("channel", CHANNELS)
def test_later_update_gets_higher_version(channel: Channel, ctx: ParseContext) -> None:
    plain = plain_event(channel)
    later = replace(plain, update_time=plain.update_time + timedelta(seconds=1))
    first = parse(channel, encoded(plain), ctx)
    assert parse(channel, encoded(plain), ctx).event_version == first.event_version
    assert parse(channel, encoded(later), ctx).event_version > first.event_version


# --------------------------------------------------------------------------- bad input


def valid_order(channel: Channel) -> dict[str, Any]:
    return encoded(plain_event(channel))


def required_field_cases() -> list[tuple[Channel, str]]:
    return [(channel, path) for channel in CHANNELS for path in spec(channel).required_fields]


@pytest.mark.parametrize(("channel", "path"), required_field_cases())
def test_missing_required_field_is_named(channel: Channel, path: str, ctx: ParseContext) -> None:
    payload = valid_order(channel)
    get_path(payload, path)  # the encoder renders every required field
    del_path(payload, path)
    with pytest.raises(InvalidInputError) as info:
        parse(channel, payload, ctx)
    assert info.value.field == path
    assert path in info.value.message


@pytest.mark.parametrize(("channel", "path"), required_field_cases())
def test_wrong_type_of_required_field_is_named(channel: Channel, path: str, ctx: ParseContext) -> None:
    payload = valid_order(channel)
    current = get_path(payload, path)
    set_path(payload, path, "not-an-object" if isinstance(current, dict | list) else {"wrong": "type"})
    with pytest.raises(InvalidInputError) as info:
        parse(channel, payload, ctx)
    assert info.value.field == path


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("payload", [[1, 2], "order", None, 42])
def test_non_object_payload(channel: Channel, payload: object, ctx: ParseContext) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse(channel, payload, ctx)
    assert info.value.field == "payload"


def money_field_cases() -> list[tuple[Channel, str]]:
    """Required fields holding money, recognised by the platforms' naming."""
    words = ("price", "fee", "amount", "payment", "fen")
    return [(channel, path) for channel, path in required_field_cases()
            if any(word in path.rsplit(".", 1)[-1].lower() for word in words)]


def test_every_channel_requires_money_fields() -> None:
    assert {channel for channel, _ in money_field_cases()} == set(CHANNELS)


@pytest.mark.parametrize(("channel", "path"), money_field_cases())
def test_negative_amount_is_named(channel: Channel, path: str, ctx: ParseContext) -> None:
    payload = valid_order(channel)
    current = get_path(payload, path)
    set_path(payload, path, -100 if isinstance(current, int) else "-1.00")
    with pytest.raises(InvalidInputError) as info:
        parse(channel, payload, ctx)
    assert info.value.field == path


# --------------------------------------------------------------------------- status tables


def status_cases(kind: EventKind) -> list[tuple[Channel, str, OrderStatus]]:
    cases: list[tuple[Channel, str, OrderStatus]] = []
    for channel in CHANNELS:
        adapter = spec(channel)
        table = adapter.order_status_codes if kind is EventKind.ORDER else adapter.after_sale_status_codes
        cases.extend((channel, code, status) for code, status in table.items())
    return cases


@pytest.mark.parametrize("kind", KINDS)
def test_every_documented_code_maps(kind: EventKind, ctx: ParseContext) -> None:
    cases = status_cases(kind)
    assert cases
    for channel, code, status in cases:
        adapter = spec(channel)
        field = adapter.order_status_field if kind is EventKind.ORDER else adapter.after_sale_status_field
        payload = encoded(plain_event(channel, kind=kind))
        set_path(payload, field, as_wire_type(code, get_path(payload, field)))
        event = parse(channel, payload, ctx)
        assert (channel, code, event.status) == (channel, code, status)
        assert event.channel_status == code


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", KINDS)
def test_unknown_status_code_names_the_field(channel: Channel, kind: EventKind, ctx: ParseContext) -> None:
    adapter = spec(channel)
    field = adapter.order_status_field if kind is EventKind.ORDER else adapter.after_sale_status_field
    payload = encoded(plain_event(channel, kind=kind))
    set_path(payload, field, as_wire_type("987654", get_path(payload, field)))
    with pytest.raises(UnknownStatusError) as info:
        parse(channel, payload, ctx)
    assert info.value.field == field


# --------------------------------------------------------------------------- unknown fields


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", KINDS)
def test_unknown_top_level_fields_kept_in_raw(channel: Channel, kind: EventKind, ctx: ParseContext) -> None:
    payload = encoded(plain_event(channel, kind=kind))
    extra = {"x_new_field": {"nested": [1, "两"]}, "x_flag": True}
    payload.update(copy.deepcopy(extra))
    event = parse(channel, payload, ctx)
    assert {k: event.raw[k] for k in extra} == extra


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("channel", CHANNELS)
def test_encoder_refuses_what_the_channel_cannot_state(channel: Channel) -> None:
    encoder = ENCODERS[channel]
    missing = set(OrderStatus) - encoder.statuses(EventKind.AFTER_SALE)
    assert missing, "no after-sale document states every unified status"
    with pytest.raises(ValueError, match=r"cannot state status"):
        encode(plain_event(channel, kind=EventKind.AFTER_SALE, status=sorted(missing)[0]), secret=SECRET)
    no_refund = replace(plain_event(channel, kind=EventKind.AFTER_SALE), refund=None)
    with pytest.raises(ValueError, match=r"no refund"):
        encode(no_refund, secret=SECRET)


def test_single_sku_channel_refuses_multi_line_orders() -> None:
    plain = plain_event(Channel.KUAISHOU, two_lines=False)
    two = replace(plain, lines=(*plain.lines, OrderLine("SKU-2", 1, 100)))
    with pytest.raises(ValueError, match=r"at most 1"):
        encode(two, secret=SECRET)


@pytest.mark.parametrize("channel", [c for c in CHANNELS if c is not Channel.SITE])
def test_marketplaces_never_reveal_the_clear_phone(channel: Channel) -> None:
    plain = plain_event(channel, kind=EventKind.ORDER)
    assert plain.buyer.phone is not None
    text = json.dumps(encode(plain, secret=SECRET), ensure_ascii=False)
    assert plain.buyer.phone not in text
    assert plain.buyer.phone[-4:] in text


def test_tokens_depend_on_the_secret(ctx: ParseContext) -> None:
    plain = plain_event(Channel.DOUYIN)
    one = parse(Channel.DOUYIN, wire(encode(plain, secret=b"a")), ctx).details
    two = parse(Channel.DOUYIN, wire(encode(plain, secret=b"b")), ctx).details
    assert one is not None and two is not None
    assert one.buyer.phone is not None and two.buyer.phone is not None
    assert one.buyer.phone.hash != two.buyer.phone.hash


# --------------------------------------------------------------------------- property

_PROVINCES = [("浙江省", "杭州市", "西湖区"), ("北京市", "北京市", "朝阳区"), ("广东省", "深圳市", "南山区"),
              ("四川省", "成都市", "武侯区"), ("上海", "上海市", "浦东新区")]
_STREETS = ["文三路", "阜通东大街", "科苑路", "天府大道北段", "博云路"]
_moments = st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 1, 1),
                        timezones=st.just(UTC))
_ids = st.from_regex(r"[0-9]{6,19}", fullmatch=True)
_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,15}", fullmatch=True)
_fen = st.integers(min_value=0, max_value=10**8)


@st.composite
def plain_events(draw: st.DrawFn) -> PlainEvent:
    channel: Channel = draw(st.sampled_from(CHANNELS))
    encoder = ENCODERS[channel]
    kind: EventKind = draw(st.sampled_from(KINDS))
    status = draw(st.sampled_from(sorted(encoder.statuses(kind))))
    n_lines = draw(st.integers(min_value=1, max_value=encoder.max_lines or 3))
    lines = []
    for i in range(n_lines):
        unit = draw(st.integers(min_value=0, max_value=10**6))
        listed = draw(st.none() | st.integers(min_value=unit, max_value=2 * 10**6))
        lines.append(OrderLine(f"{draw(_names)}-{i}", draw(st.integers(min_value=1, max_value=99)), unit,
                               draw(st.text(min_size=1, max_size=12)), list_price_fen=listed))
    goods = sum(line.unit_price_fen * line.qty for line in lines)
    province, city, district = draw(st.sampled_from(_PROVINCES))
    address = draw(st.none() | st.just(PlainAddress(
        province, city, district, f"{draw(st.sampled_from(_STREETS))} {draw(st.integers(1, 999))} 号",
        draw(st.sampled_from(["李小明", "王芳", "赵一"])))))
    refund = None
    if kind is EventKind.AFTER_SALE:
        refund = PlainRefund(draw(_ids), draw(st.sampled_from(list(RefundReason))), draw(_fen), draw(_moments),
                             reason_text=draw(st.text(max_size=20)),
                             sku_id=draw(st.none() | st.sampled_from([line.sku_id for line in lines])))
    return PlainEvent(
        channel=channel, order_id=draw(_ids), shop_id=draw(_names), kind=kind, status=status,
        update_time=draw(_moments), created_at=draw(_moments),
        buyer=PlainBuyer(draw(_names), phone=draw(st.none() | st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))),
        lines=tuple(lines),
        amounts=Amounts(goods_fen=goods, paid_fen=draw(_fen), shipping_fen=draw(_fen), discount_fen=draw(_fen),
                        coupon_fen=draw(_fen)),
        address=address, paid_at=draw(st.none() | _moments), buyer_message=draw(st.text(max_size=20)),
        tracking_no=draw(st.none() | st.from_regex(r"[A-Z]{2}[0-9]{10}", fullmatch=True)),
        refund=refund,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain=plain_events())
def test_property_round_trip(plain: PlainEvent) -> None:
    ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"test-key"))
    resolution = spec(plain.channel).time_resolution
    event = parse(plain.channel, encoded(plain), ctx)
    assert event.key == OrderKey(plain.channel, plain.order_id)
    assert event.kind is plain.kind
    assert event.status is plain.status
    assert event.event_time == floor_to(plain.update_time, resolution)
    if plain.kind is EventKind.ORDER:
        assert event.details is not None
        got, want = event.details.amounts, plain.amounts
        assert (got.goods_fen, got.paid_fen, got.shipping_fen) == (want.goods_fen, want.paid_fen,
                                                                   want.shipping_fen)
        assert got.discount_fen + got.coupon_fen == want.discount_fen + want.coupon_fen
        assert [(x.sku_id, x.qty, x.unit_price_fen) for x in event.details.lines] == [
            (x.sku_id, x.qty, x.unit_price_fen) for x in plain.lines]
        assert (event.details.buyer.phone is None) == (plain.buyer.phone is None)
    else:
        assert event.refund is not None and plain.refund is not None
        assert event.refund.amount_fen == plain.refund.amount_fen
        assert event.refund.reason is plain.refund.reason
        assert event.refund.requested_at == floor_to(plain.refund.requested_at, resolution)
