"""What training refuses before any feature is built: a rule pack the feature set cannot serve, and fraud labels
that come later than the maturity window (they would train as honest)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from features.settings import FeatureStoreSettings, Settings
from features.shop import SHOP_FEATURES_PATH
from orderguard.errors import ConfigError
from orderguard.schema import Order, Verdict
from orderguard.settings import TrainingSettings
from tests.factories import BASE_TIME, make_label, make_order, refunded
from training.pipeline import prepare
from training.preflight import LabelDelayError, label_delays


def _orders(n: int) -> list[Order]:
    return [make_order(f"o{i}", created_at=BASE_TIME + timedelta(hours=i)) for i in range(n)]


def test_a_feature_set_without_the_rules_features_fails_before_any_order_is_read(tmp_path: Path) -> None:
    shop = yaml.safe_load(SHOP_FEATURES_PATH.read_text(encoding="utf-8"))
    shop["features"] = [f for f in shop["features"] if f["entity"] != "device"]
    shop["monotone"] = [n for n in shop["monotone"] if "device" not in n]
    custom = tmp_path / "features.yaml"
    custom.write_text(yaml.safe_dump(shop), encoding="utf-8")
    settings = Settings(data_dir=tmp_path, features=FeatureStoreSettings(specs_path=custom))
    not_orders = cast(list[Order], [object()])  # reading any order would fail differently
    with pytest.raises(ConfigError) as caught:
        prepare(settings, orders=not_orders, labels=[])
    assert "count_orders_by_device_5m" in str(caught.value)


def test_late_fraud_labels_are_measured_from_the_order_or_its_claim() -> None:
    orders = _orders(10)
    claimed = refunded(orders[0], when=BASE_TIME + timedelta(days=20))
    orders[0] = claimed
    labels = [make_label(o, when=o.details.created_at + timedelta(days=3 if i % 2 else 30))
              for i, o in enumerate(orders)]
    labels[0] = make_label(claimed, when=BASE_TIME + timedelta(days=22))  # 2 days after the claim: in time
    labels.append(make_label(orders[1], when=BASE_TIME + timedelta(days=60), verdict=Verdict.FALSE_POSITIVE))
    delays = label_delays(orders, labels, maturity=timedelta(days=14))
    assert (delays.frauds, delays.late) == (10, 4)
    assert delays.share == pytest.approx(0.4) and delays.p95_days > 14


def test_training_refuses_late_labels_naming_the_setting(tmp_path: Path) -> None:
    orders = _orders(20)
    labels = [make_label(o, when=o.details.created_at + timedelta(days=30 if i < 5 else 1))
              for i, o in enumerate(orders)]
    settings = Settings(data_dir=tmp_path, training=TrainingSettings(maturity="14d"))
    with pytest.raises(LabelDelayError) as caught:
        prepare(settings, orders=orders, labels=labels)
    assert caught.value.field == "training.maturity"
    assert "25.0% of 20 fraud labels came more than 14 days after their order" in str(caught.value)
    assert "ORDERGUARD_TRAINING__MATURITY=31d" in str(caught.value)


def test_the_cli_says_it_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    shop = cast(dict[str, Any], yaml.safe_load(SHOP_FEATURES_PATH.read_text(encoding="utf-8")))
    shop["monotone"] = ["no_such_feature"]
    custom = tmp_path / "features.yaml"
    custom.write_text(yaml.safe_dump(shop), encoding="utf-8")
    result = CliRunner().invoke(app, ["train"], env={"ORDERGUARD_DATA_DIR": str(tmp_path),
                                                     "ORDERGUARD_FEATURES__SPECS_PATH": str(custom)})
    assert result.exit_code == 2, result.output
    assert "monotone[0]" in result.output and len(result.output.strip().splitlines()) == 1
