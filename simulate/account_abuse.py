"""Abuse played by one account (or one identity) rather than a ring sharing a device or a network.

What these leave for detection is the account's own history: orders piling up within
minutes, returns within a week, "damaged" claims on delivered parcels, one cart again and
again, a device the account never used, a number from the far end of the country, a
buyer note pressing for shipping today. Same generator signature as ``simulate.abuse``.
"""

from __future__ import annotations

import random
from datetime import timedelta

from orderguard.schema import Channel, RefundReason
from simulate import geo, identity
from simulate.abuse import (
    _BIG_TICKET,
    _TREATS,
    PatternSpec,
    _channel,
    _clip,
    _fresh_account,
    _mobile_client,
    _span_days,
    _time_in,
)
from simulate.catalog import NEW_USER_COUPON, OUTLET_SHOP_ID, SKUS, Sku
from simulate.lifecycle import Payment, RefundPlan, RefundStage, Script
from simulate.orders import SimOrder
from simulate.plain import PlainAddress, PlainClient
from simulate.rand import chance, uniform_delay
from simulate.stock_holding import STOCK_HOLDING
from simulate.truth import Pattern
from simulate.world import World, make_order

#: Channels that send neither device nor WiFi: the account is all a burst leaves behind.
MARKETPLACES: tuple[tuple[Channel, float], ...] = ((Channel.TMALL, 0.4), (Channel.JD, 0.25),
                                                   (Channel.DOUYIN, 0.2), (Channel.KUAISHOU, 0.15))
#: Mobile number blocks whose home city is 2,000+ km from the Hangzhou warehouse (Xinjiang, Tibet,
#: Heilongjiang, Yunnan border), per libphonenumber's geocoder.
FAR_PREFIXES: tuple[str, ...] = ("1390000", "1389990", "1399916", "1398991", "1504699", "1352960", "1362997",
                                 "1508769", "1356512", "1357955")
#: Notes pressing for same-day shipping.
URGENT_NOTES: tuple[str, ...] = ("急用！今天务必发货", "加急，马上发", "今天发货，急用", "急需，今天发顺丰")
_SMALL = ("PH-TR-CHK-500", "PH-CF-STICK-50", "PH-TY-WAND", "PH-AC-SCOOP", "PH-TR-JERKY-400", "PH-LT-BENT-10")
_EXPENSIVE = ("PH-LB-SMART", "PH-LB-SMART-PRO", "PH-FD-CAM")
_RETURNABLE = ("PH-LS-HARNESS-M", "PH-LS-HARNESS-L", "PH-CR-BAG", "PH-FT-W1", "PH-LB-TOP", "PH-TY-TUNNEL",
               "PH-CF-GF-2")
_RETURN_TEXT = ((RefundReason.NO_REASON, "七天无理由退货"), (RefundReason.WRONG_ITEM, "尺码不对/与描述不符"),
                (RefundReason.OTHER, "不想要了"))


def _one(rng: random.Random, skus: tuple[str, ...]) -> Sku:
    return SKUS[rng.choice(skus)]


