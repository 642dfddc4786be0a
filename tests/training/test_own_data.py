"""A data scientist's own history, with no Python: a transactions file from another system, its own columns and
its own card key, through ``orderguard ingest --mapping``, ``orderguard label import`` and ``orderguard train``.

The file is generated here so the fraud signal sits **only in the extra columns**: frauds pay with a few stolen
cards shared by many accounts, more often prepaid ones, and an upstream system scores them higher; accounts,
amounts and times look alike for frauds and honest orders. The shop's own feature set cannot see any of it;
the same set plus declared attributes and a declared card entity must.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli import app

REFERENCE = datetime(2024, 9, 1, tzinfo=UTC)
DAYS, PER_DAY = 45, 110

MAPPING = {
    "defaults": {"type": "order", "version": 1, "shop_id": "legacy", "status": "paid", "items.0.qty": 1},
    "columns": {
        "TransactionID": "order_id",
        "TransactionDT": {"to": ["created_at", "updated_at"],
                          "expr": f"add_seconds('{REFERENCE.isoformat()}', value)"},
        "TransactionAmt": [{"to": ["amounts.goods_fen", "amounts.paid_fen", "items.0.unit_price_fen"],
                            "expr": "round(value * 720)"},
                           {"to": "attributes.amount_usd"}],
        "ProductCD": {"to": "items.0.sku_id", "expr": "lookup('product', value, 'other')"},
        "uid": "user.user_id",
        "card_no": {"to": "attributes.card_no", "expr": "pii('card', value)"},
        "card_type": {"to": "attributes.card_type", "expr": "lower(value)"},
        "upstream_score": {"to": "attributes.upstream_score"},
    },
    "lookups": {"product": {"W": "web", "C": "card", "R": "retail"}},
}

DECLARE = {
    "attributes": [
        {"name": "amount_usd", "type": "number", "unit": "USD"},
        {"name": "card_type", "type": "category", "values": ["debit", "credit", "prepaid"]},
        {"name": "upstream_score", "type": "number"},
    ],
    "entities": [{"name": "card", "of": ["card_no"], "pii": True, "label": {"zh": "同一银行卡", "en": "this card"}}],
}
DECLARED_FEATURES = [
    {"entity": "card", "field": "users", "agg": "distinct", "window": "7d"},
    {"entity": "card", "field": "orders", "agg": "count", "window": "24h"},
    {"entity": "card", "field": "amount_usd", "agg": "sum", "window": "7d"},
    {"entity": "user", "field": "cards", "agg": "distinct", "window": "30d"},
]


def write_history(folder: Path, *, seed: int = 11) -> tuple[Path, Path]:
    """The transactions file and the label file another system would export."""
    rng = random.Random(seed)
    stolen = [f"5{rng.randrange(10**15):015d}" for _ in range(12)]
    owned = {u: f"4{rng.randrange(10**15):015d}" for u in range(900)}
    rows: list[dict[str, Any]] = []
    labels: list[dict[str, str]] = []
    for i in range(DAYS * PER_DAY):
        seconds = i * (86400 * DAYS // (DAYS * PER_DAY)) + rng.randrange(600)
        fraud = rng.random() < 0.05
        user = rng.randrange(900)
        rows.append({
            "TransactionID": f"T{i:06d}", "TransactionDT": seconds,
            "TransactionAmt": f"{rng.lognormvariate(3.5, 0.6):.2f}", "ProductCD": rng.choice("WWWCRX"),
            "uid": f"u{user}",
            "card_no": rng.choice(stolen) if fraud else owned[user],
            "card_type": ("Prepaid" if rng.random() < 0.6 else "Credit") if fraud else rng.choice(
                ["Debit", "Debit", "Credit", "prepaid" if rng.random() < 0.1 else "Debit"]),
            "upstream_score": f"{min(max(rng.gauss(55 if fraud else 35, 12), 0), 100):.1f}",
        })
        if fraud:
            at = REFERENCE + timedelta(seconds=seconds, hours=rng.uniform(6, 72))
            labels.append({"order_key": f"site:T{i:06d}", "verdict": "confirmed_fraud",
                           "labeled_at": at.isoformat(), "reviewer_id": "legacy-desk"})
    history = folder / "transactions.csv"
    with history.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    label_file = folder / "labels.csv"
    with label_file.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(labels[0]))
        writer.writeheader()
        writer.writerows(labels)
    return history, label_file


def own_feature_set(folder: Path) -> Path:
    """The shop's feature set (the rule pack cites it) plus the declared attributes, the card and its features."""
    data = {"extends": "shop", "declare": DECLARE, "features": DECLARED_FEATURES,
            "attributes": ["amount_usd", "card_type", "upstream_score"], "monotone": ["distinct_users_by_card_7d"]}
    path = folder / "features.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("own_data")
    history, labels = write_history(folder)
    mapping = folder / "mapping.yaml"
    mapping.write_text(yaml.safe_dump(MAPPING, allow_unicode=True), encoding="utf-8")
    env = {"ORDERGUARD_DATA_DIR": str(folder / "var"), "ORDERGUARD_TRAINING__MATURITY": "7d",
           "ORDERGUARD_TRAINING__HOLDOUT_DAYS": "10", "ORDERGUARD_TRAINING__GAP": "1d",
           "ORDERGUARD_TRAINING__GATE__MIN_HOLDOUT_POSITIVES": "10"}
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", str(history), "--channel", "site", "--mapping", str(mapping)], env=env)
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["label", "import", str(labels)], env=env)
    assert done.exit_code == 0, done.output
    return folder, env


