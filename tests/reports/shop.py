"""A small simulated shop as the service would hold it after a few weeks: orders, verdicts, a champion, scores.

Generated, ingested, labelled (every abnormal order confirmed as fraud some hours after it
showed, a share of the honest orders the rules flag released as false positives), a small
champion registered with learned-style blend weights, and every order scored on arrival
by ``serving.backscore`` (what ``orderguard score-orders`` runs). The backtest and the
report are checked on it.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from features.derived import point_in_time_features
from features.settings import Settings
from features.shop import feature_set_from
from orderguard.clock import shop_day
from orderguard.enrich import Gazetteer
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.schema import Label, Verdict
from orderguard.settings import CampaignSettings, PolicySettings
from scoring.blend_weights import BlendWeights
from scoring.registry import ModelRef, Registry
from scoring.rules import rules_from
from serving.backscore import backscore
from tests.training.shop import Shop, build_shop
from training.backtest_data import Period

#: The campaign the shop's settings configure (its promotion day and the day after).
CAMPAIGN = "promo"


@dataclass(frozen=True)
class BacktestShop:
    """The shop, the settings it is served with, its champion and the whole simulated period."""

    root: Path
    settings: Settings
    shop: Shop
    champion: ModelRef
    period: Period
    labels: tuple[Label, ...]

    @property
    def env(self) -> dict[str, str]:
        """The environment that gives the command line these settings (same settings hash)."""
        campaign = self.settings.policy.campaigns[0]
        return {"ORDERGUARD_DATA_DIR": str(self.root),
                "ORDERGUARD_POLICY__CAMPAIGNS": f'[{{"name": "{campaign.name}", "first_day": '
                                                f'"{campaign.first_day}", "last_day": "{campaign.last_day}", '
                                                f'"band_shift": {campaign.band_shift}}}]'}


def _labels(shop: Shop) -> list[Label]:
    """Frauds confirmed; honest look-alikes (the orders rules flag wrongly) and every 40th plain honest order
    released as false positives, as reviewers who looked at them would."""
    labels = [label for label in shop.fraud_labels(seed=2) if label.labeled_at <= shop.config.end_at]
    honest = [o for o in shop.orders if not shop.truth[str(o.key)].is_abnormal]
    plain = [o for o in honest if shop.truth[str(o.key)].pattern == "normal"]
    lookalikes = [o for o in honest if shop.truth[str(o.key)].pattern != "normal"]
    for order in [*lookalikes, *plain[::40]]:
        at = order.details.created_at + timedelta(hours=6)
        if at <= shop.config.end_at:
            labels.append(Label(order.key, Verdict.FALSE_POSITIVE, at, "reviewer-2"))
    return labels


def _champion(settings: Settings, shop: Shop, labels: list[Label]) -> ModelRef:
    """A small booster on the shop's point-in-time features (truth as target), registered and promoted with
    blend weights that halve one rule: enough to exercise the served model path, fast to fit."""
    feature_set = feature_set_from(settings)
    frame = point_in_time_features(shop.orders, feature_set, labels=labels, gazetteer=Gazetteer.build())
    names = list(feature_set.names)
    y = np.array([shop.truth[k].is_abnormal for k in frame["order_key"]], dtype=np.float64)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "learning_rate": 0.2, "verbose": -1,
                         "min_data_in_leaf": 10, "seed": 1, "deterministic": True, "num_threads": 1},
                        lgb.Dataset(frame[names].to_numpy(dtype=np.float64), label=y, feature_name=names),
                        num_boost_round=25)
    first_rule = rules_from(settings, feature_set).rules[0].code
    weights = BlendWeights({first_rule: 0.5}, model_weight=0.8, fitted_on=len(y))
    registry = Registry.from_settings(settings)
    with registry.start_run(run_name="backtest shop") as run:
        run.log_metrics({"blend_pr_auc": 0.5, "blend_precision_review": 0.4, "blend_recall_review": 0.6})
        source = run.log_model(booster, input_example=frame[names], blend=weights)
    ref = registry.register(run.run_id, source=source, tags={"data_window": "test"})
    registry.set_champion(ref)
    return ref


def backtest_shop(root: Path, *, days: int = 8, orders_per_day: int = 60, seed: int = 5) -> BacktestShop:
    """Build the shop under ``root`` (see the module docstring)."""
    shop = build_shop(root, days=days, orders_per_day=orders_per_day, seed=seed)
    promo = shop.config.start + timedelta(days=shop.config.promo_day or 0)
    settings = Settings(data_dir=root, policy=PolicySettings(campaigns=[CampaignSettings(
        name=CAMPAIGN, first_day=promo, last_day=promo + timedelta(days=1), band_shift=10.0)]))
    labels = _labels(shop)
    log = OrderLog.open(settings.database_url)
    try:
        LabelLog(log.engine).add(labels, source="test", recorded_at=shop.config.end_at)
        champion = _champion(settings, shop, labels)
        backscore(settings, log, LabelLog(log.engine), champion=Registry.from_settings(settings),
                  since=datetime(1970, 1, 1, tzinfo=UTC))
    finally:
        log.close()
    first: date = shop_day(min(o.details.created_at for o in shop.orders))
    last: date = shop_day(max(o.details.created_at for o in shop.orders))
    return BacktestShop(root, settings, shop, champion, Period.of_days(first, last), tuple(labels))


def shared_backtest_shop(tmp_path_factory: pytest.TempPathFactory) -> BacktestShop:
    """One :func:`backtest_shop` per test session (per worker), shared by the backtest and the report tests:
    the first module to ask builds it under the session's base folder, the next reads it back."""
    root = tmp_path_factory.getbasetemp() / "backtest-shop"
    saved = root / "shop.pickle"
    if saved.exists():
        loaded: BacktestShop = pickle.loads(saved.read_bytes())
        return loaded
    if root.exists():  # a build that failed half-way: start again
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shop = backtest_shop(root)
    saved.write_bytes(pickle.dumps(shop))
    return shop
