"""``orderguard policy backtest``: what a rule pack or band change would have decided, before it goes live.

A shop changes rule points and bands often; this replays the labelled history of a
period (``training.backtest_data.History``: one point-in-time feature frame and one batch
of model probabilities, built once) through the decision step serving uses
(``scoring.judge.judge``: rules, allow and deny lists, the model's learned blend weights,
the bands in force at each order's creation with campaign shifts), once per policy:

* the **live** policy: the configured rule pack, bands and campaigns, the champion with its
  blend weights (rules alone without a champion);
* a **candidate**: another rule pack and/or other bands, with the same model.

For each policy and decision band it reports the volume per day (the review queue's load),
precision, recall, false-positive rate and the money at risk caught (paid amount of
confirmed-fraud orders at that band or above), the two side by side with the differences,
and a threshold sweep of the score cut-off 0..100 (``training.backtest_chart`` draws it).
How labels and unlabelled orders count is in ``training.backtest_data``.

**Reproducing serving.** The live policy's decisions are compared with the score records
serving kept for the same orders (``training.backtest_served``): a backtest that disagreed
with what actually served could not be trusted on a candidate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.judge import judge
from scoring.policy import Decision, Policy, decision_rank
from scoring.rules import RulePack
from training.backtest_data import History, Outcome

if TYPE_CHECKING:
    from training.backtest_served import ServedCheck

#: Decision bands reported, lowest first; each row counts orders at that band or above.
BANDS: tuple[Decision, ...] = (Decision.VERIFY, Decision.REVIEW, Decision.HOLD)
#: Score cut-offs of the sweep.
CUTOFFS: tuple[int, ...] = tuple(range(101))


@dataclass(frozen=True, slots=True)
class PolicyUnderTest:
    """A policy to replay: its name (``live``, ``candidate``), rule pack and blend/bands, and the stored
    pack version serving names in its records (``v3:1f2e3d4c``; None for a file not yet stored)."""

    name: str
    rules: RulePack
    policy: Policy
    rules_version: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Replay:
    """Every row of a history judged by one policy (frame order).

    Attributes:
        under: the policy judged (so what reads the figures reads the very pack and bands behind them).
        score: blended score 0-100 per row.
        decision: decision per row.
        hits: fired rule codes per row, in pack order.
    """

    under: PolicyUnderTest
    score: np.ndarray
    decision: tuple[Decision, ...]
    hits: tuple[tuple[str, ...], ...]

    @property
    def rank(self) -> np.ndarray:
        """Decision rank per row (approve 0 .. hold 3)."""
        return np.array([decision_rank(d) for d in self.decision], dtype=np.int8)


def replay(history: History, under: PolicyUnderTest) -> Replay:
    """Judge every row exactly as serving does at the order's creation (``scoring.judge.judge``)."""
    probability = history.probability
    weights = history.model.weights if history.model is not None else None
    scores = np.empty(len(history), dtype=np.float64)
    decisions: list[Decision] = []
    hits: list[tuple[str, ...]] = []
    for i, (order, vector) in enumerate(zip(history.orders, history.vectors(), strict=True)):
        p = float(probability[i]) if probability is not None else None
        j = judge(order, vector, rules=under.rules, policy=under.policy, at=order.details.created_at,
                  probability=p, weights=weights)
        scores[i] = j.score
        decisions.append(j.decision)
        hits.append(tuple(h.code for h in j.evaluation.hits))
    return Replay(under, scores, tuple(decisions), tuple(hits))


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


@dataclass(frozen=True, slots=True)
class BandFigures:
    """One band of one policy.

    Attributes:
        decision: the band.
        orders: orders decided exactly this band.
        per_day: ``orders`` per calendar day of the period (this band's queue).
        flagged: orders at this band or above.
        frauds_caught: confirmed frauds at this band or above.
        honest_flagged: labelled-honest (false-positive verdict) orders at this band or above.
        unlabelled_flagged: unlabelled orders at this band or above.
        precision: ``frauds_caught / (frauds_caught + honest_flagged)`` (labelled only).
        recall: ``frauds_caught`` over every confirmed fraud.
        false_positive_rate: flagged non-frauds (labelled honest or unlabelled) over every non-fraud.
        money_caught_fen: paid amount of the confirmed frauds at this band or above.
    """

    decision: Decision
    orders: int
    per_day: float
    flagged: int
    frauds_caught: int
    honest_flagged: int
    unlabelled_flagged: int
    precision: float
    recall: float
    false_positive_rate: float
    money_caught_fen: int


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """Orders with score >= ``cutoff``: queue per day, precision, recall, false-positive rate."""

    cutoff: int
    per_day: float
    precision: float
    recall: float
    false_positive_rate: float


