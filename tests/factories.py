"""Builders and hypothesis strategies for order events and orders, shared by every test package.

Plain builders (deterministic, for example-based tests):

* :func:`make_event` — one valid :class:`OrderEvent` with realistic defaults: own-site
  channel, one buyer in Shanghai, one line, paid at :data:`BASE_TIME` (10:00 Beijing time
  on 11.11, stored as UTC). Every part can be overridden by keyword.
* :func:`follow_up` — the next event of the same order (shipped, refund requested …),
  later in time, carrying the same order snapshot.
* :class:`EventFactory` — ``make_event`` with a fresh order id per call; the
  ``event_factory`` fixture in ``conftest.py`` hands one out per test.
* :func:`make_order` — a domain :class:`Order` (the feature engines' input) with the entity
  values a test cares about spelled out; :func:`delivered` / :func:`refunded` its later
  versions, :func:`make_label` a verdict on it, :func:`at` a time after :data:`BASE_TIME`;
  :class:`OrderFactory` (fixture ``order_factory``) gives fresh order ids.

Strategies (for properties):

* :func:`order_events` — arbitrary valid events with every optional field exercised
  (codec round trips, serialisation).
* :func:`event_streams` — realistic multi-order streams in arrival order: several
  events per order along real life-cycle paths, after-sale documents (sometimes without
  their order document), shared buyers / devices / IPs across orders, re-sent
  duplicates with later receive times, optional conflicting re-uses of a key, and
  shuffled arrival so older versions arrive late.
* :func:`batches` — a stream cut into consecutive batches.

Times are whole milliseconds in streams: ``event_version`` has millisecond resolution,
so two different events of one order must not fall in the same millisecond with the
same kind and status (the channels guarantee that; the strategies do too).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from features.settings import Settings

from features.windows import to_us
from orderguard.ingest.normalize import event_version as version_of
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    ClientInfo,
    EventKind,
    Label,
    Order,
    OrderDetails,
    OrderEvent,
    OrderKey,
    OrderLine,
    OrderStatus,
    Party,
    Phone,
    Refund,
    RefundReason,
    StatusChange,
    Verdict,
)

#: 2024-11-11 10:00 in Beijing (the Singles' Day morning peak), as UTC.
BASE_TIME = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)

#: How long after the change a webhook typically reaches orderguard.
RECEIVE_DELAY = timedelta(seconds=2)

DEFAULT_ORDER_ID = "SO20241111000001"

DEFAULT_ADDRESS = Address(province="上海市", city="上海市", district="浦东新区",
                          detail="张江路 88 号 3 栋 1201 室", receiver_name_hash="rn-0001")

DEFAULT_BUYER = Party(account_id="buyer-0001",
                      phone=Phone(hash="ph-0001", prefix="138", masked="138****8000"),
                      member_level=1, registered_at=datetime(2023, 5, 20, 4, 30, tzinfo=UTC))

DEFAULT_LINES = (OrderLine(sku_id="SKU-1001", qty=1, unit_price_fen=19_900, title="保温杯 500ml",
                           list_price_fen=25_900),)

#: Statuses reached through the channel's order document vs its after-sale document.
AFTER_SALE_STATUSES = (OrderStatus.REFUND_REQUESTED, OrderStatus.REFUNDED, OrderStatus.REFUND_REJECTED)


def amounts_for(lines: Sequence[OrderLine], *, shipping_fen: int = 0, discount_fen: int = 0) -> Amounts:
    """Order amounts consistent with the lines: paid = goods + shipping - discount (fen).

    >>> amounts_for(DEFAULT_LINES, shipping_fen=600).paid_fen
    20500
    """
    goods = sum(line.qty * line.unit_price_fen for line in lines)
    return Amounts(goods_fen=goods, paid_fen=max(goods + shipping_fen - discount_fen, 0),
                   shipping_fen=shipping_fen, discount_fen=discount_fen)


def make_details(*, shop_id: str = "shop-001", created_at: datetime = BASE_TIME,
                 buyer: Party = DEFAULT_BUYER, lines: Sequence[OrderLine] = DEFAULT_LINES,
                 amounts: Amounts | None = None, address: Address | None = DEFAULT_ADDRESS,
                 paid_at: datetime | None = None, client: ClientInfo | None = None,
                 coupon_ids: tuple[str, ...] = (), buyer_message: str = "",
                 tracking_no: str | None = None) -> OrderDetails:
    """An order snapshot; amounts default to the sum of the lines."""
    return OrderDetails(shop_id=shop_id, created_at=created_at, buyer=buyer, lines=tuple(lines),
                        amounts=amounts or amounts_for(lines), address=address, paid_at=paid_at,
                        coupon_ids=coupon_ids, buyer_message=buyer_message, client=client,
                        tracking_no=tracking_no)


def make_refund(*, order_id: str = DEFAULT_ORDER_ID, requested_at: datetime = BASE_TIME,
                amount_fen: int = 19_900, reason: RefundReason = RefundReason.NO_REASON) -> Refund:
    """A refund claim for ``amount_fen`` fen, requested at ``requested_at``."""
    return Refund(refund_id=f"RF{order_id}", reason=reason, amount_fen=amount_fen,
                  requested_at=requested_at, reason_text="七天无理由退货")


def make_event(*, order_id: str = DEFAULT_ORDER_ID, channel: Channel = Channel.SITE,
               kind: EventKind = EventKind.ORDER, status: OrderStatus | None = None,
               event_time: datetime = BASE_TIME, received_at: datetime | None = None,
               event_version: int | None = None, channel_status: str | None = None,
               details: OrderDetails | None = None, refund: Refund | None = None,
               raw: Mapping[str, Any] | None = None, shop_id: str = "shop-001",
               created_at: datetime | None = None, buyer: Party = DEFAULT_BUYER,
               lines: Sequence[OrderLine] = DEFAULT_LINES, client: ClientInfo | None = None,
               address: Address | None = DEFAULT_ADDRESS, tracking_no: str | None = None) -> OrderEvent:
    """One valid event; every default can be overridden.

    Defaults: an ORDER document with status PAID (REFUND_REQUESTED for an after-sale
    document) at ``event_time``; ``received_at`` two seconds later; ``event_version``
    computed as the adapters do (``normalize.event_version``); ``channel_status`` is the
    status value. An ORDER event gets a snapshot built from the detail keywords
    (``created_at`` defaults to ``event_time``; ``paid_at`` is 30 s after creation unless
    the status is CREATED); an AFTER_SALE event gets no snapshot and a refund of the
    lines' paid amount. Pass ``details`` to replace the snapshot wholesale.
    """
    if status is None:
        status = OrderStatus.PAID if kind is EventKind.ORDER else OrderStatus.REFUND_REQUESTED
    if details is None and kind is EventKind.ORDER:
        created = created_at or event_time
        paid_at = None if status is OrderStatus.CREATED else created + timedelta(seconds=30)
        details = make_details(shop_id=shop_id, created_at=created, buyer=buyer, lines=lines,
                               address=address, paid_at=paid_at, client=client, tracking_no=tracking_no)
    if refund is None and kind is EventKind.AFTER_SALE:
        refund = make_refund(order_id=order_id, requested_at=event_time,
                             amount_fen=amounts_for(lines).paid_fen)
    return OrderEvent(
        key=OrderKey(channel, order_id),
        event_version=event_version if event_version is not None else version_of(event_time, kind=kind,
                                                                                   status=status),
        event_time=event_time,
        received_at=received_at or event_time + RECEIVE_DELAY,
        kind=kind,
        status=status,
        channel_status=channel_status if channel_status is not None else status.value,
        details=details,
        refund=refund,
        raw=dict(raw or {}),
    )


def follow_up(previous: OrderEvent, *, status: OrderStatus, after: timedelta = timedelta(hours=4),
              kind: EventKind | None = None, details: OrderDetails | None = None,
              refund: Refund | None = None) -> OrderEvent:
    """The next event of the same order, ``after`` later.

    ``kind`` defaults to AFTER_SALE for refund statuses and ORDER otherwise. An ORDER
    follow-up carries ``details`` or the previous snapshot (with a tracking number once
    shipped); an AFTER_SALE one carries ``refund`` or a refund of the paid amount.
    """
    if kind is None:
        kind = EventKind.AFTER_SALE if status in AFTER_SALE_STATUSES else EventKind.ORDER
    at = previous.event_time + after
    if kind is EventKind.ORDER and details is None:
        details = previous.details or make_details(created_at=previous.event_time)
        if status is OrderStatus.SHIPPED and details.tracking_no is None:
            details = replace(details, tracking_no=f"SF{previous.key.channel_order_id}")
    if kind is EventKind.AFTER_SALE and refund is None:
        paid = previous.details.amounts.paid_fen if previous.details else 19_900
        refund = previous.refund or make_refund(order_id=previous.key.channel_order_id, requested_at=at,
                                                amount_fen=paid)
    return OrderEvent(key=previous.key, event_version=version_of(at, kind=kind, status=status),
                      event_time=at, received_at=at + RECEIVE_DELAY, kind=kind, status=status,
                      channel_status=status.value,
                      details=details if kind is EventKind.ORDER else None, refund=refund)


class EventFactory:
    """:func:`make_event` with a fresh order id per call (``SO000001``, ``SO000002`` …).

    Ids are deterministic within one factory, so each test gets a reproducible sequence.
    """

    def __init__(self, *, prefix: str = "SO") -> None:
        self._prefix = prefix
        self._count = 0

    def new_order_id(self) -> str:
        """The next unused order id of this factory."""
        self._count += 1
        return f"{self._prefix}{self._count:06d}"

    def __call__(self, **overrides: Any) -> OrderEvent:
        """``make_event(**overrides)`` with ``order_id`` defaulting to a fresh id."""
        overrides.setdefault("order_id", self.new_order_id())
        return make_event(**overrides)

    def lifecycle(self, statuses: Sequence[OrderStatus] = (OrderStatus.PAID, OrderStatus.SHIPPED,
                                                           OrderStatus.DELIVERED, OrderStatus.COMPLETED),
                  *, step: timedelta = timedelta(hours=6), **overrides: Any) -> list[OrderEvent]:
        """All events of one new order walking through ``statuses`` ``step`` apart."""
        first = self(status=statuses[0], **overrides)
        events = [first]
        for status in statuses[1:]:
            events.append(follow_up(events[-1], status=status, after=step))
        return events


# --------------------------------------------------------------------------- strategies

#: Text without surrogates or NUL (PostgreSQL text and JSONB refuse NUL).
safe_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)

#: Identifiers as channels send them.
ids = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-_", min_size=1, max_size=16)

fen_amounts = st.integers(min_value=0, max_value=10_000_000)

#: Any JSON value, as found in ``OrderEvent.raw`` (floats bounded so that PostgreSQL's
#: decimal JSONB numbers read back as the same float).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False) | safe_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(safe_text, children, max_size=3),
    max_leaves=8,
)


def utc_times(*, start: datetime = datetime(2023, 1, 1, tzinfo=UTC),
              end: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> st.SearchStrategy[datetime]:
    """Tz-aware datetimes in ``[start, end]`` with microseconds, in UTC or Beijing offset
    (the same instant either way; the domain normalises to UTC)."""
    naive = st.datetimes(min_value=start.replace(tzinfo=None), max_value=end.replace(tzinfo=None))
    offsets = st.sampled_from([UTC, timezone(timedelta(hours=8))])
    return st.builds(lambda n, tz: n.replace(tzinfo=UTC).astimezone(tz), naive, offsets)


_phones = st.builds(Phone, hash=ids, prefix=st.none() | st.text("0123456789", min_size=3, max_size=7),
                    masked=st.none() | safe_text)
_parties = st.builds(Party, account_id=ids, phone=st.none() | _phones, id_card_hash=st.none() | ids,
                     member_level=st.none() | st.integers(0, 9), registered_at=st.none() | utc_times())
_addresses = st.builds(Address, province=safe_text, city=safe_text, district=safe_text, detail=safe_text,
                       receiver_name_hash=st.none() | ids)
_lines = st.builds(OrderLine, sku_id=ids, qty=st.integers(1, 99), unit_price_fen=fen_amounts, title=safe_text,
                   list_price_fen=st.none() | fen_amounts)
_amounts = st.builds(Amounts, goods_fen=fen_amounts, paid_fen=fen_amounts, shipping_fen=fen_amounts,
                     discount_fen=fen_amounts, coupon_fen=fen_amounts)
_clients = st.builds(ClientInfo, device_id=st.none() | ids, ip=st.none() | st.ip_addresses().map(str),
                     wifi_hash=st.none() | ids, user_agent=st.none() | safe_text)
_refunds = st.builds(Refund, refund_id=ids, reason=st.sampled_from(RefundReason), amount_fen=fen_amounts,
                     requested_at=utc_times(), reason_text=safe_text, sku_id=st.none() | ids)
_details = st.builds(OrderDetails, shop_id=ids, created_at=utc_times(), buyer=_parties,
                     lines=st.lists(_lines, min_size=1, max_size=3).map(tuple), amounts=_amounts,
                     address=st.none() | _addresses, paid_at=st.none() | utc_times(),
                     coupon_ids=st.lists(ids, max_size=2).map(tuple), buyer_message=safe_text,
                     client=st.none() | _clients, tracking_no=st.none() | ids)


@st.composite
def order_events(draw: st.DrawFn) -> OrderEvent:
    """Arbitrary valid events: any channel, kind and status, every optional field either
    empty or filled, datetimes with microseconds, arbitrary JSON in ``raw``."""
    kind = draw(st.sampled_from(EventKind))
    details = draw(_details) if kind is EventKind.ORDER else draw(st.none() | _details)
    return OrderEvent(
        key=OrderKey(draw(st.sampled_from(Channel)), draw(ids)),
        event_version=draw(st.integers(min_value=0, max_value=2**62)),
        event_time=draw(utc_times()),
        received_at=draw(utc_times()),
        kind=kind,
        status=draw(st.sampled_from(OrderStatus)),
        channel_status=draw(safe_text),
        details=details,
        refund=draw(st.none() | _refunds),
        raw=draw(st.dictionaries(safe_text, json_values, max_size=3)),
    )


#: Realistic status paths; each is a sequence of (kind, status). Prefixes are drawn too.
_O, _A = EventKind.ORDER, EventKind.AFTER_SALE
_S = OrderStatus
LIFECYCLE_PATHS: tuple[tuple[tuple[EventKind, OrderStatus], ...], ...] = (
    ((_O, _S.CREATED), (_O, _S.PAID), (_O, _S.SHIPPED), (_O, _S.DELIVERED), (_O, _S.COMPLETED)),
    ((_O, _S.AWAITING_GROUP), (_O, _S.PAID), (_O, _S.SHIPPED), (_O, _S.DELIVERED)),
    ((_O, _S.CREATED), (_O, _S.CANCELLED)),
    ((_O, _S.PAID), (_A, _S.REFUND_REQUESTED), (_A, _S.REFUNDED), (_O, _S.CLOSED)),
    ((_O, _S.PAID), (_O, _S.SHIPPED), (_A, _S.REFUND_REQUESTED), (_A, _S.REFUND_REJECTED),
     (_O, _S.COMPLETED)),
)


@st.composite
def _order_history(draw: st.DrawFn, *, channel: Channel, order_id: str, shared: Sequence[Party],
                   devices: Sequence[str], start: datetime) -> list[OrderEvent]:
    path = draw(st.sampled_from(LIFECYCLE_PATHS))
    path = path[:draw(st.integers(1, len(path)))]
    created = start + timedelta(milliseconds=draw(st.integers(0, 3 * 86_400_000)))
    buyer = draw(st.sampled_from(shared))
    lines = tuple(draw(st.lists(st.builds(OrderLine, sku_id=st.sampled_from(["SKU-1", "SKU-2", "SKU-3"]),
                                          qty=st.integers(1, 3), unit_price_fen=st.integers(100, 50_000)),
                                min_size=1, max_size=2)))
    client = ClientInfo(device_id=draw(st.sampled_from(devices)), ip=f"10.0.0.{draw(st.integers(1, 4))}")
    details = make_details(shop_id=f"shop-{channel.value}", created_at=created, buyer=buyer, lines=lines,
                           client=client, paid_at=created + timedelta(seconds=20))
    # Only after-sale documents when the order document is lost (or not arrived yet).
    with_order_docs = draw(st.integers(0, 3)) > 0 or all(kind is _O for kind, _ in path)
    events: list[OrderEvent] = []
    claim: Refund | None = None  # one refund claim, made at the request, carried by later documents
    at = created
    for i, (kind, status) in enumerate(path):
        if i:
            at += timedelta(milliseconds=draw(st.sampled_from([0, 1, 1_000, 3_600_000, 86_400_000])))
        if kind is _O and not with_order_docs:
            continue
        if status is _S.SHIPPED:
            details = replace(details, tracking_no=f"SF{order_id}")
        if kind is _A and claim is None:
            claim = make_refund(order_id=order_id, requested_at=at, amount_fen=details.amounts.paid_fen)
        refund = claim if kind is _A else None
        events.append(OrderEvent(
            key=OrderKey(channel, order_id), event_version=version_of(at, kind=kind, status=status),
            event_time=at, received_at=at + timedelta(seconds=draw(st.integers(0, 600))),
            kind=kind, status=status, channel_status=status.value,
            details=details if kind is _O else None, refund=refund))
    return events


@st.composite
def event_streams(draw: st.DrawFn, *, max_orders: int = 6, conflicts: bool = False,
                  start: datetime = BASE_TIME) -> list[OrderEvent]:
    """Events of up to ``max_orders`` orders, in a drawn arrival order.

    Collisions by construction: order ids repeat across channels (different keys),
    buyers, devices and IPs are shared between orders, two events of one order may
    share a millisecond, some events are re-sent later (same content, later
    ``received_at``, different ``raw``) and arrival is shuffled, so older versions
    arrive after newer ones. With ``conflicts=True`` some events are followed by a
    different document claiming the same key and version (their ``channel_status``
    differs); then the final state depends on which arrives first, so only use it for
    properties that do not permute arrival.
    """
    keys = draw(st.lists(st.tuples(st.sampled_from(Channel), st.sampled_from(["1001", "1002", "1003", "2001"])),
                         min_size=1, max_size=max_orders, unique=True))
    buyers = [replace(DEFAULT_BUYER, account_id=f"buyer-{i}", phone=Phone(hash=f"ph-{i % 2}")) for i in range(3)]
    devices = ["dev-a", "dev-b"]
    events: list[OrderEvent] = []
    for channel, order_id in keys:
        events.extend(draw(_order_history(channel=channel, order_id=order_id, shared=buyers, devices=devices,
                                          start=start)))
    resent = draw(st.lists(st.sampled_from(events), max_size=4)) if events else []
    for n, e in enumerate(resent):
        events.append(replace(e, received_at=e.received_at + timedelta(minutes=5 + n), raw={"resend": n + 1}))
    if conflicts and events:
        for e in draw(st.lists(st.sampled_from(events), max_size=2)):
            events.append(replace(e, channel_status=f"{e.channel_status}-amended",
                                  received_at=e.received_at + timedelta(hours=1)))
    return list(draw(st.permutations(events)))


@st.composite
def batches(draw: st.DrawFn, events: Sequence[OrderEvent]) -> list[list[OrderEvent]]:
    """``events`` cut into consecutive non-empty batches (order preserved)."""
    if not events:
        return []
    cuts = sorted(draw(st.sets(st.integers(1, max(len(events) - 1, 1)), max_size=4)))
    bounds = [0, *(c for c in cuts if c < len(events)), len(events)]
    return [list(events[a:b]) for a, b in pairwise(bounds) if b > a]


# -- domain orders (the feature engines' input) -------------------------------------------------------------


def at(**delta: float) -> datetime:
    """``BASE_TIME`` plus a timedelta, e.g. ``at(minutes=5)``."""
    return BASE_TIME + timedelta(**delta)


def make_order(order_id: str = "o1", *, created_at: datetime = BASE_TIME, channel: Channel = Channel.SITE,
               account: str | None = "u1", device: str | None = "d1", ip: str | None = None,
               ip_prefix: str | None = None,
               wifi: str | None = None, phone: str | None = None, id_card: str | None = None,
               address: tuple[str, str, str, str] | None = ("浙江省", "杭州市", "西湖区", "文三路1号"),
               lines: Sequence[tuple[str, int, int]] = (("sku1", 1, 1990),), coupon_fen: int = 0,
               coupon_ids: tuple[str, ...] = (), registered_at: datetime | None = None,
               shop: str = "shop1", version: int = 1, status: OrderStatus = OrderStatus.PAID) -> Order:
    """An order with the given entity values; ``lines`` are ``(sku, qty, unit_price_fen)``."""
    order_lines = tuple(OrderLine(sku, qty, price) for sku, qty, price in lines)
    goods = sum(line.qty * line.unit_price_fen for line in order_lines)
    client = (ClientInfo(device_id=device, ip=ip, wifi_hash=wifi, ip_prefix=ip_prefix)
              if device or ip or wifi or ip_prefix else None)
    details = OrderDetails(
        shop_id=shop, created_at=created_at,
        buyer=Party(account_id=account or "", phone=Phone(phone) if phone else None, id_card_hash=id_card,
                    registered_at=registered_at),
        lines=order_lines,
        amounts=Amounts(goods_fen=goods, paid_fen=goods - coupon_fen, coupon_fen=coupon_fen),
        address=Address(*address) if address is not None else None,
        coupon_ids=coupon_ids, client=client)
    return Order(key=OrderKey(channel, order_id), status=status, details=details, event_version=version,
                 updated_at=created_at, timeline=(StatusChange(status, created_at, version, status.value),))


def delivered(order: Order, *, when: datetime, version: int | None = None) -> Order:
    """A newer version of ``order`` in which the parcel was delivered at ``when``."""
    v = version if version is not None else order.event_version + 1
    step = StatusChange(OrderStatus.DELIVERED, when, v, "delivered")
    return replace(order, status=OrderStatus.DELIVERED, event_version=v, updated_at=when,
                   timeline=(*order.timeline, step))


def closed_unpaid(order: Order, *, when: datetime, status: OrderStatus = OrderStatus.CLOSED,
                  version: int | None = None) -> Order:
    """A newer version of ``order`` (created, never paid) closed at ``when``: the payment timed out or the buyer
    cancelled."""
    v = version if version is not None else order.event_version + 1
    step = StatusChange(status, when, v, status.value)
    return replace(order, status=status, event_version=v, updated_at=when, timeline=(*order.timeline, step))


def refunded(order: Order, *, when: datetime, reason: RefundReason = RefundReason.DAMAGED,
             refund_id: str = "r1", amount_fen: int = 1000, sku: str | None = None,
             version: int | None = None) -> Order:
    """A newer version of ``order`` carrying a refund claim made at ``when``."""
    v = version if version is not None else order.event_version + 1
    step = StatusChange(OrderStatus.REFUND_REQUESTED, when, v, "refund")
    refund = Refund(refund_id=refund_id, reason=reason, amount_fen=amount_fen, requested_at=when, sku_id=sku)
    return replace(order, status=OrderStatus.REFUND_REQUESTED, event_version=v, updated_at=when,
                   timeline=(*order.timeline, step), refund=refund)


def make_label(order: Order, *, when: datetime, verdict: Verdict = Verdict.CONFIRMED_FRAUD,
               reviewer: str = "rev1") -> Label:
    """A reviewer's verdict on ``order`` at ``when``."""
    return Label(key=order.key, verdict=verdict, labeled_at=when, reviewer_id=reviewer)


