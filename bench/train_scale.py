"""Training at scale: the point-in-time dataset and the fit of 1,000,000 orders with 100 features.

A shop bringing years of history trains on millions of orders. Goal on this machine (2 cores): the dataset
(``training.dataset.build_dataset``: facts, the DuckDB window queries, attributes, derived features, targets) and
the fit (``training.fit.fit``) of ``--orders`` (default 1,000,000) within 15 minutes and 8 GB.

The orders are generated in memory (site channel: accounts, devices, IPs, WiFi, addresses, phones, SKUs, coupons,
refund claims) with three source attributes and a card key; the feature set is the shop's 86 plus three declared
attributes served as inputs and eleven windowed features over them and the declared card entity: 100 features.
About 3 % of orders are frauds, labelled a day after they were placed, and they reuse a few cards and devices.

Printed, from the same run: wall time and peak RSS (``VmHWM``, reset between stages) per stage, against

* **floor, facts**: one pass of ``features.facts.order_facts`` over the same orders (the Python work any
  row-based engine does before aggregating anything);
* **floor, fit**: bare ``lightgbm.train`` on the final matrix with the same parameters and rounds.

DuckDB's memory cap (``training.features_memory_limit``, ``--memory-limit``) decides the dataset stage: at 2 GB a
million orders' windows spill so much that the stage ran past 22 minutes; at 4 GB (the default) it takes 7-8.

Run: ``python -m bench.train_scale [--orders 1000000] [--days 90] [--memory-limit 4GB]``; ``--quick`` is 100,000
orders.
Results: ``bench/results/train_scale.json``.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import lightgbm as lgb
import numpy as np
from rich.console import Console

from bench.report import RESULTS_DIR, write_results
from features.facts import order_facts
from features.specs import FeatureSet
from orderguard.enrich import Gazetteer
from orderguard.schema import (
    Address,
    Amounts,
    Channel,
    ClientInfo,
    Label,
    Order,
    OrderDetails,
    OrderKey,
    OrderLine,
    OrderStatus,
    Party,
    Phone,
    Refund,
    RefundReason,
    StatusChange,
    Verdict,
)
from orderguard.settings import TrainingSettings
from training.dataset import build_dataset, time_split
from training.fit import fit, lgb_params

RESULTS = RESULTS_DIR / "train_scale.json"
START = datetime(2024, 6, 1, tzinfo=UTC)
GOAL_SECONDS, GOAL_GB = 15 * 60, 8.0
T = TypeVar("T")

DECLARE = {
    "attributes": [
        {"name": "amount_usd", "type": "number", "unit": "USD"},
        {"name": "card_type", "type": "category", "values": ["debit", "credit", "prepaid"]},
        {"name": "upstream_score", "type": "number"},
    ],
    "entities": [{"name": "card", "of": ["card_no"], "pii": True}],
}
EXTRA_FEATURES = [
    {"entity": "card", "field": "orders", "agg": "count", "window": "1h"},
    {"entity": "card", "field": "orders", "agg": "count", "window": "24h"},
    {"entity": "card", "field": "users", "agg": "distinct", "window": "7d"},
    {"entity": "card", "field": "devices", "agg": "distinct", "window": "7d"},
    {"entity": "card", "field": "amount_usd", "agg": "sum", "window": "24h"},
    {"entity": "card", "field": "upstream_score", "agg": "max", "window": "7d"},
    {"entity": "user", "field": "cards", "agg": "distinct", "window": "30d"},
    {"entity": "device", "field": "cards", "agg": "distinct", "window": "7d"},
    {"entity": "user", "field": "upstream_score", "agg": "mean", "window": "30d"},
    {"entity": "card", "field": "orders", "agg": "distinct", "window": "30d", "qualifier": "fraud",
     "filter": {"verdict": "confirmed_fraud"}},
    {"entity": "user", "field": "orders", "agg": "count", "window": "7d", "qualifier": "prepaid",
     "filter": {"card_type": "prepaid"}},
]


def feature_set() -> FeatureSet:
    """The shop's 86 features plus 14 over the declared attributes and card: 100."""
    return FeatureSet.from_data({"extends": "shop", "declare": DECLARE, "features": EXTRA_FEATURES,
                                 "attributes": ["amount_usd", "card_type", "upstream_score"]})


