"""Stock held by unpaid orders from one IP range, and the honest range that looks like it.

* stock holding (abuse): bots on a few addresses of one data-centre /24 place order after order
  for a limited edition (or a scarce SKU) and never pay; each order keeps its units locked until
  the payment timeout closes it, and honest buyers see "sold out" meanwhile;
* campus range (look-alike): students or colleagues behind one /24 order all day and leave the
  usual share of orders unpaid (changed their mind, paid with another order), over hours, not in
  waves.

Only the own site (and the mini-program) sends the buyer's IP, so both play there. Same generator
signature as ``simulate.abuse``; ``cap`` is the order budget left, a hint for size.
"""

from __future__ import annotations

import random
from datetime import timedelta

from orderguard.schema import Channel
from simulate import identity
from simulate.abuse import PatternSpec, _clip, _fresh_account
from simulate.catalog import SKUS
from simulate.lifecycle import UNPAID_TIMEOUT, Payment, Script
from simulate.orders import SimOrder
from simulate.plain import PlainClient
from simulate.population import account_age
from simulate.rand import chance, uniform_delay
from simulate.truth import Pattern
from simulate.world import World, make_order

#: Scarce SKUs a bot holds when no limited drop falls in the period.
_SCARCE = ("PH-LB-SMART-PRO", "PH-FD-CAM", "PH-LB-SMART")
#: Share of a campus range's orders left unpaid: a little above an average buyer's.
CAMPUS_UNPAID = 0.12


def _range(rng: random.Random) -> str:
    """The first three octets of one /24: a data-centre range for bots, a broadband one for a campus."""
    return identity.cloud_ip(rng).rsplit(".", 1)[0]


def stock_holding(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """4-8 bots on 2-4 addresses of one /24 each lock a limited edition (its drop when there is one) with
    an order they never pay, and lock it again with a new throwaway account the moment the site's payment
    timeout closes the last one, for 2-4 timeouts: the stock stays held through the launch window."""
    drop = rng.choice(world.drops) if world.drops and chance(rng, 0.7) else None
    sku = drop.sku if drop is not None else SKUS[rng.choice(_SCARCE)]
    start = drop.at if drop is not None else world.clock.draw(rng, world.pick_day(rng))
    net = _range(rng)
    hosts = [f"{net}.{rng.randint(1, 254)}" for _ in range(rng.randint(2, 4))]
    bots, rounds = rng.randint(4, 8), rng.randint(2, 4)
    orders: list[SimOrder] = []
    at = start
    for _ in range(bots):
        held = at
        for _ in range(rounds):
            if len(orders) >= max(8, cap):
                return orders
            account = _fresh_account(world, rng, Channel.SITE, first_order_at=held, max_age=timedelta(days=7))
            client = PlainClient(identity.device_id(rng), rng.choice(hosts), None, account.person.user_agent)
            orders.append(make_order(
                world, rng, channel=Channel.SITE, created_at=_clip(held, world), buyer=account.buyer(),
                basket=[(sku, sku.max_qty)], address=account.person.address(), client=client,
                transit_days=account.person.home.city.transit_days, script=Script(payment=Payment.UNPAID_CLOSED),
                pattern=Pattern.STOCK_HOLDING, group_id=group_id))
            held += UNPAID_TIMEOUT[Channel.SITE] + uniform_delay(rng, timedelta(seconds=5), timedelta(seconds=90))
        at += uniform_delay(rng, timedelta(seconds=30), timedelta(minutes=4))
    return orders


def campus_range(world: World, rng: random.Random, *, group_id: str, cap: int) -> list[SimOrder]:
    """15-30 long-standing accounts behind one campus /24 order over the period in daytime, each
    leaving an order unpaid now and then (the site closes it at the timeout)."""
    pop = world.population
    net = f"{identity.home_ip(rng).rsplit('.', 1)[0]}"
    orders: list[SimOrder] = []
    for member in range(rng.randint(15, 30)):
        if member >= 3 and len(orders) >= cap:
            break
        person = pop.person()
        account = pop.account(person, Channel.SITE, registered_at=world.config.start_at
                              - account_age(rng, Channel.SITE))
        client = PlainClient(person.device_id, f"{net}.{rng.randint(1, 254)}", None, person.user_agent)
        for _ in range(rng.randint(1, 3)):
            day = rng.choice(world.days)
            unpaid = chance(rng, CAMPUS_UNPAID)
            orders.append(make_order(
                world, rng, channel=Channel.SITE, created_at=world.clock.working_hours(rng, day),
                buyer=account.buyer(), basket=world.baskets.draw(rng, promo=day.promo), address=person.address(),
                client=client, transit_days=person.home.city.transit_days,
                script=Script(payment=Payment.UNPAID_CLOSED) if unpaid else None,
                pattern=Pattern.CAMPUS_RANGE, group_id=group_id))
    return orders


#: The abuse pattern and its share of the account-level abuse budget.
STOCK_HOLDING = PatternSpec(Pattern.STOCK_HOLDING, stock_holding, 0.04, 8)
#: The look-alike and its share of all orders.
CAMPUS_RANGE = PatternSpec(Pattern.CAMPUS_RANGE, campus_range, 0.004, 3)