def us(when: datetime) -> int:
    """Event time in microseconds (shorthand for tests)."""
    return to_us(when)


class OrderFactory:
    """``factory(**overrides)`` builds an order with :func:`make_order`, a fresh order id per call."""

    def __init__(self, *, prefix: str = "o") -> None:
        self._prefix = prefix
        self._next = 0

    def __call__(self, **overrides: Any) -> Order:
        self._next += 1
        return make_order(f"{self._prefix}{self._next}", **overrides)


@dataclass
class FixedClock:
    """A clock that only moves when told to; for tests and deterministic replays.

    >>> c = FixedClock(datetime(2024, 1, 1, tzinfo=UTC))
    >>> c.advance(seconds=90).isoformat()
    '2024-01-01T00:01:30+00:00'
    """

    current: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        if self.current.tzinfo is None:
            raise ValueError("FixedClock needs a tz-aware datetime")

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)`` and return the new time."""
        self.current = self.current + timedelta(**delta)
        return self.current


def free_port() -> int:
    """A local TCP port nothing listens on now (taken from the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stored(kind: str, value: str) -> str:
    """The stored (keyed) form of a clear phone, device id, IP or address under the default (development) key:
    what an order that came through ingest carries, and what allow and deny lists name."""
    from orderguard.ingest.normalize import PiiHasher
    from orderguard.ingest.protect import stored_key
    from orderguard.settings import PiiSettings

    return stored_key(kind, value, PiiHasher(PiiSettings().hash_key.get_secret_value().encode()))


def api_key(database_url: str, *roles: str, name: str = "tests") -> str:
    """A new API key holding ``roles`` (default ``admin``) in the order log at ``database_url``, as
    ``orderguard keys create`` makes it."""
    from orderguard.access import Directory, parse_roles
    from orderguard.ingest.orderlog import OrderLog

    with OrderLog.open(database_url) as log:
        _, secret = Directory(log.engine).create_key(name, parse_roles(roles or ("admin",)),
                                                     now=datetime.now(UTC))
    return secret


#: The password every test user gets (long enough for ``orderguard.access.MIN_PASSWORD``).
TEST_PASSWORD = "correct horse battery staple"


def user(database_url: str, name: str, *roles: str, password: str = TEST_PASSWORD) -> str:
    """A new user ``name`` holding ``roles`` (default ``reviewer``), as ``orderguard users add`` makes them;
    returns the name."""
    from orderguard.access import Directory, parse_roles
    from orderguard.ingest.orderlog import OrderLog

    with OrderLog.open(database_url) as log:
        Directory(log.engine).add_user(name, password, parse_roles(roles or ("reviewer",)), now=datetime.now(UTC))
    return name


def form_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = TEST_PASSWORD, *, next_url: str = "/") -> Any:
    """Sign ``client`` in as a browser does (load the form, post it with its token); returns the response."""
    page = client.get("/signin", params={"next": next_url})
    return client.post("/signin", data={"username": name, "password": password, "csrf_token": form_token(page.text),
                                        "next": next_url}, follow_redirects=False)


def api_client(settings: Settings, *, roles: Sequence[str] = ("admin",), raise_server_exceptions: bool = True,
               **app_options: Any) -> TestClient:
    """A ``TestClient`` of ``create_app(settings, **app_options)`` that sends an API key holding ``roles``
    (made in the settings' order log before the app starts, so the app's key ring holds it)."""
    from fastapi.testclient import TestClient

    from serving.app import create_app

    key = api_key(settings.database_url, *roles)
    return TestClient(create_app(settings, **app_options), raise_server_exceptions=raise_server_exceptions,
                      headers={"Authorization": f"Bearer {key}"})
