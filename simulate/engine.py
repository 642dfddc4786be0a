"""``simulate(config)``: the whole synthetic period, events plus ground truth.

Order of play (each part on its own seeded stream): plan the calendar and the limited
drops; spend the abuse budget (``abnormal_share`` of all orders) pattern by pattern and
the look-alike budgets; then the account-level abuse (``account_abuse_share``) and its
look-alikes; let honest fans buy what the scalpers left of each drop; fill every day up to
its volume with everyday honest orders; then number the orders by
creation time per channel, plant the fulfilment faults (``simulate.fulfilment``), render
the channel events and derive the fulfilment reports and their truth.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orderguard.schema import Channel
from simulate.abuse import ABUSE, PatternSpec
from simulate.account_abuse import ACCOUNT_ABUSE
from simulate.account_lookalikes import (
    birthday_note,
    device_switch,
    double_submit,
    far_gifts,
    size_returner,
    split_cart,
)
from simulate.catalog import regular_skus
from simulate.config import SimConfig
from simulate.fulfilment import FaultPlan, FulfilmentTruthRow, Numbered, derive, inject_faults
from simulate.lookalikes import family_gifts, loyal_customer, office_ip
from simulate.numbering import Numbering, refund_id, tracking_no
from simulate.orders import BasketPicker, SimOrder
from simulate.period import TimeOfDay, plan_days
from simulate.plain import PlainEvent
from simulate.population import Population
from simulate.rand import substream
from simulate.render import render
from simulate.stock_holding import CAMPUS_RANGE
from simulate.traffic import drop_orders, everyday_orders, units_taken
from simulate.truth import ABUSE_PATTERNS, Pattern, TruthRow
from simulate.vocabulary import StatusVocabulary, restate
from simulate.world import World, plan_drops

#: Honest look-alike groups and their share of all orders.
LOOKALIKES: tuple[PatternSpec, ...] = (
    PatternSpec(Pattern.FAMILY_GIFTS, family_gifts, 0.006, 3),
    PatternSpec(Pattern.OFFICE_IP, office_ip, 0.010, 5),
    PatternSpec(Pattern.LOYAL_CUSTOMER, loyal_customer, 0.015, 3),
)
#: Honest look-alikes of the account-level abuse, and their share of all orders.
ACCOUNT_LOOKALIKES: tuple[PatternSpec, ...] = (
    PatternSpec(Pattern.SPLIT_CART, split_cart, 0.004, 2),
    PatternSpec(Pattern.SIZE_RETURNER, size_returner, 0.004, 3),
    PatternSpec(Pattern.DOUBLE_SUBMIT, double_submit, 0.003, 2),
    PatternSpec(Pattern.FAR_GIFTS, far_gifts, 0.003, 1),
    PatternSpec(Pattern.BIRTHDAY_NOTE, birthday_note, 0.002, 1),
    PatternSpec(Pattern.DEVICE_SWITCH, device_switch, 0.003, 2),
    CAMPUS_RANGE,
)
_CHANNEL_ORDER = MappingProxyType({c: i for i, c in enumerate(Channel)})


@dataclass(frozen=True, slots=True)
class Simulation:
    """The output of one run.

    Attributes:
        events: every rendered event, sorted by ``(update_time, order_id, channel)``.
        truth: one row per order, sorted by ``(created_at, order_key)``.
        fulfilment: the shop systems' reports about the orders (``orderguard.fulfilment``
            wire form, shop-time ISO times), before the period's end, sorted by time.
        fulfilment_truth: one row per (order, order-health check it must fail), sorted by
            ``(anchor_at, order_key, check)``; see ``simulate.fulfilment.FulfilmentTruthRow``.
        altered: order keys whose channel events a planted fault changed (everything else
            renders exactly as it would without faults).
    """

    config: SimConfig
    events: list[PlainEvent]
    truth: list[TruthRow]
    fulfilment: list[dict[str, Any]] = field(default_factory=list)
    fulfilment_truth: list[FulfilmentTruthRow] = field(default_factory=list)
    altered: frozenset[str] = frozenset()


def allocate(total: int, specs: Sequence[PatternSpec]) -> dict[Pattern, int]:
    """Split an order budget over patterns by share, never below a pattern's minimum group.

    Patterns are served largest share first; when the budget cannot cover a pattern's
    minimum it gets nothing, so tiny periods hold fewer patterns rather than overshoot.

    >>> specs = [PatternSpec(Pattern.SCALPER, lambda: [], 0.5, 3), PatternSpec(Pattern.BOT_BURST, lambda: [], 0.5, 6)]
    >>> allocate(100, specs) == {Pattern.SCALPER: 50, Pattern.BOT_BURST: 50}
    True
    >>> allocate(8, specs) == {Pattern.BOT_BURST: 6, Pattern.SCALPER: 0}
    True
    """
    weight = sum(s.share for s in specs)
    budgets: dict[Pattern, int] = {}
    remaining = total
    for spec in sorted(specs, key=lambda s: (-s.share, -s.min_orders, s.pattern.value)):
        want = max(spec.min_orders, round(total * spec.share / weight))
        granted = min(want, remaining) if remaining >= spec.min_orders else 0
        budgets[spec.pattern] = granted
        remaining -= granted
    return budgets


def _spend(world: World, rng: random.Random, spec: PatternSpec, budget: int) -> list[SimOrder]:
    """Generate groups of one pattern until its budget is spent."""
    orders: list[SimOrder] = []
    group = 0
    while len(orders) < budget:
        batch = spec.generate(world, rng, group_id=f"{spec.pattern.value}-{group:04d}",
                              cap=budget - len(orders))
        if not batch:
            break
        orders.extend(batch)
        group += 1
    return orders


def simulate(config: SimConfig, *, can_state: StatusVocabulary | None = None, faults: bool = True) -> Simulation:
    """Simulate the shop over ``config``'s period; deterministic in ``config``.

    Args:
        config: what to simulate.
        can_state: which statuses each channel's documents can state; events outside it
            are restated or left out (see ``vocabulary.restate``). ``None`` keeps the full
            physical life cycle of every order.
        faults: plant the fulfilment faults (``simulate.fulfilment.inject_faults``);
            without them the truth holds only what occurs naturally.
    """
    seed = config.seed
    days = plan_days(config, substream(seed, "calendar"))
    world = World(config=config, days=days, population=Population(substream(seed, "population")),
                  clock=TimeOfDay(), baskets=BasketPicker(regular_skus()), drops=plan_drops(config, days))
    total = sum(day.target for day in days)
    orders: list[SimOrder] = []
    # rings and bursts first, then their look-alikes, then the account-level abuse and its look-alikes:
    # the population is shared, so this order leaves every earlier pattern's orders as they were
    for specs, share in ((ABUSE, config.abnormal_share), (ACCOUNT_ABUSE, config.account_abuse_share)):
        abuse_budget = allocate(round(total * share), specs)
        for spec in specs:
            orders.extend(_spend(world, substream(seed, f"abuse/{spec.pattern.value}"), spec,
                                 abuse_budget[spec.pattern]))
        for spec in LOOKALIKES if specs is ABUSE else ACCOUNT_LOOKALIKES:
            budget = round(total * spec.share)
            if budget >= spec.min_orders:
                orders.extend(_spend(world, substream(seed, f"lookalike/{spec.pattern.value}"), spec, budget))
    taken = units_taken(orders, world.drops)
    drops_rng = substream(seed, "drops")
    for drop in world.drops:
        orders.extend(drop_orders(world, drops_rng, drop=drop, taken=taken[drop]))
    used = Counter(world.day_of(o.plan.created_at).index for o in orders)
    everyday_rng = substream(seed, "everyday")
    for day in days:
        orders.extend(everyday_orders(world, everyday_rng, day=day, count=max(0, day.target - used[day.index])))
    return _assemble(config, orders, can_state=can_state, faults=faults)


def _assemble(config: SimConfig, orders: list[SimOrder], *, can_state: StatusVocabulary | None,
              faults: bool) -> Simulation:
    """Number the orders per channel by creation time, plant the faults, render events, write truth rows.

    Ids and waybill numbers are drawn before any fault is planted (faults keep creation
    times, channels and the waybill's carrier), so they are the same with and without faults.
    """
    numbering = Numbering.seeded(substream(config.seed, "numbering"))
    waybills = substream(config.seed, "waybills")
    ranked = sorted(enumerate(orders),
                    key=lambda item: (item[1].plan.created_at, _CHANNEL_ORDER[item[1].plan.channel], item[0]))
    sequence: Counter[Channel] = Counter()
    numbered: list[Numbered] = []
    for _, order in ranked:
        plan = order.plan
        order_id = numbering.order_id(plan.channel, sequence[plan.channel], created_at=plan.created_at)
        sequence[plan.channel] += 1
        numbered.append(Numbered(order, order_id, tracking_no(waybills, plan.channel, paid_fen=plan.amounts.paid_fen)))
    fault_plan = (inject_faults(config, numbered) if faults
                  else FaultPlan(tuple(numbered), MappingProxyType({}), None, frozenset()))
    shop = fault_plan.orders
    events: list[PlainEvent] = []
    truth: list[TruthRow] = []
    for item in shop:
        plan, order_id = item.order.plan, item.order_id
        events.extend(render(item.order, order_id=order_id, refund_id=refund_id(plan.channel, order_id),
                             tracking_no=item.waybill, until=config.end_at))
        truth.append(TruthRow(order_key=item.key, channel=plan.channel,
                              order_id=order_id, pattern=plan.pattern,
                              is_abnormal=plan.pattern in ABUSE_PATTERNS, group_id=plan.group_id,
                              created_at=plan.created_at, ops_issue=plan.ops_issue))
    events.sort(key=lambda e: (e.update_time, e.order_id, _CHANNEL_ORDER[e.channel]))
    if can_state is not None:
        events = restate(events, can_state=can_state)
    truth.sort(key=lambda row: (row.created_at, row.order_key))
    steps, fulfilment_truth = derive(config, fault_plan)
    altered = frozenset(shop[i].key for i in fault_plan.altered)
    return Simulation(config=config, events=events, truth=truth, fulfilment=steps,
                      fulfilment_truth=fulfilment_truth, altered=altered)
