"""Simulated reviewers: labels for a simulated shop, as its risk desk would have written them.

The simulator knows which orders are abuse (``ground_truth.csv``); a real shop only
learns it from reviewers, days after the order, and only for the orders they looked
at. This module plays that desk so the demo and the tests can train on labels with
realistic timing and coverage:

* only orders created before the cutoff ``until`` and present in the order log are
  considered (a label for an order the log does not hold would be refused on import);
* every abnormal order is reviewed and ends ``confirmed_fraud``;
* a sample of the honest look-alike orders (patterns with ``is_abnormal`` false other
  than ``normal``: family gifts, office networks, the promotion rush, loyal customers)
  is reviewed — they are what rules flag by mistake — and ends ``false_positive``;
  so does a small sample of ordinary orders (spot checks);
* a reviewer looks at an order 1 to 7 days after its creation (seeded, uniform to the
  second); a few reviewed orders are first marked ``needs_investigation`` and get their
  final verdict 1 to 7 days after that (a relabel: the history keeps both);
* a label whose time falls after ``until`` is not written: it is not known yet.

Deterministic: each order draws from its own stream derived from the seed and its
order key, so the labels of an order do not depend on which other orders exist.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from orderguard.errors import InvalidInputError
from orderguard.ingest.orderlog import ORDERS
from orderguard.label_files import write_label_file
from orderguard.schema import Channel, Label, OrderKey, Verdict
from simulate.rand import substream
from simulate.truth import Pattern

#: The note each simulated verdict carries.
NOTES: Final[Mapping[Verdict, str]] = MappingProxyType({
    Verdict.CONFIRMED_FRAUD: "复核确认：异常订单",
    Verdict.FALSE_POSITIVE: "复核确认：正常购买",
    Verdict.NEEDS_INVESTIGATION: "证据不足，待进一步核实",
})


@dataclass(frozen=True, slots=True)
class ReviewPlan:
    """How the simulated desk works.

    Attributes:
        lookalike_share: share of honest look-alike orders reviewed (0-1).
        normal_share: share of ordinary orders spot-checked (0-1).
        investigate_share: share of reviewed orders first marked ``needs_investigation``.
        min_delay: shortest time from an order's creation (or a first verdict) to a verdict.
        max_delay: longest such time.
        reviewers: size of the desk; reviewer ids are ``reviewer-01`` …
    """

    lookalike_share: float = 0.5
    normal_share: float = 0.02
    investigate_share: float = 0.05
    min_delay: timedelta = timedelta(days=1)
    max_delay: timedelta = timedelta(days=7)
    reviewers: int = 4

    def __post_init__(self) -> None:
        for name in ("lookalike_share", "normal_share", "investigate_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError.must(name, "between 0 and 1", value)
        if not timedelta(0) < self.min_delay <= self.max_delay:
            raise InvalidInputError.must("max_delay", f"at least min_delay ({self.min_delay}) > 0", self.max_delay)
        if self.reviewers < 1:
            raise InvalidInputError.must("reviewers", "at least 1", self.reviewers)


@dataclass(frozen=True, slots=True)
class TruthEntry:
    """One row of ``ground_truth.csv``, as far as reviewing and evaluation need it.

    ``group_id`` is the ring / burst / episode the order belongs to (empty for background
    orders, and when the file has no such column).
    """

    key: OrderKey
    pattern: str
    is_abnormal: bool
    group_id: str = ""


def read_ground_truth(path: Path) -> list[TruthEntry]:
    """Read the simulator's ``ground_truth.csv`` (columns ``order_key``, ``pattern``, ``is_abnormal``).

    Raises:
        InvalidInputError: missing file or column, or a malformed row (``file:line`` in the message).
    """
    if not path.is_file():
        raise InvalidInputError.must("truth", "an existing ground_truth.csv", str(path))
    entries: list[TruthEntry] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"order_key", "pattern", "is_abnormal"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInputError.must("truth", f"a ground truth CSV with columns {', '.join(sorted(missing))}",
                                         path.name)
        for row in reader:
            flag = (row["is_abnormal"] or "").strip().lower()
            try:
                key = OrderKey.parse(row["order_key"] or "")
                if flag not in ("true", "false"):
                    raise ValueError(f"is_abnormal must be true or false; got {row['is_abnormal']!r}")
            except ValueError as e:
                raise InvalidInputError(f"{path.name}:{reader.line_num}: {e}", field="truth") from e
            entries.append(TruthEntry(key, (row["pattern"] or "").strip(), flag == "true",
                                      (row.get("group_id") or "").strip()))
    return entries


def creation_times(engine: Engine, *, until: datetime) -> dict[OrderKey, datetime]:
    """Creation time (UTC) of every order in the order log created before ``until``."""
    o = ORDERS.c
    stmt = sa.select(o.channel, o.channel_order_id, o.created_at).where(o.created_at < until)
    with engine.connect() as conn:
        return {OrderKey(Channel(ch), oid): at for ch, oid, at in conn.execute(stmt)}


def _delay(plan: ReviewPlan, draw: float) -> timedelta:
    """A delay in ``[min_delay, max_delay]`` for a uniform ``draw`` in [0, 1), whole seconds.

    >>> _delay(ReviewPlan(), 0.0), _delay(ReviewPlan(), 0.5)
    (datetime.timedelta(days=1), datetime.timedelta(days=4))
    """
    span = (plan.max_delay - plan.min_delay).total_seconds()
    return plan.min_delay + timedelta(seconds=round(draw * span))


def simulated_labels(truth: Iterable[TruthEntry], *, created_at: Mapping[OrderKey, datetime], until: datetime,
                     seed: int, plan: ReviewPlan | None = None) -> list[Label]:
    """The labels the simulated desk has written by ``until``, ordered by ``(labeled_at, order key)``.

    Args:
        truth: ground truth of the simulated orders.
        created_at: creation time of the orders in the order log (others are not reviewed).
        until: the cutoff, tz-aware: orders created before it are reviewed; labels
            stamped after it are left out.
        seed: root of the reviewers' random draws.
        plan: how the desk works (:class:`ReviewPlan` defaults).
    """
    if until.tzinfo is None or until.utcoffset() is None:
        raise InvalidInputError.must("until", "a tz-aware datetime", until)
    plan = plan or ReviewPlan()
    labels: list[Label] = []
    for entry in truth:
        created = created_at.get(entry.key)
        if created is None or created >= until:
            continue
        rng = substream(seed, f"review/{entry.key}")
        draws = [rng.random() for _ in range(5)]  # fixed count: the plan never shifts later draws
        if entry.is_abnormal:
            final, reviewed = Verdict.CONFIRMED_FRAUD, True
        elif entry.pattern != Pattern.NORMAL.value:
            final, reviewed = Verdict.FALSE_POSITIVE, draws[0] < plan.lookalike_share
        else:
            final, reviewed = Verdict.FALSE_POSITIVE, draws[0] < plan.normal_share
        if not reviewed:
            continue
        reviewer = f"reviewer-{int(draws[1] * plan.reviewers) + 1:02d}"
        first_at = created + _delay(plan, draws[2])
        steps = [(final, first_at)]
        if draws[3] < plan.investigate_share:
            steps = [(Verdict.NEEDS_INVESTIGATION, first_at), (final, first_at + _delay(plan, draws[4]))]
        labels.extend(Label(entry.key, verdict, at, reviewer, NOTES[verdict]) for verdict, at in steps if at <= until)
    labels.sort(key=lambda label: (label.labeled_at, label.key))
    return labels


@dataclass(frozen=True, slots=True)
class SimulatedLabelFile:
    """What :func:`write_simulated_labels` wrote.

    Attributes:
        path: the generic-format label file.
        rows: labels written (a relabelled order has two).
        orders: orders labelled.
        verdicts: labels per verdict.
    """

    path: Path
    rows: int
    orders: int
    verdicts: Mapping[Verdict, int]


def write_simulated_labels(truth: Path, *, engine: Engine, until: datetime, out: Path, seed: int,
                           plan: ReviewPlan | None = None) -> SimulatedLabelFile:
    """Simulate the review desk for the order log on ``engine`` and write a generic label file.

    Raises:
        InvalidInputError: unreadable ground truth, or none of its orders is in the order
            log before ``until`` (ingest the simulated shop first).
    """
    entries = read_ground_truth(truth)
    created = creation_times(engine, until=until)
    if not any(entry.key in created for entry in entries):
        raise InvalidInputError.must("truth", f"orders present in the order log before {until.isoformat()} "
                                              "(ingest the simulated shop first)", truth.name)
    labels = simulated_labels(entries, created_at=created, until=until, seed=seed, plan=plan)
    rows = write_label_file(labels, out)
    verdicts: dict[Verdict, int] = {}
    for label in labels:
        verdicts[label.verdict] = verdicts.get(label.verdict, 0) + 1
    return SimulatedLabelFile(out, rows, len({label.key for label in labels}), verdicts)
