"""The sweeper: keeps every order in flight as a timeline and finds the stuck ones, also when nothing happens.

Events come in (channel events and fulfilment steps, in any order); every ``sweep(as_of)``
re-evaluates only the orders that changed since the last sweep and the orders whose next
deadline has passed (a heap of deadlines), so a lost callback is flagged the first sweep
after its deadline although no event ever arrives for it, and a sweep costs in proportion
to what happened, not to the number of orders in flight.

Each sweep returns what changed (findings opened and resolved, orders escalated to a
worse tier) and the shop's state: counts by tier, stage and channel, the overall health
and the riskiest orders. Overall health is the mean health score of the orders *in the
pipeline*: paid, not finished, and either not yet delivered or with a check failing
(a delivered, quiet order no longer says anything about today's fulfilment).

Times are event times given by the caller: the service sweeps at "now", a replay
(``orderguard health sweep --as-of``) at any past moment with the events up to it.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from health.checks import TIER_ORDER, HealthConfig, Kind, Tier
from health.evaluate import evaluate
from health.track import Track
from orderguard.fulfilment import FulfilmentEvent
from orderguard.schema import OrderEvent

#: How many of the riskiest orders a sweep reports (the dashboard's red list; the robots get the first 5).
WORST = 50
_URGENT = frozenset({Tier.YELLOW, Tier.ORANGE, Tier.RED})


@dataclass(frozen=True, slots=True)
class Finding:
    """A check that started failing on an order: due since ``due_at``, first seen failing at ``flagged_at``."""

    order_key: str
    channel: str
    check_id: str
    stage: str
    component: str
    due_at: datetime
    flagged_at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class OrderHealth:
    """An order's health after a sweep: score, tier, its failing checks (oldest due first)."""

    order_key: str
    channel: str
    score: float
    tier: str
    checks: tuple[str, ...]
    oldest_due: datetime | None


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep found and the shop's state after it."""

    as_of: datetime
    evaluated: int
    opened: tuple[Finding, ...]
    resolved: tuple[tuple[str, str], ...]
    escalated: tuple[OrderHealth, ...]
    overall: float
    orders: int
    tiers: dict[str, int]
    stages: dict[str, int]
    channels: dict[str, dict[str, int]]
    worst: tuple[OrderHealth, ...]

    def summary(self) -> dict[str, object]:
        """The JSON the snapshot keeps and the dashboard shows."""
        return {"tiers": self.tiers, "stages": self.stages, "channels": self.channels,
                "worst": [{"order_key": w.order_key, "channel": w.channel, "score": w.score, "tier": w.tier,
                           "checks": list(w.checks),
                           "oldest_due": None if w.oldest_due is None else w.oldest_due.isoformat()}
                          for w in self.worst]}


@dataclass(slots=True)
class _Tally:
    """The running counts over orders in the pipeline, moved as each order's health changes."""

    tiers: Counter[str] = field(default_factory=Counter)
    channels: dict[str, Counter[str]] = field(default_factory=dict)
    stages: Counter[str] = field(default_factory=Counter)
    score_sum: float = 0.0
    orders: int = 0

    def count(self, track: Track, sign: int) -> None:
        self.tiers[track.tier] += sign
        self.channels.setdefault(track.key.channel.value, Counter())[track.tier] += sign
        self.score_sum += sign * track.score
        self.orders += sign


