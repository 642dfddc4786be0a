"""The service's use cases, apart from HTTP: score-and-store, ingest-and-apply, label-and-apply, warm start.

Routes (``serving.api``) parse a request into domain values, call one function here and
render the result; these functions know nothing of FastAPI or of the wire models, so
the desk, the CLI or a benchmark can run the same use case the API runs.
:class:`Services` is everything a use case may touch, opened once by ``create_app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from features.settings import Settings
from orderguard.access import Directory, KeyRing
from orderguard.clock import Clock
from orderguard.errors import InvalidInputError, NotFoundError, OrderGuardError, ServiceUnavailableError
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.files import Record
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.service import IngestReport, ingest_payloads, parse_payload
from orderguard.ingest.webhooks import ReplayGuard
from orderguard.labels import AddResult, LabelLog, LabelProblem, LabelRecord
from orderguard.schema import Label, Order, OrderEvent, OrderKey
from scoring.records import ScoreLog
from segments.cache import PoolCache
from serving.champion import ChampionSlot
from serving.desk.links import LinkIndex
from serving.desk.queue import FlaggedLog
from serving.desk.similar_cases import SimilarCases
from serving.engine import Engine, longest_window
from serving.group_commit import ScoreCommitter, Scored, append_batch, score_batch, store_new
from serving.health_watch import HealthMonitor
from serving.rule_slot import RuleSlot
from serving.web.session import SessionCodec
from serving.web.throttle import SignInThrottle
from serving.worker import EngineWorker

logger = logging.getLogger("orderguard.serving")


@dataclass(slots=True)
class Services:
    """Everything a use case may use; built once by ``create_app``'s lifespan (no module globals)."""

    settings: Settings
    clock: Clock
    hasher: PiiHasher
    order_log: OrderLog
    scores: ScoreLog
    engine: Engine
    labels: LabelLog
    champion: ChampionSlot
    access: AccessState
    rules: RuleSlot
    worker: EngineWorker = field(default_factory=lambda: EngineWorker(remote=False))
    store_state: StoreState = field(default_factory=lambda: StoreState())
    replays: ReplayGuard = field(default_factory=ReplayGuard)  # signed channel pushes seen (webhooks)
    similar: SimilarCases = field(default_factory=SimilarCases)  # the desk's labelled cases, indexed
    links: LinkIndex = field(default_factory=LinkIndex)  # the desk's orders by shared identity
    flagged: FlaggedLog = field(default_factory=FlaggedLog)  # the desk's flagged records and labels, mirrored
    pools: PoolCache = field(default_factory=lambda: PoolCache(size=2, ttl=timedelta(minutes=10)))  # trust pools
    health: HealthMonitor | None = None  # the order-health monitor (``serving.health_watch``)
    committer: ScoreCommitter | None = None  # ``POST /v1/score``'s group commit, run by the lifespan


@dataclass(slots=True)
class AccessState:
    """Who a running service accepts: the API keys and users (``ring``, replaced, never mutated, by
    :func:`watch_keys`) and how session cookies are signed."""

    ring: KeyRing
    sessions: SessionCodec
    throttle: SignInThrottle


async def watch_keys(svc: Services) -> None:
    """Re-read the API keys and users every ``settings.access.refresh_s`` for the service's lifetime (see
    :func:`refresh_access`), so keys created or revoked by ``orderguard keys`` reach a running service."""
    directory = Directory(svc.order_log.engine)
    while True:
        await asyncio.sleep(svc.settings.access.refresh_s)
        await refresh_access(svc, directory)


async def refresh_access(svc: Services, directory: Directory) -> None:
    """Swap in a freshly read key ring (a read failure keeps the current one) and record when each key of the
    old ring was last used (to the refresh's precision: one write per interval, not per request).

    Also called right after a sign-in, so a user added a moment ago is known to the ring at once.
    """
    try:
        ring = await asyncio.to_thread(directory.key_ring)
    except ServiceUnavailableError as e:  # the current ring stays, and so do its uses, for the next look
        logger.error("API keys not refreshed, the order-log database is unavailable: %s", e.message)
        return
    # Requests authenticate on the loop, so once the new ring is in place the old one is used no more:
    # its uses are complete when drained here, none slips in between.
    old, svc.access.ring = svc.access.ring, ring
    try:
        await asyncio.to_thread(directory.touch_keys, dict.fromkeys(old.drain_used(), svc.clock.now()))
    except ServiceUnavailableError as e:
        logger.error("API key uses not recorded, the order-log database is unavailable: %s", e.message)


