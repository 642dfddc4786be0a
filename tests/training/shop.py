"""A small simulated shop for the training tests, and the labels a diligent review team would give it.

The shop is simulated (``simulate``), written as channel files and ingested
into a SQLite order log, so the orders are exactly what ``OrderLog.iter_orders`` gives
in production. Labels come from the simulator's ground truth: every abnormal order is
confirmed as fraud by a reviewer some hours after it was placed (after its refund
claim, for refund abuse: that is when it becomes visible); honest orders stay
unlabelled and count as honest once they have matured.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from features.settings import Settings
from orderguard.ingest.importer import import_file
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Label, Order, Verdict
from simulate import SimConfig
from simulate.export import export_shop


@dataclass(frozen=True)
class Shop:
    """A simulated period ingested into an order log.

    Attributes:
        config: what was simulated (``config.end_at`` is the natural cutoff).
        orders: every order in its final state, as the order log gives them.
        truth: order key → (pattern, is_abnormal).
    """

    config: SimConfig
    orders: list[Order]
    truth: dict[str, tuple[str, bool]]

    def fraud_labels(self, *, seed: int = 1, delay_hours: tuple[float, float] = (2.0, 72.0)) -> list[Label]:
        """Every abnormal order confirmed as fraud ``delay_hours`` after its creation (or its refund claim)."""
        rng = random.Random(seed)
        labels = []
        for order in self.orders:
            if not self.truth[str(order.key)][1]:
                continue
            seen = order.refund.requested_at if order.refund is not None else order.details.created_at
            labels.append(Label(order.key, Verdict.CONFIRMED_FRAUD, seen + timedelta(hours=rng.uniform(*delay_hours)),
                                "reviewer-1"))
        return labels


def build_shop(root: Path, *, days: int, orders_per_day: int, seed: int) -> Shop:
    """Simulate ``days`` of the shop into ``root`` and read the orders back from the order log."""
    config = SimConfig.for_period(seed=seed, days=days, orders_per_day=orders_per_day)
    files = export_shop(config, root / "files", secret=b"training-tests")
    log = OrderLog.open(f"sqlite:///{root / 'orderguard.db'}")
    try:
        for path in sorted(files.channels.values()):
            result = import_file(path, channel=None, mapping=None, log=log, pii=Settings(data_dir=root).pii)
            assert not result.report.errors, result.report.errors[:3]
        orders = list(log.iter_orders())
    finally:
        log.close()
    with files.ground_truth.open(encoding="utf-8", newline="") as fh:
        truth = {row["order_key"]: (row["pattern"], row["is_abnormal"] == "true") for row in csv.DictReader(fh)}
    return Shop(config, orders, truth)
