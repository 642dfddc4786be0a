"""A small simulated shop for the training tests, and the labels a diligent review team would give it.

The shop is simulated (``simulate``), written as channel files and ingested
into a SQLite order log, so the orders are exactly what ``OrderLog.iter_orders`` gives
in production. Labels come from the simulator's ground truth: every abnormal order is
confirmed as fraud by a reviewer some hours after it was placed (after its refund
claim, for refund abuse: that is when it becomes visible); honest orders stay
unlabelled and count as honest once they have matured.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Label, Order, Verdict
from simulate import SimConfig
from simulate.reviews import TruthEntry
from simulate.shop import ingest_shop


@dataclass(frozen=True)
class Shop:
    """A simulated period ingested into an order log.

    Attributes:
        config: what was simulated (``config.end_at`` is the natural cutoff).
        orders: every order in its final state, as the order log gives them.
        truth: order key → its ground-truth row.
    """

    config: SimConfig
    orders: list[Order]
    truth: Mapping[str, TruthEntry]

    def fraud_labels(self, *, seed: int = 1, delay_hours: tuple[float, float] = (2.0, 72.0)) -> list[Label]:
        """Every abnormal order confirmed as fraud ``delay_hours`` after its creation (or its refund claim)."""
        rng = random.Random(seed)
        labels = []
        for order in self.orders:
            if not self.truth[str(order.key)].is_abnormal:
                continue
            seen = order.refund.requested_at if order.refund is not None else order.details.created_at
            labels.append(Label(order.key, Verdict.CONFIRMED_FRAUD, seen + timedelta(hours=rng.uniform(*delay_hours)),
                                "reviewer-1"))
        return labels


def build_shop(root: Path, *, days: int, orders_per_day: int, seed: int) -> Shop:
    """Simulate ``days`` of the shop into ``root`` and read the orders back from the order log."""
    shop = ingest_shop(SimConfig.for_period(seed=seed, days=days, orders_per_day=orders_per_day), root,
                       secret=b"training-tests", pii=Settings(data_dir=root).pii)
    log = OrderLog.open(shop.database_url)
    try:
        orders = list(log.iter_orders())
    finally:
        log.close()
    return Shop(shop.config, orders, shop.truth)
