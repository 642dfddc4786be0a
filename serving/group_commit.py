"""Group commit for ``POST /v1/score``: the requests in flight share one order-log and one record transaction.

Why: a score request used to pay for its own transactions: its event appended and the
order's state derived in one, its ScoreRecord in another. A commit costs far more than
the rows it writes (journal and page writes, an fsync at every checkpoint; a round trip
per statement on PostgreSQL), and SQLite takes one writer at a time, so under a burst the
service was bounded by commits per second, and the record was even written only after the
answer went out. Here every request waiting when the writer turns to the queue joins one
batch:

1. the batch's events are appended in one transaction (``OrderLog.append`` takes many
   events: one insert, one re-derivation of the touched orders), on a writer thread, off
   the event loop;
2. each new order version is scored, in arrival order, where the engine's work runs
   (``serving.worker``); a version scored earlier (a retry) replays its stored answer, and
   two requests of one batch for the same version share one score;
3. the new records are stored in one transaction on the writer thread, the alerts of a
   hold queued beside them;
4. only then is each request answered: an acknowledged order and its decision are
   committed, so a process killed at any point loses nothing it answered for.

Batches overlap by one stage: as soon as a batch is appended, the next one is taken and
its append goes to the writer while the first is scored and stored (at most ``in_flight``
batches at once). The writer and the engine each take one call at a time in the order
given, so every stage sees the batches in arrival order; what the overlap buys is the
writer's work on one batch alongside the engine's on another (SQLite and the database
drivers leave Python's lock while they write or wait).

The delay this adds is bounded without a timer: a request waits at most for the batch in
progress, and a quiet service writes a batch of one at once. ``max_batch`` bounds a
batch's size (and so the wait of its last request). An event the log cannot encode is
not allowed to sink its batch: the batch is then appended one event at a time, so the
bad one alone gets its 422.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from orderguard.errors import InvalidInputError, OrderGuardError, ServiceUnavailableError
from orderguard.ingest.orderlog import AppendOutcome, AppendResult
from orderguard.outbox import Outbox
from orderguard.schema import Order, OrderEvent, OrderKey
from scoring.records import ScoreRecord
from serving.notify.messages import queue_decision_alerts

if TYPE_CHECKING:
    from serving.services import Services

logger = logging.getLogger("orderguard.serving")

_T = TypeVar("_T")


class OrderNotReadyError(OrderGuardError):
    """An after-sale document arrived before its order document: nothing to score yet."""

    code = "order_not_ready"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Scored:
    """The decision for one order version; ``replayed`` when it is the stored answer of an earlier call."""

    record: ScoreRecord
    replayed: bool


@dataclass(frozen=True, slots=True)
class Current:
    """What the log holds for one request's event once appended: the order's newest state, whether this very
    request stored that state's newest event (``fresh``: it cannot have been scored yet), and the stored
    answer of that version when it is not fresh and was scored already."""

    order: Order
    fresh: bool
    stored: ScoreRecord | None


#: One request's outcome of a step: its value, or the error it is answered with.
Outcome = Current | OrderGuardError


def current_states(svc: Services, events: Sequence[OrderEvent], result: AppendResult) -> list[Outcome]:
    """Each event's :class:`Current` after ``result`` (the append of ``events``), or its error.

    A conflicting event (same version, other content) gets its 409; an after-sale document
    whose order has not arrived gets a 409 too (``OrderNotReadyError``). One read of the
    state per event that gained nothing (a retry), one record lookup per version not fresh.
    """
    newest = {o.key: o for o in result.orders}
    conflicts = iter(result.conflicts)
    outcomes: list[Outcome] = []
    for event, appended in zip(events, result.outcomes, strict=True):
        if appended is AppendOutcome.CONFLICT:
            outcomes.append(next(conflicts).to_error())
            continue
        order = newest.get(event.key) or svc.order_log.get(event.key)
        if order is None:
            outcomes.append(OrderNotReadyError(
                f"`payload` refers to {event.key} whose order document has not arrived yet", field="payload"))
            continue
        # A version whose event this very call stored cannot have been scored yet: records are written only
        # after their event is in the log. Otherwise (a retry, a late older event) the stored answer, if any.
        fresh = appended is AppendOutcome.INSERTED and order.event_version == event.event_version
        stored = None if fresh else svc.scores.get(order.key, order.event_version)
        outcomes.append(Current(order, fresh, stored))
    return outcomes


def append_batch(svc: Services, events: Sequence[OrderEvent]) -> list[Outcome]:
    """Append ``events`` in one transaction and say where each stands (:func:`current_states`).

    When the log refuses the batch because one event cannot be encoded (nothing is stored
    then), the events are appended one by one, so only that event fails.

    Raises:
        ServiceUnavailableError: the database cannot be reached; nothing is stored.
    """
    try:
        return current_states(svc, events, svc.order_log.append(events))
    except InvalidInputError:
        if len(events) == 1:
            raise
    outcomes: list[Outcome] = []
    for event in events:
        try:
            outcomes.extend(current_states(svc, [event], svc.order_log.append([event])))
        except InvalidInputError as e:
            outcomes.append(e)
    return outcomes


def score_batch(svc: Services, currents: Sequence[Outcome]) -> list[Scored | OrderGuardError]:
    """The answer of each request: its stored answer, or a new score of its order's newest state.

    The new scores are taken together (``Scorer.score_many``: one round trip to a remote
    feature store for the batch). Requests of one batch for the same order version share one
    score (the later ones are answered as replays, like a retry after the first was stored).
    """
    fresh: dict[tuple[OrderKey, int], Order] = {}
    for current in currents:
        if not isinstance(current, OrderGuardError) and current.stored is None:
            fresh.setdefault((current.order.key, current.order.event_version), current.order)
    scored = dict(zip(fresh, svc.engine.scorer.score_many(list(fresh.values())), strict=True))
    answers: list[Scored | OrderGuardError] = []
    first: set[tuple[OrderKey, int]] = set()
    for current in currents:
        if isinstance(current, OrderGuardError):
            answers.append(current)
        elif current.stored is not None:
            answers.append(Scored(current.stored, replayed=True))
        else:
            ident = (current.order.key, current.order.event_version)
            record = scored[ident]
            if isinstance(record, OrderGuardError):
                answers.append(record)
            else:
                answers.append(Scored(record, replayed=ident in first))
                first.add(ident)
    return answers


def store_new(svc: Services, answers: Sequence[Scored | OrderGuardError]) -> list[Scored | OrderGuardError]:
    """Store the new records of ``answers`` in one transaction and queue the alerts of those stored.

    A version another process recorded in between keeps that record: it is what every
    later call replays, so it is what this call answers too.

    Raises:
        ServiceUnavailableError: the database cannot be reached; no record is stored.
    """
    new = [a.record for a in answers if not isinstance(a, OrderGuardError) and not a.replayed]
    if not new:
        return list(answers)
    kept = {(r.order_key, r.event_version): r for r in svc.scores.put_all(new)}
    outbox = Outbox(svc.order_log.engine)
    now = svc.clock.now()
    for record in new:
        if kept[(record.order_key, record.event_version)] is record:
            queue_decision_alerts(outbox, svc.settings.alerts, record, now=now)
    final: list[Scored | OrderGuardError] = []
    for answer in answers:
        if isinstance(answer, OrderGuardError) or answer.replayed:
            final.append(answer)
            continue
        stored = kept[(answer.record.order_key, answer.record.event_version)]
        final.append(answer if stored is answer.record else Scored(stored, replayed=True))
    return final


@dataclass(slots=True)
class _Waiting:
    event: OrderEvent
    answer: asyncio.Future[Scored]


@dataclass(frozen=True, slots=True)
class _Sent:
    """A batch whose append is on the writer: its requests, the append's future and when it was sent."""

    batch: list[_Waiting]
    appending: asyncio.Future[list[Outcome]]
    started: float


