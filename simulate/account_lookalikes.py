"""Honest buyers whose own history looks like the account-level abuse of ``simulate.account_abuse``.

* split cart: a few orders within minutes, to stack per-order discounts (like an account burst);
* size returner: two sizes of a harness, one sent back, every week or so (like return abuse);
* double submit: one cart submitted twice by mistake, the copy cancelled (like duplicate orders);
* far gifts: buyers on numbers from the far west and north-east sending gifts home (far from the
  warehouse; some are new members);
* birthday note: "今天发" before a birthday (like an urgent-note rush);
* device switch: a young account's bigger second order from a laptop after a first one on the phone.

Each generator returns one group; ``cap`` is the order budget left, a hint for size.
"""

from __future__ import annotations

import random
from datetime import timedelta

from orderguard.schema import Channel, RefundReason
from simulate import geo, identity
from simulate.account_abuse import FAR_PREFIXES
from simulate.catalog import CHANNEL_MIX, SKUS
from simulate.lifecycle import Payment, RefundPlan, RefundStage, Script
from simulate.orders import SimOrder
from simulate.plain import PlainClient
from simulate.population import account_age
from simulate.rand import Weighted, chance, uniform_delay
from simulate.truth import Pattern
from simulate.world import World, make_order

_SIZES = ("PH-LS-HARNESS-M", "PH-LS-HARNESS-L")
_BIRTHDAY_NOTES = ("明天宝贝生日，今天发货可以吗", "生日礼物，麻烦今天发", "后天过生日，急用，谢谢")
_GIFTS = ("PH-TR-GIFT-6", "PH-CR-BAG", "PH-FT-W1", "PH-CF-FD-15")
_UPGRADES = ("PH-FT-WL", "PH-FD-AUTO-4L", "PH-LB-SMART", "PH-FD-CAM", "PH-CF-FD-5")
_FAR_CITIES = tuple(c for c in geo.CITIES if c.province in ("新疆维吾尔自治区", "西藏自治区", "黑龙江省", "云南省"))


