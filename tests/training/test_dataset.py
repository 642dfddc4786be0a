"""Training set: the target policy, the time split with its gap, and the leakage guard."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Literal

import pandas as pd
import pytest

from features.shop import default_shop_features
from features.specs import FeatureSet
from orderguard.enrich import Gazetteer
from orderguard.ingest.state import derive_order
from orderguard.schema import ClientInfo, Label, Order, OrderKey, OrderStatus, Party, Verdict
from orderguard.settings import TrainingSettings
from tests.factories import BASE_TIME, follow_up, make_event
from tests.training.shop import Shop, build_shop
from training.dataset import (
    Dataset,
    Exclusion,
    LeakageError,
    Split,
    TargetSource,
    assert_no_leakage,
    build_dataset,
    leakage,
    time_split,
)

T0 = BASE_TIME
CUTOFF = T0 + timedelta(days=30)
FRAUD_ON_DEVICE = "distinct_orders_fraud_by_device_90d"


@pytest.fixture(scope="module")
def features() -> FeatureSet:
    return default_shop_features()


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build()


def order(order_id: str, created: datetime, *, device: str | None = None, claim_after: timedelta | None = None,
          ) -> Order:
    """One site order by its own account (and device), optionally with a refund claim ``claim_after`` creation."""
    first = make_event(order_id=order_id, event_time=created, buyer=Party(account_id=f"acct-{order_id}"),
                       client=ClientInfo(device_id=device or f"dev-{order_id}"))
    events = [first]
    if claim_after is not None:
        events.append(follow_up(first, status=OrderStatus.REFUND_REQUESTED, after=claim_after))
    built = derive_order(events)
    assert built is not None
    return built


def label(order_id: str, verdict: Verdict, at: datetime) -> Label:
    return Label(OrderKey.parse(f"site:{order_id}"), verdict, at, "reviewer-1")


#: One order per case of the policy table: (order, labels, expected (target, source) or exclusion).
CASES: dict[str, tuple[Order, list[Label], tuple[int, TargetSource] | Exclusion]] = {
    "fraud": (order("A", T0), [label("A", Verdict.CONFIRMED_FRAUD, T0 + timedelta(days=1))],
              (1, TargetSource.LABEL)),
    "cleared": (order("B", T0 + timedelta(hours=1)), [label("B", Verdict.FALSE_POSITIVE, T0 + timedelta(days=2))],
                (0, TargetSource.LABEL)),
    "undecided": (order("C", T0 + timedelta(hours=2)),
                  [label("C", Verdict.NEEDS_INVESTIGATION, T0 + timedelta(days=1))], Exclusion.NEEDS_INVESTIGATION),
    "matured": (order("D", T0 + timedelta(hours=3)), [], (0, TargetSource.MATURED)),
    "young": (order("E", CUTOFF - timedelta(days=2)), [], Exclusion.IMMATURE),
    "claimed": (order("F", T0 + timedelta(hours=4), claim_after=timedelta(days=3)), [], Exclusion.REFUND_CLAIM),
    "claim_after_cutoff": (order("F2", T0 + timedelta(hours=5), claim_after=timedelta(days=31)), [],
                           (0, TargetSource.MATURED)),
    "after_cutoff": (order("G", CUTOFF + timedelta(hours=1)), [], Exclusion.AFTER_CUTOFF),
    "changed_mind": (order("H", T0 + timedelta(hours=6)),
                     [label("H", Verdict.CONFIRMED_FRAUD, T0 + timedelta(days=1)),
                      label("H", Verdict.FALSE_POSITIVE, T0 + timedelta(days=5))], (0, TargetSource.LABEL)),
    "label_after_cutoff": (order("I", T0 + timedelta(hours=7)),
                           [label("I", Verdict.CONFIRMED_FRAUD, CUTOFF + timedelta(hours=1))],
                           (0, TargetSource.MATURED)),
    "young_but_labelled": (order("J", CUTOFF - timedelta(days=1)),
                           [label("J", Verdict.CONFIRMED_FRAUD, CUTOFF - timedelta(hours=12))],
                           (1, TargetSource.LABEL)),
}


def _build(features: FeatureSet, gazetteer: Gazetteer, *,
           needs_investigation: Literal["drop", "positive"] = "drop") -> Dataset:
    orders = [case[0] for case in CASES.values()]
    labels = [lab for case in CASES.values() for lab in case[1]]
    settings = TrainingSettings(maturity="14d", needs_investigation=needs_investigation)
    return build_dataset(orders, labels, features, cutoff=CUTOFF, gazetteer=gazetteer, settings=settings)


def test_each_case_of_the_target_policy(features: FeatureSet, gazetteer: Gazetteer) -> None:
    dataset = _build(features, gazetteer)
    rows = {k: (int(t), s) for k, t, s in dataset.frame[["order_key", "target", "target_source"]].itertuples(
        index=False)}
    expected_excluded: dict[str, int] = {}
    for name, (placed, _, expected) in CASES.items():
        key = str(placed.key)
        if isinstance(expected, Exclusion):
            assert key not in rows, name
            expected_excluded[expected.value] = expected_excluded.get(expected.value, 0) + 1
        else:
            assert rows[key] == (expected[0], expected[1].value), name
    assert dataset.excluded == expected_excluded
    assert dataset.cutoff == CUTOFF
    assert all(lab.labeled_at <= CUTOFF for lab in dataset.labels)


def test_needs_investigation_can_count_as_fraud(features: FeatureSet, gazetteer: Gazetteer) -> None:
    dataset = _build(features, gazetteer, needs_investigation="positive")
    row = dataset.frame.set_index("order_key").loc["site:C"]
    assert (row["target"], row["target_source"], row["verdict"]) == (1, "label", "needs_investigation")
    assert "needs_investigation" not in dataset.excluded


def test_rows_keep_label_time_day_and_order(features: FeatureSet, gazetteer: Gazetteer) -> None:
    dataset = _build(features, gazetteer)
    frame = dataset.frame.set_index("order_key")
    assert frame.loc["site:H", "label_time"] == pd.Timestamp(T0 + timedelta(days=5))
    assert pd.isna(frame.loc["site:D", "label_time"])
    # BASE_TIME is 10:00 in Beijing on 2024-11-11; 16:00 UTC the same day is already the 12th there.
    assert frame.loc["site:A", "day"].isoformat() == "2024-11-11"
    late_evening = order("K", datetime(2024, 11, 11, 16, 30, tzinfo=T0.tzinfo))
    one = build_dataset([late_evening], [], features, cutoff=CUTOFF, gazetteer=gazetteer,
                        settings=TrainingSettings())
    assert one.frame["day"].iloc[0].isoformat() == "2024-11-12"
    assert set(dataset.orders) >= set(dataset.frame["order_key"])
    assert dataset.orders["site:A"].key == OrderKey.parse("site:A")
    vectors = dataset.vectors()
    assert len(vectors) == len(dataset.frame) and set(vectors[0]) == set(features.names)


def test_a_label_after_the_cutoff_feeds_no_feature(features: FeatureSet, gazetteer: Gazetteer) -> None:
    """A confirmed fraud on a device shows on the device's next order only if confirmed by the cutoff."""
    first, second = order("X", T0, device="shared"), order("Y", T0 + timedelta(days=10), device="shared")
    settings = TrainingSettings()
    cutoff = T0 + timedelta(days=12)

    def fraud_on_device(labeled_at: datetime) -> float:
        built = build_dataset([first, second], [label("X", Verdict.CONFIRMED_FRAUD, labeled_at)], features,
                              cutoff=cutoff, gazetteer=gazetteer, settings=settings)
        return float(built.candidates.set_index("order_key").loc["site:Y", FRAUD_ON_DEVICE])

    assert fraud_on_device(T0 + timedelta(days=2)) == 1.0
    assert fraud_on_device(cutoff + timedelta(hours=1)) == 0.0