@dataclass(slots=True)
class CommitStats:
    """How batches have formed since the start: the load the writer sees (``/metrics``-style counters)."""

    batches: int = 0
    requests: int = 0
    largest: int = 0
    append_s: float = 0.0  # summed seconds of the batches' appends (writer thread, waits included)
    score_s: float = 0.0  # of their scoring (engine worker)
    store_s: float = 0.0  # of their record transactions (writer thread)

    def summary(self) -> dict[str, int | float]:
        """The counters and each stage's mean milliseconds per batch (what ``/healthz`` shows)."""
        per = 1000 / self.batches if self.batches else 0.0
        return {"batches": self.batches, "requests": self.requests, "largest": self.largest,
                "mean_batch": round(self.requests / self.batches, 2) if self.batches else 0.0,
                "append_ms": round(self.append_s * per, 3), "score_ms": round(self.score_s * per, 3),
                "store_ms": round(self.store_s * per, 3)}


@dataclass(slots=True)
class ScoreCommitter:
    """Queues score requests and answers them a batch at a time (see the module docstring).

    Built by the app's lifespan; :meth:`run` is its task for the service's lifetime and
    :meth:`close` lets it finish what was queued before the process stops.
    """

    svc: Services
    max_batch: int = 256
    in_flight: int = 2
    stats: CommitStats = field(default_factory=CommitStats)
    _queue: deque[_Waiting] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _closing: bool = False
    _writer: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="orderguard-writer"))

    async def score(self, event: OrderEvent) -> Scored:
        """The answer to one parsed event, once it and its record are committed.

        Raises:
            OrderGuardError: the event's own error (409, 422) or the database's (503).
        """
        if self._closing:
            raise ServiceUnavailableError("the service is stopping; send the order again to another instance")
        answer: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(event, answer))
        self._wake.set()
        return await answer

    async def on_writer(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` on the writer thread, between two of its steps: for a job that must not overlap this
        process's commits (a checkpoint that has to reach the log's end: ``serving.services.watch_checkpoints``).
        Requests that arrive meanwhile wait for it as they wait for a batch in progress."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    async def run(self) -> None:
        """Write batches until closed and drained.

        Batches overlap by a stage: once a batch's events are appended, the next batch (if one
        is queued) is taken and its append sent to the writer *before* the first batch's
        scoring starts, so the writer works on it while the engine scores, up to ``in_flight``
        batches at once. The order is set here, not left to the loop's scheduling: the writer
        runs its calls first come, first served, so the next append is ahead of this batch's
        record transaction. Each stage keeps the batches' order, and a batch still answers
        only once its own records are committed.
        """
        loop = asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        sent: _Sent | None = None
        while True:
            if sent is None:
                if self._closing and not self._queue:
                    break
                await self._wake.wait()
                sent = self._send_next(loop)
                continue
            await asyncio.wait([sent.appending])
            following = self._send_next(loop) if len(running) + 1 < self.in_flight else None
            task = asyncio.create_task(self._commit(sent))
            running.add(task)
            task.add_done_callback(running.discard)
            sent = following
            while len(running) >= self.in_flight:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        if running:
            await asyncio.gather(*running)

    def _send_next(self, loop: asyncio.AbstractEventLoop) -> _Sent | None:
        """Take the queued requests (up to ``max_batch``) and send their append to the writer; None if none wait."""
        batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        if not self._queue:
            self._wake.clear()
        if not batch:
            return None
        started = time.perf_counter()
        appending = loop.run_in_executor(self._writer, append_batch, self.svc, [w.event for w in batch])
        return _Sent(batch, appending, started)

    async def close(self, task: asyncio.Task[None]) -> None:
        """Refuse new requests, answer the queued ones, then stop the writer thread."""
        self._closing = True
        self._wake.set()
        try:
            await task
        finally:
            self._writer.shutdown(wait=True)

    async def _commit(self, sent: _Sent) -> None:
        loop = asyncio.get_running_loop()
        svc, batch, started = self.svc, sent.batch, sent.started
        self.stats.batches += 1
        self.stats.requests += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        stats, clock = self.stats, time.perf_counter
        try:
            currents = await sent.appending
            appended = clock()
            answers = await svc.worker.run(score_batch, svc, currents)
            scored = clock()
            final = await loop.run_in_executor(self._writer, store_new, svc, answers)
            stats.append_s += appended - started
            stats.score_s += scored - appended
            stats.store_s += clock() - scored
        except OrderGuardError as e:
            for waiting in batch:
                _settle(waiting.answer, e)
            return
        except Exception as e:  # a bug must fail its requests (500), never leave them waiting forever
            logger.exception("score batch of %d failed", len(batch))
            for waiting in batch:
                _settle(waiting.answer, e)
            return
        for waiting, answer in zip(batch, final, strict=True):
            _settle(waiting.answer, answer)


def _settle(future: asyncio.Future[Scored], answer: Scored | BaseException) -> None:
    """Answer a waiting request unless it went away (a client that hung up: its order is stored all the same)."""
    if future.done():
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
