"""Honest background traffic: everyday orders and the honest buyers of limited drops.

Everyday orders come from new buyers and returning ones (about a third), on the
channel mix of the day; a few new buyers are people already known on another channel
(same phone and handset), a few live together (same WiFi and address), a few collect
parcels at a pick-up point, and brand-new members often spend a new-user coupon. All of
it is honest: the noise abuse hides in. On the promotion day it is labelled
``promotion_spike``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from orderguard.schema import Channel
from simulate import geo
from simulate.catalog import (
    CHANNEL_MIX,
    NEW_USER_COUPON,
    PROMO_CHANNEL_MIX,
    PROMO_COUPON,
    STORE_COUPONS,
    Coupon,
)
from simulate.orders import SimOrder, buyer_message
from simulate.period import Day
from simulate.plain import PlainAddress
from simulate.population import Account, Population, account_age
from simulate.rand import Weighted, chance, lognormal_delay
from simulate.truth import Pattern
from simulate.world import Drop, World, make_order

_RETURNING_SHARE = 0.33
_CROSS_CHANNEL_SHARE = 0.07
_HOUSEHOLD_SHARE = 0.06
_PICKUP_SHARE = 0.04
_NEW_MEMBER_SHARE = MappingProxyType({Channel.SITE: 0.15, Channel.WECHAT: 0.1})


def promo_group(day: Day) -> str:
    """Group id of a promotion day's honest rush, e.g. ``promo-2024-11-11``."""
    return f"promo-{(day.start + timedelta(hours=8)).date().isoformat()}"


def honest_account(population: Population, rng: random.Random, *, channel: Channel, at: datetime) -> Account:
    """An account for an honest order at ``at``: a returning buyer, or a new one."""
    if chance(rng, _RETURNING_SHARE):
        account = population.returning(channel)
        if account is not None and account.registered_at < at:
            return account
    person = None
    if chance(rng, _CROSS_CHANNEL_SHARE):
        other = population.returning(rng.choice([c for c in Channel if c is not channel]))
        person = other.person if other is not None else None
    if person is None:
        person = population.person(household_share=_HOUSEHOLD_SHARE)
    if chance(rng, _NEW_MEMBER_SHARE.get(channel, 0.03)):
        registered = at - lognormal_delay(rng, median=timedelta(minutes=8), sigma=1.0, cap=timedelta(hours=20))
    else:
        registered = at - account_age(rng, channel)
    account = population.account(person, channel, registered_at=registered)
    population.enroll(account)
    return account


def honest_address(rng: random.Random, account: Account) -> PlainAddress:
    """Home, or now and then the pick-up point of the buyer's own compound."""
    address = account.person.address()
    if chance(rng, _PICKUP_SHARE):
        return PlainAddress(address.province, address.city, address.district, geo.pickup_detail(rng),
                            address.receiver_name)
    return address


def honest_coupon(rng: random.Random, *, account: Account, at: datetime, promo: bool) -> Coupon | None:
    """New members usually spend the new-user coupon; others sometimes a shop coupon."""
    if at - account.registered_at < timedelta(days=1) and chance(rng, 0.7):
        return NEW_USER_COUPON
    if promo and chance(rng, 0.6):
        return PROMO_COUPON
    return rng.choice(STORE_COUPONS) if chance(rng, 0.12) else None


def everyday_orders(world: World, rng: random.Random, *, day: Day, count: int) -> list[SimOrder]:
    """``count`` honest orders created on ``day``."""
    mix = Weighted.of(PROMO_CHANNEL_MIX if day.promo else CHANNEL_MIX)
    pattern = Pattern.PROMOTION_SPIKE if day.promo else Pattern.NORMAL
    group = promo_group(day) if day.promo else ""
    orders = []
    for at in sorted(world.clock.draw(rng, day) for _ in range(count)):
        channel = mix.draw(rng)
        account = honest_account(world.population, rng, channel=channel, at=at)
        coupon = honest_coupon(rng, account=account, at=at, promo=day.promo)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(),
            basket=world.baskets.draw(rng, promo=day.promo), address=honest_address(rng, account),
            client=account.person.client(rng), transit_days=account.person.home.city.transit_days,
            coupon=coupon, pattern=pattern, group_id=group, message=buyer_message(rng)))
    return orders


def drop_orders(world: World, rng: random.Random, *, drop: Drop, taken: int) -> list[SimOrder]:
    """Honest fans buying a limited drop until the stock left after ``taken`` units runs out.

    Fans arrive fast right after the release and then taper off over a couple of hours.
    """
    day = world.day_of(drop.at)
    mix = Weighted.of(CHANNEL_MIX)
    pattern = Pattern.PROMOTION_SPIKE if day.promo else Pattern.NORMAL
    group = promo_group(day) if day.promo else ""
    left = drop.stock - taken
    orders = []
    at = drop.at
    while left > 0:
        at = at + lognormal_delay(rng, median=timedelta(seconds=40), sigma=1.2, floor=timedelta(seconds=1))
        if at >= world.config.end_at:
            break
        channel = mix.draw(rng)
        account = honest_account(world.population, rng, channel=channel, at=at)
        qty = min(left, 2 if chance(rng, 0.12) else 1)
        left -= qty
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=[(drop.sku, qty)],
            address=account.person.address(), client=account.person.client(rng),
            transit_days=account.person.home.city.transit_days, pattern=pattern, group_id=group))
    return orders


def units_taken(orders: Iterable[SimOrder], drops: Iterable[Drop]) -> Mapping[Drop, int]:
    """Units of each drop already bought by ``orders`` (within six hours of its release)."""
    taken = {drop: 0 for drop in drops}
    for order in orders:
        for drop in taken:
            if drop.at <= order.plan.created_at < drop.at + timedelta(hours=6):
                taken[drop] += sum(line.qty for line in order.plan.lines if line.sku_id == drop.sku.sku_id)
    return taken