def generate(n: int, days: int, *, seed: int = 7) -> tuple[list[Order], list[Label]]:
    """``n`` site orders over ``days`` and a fraud label a day after each fraud (see the module docstring)."""
    rng = random.Random(seed)
    users, devices, skus = max(n // 6, 10), max(n // 5, 10), 3000
    stolen = [f"5{rng.randrange(10**15):015d}" for _ in range(max(n // 2000, 5))]
    ring_devices = [f"ring-{i}" for i in range(max(n // 5000, 3))]
    addresses = [Address("浙江省", "杭州市", f"区{i % 50}", f"路{i}号", key=f"addr{i}") for i in range(max(n // 8, 10))]
    span = days * 86400
    orders: list[Order] = []
    labels: list[Label] = []
    for i in range(n):
        created = START + timedelta(seconds=span * i / n + rng.random())
        fraud = rng.random() < 0.03
        user = rng.randrange(users)
        price = rng.choice((990, 1990, 4990, 12900, 29900))
        qty = 1 + (rng.random() < 0.2)
        line = OrderLine(f"sku{rng.randrange(skus)}", qty, price, list_price_fen=price)
        coupon = 500 if rng.random() < (0.5 if fraud else 0.15) else 0
        goods = qty * price
        attributes: dict[str, str | int | float | bool] = {
            "amount_usd": round(goods / 720, 2),
            "card_type": "prepaid" if fraud and rng.random() < 0.3 else rng.choice(("debit", "credit", "debit")),
            "upstream_score": round(rng.gauss(42 if fraud else 35, 12), 1),
            "card_no": rng.choice(stolen) if fraud and rng.random() < 0.3 else f"4{user:015d}",
        }
        details = OrderDetails(
            shop_id="big", created_at=created,
            buyer=Party(account_id=f"u{user}", phone=Phone(f"ph{user % (users // 2 + 1)}", prefix="138"),
                        registered_at=created - timedelta(days=1 if fraud and rng.random() < 0.3
                                                          else rng.randrange(2, 900)),
                        member_level=rng.randrange(1, 6)),
            lines=(line,), amounts=Amounts(goods_fen=goods, paid_fen=goods - coupon, coupon_fen=coupon),
            address=addresses[rng.randrange(len(addresses))],
            client=ClientInfo(device_id=rng.choice(ring_devices) if fraud and rng.random() < 0.2
                              else f"d{rng.randrange(devices)}", ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.1",
                              wifi_hash=f"w{rng.randrange(devices // 3 + 1)}"),
            coupon_ids=("c1",) if coupon else (), attributes=attributes)
        key = OrderKey(Channel.SITE, f"o{i}")
        refund = None
        timeline = (StatusChange(OrderStatus.PAID, created, 1, "paid"),)
        if rng.random() < 0.04:
            refund = Refund(f"r{i}", rng.choice(list(RefundReason)), goods // 2, created + timedelta(days=3))
        orders.append(Order(key, OrderStatus.PAID, details, 1, created, timeline, refund))
        if fraud:
            labels.append(Label(key, Verdict.CONFIRMED_FRAUD, created + timedelta(days=1), "desk"))
    return orders, labels


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def stage(name: str, results: dict[str, Any], work: Callable[[], T]) -> T:
    """Run one stage; record its wall time and its own peak RSS."""
    gc.collect()
    _reset_peak()
    started = time.perf_counter()
    out = work()
    seconds = time.perf_counter() - started
    results[name] = {"seconds": round(seconds, 2), "peak_gb": round(_peak_gb(), 2)}
    print(f"  {name:<22} {seconds:8.1f} s   peak RSS {results[name]['peak_gb']:5.2f} GB", flush=True)
    return out


def _facts_pass(orders: list[Order], fs: FeatureSet) -> int:
    count = 0
    for order in orders:
        count += len(order_facts(order, fs.declared).facts)
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--quick", action="store_true", help="100,000 orders")
    parser.add_argument("--memory-limit", default=TrainingSettings().features_memory_limit,
                        help="DuckDB memory limit while building the features (default: the setting's)")
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else args.orders
    fs = feature_set()
    settings = TrainingSettings(maturity="7d", holdout_days=7, gap="1d", features_memory_limit=args.memory_limit)
    print(f"{n:,} orders over {args.days} days, {len(fs)} features")
    results: dict[str, Any] = {"orders": n, "days": args.days, "features": len(fs), "memory_limit": args.memory_limit}
    orders, labels = stage("generate orders", results, lambda: generate(n, args.days))
    facts = stage("floor: facts pass", results, lambda: _facts_pass(orders, fs))
    cutoff = orders[-1].details.created_at + timedelta(days=1)
    gazetteer = Gazetteer.build()
    dataset = stage("dataset (point in time)", results,
                    lambda: build_dataset(iter(orders), labels, fs, cutoff=cutoff, gazetteer=gazetteer,
                                          settings=settings))
    split = time_split(dataset, holdout_days=settings.holdout_days, gap=timedelta(days=1))
    fitted = stage("fit", results, lambda: fit(split.train, settings=settings, feature_names=list(fs.names),
                                               monotone=fs.monotone))
    frame = split.train.frame
    matrix = frame[list(fs.names)].to_numpy(dtype=np.float64)
    target = frame["target"].to_numpy(dtype=np.float64)
    params = lgb_params(settings, fs.names, fs.monotone)
    stage("floor: bare lightgbm", results,
          lambda: lgb.train(params, lgb.Dataset(matrix, label=target), num_boost_round=fitted.best_iteration))
    total = results["dataset (point in time)"]["seconds"] + results["fit"]["seconds"]
    peak = max(results["dataset (point in time)"]["peak_gb"], results["fit"]["peak_gb"])
    results.update({"facts": facts, "train_rows": len(frame), "holdout_rows": len(split.holdout.frame),
                    "best_iteration": fitted.best_iteration, "valid_pr_auc": fitted.validation["valid_pr_auc"],
                    "dataset_plus_fit_seconds": round(total, 1), "peak_gb": peak,
                    "ratio_dataset_to_facts_floor": round(results["dataset (point in time)"]["seconds"]
                                                          / results["floor: facts pass"]["seconds"], 2),
                    "ratio_fit_to_bare_lightgbm": round(results["fit"]["seconds"]
                                                        / results["floor: bare lightgbm"]["seconds"], 2),
                    "goal_met": total <= GOAL_SECONDS and peak <= GOAL_GB})
    print(f"dataset + fit: {total:,.0f} s (goal <= {GOAL_SECONDS} s), peak {peak:.2f} GB (goal <= {GOAL_GB} GB); "
          f"dataset / facts floor {results['ratio_dataset_to_facts_floor']}x, fit / bare LightGBM "
          f"{results['ratio_fit_to_bare_lightgbm']}x; valid PR AUC {fitted.validation['valid_pr_auc']:.3f}")
    write_results(RESULTS, results, Console())


if __name__ == "__main__":
    main()