def test_start_keeps_older_orders_as_history(features: FeatureSet, gazetteer: Gazetteer) -> None:
    early, late = order("P", T0, device="same"), order("Q", T0 + timedelta(hours=2), device="same")
    built = build_dataset([early, late], [], features, cutoff=CUTOFF, gazetteer=gazetteer,
                          settings=TrainingSettings(), start=T0 + timedelta(hours=1))
    assert built.frame["order_key"].tolist() == ["site:Q"]
    assert built.frame["count_orders_by_device_24h"].iloc[0] == 2.0
    assert built.excluded == {"before_start": 1}


# -- time split on a small simulated shop -------------------------------------------------------------------------

SPLIT_SETTINGS = TrainingSettings(maturity="1d", holdout_days=2, gap="12h")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return build_shop(tmp_path_factory.mktemp("training_shop"), days=6, orders_per_day=100, seed=3)


def _dataset(shop: Shop, labels: list[Label], features: FeatureSet, gazetteer: Gazetteer,
             cutoff: datetime | None = None) -> Dataset:
    return build_dataset(shop.orders, labels, features, cutoff=cutoff or shop.config.end_at, gazetteer=gazetteer,
                         settings=SPLIT_SETTINGS)


def _split(dataset: Dataset, gap: timedelta = timedelta(hours=12)) -> Split:
    return time_split(dataset, holdout_days=SPLIT_SETTINGS.holdout_days, gap=gap)


@pytest.fixture(scope="module")
def dataset(shop: Shop, features: FeatureSet, gazetteer: Gazetteer) -> Dataset:
    return _dataset(shop, shop.fraud_labels(), features, gazetteer)