class Sweeper:
    """Orders in flight and their health (see the module docstring); one per service process or replay."""

    def __init__(self, config: HealthConfig, *, horizon: timedelta = timedelta(days=30), worst: int = WORST) -> None:
        self.config = config
        self.horizon = horizon
        self._worst = worst
        self._tracks: dict[str, Track] = {}
        self._dirty: set[str] = set()
        self._due: list[tuple[datetime, str]] = []
        self._flagged: set[str] = set()
        self._carts: dict[tuple[str, str, tuple[tuple[str, int], ...]], list[tuple[datetime, str]]] = {}
        self._tally = _Tally()
        self._duplicate = next((c for c in config.checks if c.kind is Kind.DUPLICATE_ORDER), None)
        self._stage_of = {c.id: c.stage for c in config.checks}
        self._last_prune: datetime | None = None

    # -- feeding -------------------------------------------------------------------------------------------------

    def _track(self, text: str, event: OrderEvent | FulfilmentEvent) -> Track:
        track = self._tracks.get(text)
        if track is None:
            track = self._tracks[text] = Track(key=event.key, text=text)
        self._dirty.add(text)
        return track

    def add_order_events(self, events: Iterable[OrderEvent]) -> int:
        """Fold channel events in; how many."""
        n = 0
        for event in events:
            text = str(event.key)
            track = self._track(text, event)
            if track.add_order_event(event) and self._duplicate is not None:
                self._index_cart(track)
            n += 1
        return n

    def add_steps(self, steps: Iterable[FulfilmentEvent]) -> int:
        """Fold fulfilment reports in; how many."""
        n = 0
        for step in steps:
            self._track(str(step.key), step).add_step(step)
            n += 1
        return n

    def _index_cart(self, track: Track) -> None:
        """Pair an order with the same buyer's same cart placed within the duplicate window (the later repeats
        the earlier), in whichever order the two arrive."""
        assert self._duplicate is not None and track.facts is not None
        facts = track.facts
        if not facts.cart:
            return
        window = self._duplicate.within
        slot = self._carts.setdefault((track.key.channel.value, facts.account, facts.cart), [])
        if all(key != track.text for _, key in slot):
            slot.append((facts.created_at, track.text))
            slot.sort()
        newest = slot[-1][0]
        slot[:] = [(at, key) for at, key in slot if newest - at <= 4 * window]
        for (at_a, key_a), (at_b, key_b) in itertools.pairwise(slot):
            if at_b - at_a > window:
                continue
            pairs = [(key_a, key_b), (key_b, key_a)] if at_a == at_b else [(key_a, key_b)]  # same second: both
            for first, repeat in pairs:
                earlier, later = self._tracks.get(first), self._tracks.get(repeat)
                if later is None or (earlier is not None and earlier.halted) or later.duplicate_of is not None:
                    continue
                later.duplicate_of = first
                self._dirty.add(repeat)

    # -- sweeping ------------------------------------------------------------------------------------------------

    def sweep(self, as_of: datetime) -> SweepResult:
        """Re-evaluate the orders that changed or whose deadline passed, at ``as_of``."""
        keys = self._dirty
        self._dirty = set()
        while self._due and self._due[0][0] <= as_of:
            due, text = heapq.heappop(self._due)
            track = self._tracks.get(text)
            if track is not None and track.scheduled == due:
                track.scheduled = None
                keys.add(text)
        opened: list[Finding] = []
        resolved: list[tuple[str, str]] = []
        escalated: list[OrderHealth] = []
        for text in keys:
            track = self._tracks.get(text)
            if track is not None:
                self._judge(track, as_of, opened, resolved, escalated)
        if self._last_prune is None or as_of - self._last_prune >= timedelta(hours=1):
            self._prune(as_of)
            self._last_prune = as_of
        tally = self._tally
        overall = 100.0 if tally.orders == 0 else round(tally.score_sum / tally.orders, 2)
        return SweepResult(
            as_of=as_of, evaluated=len(keys), opened=tuple(opened), resolved=tuple(resolved),
            escalated=tuple(escalated), overall=overall, orders=tally.orders,
            tiers={t.value: tally.tiers[t.value] for t in TIER_ORDER},
            stages={s: n for s, n in sorted(tally.stages.items()) if n},
            channels={ch: {t: n for t, n in sorted(c.items()) if n} for ch, c in sorted(tally.channels.items())
                      if any(c.values())},
            worst=self.worst(self._worst))

    def _judge(self, track: Track, as_of: datetime, opened: list[Finding], resolved: list[tuple[str, str]],
               escalated: list[OrderHealth]) -> None:
        verdict = evaluate(track, self.config, as_of)
        now = {f.check.id: f for f in verdict.failing}
        for check_id in [c for c in track.open if c not in now]:
            del track.open[check_id]
            resolved.append((track.text, check_id))
            self._tally.stages[self._stage_of.get(check_id, "order")] -= 1
        for check_id, fail in now.items():
            if check_id not in track.open:
                check = fail.check
                opened.append(Finding(track.text, track.key.channel.value, check_id, check.stage, check.component,
                                      fail.due_at, as_of, fail.detail))
                self._tally.stages[check.stage] += 1
            track.open[check_id] = fail.due_at
        if track.counted:
            self._tally.count(track, -1)
        before = track.tier
        track.score, tier = verdict.grade(self.config)
        track.tier = tier.value
        track.counted = not track.halted and (
            bool(track.open) or (track.paid_at is not None and not track.times_of("delivered")))
        if track.counted:
            self._tally.count(track, 1)
        if track.open:
            self._flagged.add(track.text)
        else:
            self._flagged.discard(track.text)
        if track.tier in _URGENT and TIER_ORDER.index(Tier(track.tier)) > TIER_ORDER.index(Tier(before)):
            escalated.append(self._health(track))
        if track.finished:
            self._drop(track)
        elif verdict.next_due is not None and verdict.next_due != track.scheduled:
            track.scheduled = verdict.next_due
            heapq.heappush(self._due, (verdict.next_due, track.text))

    def _drop(self, track: Track) -> None:
        if track.counted:
            self._tally.count(track, -1)
            track.counted = False
        for check_id in track.open:
            self._tally.stages[self._stage_of.get(check_id, "order")] -= 1
        self._flagged.discard(track.text)
        self._tracks.pop(track.text, None)

    def _prune(self, as_of: datetime) -> None:
        """Forget quiet orders older than the horizon (nothing failing, no event for ``horizon``)."""
        cutoff = as_of - self.horizon
        old = [t for t in self._tracks.values()
               if not t.open and t.last_event_at is not None and t.last_event_at < cutoff]
        for track in old:
            self._drop(track)
        for slot_key in [k for k, v in self._carts.items() if v[-1][0] < cutoff]:
            del self._carts[slot_key]

    # -- reading -------------------------------------------------------------------------------------------------

    def _health(self, track: Track) -> OrderHealth:
        ordered = sorted(track.open.items(), key=lambda kv: (kv[1], kv[0]))
        return OrderHealth(track.text, track.key.channel.value, track.score, track.tier,
                           tuple(c for c, _ in ordered), ordered[0][1] if ordered else None)

    def worst(self, n: int) -> tuple[OrderHealth, ...]:
        """The ``n`` riskiest orders: lowest score first, then the longest overdue."""
        flagged = [self._tracks[k] for k in self._flagged if k in self._tracks]
        flagged.sort(key=lambda t: (t.score, min(t.open.values()), t.text))
        return tuple(self._health(t) for t in flagged[:n])

    def open_findings(self) -> Iterator[tuple[str, str, datetime]]:
        """``(order key, check id, due at)`` of every check failing at the last sweep."""
        for text in self._flagged:
            track = self._tracks.get(text)
            if track is not None:
                for check_id, due in track.open.items():
                    yield text, check_id, due

    def health_of(self, order_key: str) -> OrderHealth | None:
        """One tracked order's health as of the last sweep."""
        track = self._tracks.get(order_key)
        return None if track is None else self._health(track)

    def track(self, order_key: str) -> Track | None:
        """The folded timeline of one tracked order."""
        return self._tracks.get(order_key)

    @property
    def tracked(self) -> int:
        """Orders held in memory."""
        return len(self._tracks)
