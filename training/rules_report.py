"""Replay the order log through the rules and report what they catch, by pattern.

Every order is scored the way the service would have scored it: at its creation, and
again at its refund claim if it has one, each time with features as of that moment
(point-in-time: later orders and claims are invisible). An order counts as *flagged*
when either moment reaches the chosen decision (``review`` by default: what lands in the
reviewers' queue). With a ground-truth file (the simulator's ``ground_truth.csv``) the
report gives recall per abuse pattern and the false-positive rate on normal orders and
on each honest look-alike; groups (rings, bursts) count as caught when any member is.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from features.online import OnlineFeatures
from orderguard.schema import Order
from scoring.judge import judge
from scoring.policy import Decision, Policy, decision_rank
from scoring.rules import RulePack


@dataclass(frozen=True, slots=True)
class Replayed:
    """The strongest of an order's scoring moments."""

    order_key: str
    score: float
    decision: Decision
    codes: tuple[str, ...]


def decision_moments(orders: Iterable[Order]) -> list[tuple[datetime, str, int, Order]]:
    """Every order's creation (0) and refund claim (1), as ``(at, order key, which, order)`` in replay order:
    time, then key, then creation before claim."""
    moments: list[tuple[datetime, str, int, Order]] = []
    for order in orders:
        moments.append((order.details.created_at, str(order.key), 0, order))
        if order.refund is not None:
            moments.append((order.refund.requested_at, str(order.key), 1, order))
    moments.sort(key=lambda m: (m[0], m[1], m[2]))
    return moments


def replay(orders: Iterable[Order], *, online: OnlineFeatures, rules: RulePack, policy: Policy) -> list[Replayed]:
    """Score every order at creation and at its refund claim, point-in-time, rules only,
    deciding exactly as the service does (:func:`scoring.judge.judge`)."""
    moments = decision_moments(orders)
    best: dict[str, Replayed] = {}
    applied: set[str] = set()
    for at, key, _, order in moments:
        if key not in applied:
            online.apply(order)
            applied.add(key)
        j = judge(order, online.lookup(order, as_of=at), rules=rules, policy=policy, at=at)
        previous = best.get(key)
        if previous is None or j.score > previous.score:
            best[key] = Replayed(key, j.score, j.decision, tuple(h.code for h in j.evaluation.hits))
    return sorted(best.values(), key=lambda r: r.order_key)


@dataclass(frozen=True, slots=True)
class PatternRow:
    """Flag rate of one pattern: recall for abuse, false-positive rate for honest orders."""

    pattern: str
    abnormal: bool
    orders: int
    flagged: int
    groups: int
    groups_caught: int

    @property
    def rate(self) -> float:
        return self.flagged / self.orders if self.orders else 0.0


@dataclass(frozen=True, slots=True)
class RulesReport:
    """Per-pattern rows plus the overall figures."""

    flag_at: Decision
    rows: tuple[PatternRow, ...]

    @property
    def recall(self) -> float:
        """Share of abnormal orders flagged."""
        n = sum(r.orders for r in self.rows if r.abnormal)
        return sum(r.flagged for r in self.rows if r.abnormal) / n if n else 0.0

    @property
    def false_positive_rate(self) -> float:
        """Share of honest orders (normal and look-alikes) flagged."""
        n = sum(r.orders for r in self.rows if not r.abnormal)
        return sum(r.flagged for r in self.rows if not r.abnormal) / n if n else 0.0

    @property
    def precision(self) -> float:
        """Share of flagged orders that are abnormal."""
        flagged = sum(r.flagged for r in self.rows)
        return sum(r.flagged for r in self.rows if r.abnormal) / flagged if flagged else 0.0


def read_truth(path: Path) -> dict[str, tuple[str, bool, str]]:
    """``ground_truth.csv`` → order key → (pattern, is_abnormal, group id)."""
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["order_key"]: (row["pattern"], row["is_abnormal"].lower() == "true", row.get("group_id") or "")
                for row in csv.DictReader(fh)}


def report(replayed: Sequence[Replayed], truth: dict[str, tuple[str, bool, str]], *,
           flag_at: Decision = Decision.REVIEW) -> RulesReport:
    """Flag rates by pattern for the orders present in both the replay and the truth."""
    threshold = decision_rank(flag_at)
    counts: dict[str, list[int]] = {}
    groups: dict[str, dict[str, bool]] = {}
    abnormal: dict[str, bool] = {}
    for r in replayed:
        if r.order_key not in truth:
            continue
        pattern, is_abnormal, group = truth[r.order_key]
        flagged = decision_rank(r.decision) >= threshold
        c = counts.setdefault(pattern, [0, 0])
        c[0] += 1
        c[1] += int(flagged)
        abnormal[pattern] = is_abnormal
        if group:
            g = groups.setdefault(pattern, {})
            g[group] = g.get(group, False) or flagged
    rows = tuple(PatternRow(p, abnormal[p], c[0], c[1], len(groups.get(p, {})),
                            sum(groups.get(p, {}).values()))
                 for p, c in sorted(counts.items(), key=lambda kv: (not abnormal[kv[0]], kv[0])))
    return RulesReport(flag_at=flag_at, rows=rows)