def test_split_bounds_and_holdout_of_matured_orders(dataset: Dataset) -> None:
    split = _split(dataset)
    assert split.holdout_end == dataset.cutoff - timedelta(days=1)
    assert split.holdout_start == split.holdout_end - timedelta(days=2)
    assert split.train_end == split.holdout_start - timedelta(hours=12)
    holdout, train = split.holdout.frame, split.train.frame
    assert holdout["event_time"].min() >= pd.Timestamp(split.holdout_start)
    assert holdout["event_time"].max() <= pd.Timestamp(split.holdout_end)
    assert train["event_time"].max() < pd.Timestamp(split.train_end)
    # every holdout order has matured: both classes are there, honest ones not only as reviewer verdicts
    assert set(split.holdout.source_counts()) == {"label/1", "matured/0"}
    assert split.train.cutoff == split.train_end
    assert_no_leakage(split)
    assert leakage(split) == []


def test_holdout_ending_at_the_cutoff_holds_only_labelled_orders(dataset: Dataset) -> None:
    """With maturity >= holdout_days nothing in the last days has matured: why the default ends earlier."""
    split = time_split(dataset, holdout_days=1, gap=timedelta(hours=12), holdout_end=dataset.cutoff)
    assert set(split.holdout.frame["target_source"]) == {"label"}


@pytest.mark.parametrize("gap", [timedelta(0), timedelta(hours=12), timedelta(days=1)])
def test_the_gap_separates_train_from_holdout(dataset: Dataset, gap: timedelta) -> None:
    split = _split(dataset, gap)
    assert split.train.frame["event_time"].max() < pd.Timestamp(split.holdout_start - gap)
    between = dataset.frame[(dataset.frame["event_time"] >= pd.Timestamp(split.holdout_start - gap))
                            & (dataset.frame["event_time"] < pd.Timestamp(split.holdout_start))]
    used = set(split.train.frame["order_key"]) | set(split.holdout.frame["order_key"])
    assert not used & set(between["order_key"])
    if gap > timedelta(0):
        assert len(between) > 0
    assert_no_leakage(split)


def test_train_is_what_a_build_at_train_end_gives(shop: Shop, dataset: Dataset, features: FeatureSet,
                                                  gazetteer: Gazetteer) -> None:
    """Relabelled train rows = a dataset built from scratch at train_end: features, targets, label times."""
    split = _split(dataset)
    rebuilt = _dataset(shop, shop.fraud_labels(), features, gazetteer, cutoff=split.train_end)
    expected = rebuilt.frame[rebuilt.frame["event_time"] < pd.Timestamp(split.train_end)].reset_index(drop=True)
    assert len(expected) > 100
    pd.testing.assert_frame_equal(split.train.frame, expected)
    assert split.train.labels == rebuilt.labels


def test_labels_after_train_end_do_not_reach_training(shop: Shop, dataset: Dataset, features: FeatureSet,
                                                      gazetteer: Gazetteer) -> None:
    split = _split(dataset)
    honest = split.train.frame[split.train.frame["target_source"] == "matured"]["order_key"].iloc[0]
    holdout_honest = split.holdout.frame[split.holdout.frame["target_source"] == "matured"]["order_key"].iloc[0]
    late = [Label(OrderKey.parse(honest), Verdict.CONFIRMED_FRAUD, split.train_end + timedelta(hours=1), "r2"),
            Label(OrderKey.parse(holdout_honest), Verdict.CONFIRMED_FRAUD, dataset.cutoff + timedelta(hours=1), "r2")]
    relabelled = _dataset(shop, shop.fraud_labels() + late, features, gazetteer)
    moved = _split(relabelled)
    # the whole dataset (cutoff) knows the first label; training, judged at train_end, does not
    assert relabelled.frame.set_index("order_key").loc[honest, "target"] == 1
    train_row = moved.train.frame.set_index("order_key").loc[honest]
    assert (train_row["target"], train_row["target_source"]) == (0, "matured")
    assert all(lab.labeled_at <= moved.train_end for lab in moved.train.labels)
    # the second label came after the cutoff: not used anywhere
    holdout_row = moved.holdout.frame.set_index("order_key").loc[holdout_honest]
    assert (holdout_row["target"], holdout_row["target_source"]) == (0, "matured")
    assert_no_leakage(moved)


def test_the_leakage_guard_catches_each_kind_of_leak(dataset: Dataset) -> None:
    split = _split(dataset)
    train = split.train
    future_row = pd.concat([train.frame, split.holdout.frame.iloc[:1]], ignore_index=True)
    late_target = train.frame.copy()
    labelled = late_target.index[late_target["label_time"].notna()][0]
    late_target.loc[labelled, "label_time"] = pd.Timestamp(split.cutoff)
    late_label = dataclasses.replace(train, labels=(*train.labels, dataset.labels[-1]))
    leaks = {
        "row": dataclasses.replace(split, train=train.with_frame(future_row)),
        "target": dataclasses.replace(split, train=train.with_frame(late_target)),
        "label": dataclasses.replace(split, train=late_label),
        "gap": dataclasses.replace(split, gap=split.gap + timedelta(days=1)),
    }
    assert dataset.labels[-1].labeled_at > split.train_end
    for name, leaky in leaks.items():
        with pytest.raises(LeakageError):
            assert_no_leakage(leaky)
        assert leakage(leaky), name