def train_json(env: dict[str, str], *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["train", "--json", *extra], env=env)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return out


def test_the_mapping_keeps_the_extra_columns_as_attributes_and_hashes_the_card(
        ingested: tuple[Path, dict[str, str]]) -> None:
    from orderguard.ingest.orderlog import OrderLog
    from orderguard.schema import Channel, OrderKey

    folder, _ = ingested
    log = OrderLog.open(f"sqlite:///{folder / 'var' / 'orderguard.db'}")
    try:
        order = log.get(OrderKey(Channel.SITE, "T000001"))
    finally:
        log.close()
    assert order is not None
    attributes = dict(order.details.attributes)
    assert set(attributes) == {"amount_usd", "card_no", "card_type", "upstream_score"}
    assert len(str(attributes["card_no"])) == 32 and not str(attributes["card_no"]).startswith(("4", "5"))
    assert attributes["card_type"] in {"debit", "credit", "prepaid"}
    assert order.details.amounts.paid_fen == round(float(attributes["amount_usd"]) * 720)
    assert REFERENCE <= order.details.created_at < REFERENCE + timedelta(days=1)  # reference time + seconds
    assert order.details.lines[0].sku_id in {"web", "card", "retail", "other"}


def test_a_signal_only_in_the_extra_columns_is_learned(ingested: tuple[Path, dict[str, str]]) -> None:
    folder, env = ingested
    blind = train_json(env)
    seeing = train_json({**env, "ORDERGUARD_FEATURES__SPECS_PATH": str(own_feature_set(folder))})
    assert blind["holdout"] == seeing["holdout"]  # the same orders judged
    blind_ap, seeing_ap = blind["metrics"]["model_pr_auc"], seeing["metrics"]["model_pr_auc"]
    base_rate = seeing["metrics"]["holdout_positives"] / seeing["metrics"]["holdout_rows"]
    assert blind_ap < 3 * base_rate  # nothing to learn from accounts, amounts and times
    assert seeing_ap > 0.6 and seeing_ap > 4 * blind_ap
    # the served blend does not fall below the model the data scientist trained
    assert seeing["metrics"]["blend_pr_auc"] >= seeing_ap - 0.01
    assert all(0 <= r["weight"] <= 1 and "honest_rate" in r for r in seeing["rules"])
