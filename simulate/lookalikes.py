"""Honest behaviour that looks like abuse, labelled so detectors can be checked against it.

* family gifts: one buyer sends the same item to several relatives within a day or two
  (one account, many addresses -- like an address or reseller ring, but honest);
* office IP: colleagues order from one office network and often ship to the office
  (many accounts, one IP / WiFi / address -- like a WiFi or address ring);
* loyal customer: one account re-orders litter and food every few days (many orders).

Each generator returns one group; ``cap`` is the order budget left, a hint for size.
"""

from __future__ import annotations

import random
from datetime import timedelta

from orderguard.schema import Channel
from simulate import geo, identity
from simulate.catalog import CHANNEL_MIX, SKUS
from simulate.orders import SimOrder
from simulate.plain import PlainClient
from simulate.population import Home, account_age
from simulate.rand import Weighted, chance, uniform_delay
from simulate.truth import Pattern
from simulate.world import World, make_order

_GIFT_SKUS = ("PH-TR-GIFT-6", "PH-FT-W1", "PH-CF-FD-15", "PH-LT-TOFU-4", "PH-CR-BAG")
_STAPLES = ("PH-LT-TOFU-4", "PH-LT-MIX-4", "PH-LT-BENT-10", "PH-CF-FD-15", "PH-CF-STICK-50", "PH-CF-CAN-24")


def family_gifts(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """One buyer sends a gift to 3-5 relatives (own home included), within about a day."""
    pop = world.population
    day = world.pick_day(rng)
    channel = rng.choice((Channel.TMALL, Channel.TMALL, Channel.JD, Channel.DOUYIN, Channel.SITE,
                          Channel.WECHAT))
    at = world.clock.draw(rng, day)
    giver = pop.person()
    account = pop.account(giver, channel, registered_at=at - account_age(rng, channel))
    sku = SKUS[rng.choice(_GIFT_SKUS)]
    surname = giver.name[0]
    homes = [giver.home] + [pop.home() for _ in range(min(rng.randint(3, 5), max(cap, 3)) - 1)]
    orders = []
    for index, home in enumerate(homes):
        receiver = giver.name if index == 0 else identity.person_name(
            rng, surname=surname if chance(rng, 0.6) else None)
        orders.append(make_order(
            world, rng, channel=channel, created_at=at, buyer=account.buyer(), basket=[(sku, 1)],
            address=home.address(receiver), client=giver.client(rng), transit_days=home.city.transit_days,
            pattern=Pattern.FAMILY_GIFTS, group_id=group_id,
            message="送人的，不要放价格单" if index and chance(rng, 0.5) else ""))
        at = min(at + uniform_delay(rng, timedelta(minutes=1), timedelta(hours=30)),
                 world.config.end_at - timedelta(seconds=1))
    return orders


def office_ip(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """5-12 colleagues ordering in working hours from one office network, often to the office."""
    pop = world.population
    city = geo.city_picker().draw(rng)
    office = Home(city, rng.choice(city.districts), geo.office_detail(rng))
    wifi, ip = identity.bssid(rng), identity.home_ip(rng)
    weekdays = [d for d in world.days if (d.start + timedelta(hours=8)).weekday() < 5] or list(world.days)
    mix = Weighted.of(CHANNEL_MIX)
    orders: list[SimOrder] = []
    for colleague in range(rng.randint(5, 12)):
        if colleague >= 3 and len(orders) >= cap:
            break
        person = pop.person(home=pop.home(city=city))
        channel = mix.draw(rng)
        account = pop.account(person, channel,
                              registered_at=world.config.start_at - account_age(rng, channel))
        to_office = chance(rng, 0.6)
        for _ in range(rng.randint(1, 3)):
            day = rng.choice(weekdays)
            home = office if to_office else person.home
            orders.append(make_order(
                world, rng, channel=channel, created_at=world.clock.working_hours(rng, day),
                buyer=account.buyer(), basket=world.baskets.draw(rng, promo=day.promo),
                address=home.address(person.name), client=PlainClient(person.device_id, ip, wifi,
                                                                      person.user_agent),
                transit_days=city.transit_days, pattern=Pattern.OFFICE_IP, group_id=group_id))
    return orders


def loyal_customer(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """A long-standing member re-ordering staples every few days for the whole period."""
    pop = world.population
    channel = Weighted.of(CHANNEL_MIX).draw(rng)
    person = pop.person()
    start = world.config.start_at
    account = pop.account(person, channel, registered_at=start - timedelta(days=rng.randint(400, 2500)),
                          member_level=rng.choice((3, 4)))
    favourite = SKUS[rng.choice(_STAPLES)]
    interval = min(7.0, max(1.0, world.config.days / 8))
    at = start + timedelta(days=rng.uniform(0, interval))
    orders: list[SimOrder] = []
    while at < world.config.end_at and len(orders) < max(cap, 3):
        day = world.day_of(at)
        basket = [(favourite, rng.randint(1, 2))]
        if chance(rng, 0.35):
            extra = world.baskets.one(rng)
            if extra is not favourite:
                basket.append((extra, 1))
        orders.append(make_order(
            world, rng, channel=channel, created_at=world.clock.draw(rng, day), buyer=account.buyer(),
            basket=basket, address=person.address(), client=person.client(rng),
            transit_days=person.home.city.transit_days, pattern=Pattern.LOYAL_CUSTOMER, group_id=group_id))
        at += timedelta(days=interval * rng.uniform(0.6, 1.4))
    return orders