async def watch_checkpoints(log: OrderLog, every_s: float, *, limit_bytes: int, writer: ScoreCommitter) -> None:
    """Checkpoint the SQLite order log every ``every_s`` on a thread for the service's lifetime, so no commit
    of a request copies the write-ahead log (the log was opened with ``background_checkpoints``).

    Under a steady stream of score requests those checkpoints never catch the log's end,
    and it would only grow (``OrderLog.checkpoint``). Once it holds more than
    ``limit_bytes``, one more runs at once on the score route's writer thread, between two
    of its commits: it copies the few frames left, and the next commit starts the log over.
    A failed checkpoint is retried at the next tick: until then the log only grows, nothing is lost.
    """
    while True:
        await asyncio.sleep(every_s)
        try:
            if (await asyncio.to_thread(log.checkpoint)).wal_bytes > limit_bytes:
                await writer.on_writer(log.checkpoint)
        except ServiceUnavailableError as e:
            logger.error("order log not checkpointed: %s", e.message)


@dataclass(slots=True)
class StoreState:
    """What the service knows of its online store beyond "it answers": a re-warm in progress, or owed.

    ``cold`` when the start could not warm the store (it did not answer): the first look
    that finds it answering re-warms it.
    """

    cold: bool = False
    rewarming: bool = False
    done: int = 0
    total: int = 0
    rewarms: int = 0


# -- scoring ------------------------------------------------------------------------------------------------------


def parse_event(svc: Services, channel: str, payload: Mapping[str, Any]) -> OrderEvent:
    """One channel document as an event, its personal data protected (the score routes' first step).

    Raises:
        NotFoundError: unknown channel.
        InvalidInputError: malformed payload, naming the field.
    """
    adapter = get_adapter(channel)
    return parse_payload(adapter, payload, ctx=ParseContext(received_at=svc.clock.now(), hasher=svc.hasher,
                                                            limits=svc.settings.ingest))


def score_event(svc: Services, event: OrderEvent) -> Scored:
    """Store a parsed event, score the order's newest state (or replay its stored score) and record it, as one
    request alone, in transactions of its own. The score routes run the same steps for many requests at once
    (``serving.group_commit``); this is for callers without the lifespan's committer.

    Raises:
        OrderGuardError: the event's own error (409, 422) or the database's (503).
    """
    (answer,) = store_new(svc, score_batch(svc, append_batch(svc, [event])))
    if isinstance(answer, OrderGuardError):
        raise answer
    return answer


def score_and_store(svc: Services, channel: str, payload: Mapping[str, Any]) -> Scored:
    """:func:`score_event` of one channel document (the benchmarks profile the score route's work with it)."""
    return score_event(svc, parse_event(svc, channel, payload))


def feature_store_status(svc: Services) -> str:
    """``ok``, or why the online feature store cannot be fully used now (it is asked, cheaply)."""
    try:
        svc.engine.store.size()
    except ServiceUnavailableError as e:
        return f"unavailable: {e.message}" + _waiting(svc)
    state = svc.store_state
    if state.rewarming:
        return f"re-warming from the order log after it lost its state: {state.done} of {state.total} orders"
    if svc.engine.online.pending:
        return "catching up" + _waiting(svc)
    return "ok"


def _waiting(svc: Services) -> str:
    pending = svc.engine.online.pending
    return f"; {pending} orders and labels wait to be applied" if pending else ""


async def watch_store(svc: Services) -> None:
    """Look after the online store every ``state_check_s`` for the service's lifetime (a task of the lifespan).

    A store that does not answer is skipped until it does; what the engine kept while it
    was unavailable is then applied (so a quiet service catches up without waiting for
    the next order); a Redis that comes back empty is noticed by its generation marker
    and refilled from the order log, in steps, so requests are served meanwhile.
    """
    while True:
        await asyncio.sleep(svc.settings.features.state_check_s)
        await check_store(svc)


async def check_store(svc: Services) -> None:
    """One look of :func:`watch_store`: re-warm a store that lost its state, apply the engine's backlog."""
    engine = svc.engine
    try:
        lost = await svc.worker.run(engine.store.lost_state)
    except ServiceUnavailableError:
        return
    try:
        if lost or svc.store_state.cold:
            logger.warning("the online store %s; re-warming it from the order log",
                           "lost its state" if lost else "answers now, after a start without it")
            await rewarm(svc)
            svc.store_state.cold = False
        if engine.online.pending:
            done = await svc.worker.run(engine.online.catch_up)
            logger.info("the online store answers again: %d kept orders and labels applied", done)
    except ServiceUnavailableError as e:
        logger.error("the online store failed again while catching up: %s", e.message)


