"""What the report says, as plain data: every figure from the live policy's backtest of the period.

Nothing here is computed a second way: decisions, precision, recall and money come from
``training.backtest`` (the live replay, checked against serving's records), so the
report and ``orderguard policy backtest`` for the same period agree by construction and a
test holds them to it. Registry figures (the models' holdout metrics) come from the
training runs as logged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from scoring.blend_weights import BlendWeights
from scoring.policy import Decision, decision_rank
from scoring.rules import RulePack
from training.backtest import Backtest, BandFigures
from training.backtest_data import Outcome

#: Decisions from which an order waits for a reviewer (the queue).
FLAGGED_FROM = Decision.REVIEW
#: Patterns listed.
TOP_PATTERNS = 6


@dataclass(frozen=True, slots=True)
class DayRow:
    """One Beijing day: orders and flagged orders per channel."""

    day: date
    orders: Mapping[str, int]
    flagged: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ChannelRow:
    channel: str
    orders: int
    flagged: int
    frauds: int
    money_caught_fen: int


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule over the period: hits by verdict, precision, its written points and learned weight."""

    code: str
    pattern: str
    hits: int
    frauds: int
    honest: int
    unlabelled: int
    precision: float
    points: float
    weight: float

    @property
    def effective(self) -> float:
        return self.points * self.weight


@dataclass(frozen=True, slots=True)
class PatternRow:
    """One abuse pattern (the rules' ``pattern``): flagged orders one of its rules hit, frauds, money."""

    pattern: str
    flagged: int
    frauds: int
    money_caught_fen: int


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One registered model version with its holdout metrics as its training run logged them."""

    version: str
    data_window: str
    champion: bool
    metrics: Mapping[str, float]


@dataclass(frozen=True, slots=True, eq=False)
class ReportContent:
    """Everything the report shows (see the module docstring)."""

    title_key: str
    name: str
    first_day: date
    last_day: date
    days: int
    orders: int
    outcomes: Mapping[str, int]
    model: str | None
    bands: tuple[BandFigures, ...]
    band_orders: Mapping[str, int]
    per_day: tuple[DayRow, ...]
    channels: tuple[ChannelRow, ...]
    rules: tuple[RuleRow, ...]
    weighted: bool
    held_fen: int
    stopped_fen: int
    missed_fen: int
    models: tuple[ModelRow, ...]
    patterns: tuple[PatternRow, ...]
    served_line: str = ""
    served_mismatches: int = 0
    channel_names: tuple[str, ...] = field(default=())


def _precision(frauds: int, honest: int) -> float:
    return frauds / (frauds + honest) if frauds + honest else float("nan")


def _rule_rows(result: Backtest, rules: RulePack, weights: BlendWeights | None) -> tuple[RuleRow, ...]:
    outcome = result.history.outcome
    tally: dict[str, Counter[int]] = {}
    for hits, o in zip(result.live.replay.hits, outcome.tolist(), strict=True):
        for code in hits:
            tally.setdefault(code, Counter())[o] += 1
    rows = []
    for rule in rules.rules:
        c = tally.get(rule.code, Counter())
        weight = weights.rules.get(rule.code, 1.0) if weights is not None and rule.points > 0 else 1.0
        rows.append(RuleRow(rule.code, rule.pattern or "", sum(c.values()), c[Outcome.FRAUD], c[Outcome.HONEST],
                            c[Outcome.UNLABELLED], _precision(c[Outcome.FRAUD], c[Outcome.HONEST]), rule.points,
                            weight))
    return tuple(sorted(rows, key=lambda r: (-r.hits, r.code)))


def _pattern_rows(result: Backtest, rules: RulePack) -> tuple[PatternRow, ...]:
    history = result.history
    pattern_of = {r.code: r.pattern for r in rules.rules if r.pattern}
    flagged = result.live.replay.rank >= decision_rank(FLAGGED_FROM)
    fraud = history.outcome == Outcome.FRAUD
    counts: dict[str, list[int]] = {}
    for i, hits in enumerate(result.live.replay.hits):
        if not flagged[i]:
            continue
        for pattern in {pattern_of[c] for c in hits if c in pattern_of}:
            row = counts.setdefault(pattern, [0, 0, 0])
            row[0] += 1
            if fraud[i]:
                row[1] += 1
                row[2] += int(history.paid_fen[i])
    rows = [PatternRow(p, *v) for p, v in counts.items()]
    return tuple(sorted(rows, key=lambda r: (-r.flagged, r.pattern))[:TOP_PATTERNS])


def _days(result: Backtest) -> tuple[tuple[DayRow, ...], tuple[str, ...]]:
    history = result.history
    flagged = result.live.replay.rank >= decision_rank(FLAGGED_FROM)
    orders: dict[date, Counter[str]] = {}
    marked: dict[date, Counter[str]] = {}
    for day, channel, f in zip(history.day.tolist(), history.channel.tolist(), flagged.tolist(), strict=True):
        orders.setdefault(day, Counter())[channel] += 1
        if f:
            marked.setdefault(day, Counter())[channel] += 1
    channels = tuple(sorted({str(c) for c in history.channel.tolist()}))
    return tuple(DayRow(d, dict(orders[d]), dict(marked.get(d, Counter()))) for d in sorted(orders)), channels


def _channels(result: Backtest, channels: Sequence[str]) -> tuple[ChannelRow, ...]:
    history = result.history
    flagged = result.live.replay.rank >= decision_rank(FLAGGED_FROM)
    fraud = history.outcome == Outcome.FRAUD
    rows = []
    for name in channels:
        mine = history.channel == name
        rows.append(ChannelRow(name, int(mine.sum()), int((mine & flagged).sum()), int((mine & fraud).sum()),
                               int(history.paid_fen[mine & flagged & fraud].sum())))
    return tuple(rows)


def build_content(result: Backtest, *, rules: RulePack, name: str, campaign: bool = False,
                  models: Sequence[ModelRow] = ()) -> ReportContent:
    """The report of one backtest of the live policy (``rules`` is the live pack it replayed)."""
    history = result.history
    live = result.live
    by_band = Counter(d.value for d in live.replay.decision)
    per_day, channel_names = _days(result)
    fraud = history.outcome == Outcome.FRAUD
    stopped = live.band(FLAGGED_FROM).money_caught_fen
    weights = history.model.weights if history.model is not None else None
    served = result.served
    return ReportContent(
        title_key="campaign_title" if campaign else "title", name=name, first_day=history.period.first_day,
        last_day=history.period.last_day, days=history.period.days, orders=len(history),
        outcomes={o.name.lower(): int((history.outcome == o).sum()) for o in Outcome},
        model=history.model.version if history.model is not None else None, bands=live.bands,
        band_orders={d.value: by_band.get(d.value, 0) for d in Decision}, per_day=per_day,
        channels=_channels(result, channel_names), rules=_rule_rows(result, rules, weights),
        weighted=weights is not None, held_fen=live.band(Decision.HOLD).money_caught_fen, stopped_fen=stopped,
        missed_fen=int(history.paid_fen[fraud].sum()) - stopped, models=tuple(models),
        patterns=_pattern_rows(result, rules), served_line=served.line() if served is not None else "",
        served_mismatches=served.mismatches if served is not None else 0, channel_names=channel_names)


def flagged_per_day(content: ReportContent) -> np.ndarray:
    """Flagged orders per day, all channels (the chart's bars)."""
    return np.array([sum(r.flagged.values()) for r in content.per_day], dtype=np.int64)
