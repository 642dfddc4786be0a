"""Score the stored orders as the service would have when each came in, recording the decisions.

Orders that arrived through exported files, or before orderguard served, have no score
records: the review desk would show nothing, and its similar cases would have no
evidence to compare. This replays the order log through a fresh in-memory engine (the
same feature definitions, rules, policy and champion model the service uses) in event
time, interleaving labels at their own time, and scores each order at the moment its
first order document arrives, as the order system's ``POST /v1/score`` would have:
features as of that moment, nothing of its later life (a refund, a delivery) leaks in.
Orders of one instant (channels stamp whole seconds: a burst puts several in one) are
all applied before any of them is scored, so each counts its peers, as the one feature
definition does (``features.batch``: a window ends at ``t`` inclusive) and training saw.
A live service can count only the peers that already arrived; the policy backtest's
served check names such orders when it meets them.

Records are written in batches with "the first record of a version wins", so running it
again stores nothing new, and an order the service already scored keeps its record. The
service's own online store is not touched. The rules are the pack store's live version
(``serving.rule_slot``, the service's start-up rule), named in every record; a shadow
candidate is not run: its comparison is about the orders it saw as they came.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from features.settings import Settings
from features.stores import MemoryStoreConfig
from orderguard.clock import SystemClock
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.state import advance_order, derive_order
from orderguard.labels import LabelLog
from orderguard.schema import Label, Order, OrderEvent, OrderKey
from scoring.model import model_factory
from scoring.pack_store import PackStore
from scoring.records import ScoreLog, ScoreRecord
from scoring.rules import default_rules_path
from serving.champion import ChampionSlot, ChampionSource
from serving.engine import build_engine
from serving.rule_slot import RuleSlot

#: Records written per transaction.
BATCH = 2_000


@dataclass(slots=True)
class ReplayClock:
    """The replay's "now": the time of the event being replayed (records say when they would have been made)."""

    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass(frozen=True, slots=True)
class Backscored:
    """What a back-scoring run did."""

    events: int
    labels: int
    scored: int
    stored: int
    decisions: dict[str, int]
    model: str


def _merged(events: Iterator[OrderEvent], labels: Iterator[Label]) -> Iterator[OrderEvent | Label]:
    """Events and labels in one time order (a label after the events of its instant: it was given later)."""
    keyed_events: Iterator[tuple[datetime, int, int, OrderEvent | Label]] = (
        (e.event_time, 0, i, e) for i, e in enumerate(events))
    keyed_labels: Iterator[tuple[datetime, int, int, OrderEvent | Label]] = (
        (lb.labeled_at, 1, i, lb) for i, lb in enumerate(labels))
    for _, _, _, item in heapq.merge(keyed_events, keyed_labels, key=lambda t: (t[0], t[1], t[2])):
        yield item


def backscore(settings: Settings, log: OrderLog, labels: LabelLog, *, champion: ChampionSource | None,
              since: datetime, until: datetime | None = None,
              progress: Callable[[int], None] | None = None) -> Backscored:
    """Score every order created in ``[since, until)`` at its arrival and store the records.

    History before ``since`` is replayed too (as far back as the log goes), so the first
    orders scored see full windows. ``champion`` is where the model comes from (the
    registry, as the service loads it); ``None`` or no champion: the rules alone.
    """
    replay = settings.model_copy(update={"features": settings.features.model_copy(
        update={"store": MemoryStoreConfig()})})
    clock = ReplayClock(since)
    engine = build_engine(replay, clock=clock)
    rules = RuleSlot(store=PackStore(log.engine, known_features=engine.online.specs.names), scorer=engine.scorer,
                     clock=SystemClock(), shadows=False)
    rules.load_at_start(settings.scoring.rules_path or default_rules_path())
    model_note = "no model source: the rules alone"
    if champion is not None:
        slot = ChampionSlot(registry=champion, scorer=engine.scorer, clock=clock,
                            make_model=model_factory(engine.online.specs, policy=engine.scorer.policy,
                                                     max_reasons=settings.scoring.max_reasons))
        model_note = slot.load_at_start().note
    scores = ScoreLog(log.engine)
    states: dict[OrderKey, Order] = {}
    orphans: dict[OrderKey, list[OrderEvent]] = {}
    pending: list[ScoreRecord] = []
    decisions: dict[str, int] = {}
    events = n_labels = scored = stored = 0
    due: list[Order] = []  # orders of the current instant, scored once every order of that instant is applied

    def score_due() -> None:
        nonlocal scored, stored
        for waiting in due:
            record = engine.scorer.score(waiting)  # applied already (idempotent): looks up as of its creation
            pending.append(record)
            decisions[record.decision.value] = decisions.get(record.decision.value, 0) + 1
            scored += 1
        due.clear()
        if len(pending) >= BATCH:
            stored += scores.put_many(pending)
            pending.clear()
            if progress is not None:
                progress(scored)

    try:
        for item in _merged(log.iter_events(end=until), labels.iter_labels(until=until)):
            if due and (isinstance(item, Label) or item.event_time > clock.at):
                score_due()
            if isinstance(item, Label):
                labelled = states.get(item.key)
                if labelled is not None:
                    engine.online.apply_label(item, labelled)
                    n_labels += 1
                continue
            events += 1
            before = states.get(item.key)
            if before is not None and item.event_version <= before.event_version:
                continue  # an older version arriving late: the state already holds something newer
            if before is not None:
                order: Order | None = advance_order(before, [item])
            else:
                waiting = orphans.setdefault(item.key, [])
                waiting.append(item)
                order = derive_order(waiting)
                if order is None:  # after-sale documents before their order: nothing to score yet
                    continue
                del orphans[item.key]
            assert order is not None
            states[item.key] = order
            if before is None and order.details.created_at >= since:
                clock.at = item.event_time
                due.append(order)
            engine.online.apply(order)
        score_due()
        stored += scores.put_many(pending)
    finally:
        engine.close()
    return Backscored(events, n_labels, scored, stored, decisions, model_note)
