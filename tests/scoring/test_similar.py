"""Similar labelled cases: neighbours share the reasons of the risk, lookups are exact, edges behave."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pytest

from features.shop import default_shop_features
from orderguard.errors import InvalidInputError
from orderguard.schema import Channel, OrderKey, Verdict
from scoring.model import LightGBMModel
from scoring.similar import (
    Case,
    CaseIndex,
    Neighbour,
    contribution_embedding,
    shared_reasons,
    standardised_embedding,
)

DEVICE = "count_orders_by_device_5m"  # group A is risky for this
VIRTUAL = "order_virtual_phone"  # group B is risky for this
NOISE = ("order_paid_fen", "time_since_orders_by_user_30d", "distinct_users_by_address_30d", "count_orders_by_ip_5m")
FEATURES = (DEVICE, VIRTUAL, *NOISE)
AT = datetime(2024, 11, 1, tzinfo=UTC)


def orders(n: int, group: str, *, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``n`` feature rows of one group: honest, A (device bursts) or B (virtual phones).

    The noise features vary far more than the risk features and are the same in every
    group, so raw values say little about the group; the model's reasons say it all.
    """
    device = rng.poisson(0.3, n).astype(float)
    virtual = np.zeros(n)
    if group == "A":
        device = rng.integers(5, 12, n).astype(float)
    if group == "B":
        virtual = np.ones(n)
    paid = rng.lognormal(9, 1.5, n).round()
    since = rng.exponential(86_400 * 20, n)
    since[rng.random(n) < 0.3] = np.nan
    address = rng.poisson(2.0, n).astype(float)
    ip = rng.poisson(3.0, n).astype(float)
    return np.column_stack([device, virtual, paid, since, address, ip])


def vector(row: npt.NDArray[np.float64]) -> dict[str, float]:
    return dict(zip(FEATURES, row.tolist(), strict=True))


def make_cases(groups: Sequence[tuple[str, npt.NDArray[np.float64]]]) -> list[Case]:
    cases: list[Case] = []
    for group, rows in groups:
        verdict = Verdict.FALSE_POSITIVE if group == "honest" else Verdict.CONFIRMED_FRAUD
        for row in rows:
            i = len(cases)
            cases.append(Case(OrderKey(Channel.SITE, f"{group}-{i}"), vector(row), verdict, f"reviewer-{i % 3}",
                              AT + timedelta(minutes=i), score=None, decision=None))
    return cases


def group_of(neighbour: Neighbour) -> str:
    return neighbour.case.order_key.channel_order_id.split("-")[0]


@pytest.fixture(scope="module")
def model() -> LightGBMModel:
    rng = np.random.default_rng(5)
    parts = {"honest": orders(3000, "honest", rng=rng), "A": orders(300, "A", rng=rng), "B": orders(300, "B", rng=rng)}
    x = np.vstack(list(parts.values()))
    y = np.concatenate([np.full(len(rows), float(group != "honest")) for group, rows in parts.items()])
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "verbose": -1, "seed": 5,
              "num_threads": 1, "deterministic": True, "min_data_in_leaf": 10}
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=list(FEATURES)), num_boost_round=60)
    return LightGBMModel.from_booster(booster, "test/1", feature_set=default_shop_features())


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    rng = np.random.default_rng(8)
    return make_cases([("honest", orders(200, "honest", rng=rng)), ("A", orders(40, "A", rng=rng)),
                       ("B", orders(40, "B", rng=rng))])


@pytest.fixture(scope="module")
def index(model: LightGBMModel, cases: list[Case]) -> CaseIndex:
    return CaseIndex.build(cases, contribution_embedding(model))


@pytest.mark.parametrize("group", ["A", "B"])
def test_neighbours_are_risky_for_the_same_reason(index: CaseIndex, group: str) -> None:
    queries = orders(25, group, rng=np.random.default_rng(13))
    for row in queries:
        found = index.nearest(vector(row), 5)
        assert [group_of(n) for n in found] == [group] * 5
        assert all(n.case.verdict is Verdict.CONFIRMED_FRAUD for n in found)