def _apply_orders(engine: Engine, orders: Sequence[Order]) -> None:
    for order in orders:
        engine.online.apply(order)


async def rewarm(svc: Services, *, step: int = 500) -> WarmStart:
    """:func:`warm_start` for a store that lost its state while serving: in steps of ``step`` orders,
    yielding to requests between steps, with its progress in ``svc.store_state``."""
    engine, state = svc.engine, svc.store_state
    plan = _replay_plan(engine, svc.order_log, holds_state=False)
    state.rewarming, state.done, state.total = True, 0, len(plan.orders)
    try:
        for start in range(0, len(plan.orders), step):
            await svc.worker.run(_apply_orders, engine, plan.orders[start:start + step])
            state.done = min(start + step, len(plan.orders))
            await asyncio.sleep(0)
        labels = await svc.worker.run(_replay_labels, engine, svc.order_log, svc.labels, plan)
    finally:
        state.rewarming = False
    state.rewarms += 1
    return WarmStart(len(plan.orders), labels)


# -- ingest -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ingested:
    """The outcome of one ingest call: the channel as the adapter names it, the items received, the report."""

    channel: str
    received: int
    report: IngestReport
    #: the online store was unavailable: the stored orders count in features once it answers again
    deferred: bool = False


def ingest_and_apply(svc: Services, channel: str, items: Sequence[object], *, atomic: bool) -> Ingested:
    """Parse channel payloads, append them to the order log and bring the online features up to date.

    A non-object item is refused with its position; ``atomic`` stores nothing unless
    every payload is good.
    """
    adapter = get_adapter(channel)
    if len(items) > svc.settings.api.max_batch:
        raise InvalidInputError(f"`body` must hold at most {svc.settings.api.max_batch} payloads; got {len(items)}",
                                field="body")
    numbered: list[Record] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            numbered.append((i, item))
        else:
            numbered.append((i, InvalidInputError(f"`{i}` must be a JSON object; got {type(item).__name__}",
                                                  field=str(i))))
    ctx = ParseContext(received_at=svc.clock.now(), hasher=svc.hasher, limits=svc.settings.ingest)
    applied: list[bool] = []

    def apply(orders: Sequence[Order]) -> None:
        applied.append(svc.engine.apply_orders(orders))

    report = ingest_payloads(svc.order_log, adapter, numbered, ctx=ctx, all_or_nothing=atomic, on_orders=apply)
    return Ingested(adapter.channel.value, len(items), report, deferred=not all(applied))


# -- labels -------------------------------------------------------------------------------------------------------


def _batch_field(problem: LabelProblem) -> str:
    return f"labels.{problem.index}" + (f".{problem.error.field}" if problem.error.field else "")