@dataclass(frozen=True, slots=True, eq=False)
class PolicyFigures:
    """What one policy decides over the period."""

    name: str
    bands: tuple[BandFigures, ...]
    sweep: tuple[SweepPoint, ...]
    replay: Replay = field(repr=False)

    def band(self, decision: Decision) -> BandFigures:
        return next(b for b in self.bands if b.decision is decision)


def band_figures(outcome: np.ndarray, paid_fen: np.ndarray, rank: np.ndarray, band: Decision, *,
                 days: int) -> BandFigures:
    """The figures of one band from outcomes and decision ranks.

    >>> o = np.array([1, 0, -1, 1, -1], dtype=np.int8)
    >>> b = band_figures(o, np.array([100, 5, 7, 300, 9]), np.array([3, 2, 2, 0, 0]), Decision.REVIEW, days=2)
    >>> b.orders, b.per_day, b.flagged, b.precision, b.recall, b.false_positive_rate, b.money_caught_fen
    (2, 1.0, 3, 0.5, 0.5, 0.6666666666666666, 100)
    """
    level = decision_rank(band)
    exact = rank == level
    flagged = rank >= level
    fraud, honest, unlabelled = outcome == Outcome.FRAUD, outcome == Outcome.HONEST, outcome == Outcome.UNLABELLED
    caught = int((flagged & fraud).sum())
    false_alarms = int((flagged & honest).sum())
    return BandFigures(
        decision=band, orders=int(exact.sum()), per_day=_ratio(int(exact.sum()), days), flagged=int(flagged.sum()),
        frauds_caught=caught, honest_flagged=false_alarms, unlabelled_flagged=int((flagged & unlabelled).sum()),
        precision=_ratio(caught, caught + false_alarms), recall=_ratio(caught, int(fraud.sum())),
        false_positive_rate=_ratio(int((flagged & ~fraud).sum()), int((~fraud).sum())),
        money_caught_fen=int(paid_fen[flagged & fraud].sum()))


def sweep(outcome: np.ndarray, score: np.ndarray, *, days: int,
          cutoffs: Sequence[int] = CUTOFFS) -> tuple[SweepPoint, ...]:
    """Each cut-off's queue per day, precision, recall and false-positive rate (allow-list caps aside:
    a cut-off is a score, the figure a single band would give).

    >>> [(p.cutoff, p.per_day, p.precision, p.recall) for p in sweep(np.array([1, 0, -1], dtype=np.int8),
    ...     np.array([90.0, 60.0, 10.0]), days=1, cutoffs=[0, 50, 95])]
    [(0, 3.0, 0.5, 1.0), (50, 2.0, 0.5, 1.0), (95, 0.0, nan, 0.0)]
    """
    fraud = outcome == Outcome.FRAUD
    honest = outcome == Outcome.HONEST
    frauds, others = int(fraud.sum()), int((~fraud).sum())
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    cum_fraud = np.concatenate([[0], np.cumsum(fraud[order])])
    cum_honest = np.concatenate([[0], np.cumsum(honest[order])])
    points = []
    for c in cutoffs:
        n = int(np.searchsorted(-ranked, -float(c), side="right"))  # rows with score >= c
        caught, alarms = int(cum_fraud[n]), int(cum_honest[n])
        points.append(SweepPoint(int(c), _ratio(n, days), _ratio(caught, caught + alarms), _ratio(caught, frauds),
                                 _ratio(n - caught, others)))
    return tuple(points)


def figures(history: History, replayed: Replay) -> PolicyFigures:
    """Bands and sweep of one replay."""
    days = history.period.days
    rank = replayed.rank
    return PolicyFigures(
        name=replayed.under.name,
        bands=tuple(band_figures(history.outcome, history.paid_fen, rank, b, days=days) for b in BANDS),
        sweep=sweep(history.outcome, replayed.score, days=days), replay=replayed)


