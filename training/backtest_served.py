"""Does the backtest reproduce serving? The live replay beside the score records kept for the same orders.

A record is comparable when it was made at the order's creation (the moment the backtest
judges; a refund-claim re-score is another moment), by the same model version (rules
alone on both sides without a champion), on the same feature set (its hash) and the same
rule pack text, when records name one (a rollback's new version number over the same text
still compares). Not the whole settings hash: it covers the data folder, ports and gates
too, which decide nothing, so a record would never compare after any of those moved;
bands and campaigns that changed since serving show up as mismatches blamed on the
policy, which is what they are. Records made
while the feature store was unavailable (``degraded``: rules on the order's own
attributes, no history) are left out too: the backtest replays full histories. Every
comparable record must carry the decision the live replay gives.

A mismatch is explained, not only counted: the record keeps the feature vector serving
saw, so each mismatching order is judged again by the live policy on *that* vector.

* **policy**: the served vector equals the frame's row, or judging it again does not give
  the served decision: the backtest's policy is not the one that served (a wrong pack,
  bands or model), and nothing it says about a candidate can be trusted;
* **features**: the served vector differs from the point-in-time frame's row and,
  judged again, gives the served decision: the policy is the served one, the inputs
  differ. The known cause is orders created in the same second: the batch frame counts
  every order of an instant (its windows are ``(t - w, t]``), while serving knew only
  those that had already arrived. The differing features are named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderguard.ingest.orderlog import SCORE_RECORDS
from scoring.judge import judge
from training.backtest import PolicyUnderTest, Replay
from training.backtest_data import History, batch_probability

#: Mismatches listed in full (the counts are always complete).
SHOWN = 10
#: Differing features named per mismatch.
NAMED = 3


@dataclass(frozen=True, slots=True)
class Mismatch:
    """An order serving decided differently from the live replay, and why (``policy`` or ``features``)."""

    order_key: str
    served_score: float
    served: str
    replay_score: float
    replayed: str
    cause: str = "policy"
    features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServedCheck:
    """How many served decisions were compared and which disagreed.

    Attributes:
        compared: comparable records (see the module docstring).
        mismatches: how many of them disagree.
        policy_mismatches: disagreements the served feature vectors do not explain.
        examples: the first :data:`SHOWN` mismatches, policy ones first.
        other_model_or_settings: records of the period made by another model version, feature set or pack.
        not_at_creation: records made at another moment (a refund claim) or of no order replayed.
        degraded: records made without history while the feature store was down.
    """

    compared: int
    mismatches: int
    policy_mismatches: int
    examples: tuple[Mismatch, ...]
    other_model_or_settings: int
    not_at_creation: int
    degraded: int

    def line(self) -> str:
        """``served: N compared, M mismatches`` (what the command prints), with the causes when M > 0."""
        text = f"served: {self.compared} compared, {self.mismatches} mismatches"
        if self.mismatches:
            skew = self.mismatches - self.policy_mismatches
            text += (f" ({self.policy_mismatches} from the policy, {skew} from features serving saw differently: "
                     "orders created in the same second)")
        return text

    def to_json(self) -> dict[str, Any]:
        return {"compared": self.compared, "mismatches": self.mismatches,
                "policy_mismatches": self.policy_mismatches,
                "examples": [_mismatch_json(m) for m in self.examples],
                "skipped": {"other_model_or_settings": self.other_model_or_settings,
                            "not_at_creation": self.not_at_creation, "degraded": self.degraded}}


def _mismatch_json(m: Mismatch) -> dict[str, Any]:
    return {"order_key": m.order_key, "served": m.served, "served_score": m.served_score,
            "replayed": m.replayed, "replay_score": round(m.replay_score, 2), "cause": m.cause,
            "features": list(m.features)}


def _records(engine: Engine, start: datetime, end: datetime) -> list[Any]:
    c = SCORE_RECORDS.c
    versioned = [c["rules_version"]] if "rules_version" in c else []  # records name their pack version
    query = (sa.select(c.id, c.order_key, c.event_version, c.event_time, c.score, c.decision, c.model_version,
                       c.feature_set_hash, *versioned)
             .where(c.event_time >= start, c.event_time < end).order_by(c.order_key, c.event_version))
    with engine.connect() as conn:
        return list(conn.execute(query))


def _bodies(engine: Engine, ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
    """The stored JSON of a few records (features, hits, the degraded flag)."""
    c = SCORE_RECORDS.c
    found: dict[int, Mapping[str, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            for row in conn.execute(sa.select(c.id, c.record).where(c.id.in_(ids[start:start + 500]))):
                found[int(row.id)] = row.record
    return found


def _served_vector(body: Mapping[str, Any]) -> dict[str, float]:
    return {k: math.nan if v is None else float(v) for k, v in body.get("features", {}).items()}


def _differing(served: Mapping[str, float], row: Mapping[str, float]) -> tuple[str, ...]:
    """Features whose served value differs from the frame's (NaN equals NaN)."""
    return tuple(n for n, v in row.items() if n in served and not (
        served[n] == v or (math.isnan(served[n]) and math.isnan(v))))


