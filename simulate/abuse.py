"""Abuse patterns: each generator plays one ring, burst or episode and labels its orders.

Every generator has the signature ``(world, rng, *, group_id, cap) -> list[SimOrder]``:
it returns the orders of one group, all labelled with its pattern and ``group_id``;
``cap`` is the order budget the pattern has left, used as a size hint (a group is never
smaller than the pattern's natural minimum). What the abuser shares -- handset, WiFi,
address, id card, phone batch -- is what detection can key on; everything else is drawn
like an honest buyer's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Protocol, TypedDict, Unpack

from orderguard.schema import Channel, RefundReason
from simulate import geo, identity, lifecycle
from simulate.catalog import CHANNEL_MIX, NEW_USER_COUPON, SKUS, STORE_COUPONS, Coupon, Sku
from simulate.lifecycle import Payment, RefundPlan, RefundStage, Script
from simulate.orders import SimOrder
from simulate.period import Day
from simulate.plain import PlainAddress, PlainClient
from simulate.population import Account, Home, Person
from simulate.rand import Weighted, chance, uniform_delay
from simulate.truth import Pattern
from simulate.world import World, make_order


class Generator(Protocol):
    """Plays one group of a pattern; ``cap`` is the pattern's order budget left."""

    def __call__(self, world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]: ...


_SECOND = timedelta(seconds=1)
_TREATS = ("PH-TR-CHK-500", "PH-TR-SAL-300", "PH-TR-QUAIL-20", "PH-CF-STICK-50", "PH-TR-JERKY-400")
_BULK = ("PH-LT-TOFU-8", "PH-LT-TOFU-4", "PH-CF-FD-5", "PH-CF-FD-15", "PH-CF-CAN-24", "PH-DF-ADULT-10")
_BIG_TICKET = ("PH-FT-W1", "PH-FT-WL", "PH-FD-AUTO-4L", "PH-FD-CAM", "PH-LB-SMART", "PH-CF-FD-5",
               "PH-CR-AIR")
_LITTER_BOXES = ("PH-LB-CLOSED", "PH-LB-TOP", "PH-LB-SMART", "PH-LB-OPEN")
_GLITCH_SKUS = ("PH-CF-FD-5", "PH-LT-TOFU-8", "PH-FT-W1", "PH-CF-CAN-24", "PH-TR-GIFT-6", "PH-DF-ADULT-10",
                "PH-LB-CLOSED")
#: Cheap SKUs just above the new-user coupon's threshold, even at the promotion price.
_FARM_BAIT = ("PH-TR-CHK-500", "PH-CF-STICK-50", "PH-TR-QUAIL-20", "PH-LT-MIX-4")
_CLAIM_TEXT = MappingProxyType({
    RefundReason.DAMAGED: "收到时外壳碎裂，无法使用",
    RefundReason.NOT_RECEIVED: "物流显示已签收，但本人没有收到",
})


def _channel(rng: random.Random, weights: Sequence[tuple[Channel, float]]) -> Channel:
    return Weighted.of(weights).draw(rng)


class Traits(TypedDict, total=False):
    """Attributes a ring's members share (keywords of ``Population.person``)."""

    home: Home
    virtual_phone: bool
    wifi: str | None
    ip: str | None
    device: str | None
    phone: str | None
    user_agent: str | None
    name: str | None
    id_card: str | None
    has_wifi: bool | None


def _fresh_account(world: World, rng: random.Random, channel: Channel, *, first_order_at: datetime,
                   max_age: timedelta = timedelta(days=20), min_age: timedelta = timedelta(minutes=10),
                   **traits: Unpack[Traits]) -> Account:
    """A recently registered throwaway account; ``traits`` fix what the ring shares."""
    owner = world.population.person(id_card_share=0.05, **traits)
    registered = first_order_at - uniform_delay(rng, min_age, max_age)
    return world.population.account(owner, channel, registered_at=registered, member_level=0)


def _client(person: Person, *, ip: str | None, wifi: str | None, device: str | None = None) -> PlainClient:
    return PlainClient(device or person.device_id, ip, wifi, person.user_agent)