@dataclass(frozen=True, slots=True)
class Changed:
    """One order the candidate decides differently."""

    order_key: str
    live_score: float
    live: Decision
    candidate_score: float
    candidate: Decision
    verdict: str


@dataclass(frozen=True, slots=True, eq=False)
class Backtest:
    """The live policy (and a candidate) over a period, with serving's own decisions beside the live replay.

    Attributes:
        history: the rows replayed.
        live: the live policy's figures.
        candidate: the candidate's, if one was given.
        served: how the live replay compares with the score records (``training.backtest_served``).
    """

    history: History
    live: PolicyFigures
    candidate: PolicyFigures | None = None
    served: ServedCheck | None = None

    def changed(self) -> tuple[Changed, ...]:
        """The orders whose decision differs between live and candidate, frame order."""
        if self.candidate is None:
            return ()
        a, b = self.live.replay, self.candidate.replay
        return tuple(Changed(str(self.history.frame["order_key"].iat[i]), float(a.score[i]), a.decision[i],
                             float(b.score[i]), b.decision[i], self.history.verdict[i])
                     for i in range(len(self.history)) if a.decision[i] is not b.decision[i])


def run_backtest(history: History, live: PolicyUnderTest, candidate: PolicyUnderTest | None = None) -> Backtest:
    """Replay ``history`` through the live policy and the candidate."""
    live_figures = figures(history, replay(history, live))
    candidate_figures = figures(history, replay(history, candidate)) if candidate is not None else None
    return Backtest(history, live_figures, candidate_figures)


def _finite(value: float) -> float | None:
    return None if value != value or math.isinf(value) else round(value, 6)


def band_json(b: BandFigures) -> dict[str, Any]:
    return {"decision": b.decision.value, "orders": b.orders, "per_day": _finite(b.per_day), "flagged": b.flagged,
            "frauds_caught": b.frauds_caught, "honest_flagged": b.honest_flagged,
            "unlabelled_flagged": b.unlabelled_flagged, "precision": _finite(b.precision),
            "recall": _finite(b.recall), "false_positive_rate": _finite(b.false_positive_rate),
            "money_caught_fen": b.money_caught_fen}


def policy_json(p: PolicyFigures) -> dict[str, Any]:
    return {"bands": [band_json(b) for b in p.bands],
            "sweep": [{"cutoff": s.cutoff, "per_day": _finite(s.per_day), "precision": _finite(s.precision),
                       "recall": _finite(s.recall), "false_positive_rate": _finite(s.false_positive_rate)}
                      for s in p.sweep]}


def differences(live: PolicyFigures, candidate: PolicyFigures) -> list[dict[str, Any]]:
    """Candidate minus live, per band."""
    out = []
    for a, b in zip(live.bands, candidate.bands, strict=True):
        out.append({"decision": a.decision.value, "per_day": _finite(b.per_day - a.per_day),
                    "flagged": b.flagged - a.flagged, "precision": _finite(b.precision - a.precision),
                    "recall": _finite(b.recall - a.recall),
                    "false_positive_rate": _finite(b.false_positive_rate - a.false_positive_rate),
                    "money_caught_fen": b.money_caught_fen - a.money_caught_fen})
    return out


def backtest_json(result: Backtest, *, changed_limit: int = 50) -> dict[str, Any]:
    """The JSON ``orderguard policy backtest --json`` prints."""
    h = result.history
    counts: Mapping[str, int] = {o.name.lower(): int((h.outcome == o).sum()) for o in Outcome}
    out: dict[str, Any] = {
        "period": {"from": h.period.first_day.isoformat(), "to": h.period.last_day.isoformat(), "days": h.period.days},
        "orders": len(h), "outcomes": dict(counts), "model": h.model.version if h.model else None,
        "live": policy_json(result.live)}
    if result.candidate is not None:
        changed = result.changed()
        out["candidate"] = policy_json(result.candidate)
        out["difference"] = differences(result.live, result.candidate)
        out["changed"] = {"count": len(changed), "orders": [
            {"order_key": c.order_key, "live": c.live.value, "live_score": round(c.live_score, 2),
             "candidate": c.candidate.value, "candidate_score": round(c.candidate_score, 2), "verdict": c.verdict}
            for c in changed[:changed_limit]]}
    if result.served is not None:
        out["served"] = result.served.to_json()
    return out