def test_shared_reasons_name_the_feature_that_drives_both(index: CaseIndex) -> None:
    for group, feature in (("A", DEVICE), ("B", VIRTUAL)):
        row = orders(1, group, rng=np.random.default_rng(21))[0]
        found = index.nearest(vector(row), 3)
        assert all(n.shared and n.shared[0] == feature for n in found), (group, [n.shared for n in found])


def test_similarity_is_a_cosine_sorted_descending(index: CaseIndex) -> None:
    rng = np.random.default_rng(3)
    for row in np.vstack([orders(10, "honest", rng=rng), orders(5, "A", rng=rng)]):
        found = index.nearest(vector(row), 10)
        similarities = [n.similarity for n in found]
        assert similarities == sorted(similarities, reverse=True)
        assert all(-1.0 <= s <= 1.0 for s in similarities)
        # exact: nothing outside the answer is more similar than its last neighbour
        everything = index.nearest(vector(row), len(index))
        assert [n.case.order_key for n in everything[:10]] == [n.case.order_key for n in found]


def test_an_order_is_its_own_nearest_case_unless_excluded(index: CaseIndex, cases: list[Case]) -> None:
    case = cases[210]  # a group-A case
    # decision-path contributions are piecewise constant: other A cases may tie with it at 1
    first = index.nearest(case.features, 1)[0]
    assert first.similarity == pytest.approx(1.0, abs=1e-5)
    assert group_of(first) == "A"
    continuous = CaseIndex.build(cases, standardised_embedding(FEATURES, cases))
    assert continuous.nearest(case.features, 1)[0].case == case
    for each in (index, continuous):
        found = each.nearest(case.features, 3, exclude=case.order_key)
        assert case.order_key not in {n.case.order_key for n in found}
        assert len(found) == 3


def test_exclude_drops_every_case_of_that_order() -> None:
    rows = orders(3, "A", rng=np.random.default_rng(2))
    key = OrderKey(Channel.JD, "relabelled")
    cases = [Case(key, vector(rows[0]), Verdict.NEEDS_INVESTIGATION, "r1", AT),
             Case(key, vector(rows[0]), Verdict.CONFIRMED_FRAUD, "r2", AT + timedelta(days=2)),
             Case(OrderKey(Channel.JD, "other"), vector(rows[1]), Verdict.CONFIRMED_FRAUD, "r1", AT)]
    index = CaseIndex.build(cases, standardised_embedding(FEATURES, cases))
    assert [n.case.order_key for n in index.nearest(vector(rows[0]), 5, exclude=key)] == [cases[2].order_key]
    only = CaseIndex.build(cases[:2], standardised_embedding(FEATURES, cases[:2]))
    assert only.nearest(vector(rows[0]), 5, exclude=key) == []