def account_burst(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A script on one marketplace account places 5-12 small orders within about eight minutes,
    mostly to lock stock it never pays for."""
    day = world.pick_day(rng)
    channel = _channel(rng, MARKETPLACES)
    start = world.clock.draw(rng, day)
    account = _fresh_account(world, rng, channel, first_order_at=start, max_age=timedelta(days=60))
    home = account.person.home
    locking = chance(rng, 0.6)
    orders: list[SimOrder] = []
    at = start
    for _ in range(max(5, min(rng.randint(5, 12), cap))):
        script = (Script(payment=Payment.UNPAID_CLOSED) if locking and chance(rng, 0.85)
                  else Script(pay_within=uniform_delay(rng, timedelta(seconds=5), timedelta(seconds=40))))
        sku = world.baskets.one(rng)
        orders.append(make_order(
            world, rng, channel=channel, created_at=_clip(at, world), buyer=account.buyer(),
            basket=[(sku, rng.randint(1, sku.max_qty))], address=account.person.address(),
            client=_mobile_client(rng, account.person), transit_days=home.city.transit_days, script=script,
            pattern=Pattern.ACCOUNT_BURST, group_id=group_id))
        at += uniform_delay(rng, timedelta(seconds=15), timedelta(seconds=90))
    return orders


def return_abuse(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """One account buys 4-7 items over five days and sends back nearly every one after delivery
    (no reason, "wrong size", "changed my mind"): it wears or uses, then returns."""
    day = world.pick_day(rng, lead_days=6)
    span = _span_days(world, day, 5)
    channel = _channel(rng, ((Channel.TMALL, 0.35), (Channel.JD, 0.25), (Channel.SITE, 0.2),
                             (Channel.DOUYIN, 0.2)))
    first = world.clock.draw(rng, day)
    account = _fresh_account(world, rng, channel, first_order_at=first, max_age=timedelta(days=300))
    home = account.person.home
    orders: list[SimOrder] = []
    times = sorted([first] + [_time_in(world, rng, day, span_days=span)
                              for _ in range(max(4, min(rng.randint(4, 7), cap)) - 1)])
    for at in times:
        reason, text = rng.choice(_RETURN_TEXT)
        returns = chance(rng, 0.9)
        script = Script(refund=RefundPlan(reason, RefundStage.AFTER_DELIVERY, chance(rng, 0.85), text)
                        if returns else None)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(),
            basket=[(_one(rng, _RETURNABLE), 1)], address=account.person.address(),
            client=account.person.client(rng), transit_days=home.city.transit_days, script=script,
            pattern=Pattern.RETURN_ABUSE, group_id=group_id))
    return orders


def damaged_claims(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """One account orders fragile items every few days and claims "damaged" on each parcel the
    carrier delivered intact, asking for partial compensation."""
    day = world.pick_day(rng, lead_days=4)
    span = _span_days(world, day, 21)
    channel = _channel(rng, ((Channel.SITE, 0.3), (Channel.TMALL, 0.3), (Channel.JD, 0.2), (Channel.WECHAT, 0.2)))
    first = world.clock.draw(rng, day)
    account = _fresh_account(world, rng, channel, first_order_at=first, max_age=timedelta(days=400))
    home = account.person.home
    count = max(2, min(rng.randint(2, 4), cap))
    times = sorted([first] + [_time_in(world, rng, day, span_days=span) for _ in range(count - 1)])
    orders: list[SimOrder] = []
    for at in times:
        sku = _one(rng, ("PH-LB-CLOSED", "PH-LB-TOP", "PH-FT-W1", "PH-FT-WL", "PH-CF-CAN-24"))
        claim = RefundPlan(RefundReason.DAMAGED, RefundStage.AFTER_DELIVERY, chance(rng, 0.75),
                           "外包装完好但里面的东西坏了", amount_fen=sku.price_fen * rng.randint(30, 100) // 100)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=[(sku, 1)],
            address=account.person.address(), client=account.person.client(rng),
            transit_days=home.city.transit_days, script=Script(refund=claim), pattern=Pattern.DAMAGED_CLAIMS,
            group_id=group_id))
    return orders


def id_card_shops(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A bought real-name identity places 5-8 orders within about two days in both storefronts of the
    own site (the main shop and the outlet), one account in each."""
    day = world.pick_day(rng, lead_days=3)
    span = _span_days(world, day, 2)
    city = geo.city_picker().draw(rng)
    card = identity.id_card(rng, adcode=rng.choice(city.districts).adcode)
    name = identity.person_name(rng)
    shops = ["", OUTLET_SHOP_ID]
    rng.shuffle(shops)
    first = world.clock.draw(rng, day)
    accounts = [_fresh_account(world, rng, Channel.SITE, first_order_at=first, max_age=timedelta(days=30),
                               name=name, id_card=card, home=world.population.home(city=city)) for _ in shops]
    orders: list[SimOrder] = []
    times = sorted([first] + [_time_in(world, rng, day, span_days=span)
                              for _ in range(max(5, min(rng.randint(5, 8), cap)) - 1)])
    for index, at in enumerate(times):
        which = index % len(shops) if index < len(shops) else rng.randrange(len(shops))
        account = accounts[which]
        orders.append(make_order(
            world, rng, channel=Channel.SITE, created_at=at, buyer=account.buyer(),
            basket=[(_one(rng, _BIG_TICKET + _TREATS), 1)], address=account.person.address(),
            client=account.person.client(rng), transit_days=city.transit_days,
            coupon=NEW_USER_COUPON if index < len(shops) else None, pattern=Pattern.ID_CARD_SHOPS,
            group_id=group_id, shop_id=shops[which]))
    return orders


def new_device_big_ticket(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """An account registered days ago builds a little history with one or two small orders on its
    handset, then a big-ticket order comes from a device it never used, to a new address (a farmed
    or taken-over account being cashed in)."""
    day = world.pick_day(rng, lead_days=4)
    span = _span_days(world, day, 4)
    first = world.clock.draw(rng, day)
    account = _fresh_account(world, rng, Channel.SITE, first_order_at=first, min_age=timedelta(days=1),
                             max_age=timedelta(days=20))
    person = account.person
    warmups = sorted([first] + [_time_in(world, rng, day, span_days=span)
                                for _ in range(rng.randint(0, 1))])
    orders = [make_order(world, rng, channel=Channel.SITE, created_at=at, buyer=account.buyer(),
                         basket=[(_one(rng, _SMALL), 1)], address=person.address(), client=person.client(rng),
                         transit_days=person.home.city.transit_days, pattern=Pattern.NEW_DEVICE_BIG_TICKET,
                         group_id=group_id)
              for at in warmups]
    at = _clip(warmups[-1] + uniform_delay(rng, timedelta(hours=6), timedelta(days=4)), world)
    drop = world.population.home()
    client = PlainClient(identity.device_id(rng), identity.cloud_ip(rng) if chance(rng, 0.5)
                         else identity.mobile_ip(rng), None, identity.user_agent(rng))
    orders.append(make_order(
        world, rng, channel=Channel.SITE, created_at=at, buyer=account.buyer(),
        basket=[(_one(rng, _EXPENSIVE), 1)], address=drop.address(identity.person_name(rng)), client=client,
        transit_days=drop.city.transit_days,
        script=Script(pay_within=uniform_delay(rng, timedelta(seconds=8), timedelta(seconds=60))),
        pattern=Pattern.NEW_DEVICE_BIG_TICKET, group_id=group_id))
    return orders


def far_warehouse(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """3-6 accounts registered hours ago on numbers from the far end of the country (the
    warehouse's farthest markets) place first orders to pick-up points of one city near it."""
    day = world.pick_day(rng, lead_days=2)
    span = _span_days(world, day, 2)
    near = [c for c in geo.CITIES if c.transit_days == 1]
    city = rng.choice(near)
    district = rng.choice(city.districts)
    block = rng.choice(FAR_PREFIXES)
    orders: list[SimOrder] = []
    for member in range(rng.randint(3, 6)):
        if member >= 3 and len(orders) >= cap:
            break
        at = _time_in(world, rng, day, span_days=span)
        account = _fresh_account(world, rng, Channel.SITE, first_order_at=at, max_age=timedelta(days=2),
                                 phone=world.population.phone(prefix=block))
        address = PlainAddress(city.province, city.city, district.name, geo.pickup_detail(rng), account.person.name)
        orders.append(make_order(
            world, rng, channel=Channel.SITE, created_at=at, buyer=account.buyer(),
            basket=[(_one(rng, _BIG_TICKET + _TREATS), 1)], address=address,
            client=_mobile_client(rng, account.person), transit_days=city.transit_days,
            coupon=NEW_USER_COUPON if chance(rng, 0.5) else None, pattern=Pattern.FAR_WAREHOUSE, group_id=group_id))
    return orders


def duplicate_orders(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """One account submits the same cart 3-6 times within ten minutes (testing stolen payment
    credentials, or holding stock), paying some of them."""
    day = world.pick_day(rng)
    channel = _channel(rng, ((Channel.SITE, 0.3), (Channel.TMALL, 0.25), (Channel.JD, 0.15),
                             (Channel.DOUYIN, 0.15), (Channel.WECHAT, 0.15)))
    at = world.clock.draw(rng, day)
    account = _fresh_account(world, rng, channel, first_order_at=at, max_age=timedelta(days=30))
    basket = world.baskets.draw(rng, promo=False)
    client = account.person.client(rng)
    orders: list[SimOrder] = []
    for _ in range(max(3, min(rng.randint(3, 6), cap))):
        script = (Script(payment=Payment.UNPAID_CLOSED) if chance(rng, 0.5)
                  else Script(pay_within=uniform_delay(rng, timedelta(seconds=5), timedelta(seconds=30))))
        orders.append(make_order(
            world, rng, channel=channel, created_at=_clip(at, world), buyer=account.buyer(), basket=basket,
            address=account.person.address(), client=client, transit_days=account.person.home.city.transit_days,
            script=script, pattern=Pattern.DUPLICATE_ORDERS, group_id=group_id))
        at += uniform_delay(rng, timedelta(seconds=20), timedelta(minutes=2))
    return orders


def urgent_rush(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """1-3 fresh accounts buy big tickets with notes pressing for same-day shipping, so the parcel
    is gone before the stolen payment is disputed; often on virtual numbers, to pick-up points."""
    day = world.pick_day(rng)
    channel = _channel(rng, ((Channel.SITE, 0.5), (Channel.WECHAT, 0.3), (Channel.TMALL, 0.2)))
    city = geo.city_picker().draw(rng)
    district = rng.choice(city.districts)
    start = world.clock.draw(rng, day)
    orders: list[SimOrder] = []
    for _ in range(rng.randint(1, 3)):
        at = _clip(start + uniform_delay(rng, timedelta(0), timedelta(hours=6)), world)
        account = _fresh_account(world, rng, channel, first_order_at=at, max_age=timedelta(days=3),
                                 virtual_phone=chance(rng, 0.5))
        detail = geo.pickup_detail(rng) if chance(rng, 0.6) else geo.home_detail(rng)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(),
            basket=[(_one(rng, _EXPENSIVE + _BIG_TICKET), 1)],
            address=PlainAddress(city.province, city.city, district.name, detail, account.person.name),
            client=_mobile_client(rng, account.person), transit_days=city.transit_days,
            script=Script(pay_within=uniform_delay(rng, timedelta(seconds=5), timedelta(seconds=40))),
            pattern=Pattern.URGENT_RUSH, group_id=group_id, message=rng.choice(URGENT_NOTES)))
    return orders


#: The account-level abuse patterns and their share of the abuse budget (weights beside ``abuse.ABUSE``).
ACCOUNT_ABUSE: tuple[PatternSpec, ...] = (
    PatternSpec(Pattern.ACCOUNT_BURST, account_burst, 0.05, 5),
    PatternSpec(Pattern.RETURN_ABUSE, return_abuse, 0.05, 4),
    PatternSpec(Pattern.DAMAGED_CLAIMS, damaged_claims, 0.04, 2),
    PatternSpec(Pattern.ID_CARD_SHOPS, id_card_shops, 0.04, 5),
    PatternSpec(Pattern.NEW_DEVICE_BIG_TICKET, new_device_big_ticket, 0.04, 2),
    PatternSpec(Pattern.FAR_WAREHOUSE, far_warehouse, 0.04, 3),
    PatternSpec(Pattern.DUPLICATE_ORDERS, duplicate_orders, 0.04, 3),
    PatternSpec(Pattern.URGENT_RUSH, urgent_rush, 0.03, 1),
    STOCK_HOLDING,
)
