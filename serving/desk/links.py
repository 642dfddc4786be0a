"""Linked orders: the other orders that share a device, WiFi, IP, address, phone or id card with a case.

A ring is many accounts converging on a few devices, networks or addresses; a reviewer
sees it at once when the case's order is drawn with every order that shares one of its
identities, accounts and shared identities as nodes, each order an edge coloured by its
verdict (:func:`graph`, rendered as SVG by the case page: no script, no CDN).

The identities are the keys the features group by (``features.facts.identity_keys``),
stored only as keyed hashes (``orderguard.ingest.protect``), so they can be compared but
not read; the page names them by kind (设备, WiFi …), never by value.
The index is kept in memory per process, built from the orders created within the
desk's reach and topped up with newer orders (re-reading a short overlap, so an order
that arrives a little late is not missed) — a case page then costs dictionary lookups,
not a scan of the order log.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from features.facts import identity_keys
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Label, Order, OrderKey

#: Identity kinds, as the page names them.
KINDS: Mapping[str, str] = {"device": "设备", "wifi": "WiFi", "ip": "IP", "address": "收货地址", "phone": "手机号",
                            "id_card": "身份证"}
#: How far back (and forward) of a case's order links reach.
REACH = timedelta(days=30)
#: Orders re-read at each top-up, so late arrivals are caught.
OVERLAP = timedelta(hours=1)
#: Most linked orders drawn (the strongest rings are already obvious well below this).
MOST = 60


@dataclass(frozen=True, slots=True)
class Linked:
    """One order linked to the case, with what it shares."""

    key: OrderKey
    account: str
    created_at: datetime
    shared: tuple[str, ...]  # identity kinds


class LinkIndex:
    """Orders by identity, within the desk's reach (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_identity: dict[tuple[str, str], set[OrderKey]] = defaultdict(set)
        self._orders: dict[OrderKey, tuple[str, datetime, dict[str, str]]] = {}
        self._watermark: datetime | None = None

    def _add(self, orders: Iterable[Order]) -> None:
        for order in orders:
            found = identity_keys(order)
            self._orders[order.key] = (order.details.buyer.account_id, order.details.created_at, found)
            for kind, value in found.items():
                self._by_identity[(kind, value)].add(order.key)

    def refresh(self, log: OrderLog, *, since: datetime) -> None:
        """Read the orders created since the last refresh (or ``since`` on the first)."""
        with self._lock:
            start = since if self._watermark is None else max(since, self._watermark - OVERLAP)
            newest = self._watermark
            for order in log.iter_orders(start=start):
                self._add([order])
                newest = max(newest, order.details.created_at) if newest else order.details.created_at
            self._watermark = newest or since

    def linked(self, order: Order) -> list[Linked]:
        """Orders sharing an identity with ``order`` created within :data:`REACH` of it, most shared first."""
        created = order.details.created_at
        shared: dict[OrderKey, list[str]] = defaultdict(list)
        with self._lock:
            for kind, value in identity_keys(order).items():
                for other in self._by_identity.get((kind, value), ()):
                    if other != order.key:
                        shared[other].append(kind)
            found = []
            for key, kinds in shared.items():
                account, at, _ = self._orders[key]
                if abs(at - created) <= REACH:
                    found.append(Linked(key, account, at, tuple(kinds)))
        found.sort(key=lambda n: (-len(n.shared), n.created_at))
        return found[:MOST]


@dataclass(frozen=True, slots=True)
class Node:
    """A node of the drawing: an account or a shared identity."""

    id: str
    label: str
    kind: str  # "account", "case-account" or an identity kind
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Edge:
    """An order: from its account to one identity it shares with the case, coloured by verdict."""

    source: Node
    target: Node
    verdict: str  # confirmed_fraud, false_positive, needs_investigation, none, case
    order: str


def graph(case: Order, linked: list[Linked], labels: Mapping[OrderKey, Label], *, size: float = 420,
          ) -> tuple[list[Node], list[Edge]]:
    """A radial drawing: the case's shared identities on an inner ring, accounts on an outer one."""
    kinds = [k for k in identity_keys(case) if any(k in n.shared for n in linked)]
    centre, inner, outer = size / 2, size * 0.17, size * 0.40
    identity_nodes = {}
    for i, kind in enumerate(kinds):
        angle = 2 * math.pi * i / max(len(kinds), 1) - math.pi / 2
        identity_nodes[kind] = Node(f"id-{kind}", KINDS[kind], kind, centre + inner * math.cos(angle),
                                    centre + inner * math.sin(angle))
    accounts = list(dict.fromkeys([case.details.buyer.account_id, *(n.account for n in linked)]))
    account_nodes = {}
    for i, account in enumerate(accounts):
        angle = 2 * math.pi * i / max(len(accounts), 1) - math.pi / 2
        account_nodes[account] = Node(f"acct-{i}", account, "case-account" if i == 0 else "account",
                                      centre + outer * math.cos(angle), centre + outer * math.sin(angle))
    edges = [Edge(account_nodes[case.details.buyer.account_id], identity_nodes[k], "case", str(case.key))
             for k in kinds]
    for n in linked:
        label = labels.get(n.key)
        verdict = label.verdict.value if label is not None else "none"
        for kind in n.shared:
            if kind in identity_nodes:
                edges.append(Edge(account_nodes[n.account], identity_nodes[kind], verdict, str(n.key)))
    return [*identity_nodes.values(), *account_nodes.values()], edges


def verdict_counts(linked: list[Linked], labels: Mapping[OrderKey, Label]) -> dict[str, int]:
    """Linked orders per verdict (``none`` for the unlabelled)."""
    counts: dict[str, int] = {}
    for n in linked:
        label = labels.get(n.key)
        name = label.verdict.value if label is not None else "none"
        counts[name] = counts.get(name, 0) + 1
    return counts