def fallback_orders(n: int, group: str, *, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Orders whose raw values carry the group (no model to tell noise from reasons)."""
    rows = orders(n, group, rng=rng)
    rows[:, 2] = rng.lognormal(9, 0.3, n).round()  # ordinary baskets
    if group == "A":
        rows[:, 5] = rows[:, 0] + rng.poisson(1.0, n)  # the burst shows on the IP too
    if group == "B":
        rows[:, 3] = np.nan  # burner accounts: no earlier order
        rows[:, 4] = rng.integers(6, 10, n)  # shipping to one shared address
    return rows


def test_standardised_fallback_without_a_model() -> None:
    rng = np.random.default_rng(17)
    cases = make_cases([(g, fallback_orders(n, g, rng=rng)) for g, n in (("honest", 150), ("A", 30), ("B", 30))])
    index = CaseIndex.build(cases, standardised_embedding(FEATURES, cases))
    assert index.embedding.name == "standardised features"
    assert len(index) == 210
    for group in ("A", "B"):
        found = [[group_of(n) for n in index.nearest(vector(row), 5)] for row in fallback_orders(10, group, rng=rng)]
        assert all(groups[0] == group for groups in found)
        assert sum(groups.count(group) for groups in found) >= 0.9 * 5 * len(found)


def test_standardised_embedding_centres_on_the_cases_and_marks_missing_values() -> None:
    cases = make_cases([("honest", np.array([[0.0, 0, 1, 10, 1, 1], [1.0, 0, 3, np.nan, 1, 1],
                                             [3.0, 1, 7, 30, 1, 1]]))])
    embedding = standardised_embedding(FEATURES, cases)
    rows = embedding.embed([c.features for c in cases])
    assert rows.shape == (3, 2 * len(FEATURES))
    assert np.isfinite(rows).all()
    np.testing.assert_allclose(rows[:, : len(FEATURES)].mean(axis=0), 0.0, atol=1e-12)
    assert rows[1, 3] == 0.0  # missing -> the mean
    assert rows[1, len(FEATURES) + 3] > 0 > rows[0, len(FEATURES) + 3]  # its indicator
    assert (rows[:, [4, 5]] == 0).all()  # constant features carry nothing


@pytest.mark.parametrize("kind", ["contributions", "standardised"])
def test_missing_and_nan_features_are_handled(kind: str, model: LightGBMModel, cases: list[Case]) -> None:
    embedding = contribution_embedding(model) if kind == "contributions" else standardised_embedding(FEATURES, cases)
    index = CaseIndex.build(cases, embedding)
    for features in ({}, {f: math.nan for f in FEATURES}, {DEVICE: 9.0, "time_since_orders_by_user_30d": math.nan},
                     {DEVICE: 9.0, "not_a_feature": 1.0}):
        found = index.nearest(features, 5)
        assert len(found) == 5
        assert all(math.isfinite(n.similarity) for n in found)
    burst = index.nearest({DEVICE: 9.0}, 5)
    assert [group_of(n) for n in burst] == ["A"] * 5


def test_k_larger_than_the_index_returns_every_case(index: CaseIndex, cases: list[Case]) -> None:
    found = index.nearest(vector(orders(1, "B", rng=np.random.default_rng(1))[0]), 10_000)
    assert len(found) == len(cases)
    assert {n.case.order_key for n in found} == {c.order_key for c in cases}


def test_empty_index(model: LightGBMModel) -> None:
    for embedding in (contribution_embedding(model), standardised_embedding(FEATURES, [])):
        index = CaseIndex.build([], embedding)
        assert len(index) == 0
        assert index.nearest({DEVICE: 3.0}, 5) == []
        assert index.nearest({DEVICE: 3.0}, 5, exclude=OrderKey(Channel.SITE, "x")) == []


def test_k_must_be_positive(index: CaseIndex) -> None:
    with pytest.raises(InvalidInputError, match="`k` must be at least 1"):
        index.nearest({DEVICE: 3.0}, 0)


def test_ties_go_to_the_earlier_case() -> None:
    row = vector(orders(1, "A", rng=np.random.default_rng(4))[0])
    other = vector(orders(1, "honest", rng=np.random.default_rng(4))[0])
    cases = [Case(OrderKey(Channel.SITE, f"t{i}"), row if i % 2 else other, Verdict.CONFIRMED_FRAUD, "r", AT)
             for i in range(9)]
    index = CaseIndex.build(cases, standardised_embedding(FEATURES, cases))
    found = index.nearest(row, 3)
    assert [n.case.order_key.channel_order_id for n in found] == ["t1", "t3", "t5"]
    assert len({n.similarity for n in found}) == 1


def test_embedding_names(model: LightGBMModel, index: CaseIndex) -> None:
    assert index.embedding.name == "contributions:test/1"
    assert contribution_embedding(model).features == model.feature_names


def test_shared_reasons_needs_both_to_push_up() -> None:
    names = ["a", "b", "c"]
    assert shared_reasons([1.0, -1.0, 0.2], [0.5, 2.0, 0.4], names) == ["a", "c"]
    assert shared_reasons([1.0, -1.0, 0.2], [-0.5, -2.0, -0.4], names) == []
    assert shared_reasons(np.array([1.0, 1.0, 1.0, 9.0]), np.array([1.0, 2.0, 3.0, 9.0]), names, top=2) == ["a", "b"]