def _explain(history: History, i: int, body: Mapping[str, Any], row: Any, live: PolicyUnderTest,
             replayed: Replay) -> Mismatch:
    served = _served_vector(body)
    frame_row = dict(zip(history.feature_names, history.frame.loc[i, list(history.feature_names)].to_numpy(
        dtype=np.float64, na_value=np.nan).tolist(), strict=True))
    differing = _differing(served, frame_row)
    cause = "policy"
    if differing:
        probability = None
        if history.model is not None:
            one = pd.DataFrame([{n: served.get(n, math.nan) for n in history.feature_names}])
            probability = float(batch_probability(history.model.booster, one)[0])
        order = history.orders[i]
        again = judge(order, served, rules=live.rules, policy=live.policy, at=order.details.created_at,
                      probability=probability, weights=history.model.weights if history.model else None)
        cause = "features" if again.decision.value == row.decision else "policy"
    return Mismatch(row.order_key, float(row.score), str(row.decision), float(replayed.score[i]),
                    replayed.decision[i].value, cause, differing[:NAMED])


def _text_of(label: str) -> str:
    """The content-hash part of a pack version label: a rollback re-publishes the same text under a new number,
    and records judged by that text are comparable whatever number they name.

    >>> _text_of("v3:f11bf4c4") == _text_of("v1:f11bf4c4")
    True
    """
    return label.rpartition(":")[2]


def check_served(engine: Engine, history: History, live: Replay, *, feature_set_hash: str,
                 rules_version: str | None = None, policy: PolicyUnderTest | None = None) -> ServedCheck:
    """Compare the live replay with the score records of the history's orders (those of another rule pack
    text than ``rules_version``, when records and the live pack both name one, are not comparable).

    ``policy`` (the live policy replayed) explains mismatches by judging the served vectors again;
    without it every mismatch counts as a policy mismatch.
    """
    index = {str(k): i for i, k in enumerate(history.frame["order_key"].tolist())}
    version = history.model.version if history.model is not None else None
    first: dict[str, Any] = {}
    other = elsewhere = 0
    for row in _records(engine, history.period.start, history.period.end):
        i = index.get(row.order_key)
        if i is None or row.event_time != history.orders[i].details.created_at:
            elsewhere += 1
            continue
        pack = getattr(row, "rules_version", None)
        if (row.model_version != version or row.feature_set_hash != feature_set_hash
                or (pack is not None and rules_version is not None and _text_of(pack) != _text_of(rules_version))):
            other += 1
            continue
        first.setdefault(row.order_key, row)  # the first record of an order version wins, as in the score log
    wrong = [row for key, row in first.items() if row.decision != live.decision[index[key]].value]
    bodies = _bodies(engine, [int(r.id) for r in wrong]) if wrong else {}
    degraded = {i for i, body in bodies.items() if body.get("degraded")}
    wrong = sorted((r for r in wrong if int(r.id) not in degraded), key=lambda r: index[r.order_key])
    explained = [(_explain(history, index[r.order_key], bodies[int(r.id)], r, policy, live) if policy is not None
                  else Mismatch(r.order_key, float(r.score), str(r.decision), float(live.score[index[r.order_key]]),
                                live.decision[index[r.order_key]].value)) for r in wrong]
    explained.sort(key=lambda m: m.cause != "policy")
    return ServedCheck(compared=len(first) - len(degraded), mismatches=len(wrong),
                       policy_mismatches=sum(m.cause == "policy" for m in explained), examples=tuple(explained[:SHOWN]),
                       other_model_or_settings=other, not_at_creation=elsewhere, degraded=len(degraded))