def split_cart(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A regular buyer places 2-4 orders within ten minutes, each just above a per-order discount."""
    pop = world.population
    day = world.pick_day(rng)
    channel = Weighted.of(CHANNEL_MIX).draw(rng)
    person = pop.person()
    at = world.clock.draw(rng, day)
    account = pop.account(person, channel, registered_at=at - account_age(rng, channel))
    client = person.client(rng)
    orders: list[SimOrder] = []
    for _ in range(rng.randint(2, 4)):
        orders.append(make_order(
            world, rng, channel=channel, created_at=min(at, world.config.end_at - timedelta(seconds=1)),
            buyer=account.buyer(), basket=world.baskets.draw(rng, promo=day.promo), address=person.address(),
            client=client, transit_days=person.home.city.transit_days, pattern=Pattern.SPLIT_CART,
            group_id=group_id))
        at += uniform_delay(rng, timedelta(minutes=1), timedelta(minutes=4))
    return orders


def size_returner(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A dog owner orders two harness sizes every 2-8 days and returns the one that does not fit."""
    pop = world.population
    channel = rng.choice((Channel.TMALL, Channel.JD, Channel.SITE))
    person = pop.person()
    start = world.config.start_at
    account = pop.account(person, channel, registered_at=start - account_age(rng, channel))
    at = start + timedelta(days=rng.uniform(0, 4))
    orders: list[SimOrder] = []
    while at < world.config.end_at and len(orders) < max(cap, 3):
        day = world.day_of(at)
        returns = chance(rng, 0.8)
        script = Script(refund=RefundPlan(RefundReason.NO_REASON, RefundStage.AFTER_DELIVERY, True, "尺码不合适",
                                          amount_fen=SKUS[_SIZES[0]].price_fen)) if returns else None
        orders.append(make_order(
            world, rng, channel=channel, created_at=world.clock.draw(rng, day), buyer=account.buyer(),
            basket=[(SKUS[_SIZES[0]], 1), (SKUS[_SIZES[1]], 1)], address=person.address(),
            client=person.client(rng), transit_days=person.home.city.transit_days, script=script,
            pattern=Pattern.SIZE_RETURNER, group_id=group_id))
        at += timedelta(days=rng.uniform(2, 8))
    return orders


def double_submit(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A buyer taps "submit" twice (a slow page), pays one order and cancels the copy."""
    pop = world.population
    day = world.pick_day(rng)
    channel = Weighted.of(CHANNEL_MIX).draw(rng)
    person = pop.person()
    at = world.clock.draw(rng, day)
    account = pop.account(person, channel, registered_at=at - account_age(rng, channel))
    basket = world.baskets.draw(rng, promo=day.promo)
    client = person.client(rng)
    copy_at = min(at + uniform_delay(rng, timedelta(seconds=10), timedelta(minutes=3)),
                  world.config.end_at - timedelta(seconds=1))
    return [make_order(world, rng, channel=channel, created_at=when, buyer=account.buyer(), basket=basket,
                       address=person.address(), client=client, transit_days=person.home.city.transit_days,
                       script=script, pattern=Pattern.DOUBLE_SUBMIT, group_id=group_id)
            for when, script in ((at, None), (copy_at, Script(payment=Payment.CANCELLED)))]


def far_gifts(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """Someone from the far west or north-east, living near the warehouse on their home number, sends
    gifts home; a third of them joined the shop for it the same day."""
    pop = world.population
    day = world.pick_day(rng)
    near = [c for c in geo.CITIES if c.transit_days == 1]
    person = pop.person(home=pop.home(city=rng.choice(near)), phone=pop.phone(prefix=rng.choice(FAR_PREFIXES)))
    at = world.clock.draw(rng, day)
    new_member = chance(rng, 0.35)
    registered = at - (uniform_delay(rng, timedelta(minutes=5), timedelta(days=2)) if new_member
                       else account_age(rng, Channel.SITE))
    account = pop.account(person, Channel.SITE, registered_at=registered, member_level=0 if new_member else None)
    orders: list[SimOrder] = []
    for index in range(rng.randint(1, 3)):
        city = rng.choice(_FAR_CITIES)
        home = pop.home(city=city)
        orders.append(make_order(
            world, rng, channel=Channel.SITE, created_at=min(at, world.config.end_at - timedelta(seconds=1)),
            buyer=account.buyer(), basket=[(SKUS[rng.choice(_GIFTS)], 1)],
            address=home.address(identity.person_name(rng, surname=person.name[0])), client=person.client(rng),
            transit_days=city.transit_days, pattern=Pattern.FAR_GIFTS, group_id=group_id,
            message="寄给家里人的礼物" if index == 0 and chance(rng, 0.4) else ""))
        at += uniform_delay(rng, timedelta(minutes=2), timedelta(hours=3))
    return orders


def birthday_note(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A buyer (mostly a regular, sometimes new) asks for same-day shipping of a birthday present."""
    pop = world.population
    day = world.pick_day(rng)
    channel = Weighted.of(CHANNEL_MIX).draw(rng)
    person = pop.person()
    at = world.clock.draw(rng, day)
    age = (uniform_delay(rng, timedelta(hours=1), timedelta(days=3)) if chance(rng, 0.25)
           else account_age(rng, channel))
    account = pop.account(person, channel, registered_at=at - age)
    return [make_order(
        world, rng, channel=channel, created_at=at, buyer=account.buyer(),
        basket=[(SKUS[rng.choice(_GIFTS + _UPGRADES[:2])], 1)], address=person.address(),
        client=person.client(rng), transit_days=person.home.city.transit_days, pattern=Pattern.BIRTHDAY_NOTE,
        group_id=group_id, message=rng.choice(_BIRTHDAY_NOTES))]


def device_switch(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A member who joined days or weeks ago orders small things on the phone, then a bigger item
    from a laptop at home (same home network, same address)."""
    pop = world.population
    day = world.pick_day(rng, lead_days=3)
    person = pop.person(has_wifi=True)
    first = world.clock.draw(rng, day)
    account = pop.account(person, Channel.SITE,
                          registered_at=first - uniform_delay(rng, timedelta(days=1), timedelta(days=60)))
    laptop = PlainClient(identity.device_id(rng), person.home_ip, person.home_wifi, identity.user_agent(rng))
    second = min(first + uniform_delay(rng, timedelta(hours=5), timedelta(days=6)),
                 world.config.end_at - timedelta(seconds=1))
    small = world.baskets.draw(rng, promo=day.promo)
    return [make_order(world, rng, channel=Channel.SITE, created_at=when, buyer=account.buyer(), basket=basket,
                       address=person.address(), client=client, transit_days=person.home.city.transit_days,
                       pattern=Pattern.DEVICE_SWITCH, group_id=group_id)
            for when, basket, client in ((first, small, person.client(rng)),
                                         (second, [(SKUS[rng.choice(_UPGRADES)], 1)], laptop))]
