"""Similar past cases for the review desk: quality on the simulator's ground truth, lookup time at 100,000 cases.

Set-up (not timed): a simulated shop (``simulate``, 42 days of ~400 orders by default,
the promotion day included) is written as channel files and imported into a SQLite
order log (``simulate.shop.ingest_shop``); the simulated review desk
(``simulate.reviews.simulated_labels``) labels it: every abnormal order confirmed
1-7 days after it was placed, half the honest look-alikes and 2% of ordinary orders
cleared. The point-in-time features of every order come from the training dataset
(``training.dataset.build_dataset``). The period is cut at ``--reference-days``:

* **cases**: orders placed before the cut whose label was known at the cut (newest
  verdict), with their features: what the desk can show;
* **model**: LightGBM fitted by ``training.fit`` on the dataset as known at the cut
  (``training.dataset.relabel``): the champion the desk would have;
* **queries**: the orders placed after the cut that the served decision step
  (``scoring.judge``: default rules + model, default policy) does not approve: the
  orders a reviewer opens.

**(a) Quality.** For each query, its 5 nearest cases. An abusive query's neighbour
counts when it has the *same abuse pattern* in the ground truth (a device ring next to
device rings); an honest query's (a flagged look-alike) when it is honest too. The
figure is the share that count, averaged over queries, for:

* the contribution embedding (``scoring.similar.contribution_embedding``, decision-path
  contributions: what the desk runs with a champion), and the same with exact TreeSHAP
  contributions (``pred_contrib``; slower, for comparison);
* the model-free fallback (``scoring.similar.standardised_embedding``: signed log,
  z-scores, missing indicators, cosine);
* baseline **plain NN**: Euclidean nearest neighbours on plain z-scores of the raw
  features (NaN → mean);
* baseline **random**: 5 cases drawn at random, as its exact expectation (the share of
  cases that would count), so no sampling noise.

Also shown: the share of neighbours whose verdict agrees with the query's truth (fraud
next to fraud, honest next to honest), split by abusive and honest queries, and the
top-1 share. Ring members placed on both sides of the cut are legitimately each
other's neighbours (the desk *should* show the ring's earlier orders); the share of
neighbours from the very same ring or episode is printed so it can be discounted.

**(b) Speed.** ``--cases`` (100,000) cases made by drawing real feature vectors of the
period at random and jittering every present value by ±5% (Gaussian), embedded with
the contribution embedding; then ``CaseIndex.nearest(features, k=5)`` on
``--lookups`` held-out vectors (after 50 warm-up calls), end to end: the query's
contributions, the cosines, the top 5 and their shared reasons. Beside it, on the same
float32 matrix, the floors: a bare ``matrix @ query`` (numpy), and bare top-5
(product + ``argpartition``); and scikit-learn's ``NearestNeighbors(algorithm="brute",
metric="cosine")`` on the same rows, for the choice of library. The model-free index
(twice the columns: indicators) is timed the same way. Ratios are to the bare product.

The machine is shared: times move with its load; the floors are measured in the same
run, so the ratios are the figures to compare between runs.

Run: ``python -m bench.desk [--days 42] [--reference-days 28] [--cases 100000] [--lookups 1000]``;
figures print as tables and go to ``bench/results/desk.json``.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
import sklearn
from rich.console import Console
from rich.table import Table
from sklearn.neighbors import NearestNeighbors

from bench.report import write_results
from features.settings import Settings
from features.shop import feature_set_from
from features.specs import FeatureSet
from orderguard.enrich import Gazetteer
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Label, OrderKey
from scoring.judge import judge
from scoring.model import Attribution, LightGBMModel
from scoring.policy import Decision, policy_from
from scoring.rules import rules_from
from scoring.similar import Case, CaseIndex, Embedding, contribution_embedding, standardised_embedding
from simulate import SimConfig
from simulate.reviews import TruthEntry, creation_times, simulated_labels
from simulate.shop import ingest_shop
from training.dataset import build_dataset, newest_label, relabel
from training.fit import fit

RESULTS = Path(__file__).parent / "results" / "desk.json"
SECRET = b"bench-desk"
MODEL_VERSION = "bench/1"
K = 5
WARMUP = 50
JITTER = 0.05
console = Console(width=140)


# -- the shop -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Desk:
    """The simulated shop cut at ``cut``: labelled cases before it, flagged queries after it.

    Attributes:
        cases: labelled orders placed before the cut, labels known at the cut.
        queries: feature vectors of the flagged orders placed after the cut.
        query_truth: ground truth of each query.
        pool: feature vectors of every order of the period (the speed part draws from them).
        names: the features, in the columns of ``pool``.
        feature_set: the served feature set (phrases of the model's features).
        truth: order key → ground truth.
        model: the LightGBM model fitted as of the cut.
        booster: its booster.
        info: sizes and model figures for the report.
    """

    cases: list[Case]
    queries: list[dict[str, float]]
    query_truth: list[TruthEntry]
    pool: npt.NDArray[np.float64]
    names: tuple[str, ...]
    feature_set: FeatureSet
    truth: Mapping[str, TruthEntry]
    model: LightGBMModel
    booster: lgb.Booster
    info: dict[str, Any]


def simulated_desk(root: Path, *, days: int, orders_per_day: int, reference_days: int, seed: int) -> Desk:
    """Simulate, import, label, build features, fit and cut (see the module docstring)."""
    started = time.perf_counter()
    settings = Settings(data_dir=root)
    config = SimConfig.for_period(seed=seed, days=days, orders_per_day=orders_per_day)
    shop = ingest_shop(config, root, secret=SECRET, pii=settings.pii)
    log = OrderLog.open(shop.database_url)
    try:
        orders = list(log.iter_orders())
        created = creation_times(log.engine, until=config.end_at)
    finally:
        log.close()
    labels = simulated_labels(shop.truth.values(), created_at=created, until=config.end_at, seed=seed)
    ingested = time.perf_counter() - started
    feature_set = feature_set_from(settings)
    dataset = build_dataset(orders, labels, feature_set, cutoff=config.end_at, gazetteer=Gazetteer.build(),
                            settings=settings.training)
    names = dataset.feature_names
    cut = config.start_at + timedelta(days=reference_days)
    train = relabel(dataset, at=cut, before=cut)
    fitted = fit(train, settings=settings.training, feature_names=list(names), monotone=feature_set.monotone)
    policy = policy_from(settings.policy)
    model = LightGBMModel.from_booster(fitted.booster, MODEL_VERSION, feature_set=feature_set, policy=policy)

    candidates = dataset.candidates
    matrix = np.asarray(candidates[list(names)].to_numpy(dtype=np.float64, na_value=math.nan), dtype=np.float64)
    keys = candidates["order_key"].tolist()
    times = [t.to_pydatetime() for t in candidates["event_time"]]
    known: dict[str, list[Label]] = {}
    for label in labels:
        if label.labeled_at <= cut:
            known.setdefault(str(label.key), []).append(label)
    rules = rules_from(settings, feature_set)
    cases: list[Case] = []
    later: list[int] = []
    for i, (key, at) in enumerate(zip(keys, times, strict=True)):
        if at < cut:
            newest = newest_label(known.get(key, ()), cut)
            if newest is not None:
                cases.append(Case(OrderKey.parse(key), dict(zip(names, matrix[i].tolist(), strict=True)),
                                  newest.verdict, newest.reviewer_id, newest.labeled_at))
        else:
            later.append(i)
    probabilities = np.asarray(fitted.booster.predict(matrix[later]) if later else [], dtype=np.float64)
    queries: list[dict[str, float]] = []
    query_truth: list[TruthEntry] = []
    decisions: Counter[str] = Counter()
    for i, probability in zip(later, probabilities.tolist(), strict=True):
        vector = dict(zip(names, matrix[i].tolist(), strict=True))
        decision = judge(dataset.orders[keys[i]], vector, rules=rules, policy=policy, at=times[i],
                         probability=probability).decision
        decisions[decision.value] += 1
        if decision is not Decision.APPROVE:
            queries.append(vector)
            query_truth.append(shop.truth[keys[i]])
    info = {
        "orders": len(orders), "labels": len(labels), "cut": cut.isoformat(), "cases": len(cases),
        "case_verdicts": dict(Counter(c.verdict.value for c in cases)),
        "later_orders": len(later), "later_decisions": dict(decisions), "queries": len(queries),
        "queries_abusive": sum(t.is_abnormal for t in query_truth),
        "model": {"trees": fitted.booster.num_trees(), **{k: round(v, 4) for k, v in fitted.validation.items()}},
        "setup_seconds": {"simulate_and_ingest": round(ingested, 1),
                          "features_fit_cut": round(time.perf_counter() - started - ingested, 1)},
    }
    return Desk(cases, queries, query_truth, matrix, tuple(names), feature_set, shop.truth, model, fitted.booster,
                info)


# -- (a) quality --------------------------------------------------------------------------------------------------


def _counts(truth: TruthEntry, neighbour: TruthEntry) -> bool:
    """Whether a neighbour counts for a query: same abuse pattern, or honest beside an honest query."""
    return neighbour.pattern == truth.pattern if truth.is_abnormal else not neighbour.is_abnormal


@dataclass(frozen=True, slots=True)
class Quality:
    """The neighbour shares of one method over every query (see the module docstring)."""

    method: str
    match: float
    match_abusive: float
    match_honest: float
    verdict_agrees: float
    top1: float
    same_group: float
    build_seconds: float

    def row(self) -> dict[str, float | str]:
        return {"method": self.method, "match_at_5": round(self.match, 3),
                "same_pattern_at_5_abusive": round(self.match_abusive, 3),
                "honest_at_5_honest": round(self.match_honest, 3), "verdict_agrees_at_5": round(self.verdict_agrees, 3),
                "match_at_1": round(self.top1, 3), "same_group_at_5": round(self.same_group, 3),
                "build_seconds": round(self.build_seconds, 2)}


def _summarise(method: str, desk: Desk, shares: Sequence[tuple[float, float, float, float]],
               build_seconds: float) -> Quality:
    """``shares`` per query: (match@5, verdict agrees@5, match@1, same group@5)."""
    table = np.asarray(shares, dtype=np.float64).reshape(-1, 4)
    abusive = np.asarray([t.is_abnormal for t in desk.query_truth], dtype=bool)

    def mean(values: npt.NDArray[np.float64]) -> float:
        return float(values.mean()) if values.size else math.nan

    return Quality(method, mean(table[:, 0]), mean(table[abusive, 0]), mean(table[~abusive, 0]), mean(table[:, 1]),
                   mean(table[:, 2]), mean(table[:, 3]), build_seconds)


def index_quality(method: str, desk: Desk, embedding: Embedding) -> Quality:
    """Build the index over the cases with ``embedding`` and score every query's 5 nearest."""
    started = time.perf_counter()
    index = CaseIndex.build(desk.cases, embedding)
    built = time.perf_counter() - started
    shares = []
    for vector, truth in zip(desk.queries, desk.query_truth, strict=True):
        found = [desk.truth[str(n.case.order_key)] for n in index.nearest(vector, K)]
        shares.append(_shares(truth, found))
    return _summarise(method, desk, shares, built)


def _shares(truth: TruthEntry, found: Sequence[TruthEntry]) -> tuple[float, float, float, float]:
    if not found:
        return (math.nan,) * 4
    counted = [_counts(truth, n) for n in found]
    agrees = [n.is_abnormal == truth.is_abnormal for n in found]
    group = [bool(truth.group_id) and n.group_id == truth.group_id for n in found]
    return (sum(counted) / len(found), sum(agrees) / len(found), float(counted[0]), sum(group) / len(found))


def plain_quality(desk: Desk) -> Quality:
    """Baseline: Euclidean nearest neighbours on plain z-scores of the raw features (NaN → the mean)."""
    started = time.perf_counter()
    names = list(desk.names)
    cases = np.asarray([[c.features.get(n, math.nan) for n in names] for c in desk.cases], dtype=np.float64)
    center = np.nanmean(cases, axis=0)
    scale = np.nanstd(cases, axis=0)
    scale[~(scale > 1e-12)] = 1.0
    center = np.nan_to_num(center)
    z = np.nan_to_num((cases - center) / scale)
    built = time.perf_counter() - started
    shares = []
    for vector, truth in zip(desk.queries, desk.query_truth, strict=True):
        q = np.nan_to_num((np.asarray([vector.get(n, math.nan) for n in names]) - center) / scale)
        distance = ((z - q) ** 2).sum(axis=1)
        top = np.argsort(distance, kind="stable")[:K]
        shares.append(_shares(truth, [desk.truth[str(desk.cases[i].order_key)] for i in top.tolist()]))
    return _summarise("baseline: plain NN (z-scores, Euclidean)", desk, shares, built)


def random_quality(desk: Desk) -> Quality:
    """Baseline: 5 random cases, as the exact expectation of each share (top-1 equals the @5 share)."""
    found = [desk.truth[str(c.order_key)] for c in desk.cases]
    n = len(found)
    patterns = Counter(t.pattern for t in found if t.is_abnormal)
    honest = sum(not t.is_abnormal for t in found)
    groups = Counter(t.group_id for t in found if t.group_id)
    shares = []
    for truth in desk.query_truth:
        match = (patterns[truth.pattern] if truth.is_abnormal else honest) / n
        agrees = (n - honest if truth.is_abnormal else honest) / n
        group = groups[truth.group_id] / n if truth.group_id else 0.0
        shares.append((match, agrees, match, group))
    return _summarise("baseline: 5 random labelled cases", desk, shares, 0.0)


def quality(desk: Desk, *, shap: bool) -> list[Quality]:
    """Every method of part (a)."""
    results = [index_quality("contributions, decision path (served)", desk, contribution_embedding(desk.model))]
    if shap:
        exact = LightGBMModel.from_booster(desk.booster, MODEL_VERSION, feature_set=desk.feature_set,
                                           attribution=Attribution.SHAP)
        results.append(index_quality("contributions, exact TreeSHAP", desk, contribution_embedding(exact)))
    results.append(index_quality("fallback: standardised features (no model)", desk,
                                 standardised_embedding(desk.names, desk.cases)))
    results.append(plain_quality(desk))
    results.append(random_quality(desk))
    return results


# -- (b) speed ------------------------------------------------------------------------------------------------------


class RowView(Mapping[str, float]):
    """A feature vector read from a row of a shared matrix (100,000 dicts would cost ~0.7 GB)."""

    __slots__ = ("_columns", "_row")

    def __init__(self, row: npt.NDArray[np.float64], columns: Mapping[str, int]) -> None:
        self._row = row
        self._columns = columns

    def __getitem__(self, name: str) -> float:
        return float(self._row[self._columns[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def synthetic_cases(desk: Desk, *, count: int, seed: int) -> list[Case]:
    """``count`` cases: real vectors of the period drawn at random, present values jittered by ±5%."""
    rng = np.random.default_rng(seed)
    rows = desk.pool[rng.integers(0, len(desk.pool), count)]
    rows = rows * (1.0 + JITTER * rng.standard_normal(rows.shape))  # NaN stays NaN
    columns = {name: j for j, name in enumerate(desk.names)}
    templates = [desk.cases[i] for i in rng.integers(0, len(desk.cases), count).tolist()]
    return [Case(OrderKey(t.order_key.channel, f"{t.order_key.channel_order_id}-{i}"), RowView(rows[i], columns),
                 t.verdict, t.reviewer_id, t.labeled_at) for i, t in enumerate(templates)]


@dataclass(frozen=True, slots=True)
class Timings:
    """Nanosecond timings of one path."""

    name: str
    ns: list[int]

    def q(self, quantile: float) -> float:
        """Quantile in milliseconds."""
        ordered = sorted(self.ns)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] / 1e6

    def summary(self) -> dict[str, float | str | int]:
        return {"name": self.name, "n": len(self.ns), "p50_ms": round(self.q(0.5), 3), "p95_ms": round(self.q(0.95), 3),
                "p99_ms": round(self.q(0.99), 3), "max_ms": round(max(self.ns) / 1e6, 3),
                "mean_ms": round(sum(self.ns) / len(self.ns) / 1e6, 3)}


def timed(name: str, call: Callable[[Any], object], inputs: Sequence[Any]) -> Timings:
    """``call`` on each input after ``WARMUP`` untimed calls."""
    clock = time.perf_counter_ns
    for item in inputs[:WARMUP]:
        call(item)
    ns: list[int] = []
    for item in inputs:
        start = clock()
        call(item)
        ns.append(clock() - start)
    return Timings(name, ns)


def speed(desk: Desk, *, count: int, lookups: int, seed: int) -> dict[str, Any]:
    """Part (b): see the module docstring."""
    cases = synthetic_cases(desk, count=count, seed=seed)
    rng = np.random.default_rng(seed + 1)
    pool = desk.queries or [dict(zip(desk.names, row.tolist(), strict=True)) for row in desk.pool[:lookups]]
    vectors = [pool[i] for i in rng.integers(0, len(pool), lookups).tolist()]

    started = time.perf_counter()
    index = CaseIndex.build(cases, contribution_embedding(desk.model))
    build_contrib = time.perf_counter() - started
    started = time.perf_counter()
    fallback = CaseIndex.build(cases, standardised_embedding(desk.names, cases))
    build_fallback = time.perf_counter() - started

    matrix = index.matrix
    queries = [index.embed(v) for v in vectors]
    knn = NearestNeighbors(n_neighbors=K, algorithm="brute", metric="cosine").fit(matrix)

    def top5(q: npt.NDArray[np.float32]) -> object:
        return np.argpartition(-(matrix @ q), K - 1)[:K]

    gc.collect()
    figures = [
        timed(f"CaseIndex.nearest, contributions, {count:,} cases (end to end)", lambda v: index.nearest(v, K),
              vectors),
        timed("  of which the query's contributions (LightGBMModel.explain)", index.embed, vectors),
        timed(f"CaseIndex.nearest, fallback (standardised, {fallback.matrix.shape[1]} columns)",
              lambda v: fallback.nearest(v, K), vectors),
        timed("sklearn NearestNeighbors(brute, cosine).kneighbors, same rows",
              lambda q: knn.kneighbors(q.reshape(1, -1), K), queries),
        timed("floor: bare top-5 (matrix @ q + argpartition)", top5, queries),
        timed("floor: bare numpy matrix @ q", lambda q: matrix @ q, queries),
    ]
    floor = figures[-1].q(0.5)
    return {"cases": count, "lookups": lookups, "dimensions": int(matrix.shape[1]),
            "matrix_mb": round(matrix.nbytes / 2**20, 1), "build_seconds_contributions": round(build_contrib, 1),
            "build_seconds_fallback": round(build_fallback, 1),
            "figures": [t.summary() | {"x_floor_p50": round(t.q(0.5) / floor, 1) if floor else None}
                        for t in figures]}


# -- report ---------------------------------------------------------------------------------------------------------


def _report_quality(results: Sequence[Quality], desk: Desk) -> None:
    info = desk.info
    table = Table(title=f"(a) 5 nearest labelled cases of {info['queries']} flagged orders "
                        f"({info['queries_abusive']} abusive), from {info['cases']} cases before the cut",
                  title_justify="left")
    for column in ("method", "match@5", "abusive: same pattern@5", "honest: honest@5", "verdict agrees@5",
                   "match@1", "same ring@5", "× random"):
        table.add_column(column, justify="left" if column == "method" else "right")
    random_match = results[-1].match
    for r in results:
        table.add_row(r.method, f"{r.match:.3f}", f"{r.match_abusive:.3f}", f"{r.match_honest:.3f}",
                      f"{r.verdict_agrees:.3f}", f"{r.top1:.3f}", f"{r.same_group:.3f}",
                      f"{r.match / random_match:.1f}" if random_match else "-")
    console.print(table)


def _report_speed(part: dict[str, Any]) -> None:
    table = Table(title=f"(b) lookup of the 5 nearest among {part['cases']:,} cases ({part['dimensions']} dimensions, "
                        f"{part['matrix_mb']} MB float32), {part['lookups']} lookups", title_justify="left")
    for column in ("path", "p50 ms", "p95 ms", "p99 ms", "max ms", "× floor p50"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for f in part["figures"]:
        table.add_row(f["name"], f"{f['p50_ms']:.3f}", f"{f['p95_ms']:.3f}", f"{f['p99_ms']:.3f}",
                      f"{f['max_ms']:.3f}", f"{f['x_floor_p50']:.1f}")
    console.print(table)
    console.print(f"index build: contributions {part['build_seconds_contributions']} s, "
                  f"fallback {part['build_seconds_fallback']} s")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure, print and write the results (see the module docstring)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="og-desk-") as tmp:
        desk = simulated_desk(Path(tmp), days=args.days, orders_per_day=args.orders_per_day,
                              reference_days=args.reference_days, seed=args.seed)
    info = desk.info
    console.print(f"shop: {args.days} days × ~{args.orders_per_day} orders/day (seed {args.seed}), {info['orders']} "
                  f"orders, {info['labels']} labels; cut after day {args.reference_days}: {info['cases']} labelled "
                  f"cases {info['case_verdicts']}; model {info['model']['trees']} trees (validation PR AUC "
                  f"{info['model']['valid_pr_auc']}); after the cut {info['later_orders']} orders "
                  f"{info['later_decisions']}; set-up {time.perf_counter() - started:.0f} s")
    part_a = quality(desk, shap=not args.skip_shap)
    _report_quality(part_a, desk)
    part_b = speed(desk, count=args.cases, lookups=args.lookups, seed=args.seed)
    _report_speed(part_b)
    result = {
        "bench": "desk", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "lightgbm": lgb.__version__, "numpy": np.__version__,
        "sklearn": sklearn.__version__, "pandas": pd.__version__, "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "shop": {"days": args.days, "orders_per_day": args.orders_per_day, "seed": args.seed,
                 "reference_days": args.reference_days} | info,
        "quality": {"k": K, "methods": [q.row() for q in part_a]},
        "speed": part_b,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results(RESULTS, result, console)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=42, help="simulated days (one is a promotion day)")
    parser.add_argument("--reference-days", type=int, default=28, help="days before the cut (cases, model)")
    parser.add_argument("--orders-per-day", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cases", type=int, default=100_000, help="cases in the index of the speed part")
    parser.add_argument("--lookups", type=int, default=1000, help="timed lookups per path (at least 500 advised)")
    parser.add_argument("--skip-shap", action="store_true", help="leave out the exact TreeSHAP embedding (slow)")
    args = parser.parse_args(argv)
    if not 0 < args.reference_days < args.days:
        parser.error("--reference-days must be between 1 and --days - 1")
    run(args)


if __name__ == "__main__":
    main()