class LabelBatchError(InvalidInputError):
    """Some labels of a batch are bad; nothing was stored. Renders every problem."""

    def __init__(self, problems: list[LabelProblem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"label {first.index}: {first.error.message}{more}; nothing was stored",
                         field=_batch_field(first))
        self.problems = problems

    def to_dict(self) -> dict[str, Any]:
        errors = [{"index": p.index, "code": p.error.code, "field": _batch_field(p), "message": p.error.message}
                  for p in self.problems]
        return {**super().to_dict(), "errors": errors}


def _same_as_latest(svc: Services, label: Label) -> Label:
    """``label`` (sent without a time) as the reviewer's latest label on its order when that says the same."""
    mine = [r.label for r in svc.labels.history(label.key) if r.label.reviewer_id == label.reviewer_id]
    if mine and (mine[-1].verdict, mine[-1].note) == (label.verdict, label.note):
        return mine[-1]
    return label


def resolve_timeless(svc: Services, labels: Sequence[tuple[int, Label]], timeless: frozenset[int],
                     ) -> list[tuple[int, Label]]:
    """Labels sent without ``labeled_at`` (their positions in ``timeless``) that repeat the reviewer's latest
    verdict on the order (same verdict and note) become that stored label.

    A retry of a time-less label would otherwise be stamped anew and stored twice.
    """
    return [(index, _same_as_latest(svc, label) if index in timeless else label) for index, label in labels]


@dataclass(frozen=True, slots=True)
class Labelled:
    """What a label call stored; ``deferred`` when the online store was unavailable (the labels count in
    features once it answers again)."""

    result: AddResult
    deferred: bool


def label_and_apply(svc: Services, labels: Sequence[tuple[int, Label]], problems: Sequence[LabelProblem], *,
                    batch: bool, now: datetime) -> Labelled:
    """Check, store (all or nothing) and apply reviewer labels to the online features.

    ``labels`` carry their position in the request; ``problems`` are the ones the parser
    already found. A single bad label raises its own error; a batch with any bad label
    raises :class:`LabelBatchError` listing them all, and nothing is stored.
    """
    positions = [index for index, _ in labels]
    checked = svc.labels.check([label for _, label in labels], recorded_at=now)
    found = sorted([*problems, *(LabelProblem(positions[p.index], p.error) for p in checked)],
                   key=lambda p: p.index)
    if found:
        if not batch:
            raise found[0].error
        raise LabelBatchError(found)
    result = svc.labels.add([label for _, label in labels], source="api", recorded_at=now)
    try:
        apply_labels(svc.engine, svc.order_log, labels=result.stored)
    except ServiceUnavailableError:  # every label went to the engine's backlog, in order
        return Labelled(result, deferred=True)
    return Labelled(result, deferred=not svc.engine.settle())  # a retry also settles what an outage kept


def stored_order(svc: Services, key: OrderKey) -> Order:
    """The order's current state; a 404 naming ``order_key`` when the log does not hold it."""
    order = svc.order_log.get(key)
    if order is None:
        raise NotFoundError(f"`order_key` must be an order in the order log; got {str(key)!r}", field="order_key")
    return order


def label_history(svc: Services, key: OrderKey) -> list[LabelRecord]:
    """Every label of a known order, oldest ``labeled_at`` first (the last one is in force)."""
    stored_order(svc, key)
    return svc.labels.history(key)


def apply_labels(engine: Engine, log: OrderLog, *, labels: Sequence[Label]) -> int:
    """Add labels to the online features (facts at ``labeled_at`` on the order's entities).

    Returns how many changed the store's state (a repeat or a label older than the
    store's retention changes nothing). While the store is unavailable every label still
    goes to the engine's backlog, then ``ServiceUnavailableError`` is raised.
    """
    changed = 0
    failure: ServiceUnavailableError | None = None
    for label in labels:
        order = log.get(label.key)
        if order is None:
            continue
        try:
            changed += engine.online.apply_label(label, order)
        except ServiceUnavailableError as e:
            failure = e
    if failure is not None:
        raise failure
    return changed


# -- warm start ---------------------------------------------------------------------------------------------------


#: How much of the order log's end a start re-applies to a persistent store that holds state (the orders a
#: crash may have stored but not applied are the last seconds' ones).
CATCH_UP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WarmStart:
    """What a start-up replayed into the online store."""

    orders: int
    labels: int


@dataclass(frozen=True, slots=True)
class _ReplayPlan:
    """What a (re-)warm applies: ``orders`` updated since ``horizon``; ``reach`` is the feature windows' span."""

    orders: list[Order]
    holds_state: bool
    horizon: datetime
    reach: timedelta


def _replay_plan(engine: Engine, log: OrderLog, *, holds_state: bool) -> _ReplayPlan:
    """The log's last :data:`CATCH_UP` when the store holds state, else as far back as the longest feature
    window (plus an hour) from the newest event."""
    reach = longest_window(engine.online.specs) + timedelta(hours=1)
    orders = list(log.iter_orders())
    if not orders:
        return _ReplayPlan([], holds_state, datetime.max.replace(tzinfo=UTC), reach)
    horizon = max(o.updated_at for o in orders) - (CATCH_UP if holds_state else reach)
    recent = [o for o in orders if o.details.created_at >= horizon or o.updated_at >= horizon]
    return _ReplayPlan(recent, holds_state, horizon, reach)


def _replay_labels(engine: Engine, log: OrderLog, labels: LabelLog, plan: _ReplayPlan) -> int:
    """After the plan's orders: their labels, from the horizon (a store with state) or the windows' reach."""
    watermark = engine.online.watermark
    if not plan.orders or watermark is None:
        return 0
    since = plan.horizon if plan.holds_state else watermark - plan.reach
    return apply_labels(engine, log, labels=list(labels.iter_labels(since=since)))


def warm_start(engine: Engine, log: OrderLog, labels: LabelLog) -> WarmStart:
    """Replay the order log's recent orders, then their labels, into the online store.

    A memory store starts empty on every restart; without this, the first orders after a
    deploy would be scored with no history: orders and labels are replayed as far back as
    the longest feature window (plus an hour) from the newest event. A persistent store
    (SQLite, Redis) that already holds state may still miss the last orders before a
    crash (stored in the log, not yet applied): the last :data:`CATCH_UP` of the log is
    applied again - idempotently, by version, so nothing counts twice.
    """
    plan = _replay_plan(engine, log, holds_state=engine.store.size() > 0)
    _apply_orders(engine, plan.orders)
    return WarmStart(len(plan.orders), _replay_labels(engine, log, labels, plan))