def _mobile_client(rng: random.Random, person: Person) -> PlainClient:
    return PlainClient(person.device_id, identity.mobile_ip(rng), None, person.user_agent)


def _span_days(world: World, day: Day, most: int) -> int:
    """Days an episode starting on ``day`` may last without leaving the period."""
    return max(1, min(most, len(world.days) - day.index))


def _time_in(world: World, rng: random.Random, day: Day, *, span_days: int) -> datetime:
    """A shopping-curve time on one of the ``span_days`` days starting at ``day``."""
    target = world.days[min(day.index + rng.randrange(span_days), len(world.days) - 1)]
    return world.clock.draw(rng, target)


def _clip(at: datetime, world: World) -> datetime:
    return min(at, world.config.end_at - _SECOND)


def bot_burst(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A script on one device (data-centre IP) fires 6-20 orders within minutes.

    It cycles through one to three fresh accounts and pays in seconds -- or, when it is
    only locking stock, mostly never pays.
    """
    day = world.pick_day(rng)
    channel = _channel(rng, ((Channel.SITE, 0.55), (Channel.WECHAT, 0.3), (Channel.DOUYIN, 0.15)))
    device, ip, ua = identity.device_id(rng), identity.cloud_ip(rng), identity.user_agent(rng)
    start = _clip(day.start + timedelta(seconds=rng.randrange(86_400 - 1_500)), world)
    accounts = [_fresh_account(world, rng, channel, first_order_at=start, device=device, ip=ip, user_agent=ua,
                               virtual_phone=chance(rng, 0.5), has_wifi=False)
                for _ in range(rng.randint(1, 3))]
    homes = [world.population.home() for _ in range(rng.randint(1, 2))]
    sku = world.baskets.one(rng)
    locking = chance(rng, 0.4)
    orders = []
    at = start
    for index in range(max(6, min(rng.randint(8, 20), cap))):
        account, home = accounts[index % len(accounts)], homes[index % len(homes)]
        script = (Script(payment=Payment.UNPAID_CLOSED) if locking and chance(rng, 0.8)
                  else Script(pay_within=uniform_delay(rng, timedelta(seconds=3), timedelta(seconds=20))))
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(),
            basket=[(sku, rng.randint(1, sku.max_qty))], address=home.address(account.person.name),
            client=_client(account.person, ip=ip, wifi=None, device=device), transit_days=home.city.transit_days,
            coupon=NEW_USER_COUPON if index < len(accounts) else None, script=script,
            pattern=Pattern.BOT_BURST, group_id=group_id))
        at = _clip(at + uniform_delay(rng, timedelta(seconds=4), timedelta(seconds=50)), world)
    return orders


def _ring(world: World, rng: random.Random, *, group_id: str, cap: int, pattern: Pattern, channel: Channel,
          members: int, span_days: int, day: Day, person_kwargs: Callable[[], Traits],
          client: Callable[[Person], PlainClient], address: Callable[[Person, int], PlainAddress],
          basket: Callable[[], list[tuple[Sku, int]]], coupon_first: Coupon | None,
          script: Callable[[], Script | None] = lambda: None,
          working_hours: bool = False) -> list[SimOrder]:
    """Accounts that share something, each placing one or two orders over ``span_days``.

    A ring has at least three members whatever the budget left: two accounts sharing a
    device or an address is everyday life (a couple), three is a ring.
    """
    orders: list[SimOrder] = []
    for member in range(members):
        if member >= 3 and len(orders) >= cap:
            break
        times = sorted(
            (world.clock.working_hours(rng, world.days[min(day.index + rng.randrange(span_days),
                                                          len(world.days) - 1)])
             if working_hours else _time_in(world, rng, day, span_days=span_days))
            for _ in range(1 if chance(rng, 0.6) else 2))
        account = _fresh_account(world, rng, channel, first_order_at=times[0], **person_kwargs())
        for index, at in enumerate(times):
            delivery = address(account.person, index)
            orders.append(make_order(
                world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=basket(),
                address=delivery, client=client(account.person),
                transit_days=geo.city_of(delivery.province, delivery.city).transit_days,
                coupon=coupon_first if index == 0 else None, script=script(), pattern=pattern,
                group_id=group_id))
    return orders


def _small_basket(rng: random.Random, skus: Sequence[str], *, qty: tuple[int, int]) -> \
        Callable[[], list[tuple[Sku, int]]]:
    def draw() -> list[tuple[Sku, int]]:
        sku = SKUS[rng.choice(skus)]
        return [(sku, min(sku.max_qty, rng.randint(*qty)))]
    return draw


def device_ring(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """4-8 fresh accounts on one handset, each redeeming a new-user coupon over days."""
    day = world.pick_day(rng, lead_days=3)
    device, ua = identity.device_id(rng), identity.user_agent(rng)
    city = geo.city_picker().draw(rng)
    channel = _channel(rng, ((Channel.SITE, 0.35), (Channel.WECHAT, 0.3), (Channel.DOUYIN, 0.2),
                             (Channel.TMALL, 0.15)))
    return _ring(
        world, rng, group_id=group_id, cap=cap, pattern=Pattern.DEVICE_RING, channel=channel,
        members=rng.randint(4, 8), span_days=_span_days(world, day, 10), day=day,
        person_kwargs=lambda: {"device": device, "user_agent": ua, "virtual_phone": chance(rng, 0.3),
                               "home": world.population.home(city=city), "has_wifi": False},
        client=lambda p: _mobile_client(rng, p), address=lambda p, _i: p.address(),
        basket=_small_basket(rng, _TREATS, qty=(1, 2)), coupon_first=NEW_USER_COUPON)


def wifi_ring(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """4-9 accounts with their own handsets behind one WiFi (a reseller's studio)."""
    day = world.pick_day(rng, lead_days=3)
    wifi, ip = identity.bssid(rng), identity.home_ip(rng)
    channel = _channel(rng, ((Channel.SITE, 0.45), (Channel.WECHAT, 0.35), (Channel.TMALL, 0.1),
                             (Channel.DOUYIN, 0.1)))
    return _ring(
        world, rng, group_id=group_id, cap=cap, pattern=Pattern.WIFI_RING, channel=channel,
        members=rng.randint(4, 9), span_days=_span_days(world, day, 10), day=day,
        person_kwargs=lambda: {"wifi": wifi, "ip": ip}, client=lambda p: _client(p, ip=ip, wifi=wifi),
        address=lambda p, _i: p.address(), basket=_small_basket(rng, _TREATS, qty=(2, 4)),
        coupon_first=NEW_USER_COUPON if chance(rng, 0.6) else None, working_hours=True)


def address_variants(rng: random.Random) -> tuple[str, ...]:
    """One flat written several ways (幢 / 栋 / dashes), as a ring's members type it.

    >>> v = address_variants(random.Random(2))
    >>> len(set(v)) > 1
    True
    """
    head = geo.street(rng) + geo.community(rng)
    b, u, r = rng.randint(1, 30), rng.randint(1, 4), f"{rng.randint(1, 30)}{rng.randint(1, 4):02d}"
    return (f"{head}{b}幢{u}单元{r}室", f"{head}{b}-{u}-{r}", f"{head}{b}栋{u}单元{r}", f"{head}{b}幢{u}单元{r}")


def address_ring(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """4-8 unrelated-looking accounts all shipping bulk goods to one flat (a reseller)."""
    day = world.pick_day(rng, lead_days=5)
    city = geo.city_picker().draw(rng)
    district = rng.choice(city.districts)
    variants = address_variants(rng)
    channel = _channel(rng, CHANNEL_MIX)
    coupon = rng.choice(STORE_COUPONS)

    def deliver(_person: Person, _index: int) -> PlainAddress:
        return PlainAddress(city.province, city.city, district.name, rng.choice(variants),
                            identity.person_name(rng))

    return _ring(
        world, rng, group_id=group_id, cap=cap, pattern=Pattern.ADDRESS_RING, channel=channel,
        members=rng.randint(4, 8), span_days=_span_days(world, day, 20), day=day,
        person_kwargs=lambda: {"home": world.population.home(city=city)},
        client=lambda p: p.client(rng), address=deliver,
        basket=_small_basket(rng, _BULK, qty=(1, 3)), coupon_first=coupon)


def refund_abuse(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """4-6 accounts on one WiFi buy one litter box and, once logistics shows every parcel
    delivered, claim "damaged" or "not received" within 48 hours of each other."""
    day = world.pick_day(rng, lead_days=6)
    wifi, ip = identity.bssid(rng), identity.home_ip(rng)
    near = [c for c in geo.CITIES if c.transit_days == 1]
    city = rng.choice(near)
    channel = _channel(rng, ((Channel.SITE, 0.45), (Channel.WECHAT, 0.35), (Channel.TMALL, 0.2)))
    sku = SKUS[rng.choice(_LITTER_BOXES)]
    reason = RefundReason.DAMAGED if chance(rng, 0.6) else RefundReason.NOT_RECEIVED
    start = world.clock.draw(rng, day)
    bought: list[tuple[SimOrder, bool]] = []
    for _ in range(rng.randint(4, 6)):
        at = _clip(start + uniform_delay(rng, timedelta(0), timedelta(hours=20)), world)
        account = _fresh_account(world, rng, channel, first_order_at=at, max_age=timedelta(days=90),
                                 wifi=wifi, ip=ip, home=world.population.home(city=city))
        approve = chance(rng, 0.7)
        claim = RefundPlan(reason, RefundStage.AFTER_DELIVERY, approve, _CLAIM_TEXT[reason])
        order = make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=[(sku, 1)],
            address=account.person.address(), client=_client(account.person, ip=ip, wifi=wifi),
            transit_days=city.transit_days, script=Script(refund=claim), pattern=Pattern.REFUND_ABUSE,
            group_id=group_id)
        bought.append((order, approve))
    delivered = [o.timeline.delivered for o, _ in bought if o.timeline.delivered is not None]
    window = max(delivered) + uniform_delay(rng, timedelta(hours=1), timedelta(hours=8))
    return [replace(order, timeline=lifecycle.with_claim(
        order.timeline, window + uniform_delay(rng, timedelta(0), timedelta(hours=44)), rng=rng,
        approve=approve)) for order, approve in bought]


def virtual_phone(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """3-6 fresh accounts on one batch of virtual-operator numbers buying big-ticket items;
    a third of them then claim a refund."""
    day = world.pick_day(rng, lead_days=4)
    batch = rng.choice(identity.VIRTUAL_SEGMENTS) + str(rng.randrange(10))
    channel = _channel(rng, CHANNEL_MIX)

    def fate() -> Script | None:
        if not chance(rng, 0.35):
            return None
        reason = rng.choice((RefundReason.NO_REASON, RefundReason.NOT_RECEIVED))
        return Script(refund=RefundPlan(reason, RefundStage.AFTER_DELIVERY, chance(rng, 0.7),
                                        _CLAIM_TEXT.get(reason, "七天无理由退货")))

    return _ring(
        world, rng, group_id=group_id, cap=cap, pattern=Pattern.VIRTUAL_PHONE, channel=channel,
        members=rng.randint(3, 6), span_days=_span_days(world, day, 3), day=day,
        person_kwargs=lambda: {"phone": world.population.phone(prefix=batch), "has_wifi": False},
        client=lambda p: _mobile_client(rng, p), address=lambda p, _i: p.address(),
        basket=_small_basket(rng, _BIG_TICKET, qty=(1, 1)),
        coupon_first=NEW_USER_COUPON if chance(rng, 0.5) else None, script=fate)


def pickup_address(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """3-7 fresh accounts shipping to pick-up points of one district; some claim the
    parcel never reached them."""
    day = world.pick_day(rng, lead_days=4)
    city = geo.city_picker().draw(rng)
    district = rng.choice(city.districts)
    station = geo.pickup_detail(rng)
    channel = _channel(rng, CHANNEL_MIX)

    def deliver(person: Person, _index: int) -> PlainAddress:
        detail = station if chance(rng, 0.6) else geo.pickup_detail(rng)
        return PlainAddress(city.province, city.city, district.name, detail, person.name)

    def fate() -> Script | None:
        if not chance(rng, 0.25):
            return None
        return Script(refund=RefundPlan(RefundReason.NOT_RECEIVED, RefundStage.AFTER_DELIVERY,
                                        chance(rng, 0.6), "驿站说没有这个包裹"))

    return _ring(
        world, rng, group_id=group_id, cap=cap, pattern=Pattern.PICKUP_ADDRESS, channel=channel,
        members=rng.randint(3, 7), span_days=_span_days(world, day, 5), day=day,
        person_kwargs=lambda: {"virtual_phone": chance(rng, 0.2)}, client=lambda p: p.client(rng),
        address=deliver, basket=lambda: world.baskets.draw(rng, promo=day.promo),
        coupon_first=NEW_USER_COUPON if chance(rng, 0.6) else None, script=fate)


def scalper(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A scalper's 3-6 accounts grab the per-account limit of a limited edition within
    seconds of its release, shipping everything to one or two addresses."""
    drop = rng.choice(world.drops)
    ip, wifi = identity.home_ip(rng), identity.bssid(rng)
    homes = [world.population.home() for _ in range(rng.randint(1, 2))]
    orders = []
    for index in range(max(3, min(rng.randint(3, 6), cap))):
        channel = _channel(rng, ((Channel.TMALL, 0.4), (Channel.DOUYIN, 0.3), (Channel.SITE, 0.15),
                                 (Channel.JD, 0.15)))
        at = _clip(drop.at + uniform_delay(rng, _SECOND, timedelta(seconds=90)), world)
        home = homes[index % len(homes)]
        account = _fresh_account(world, rng, channel, first_order_at=at, max_age=timedelta(days=60),
                                 home=home, wifi=wifi, ip=ip)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(),
            basket=[(drop.sku, drop.sku.max_qty)], address=home.address(account.person.name),
            client=_client(account.person, ip=ip, wifi=wifi), transit_days=home.city.transit_days,
            script=Script(pay_within=uniform_delay(rng, timedelta(seconds=2), timedelta(seconds=15))),
            pattern=Pattern.SCALPER, group_id=group_id))
    return orders


def glitch_price(rng: random.Random, sku: Sku) -> int:
    """A mistyped price: 3-20 % of the usual one, in whole jiao.

    >>> from simulate.catalog import SKUS
    >>> glitch_price(random.Random(0), SKUS["PH-CF-FD-5"]) < SKUS["PH-CF-FD-5"].price_fen // 5
    True
    """
    return max(100, round(sku.price_fen * rng.uniform(0.03, 0.2) / 10) * 10)


def below_price(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A price glitch: for 20-90 minutes one SKU sells at a fraction of its price and
    bargain hunters -- old accounts and fresh ones -- pile in with large quantities; the
    shop cancels most of them before shipping."""
    day = world.pick_day(rng)
    channel = _channel(rng, CHANNEL_MIX)
    sku = SKUS[rng.choice(_GLITCH_SKUS)]
    unit = glitch_price(rng, sku)
    start = world.clock.draw(rng, day)
    duration = uniform_delay(rng, timedelta(minutes=20), timedelta(minutes=90))
    orders = []
    for _ in range(max(6, min(rng.randint(10, 30), cap))):
        at = _clip(start + uniform_delay(rng, timedelta(0), duration), world)
        old = world.population.returning(channel) if chance(rng, 0.5) else None
        account = old if old is not None and old.registered_at < at else _fresh_account(
            world, rng, channel, first_order_at=at, max_age=timedelta(days=400))
        script = (Script(refund=RefundPlan(RefundReason.OTHER, RefundStage.BEFORE_SHIPPING, True,
                                           "商家价格设置错误，协商退款"))
                  if chance(rng, 0.55) else None)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(),
            basket=[(sku, rng.randint(3, 10))], address=account.person.address(),
            client=account.person.client(rng), transit_days=account.person.home.city.transit_days,
            unit_prices={sku.sku_id: unit}, script=script, pattern=Pattern.BELOW_PRICE, group_id=group_id))
    return orders


def coupon_farming(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """5-12 accounts registered minutes apart, each placing one first order just above the
    new-user coupon's threshold, from one proxy subnet to one compound."""
    day = world.pick_day(rng)
    channel = _channel(rng, ((Channel.SITE, 0.3), (Channel.WECHAT, 0.25), (Channel.DOUYIN, 0.25),
                             (Channel.TMALL, 0.2)))
    subnet = identity.cloud_ip(rng).rsplit(".", 1)[0]
    ua = identity.user_agent(rng)
    city = geo.city_picker().draw(rng)
    district = rng.choice(city.districts)
    head = geo.street(rng) + geo.community(rng)
    at = world.clock.draw(rng, day)
    orders = []
    for _ in range(max(5, min(rng.randint(5, 12), cap))):
        at = _clip(at + uniform_delay(rng, timedelta(minutes=1), timedelta(minutes=8)), world)
        ip = f"{subnet}.{rng.randint(1, 254)}"
        home = Home(city, district, f"{head}{rng.randint(1, 30)}幢{rng.randint(1, 4)}单元"
                                    f"{rng.randint(1, 30)}{rng.randint(1, 4):02d}室")
        account = _fresh_account(world, rng, channel, first_order_at=at, min_age=timedelta(minutes=2),
                                 max_age=timedelta(minutes=40), home=home, ip=ip, user_agent=ua,
                                 has_wifi=False)
        sku = SKUS[rng.choice(_FARM_BAIT)]
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=[(sku, 1)],
            address=account.person.address(), client=_client(account.person, ip=ip, wifi=None),
            transit_days=city.transit_days, coupon=NEW_USER_COUPON, pattern=Pattern.COUPON_FARMING,
            group_id=group_id))
    return orders


def id_card_reuse(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """One real-name identity behind 4-7 accounts spread over several channels, each with
    its own phone and handset."""
    day = world.pick_day(rng, lead_days=5)
    span = _span_days(world, day, 14)
    city = geo.city_picker().draw(rng)
    card = identity.id_card(rng, adcode=rng.choice(city.districts).adcode)
    name = identity.person_name(rng)
    homes = [world.population.home(city=city) for _ in range(rng.randint(1, 2))]
    channels = rng.sample(list(Channel), k=min(6, rng.randint(3, 5)))
    orders: list[SimOrder] = []
    for index in range(rng.randint(4, 7)):
        if index >= 3 and len(orders) >= cap:
            break
        channel = channels[index % len(channels)]
        times = sorted(_time_in(world, rng, day, span_days=span) for _ in range(1 if chance(rng, 0.6) else 2))
        account = _fresh_account(world, rng, channel, first_order_at=times[0], max_age=timedelta(days=200),
                                 name=name, id_card=card, home=homes[index % len(homes)],
                                 virtual_phone=chance(rng, 0.4))
        for n, at in enumerate(times):
            sku = SKUS[rng.choice(_BIG_TICKET + _TREATS)]
            orders.append(make_order(
                world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=[(sku, 1)],
                address=account.person.address(), client=account.person.client(rng),
                transit_days=city.transit_days, coupon=NEW_USER_COUPON if n == 0 else None,
                pattern=Pattern.ID_CARD_REUSE, group_id=group_id))
    return orders


@dataclass(frozen=True, slots=True)
class PatternSpec:
    """A pattern's generator and its share of the abuse order budget."""

    pattern: Pattern
    generate: Generator
    share: float
    min_orders: int


ABUSE: tuple[PatternSpec, ...] = (
    PatternSpec(Pattern.BOT_BURST, bot_burst, 0.11, 6),
    PatternSpec(Pattern.DEVICE_RING, device_ring, 0.10, 4),
    PatternSpec(Pattern.WIFI_RING, wifi_ring, 0.09, 4),
    PatternSpec(Pattern.ADDRESS_RING, address_ring, 0.09, 4),
    PatternSpec(Pattern.REFUND_ABUSE, refund_abuse, 0.07, 4),
    PatternSpec(Pattern.VIRTUAL_PHONE, virtual_phone, 0.08, 3),
    PatternSpec(Pattern.PICKUP_ADDRESS, pickup_address, 0.08, 3),
    PatternSpec(Pattern.SCALPER, scalper, 0.07, 3),
    PatternSpec(Pattern.BELOW_PRICE, below_price, 0.10, 6),
    PatternSpec(Pattern.COUPON_FARMING, coupon_farming, 0.12, 5),
    PatternSpec(Pattern.ID_CARD_REUSE, id_card_reuse, 0.09, 4),
)
