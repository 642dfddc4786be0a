"""The checks of one order at one moment: which fail, since when, and when the next one could.

Pure: a :class:`~health.track.Track`, the checks and ``as_of`` in, the failing checks
(each with the moment it became due) and the next moment a check could start failing out.
The sweeper calls it for orders that changed and orders whose next deadline passed, so an
order that nobody touches is still flagged the first sweep after its deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from health.checks import Check, HealthConfig, Kind, Tier
from health.track import Track


@dataclass(frozen=True, slots=True)
class Failing:
    """A check failing at ``as_of``: due since ``due_at``; ``detail`` says what is missing, in plain words."""

    check: Check
    due_at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """All failing checks of one order, and the earliest future moment another could fail (``None``: never
    without a new event)."""

    failing: tuple[Failing, ...]
    next_due: datetime | None

    def grade(self, config: HealthConfig) -> tuple[float, Tier]:
        """The order's score (100 minus its failed components' weights) and tier."""
        score = config.score({f.check.component for f in self.failing})
        return score, config.tier(score, flagged=bool(self.failing))


def _latest(track: Track, names: tuple[str, ...]) -> datetime | None:
    times = [t for name in names for t in track.times_of(name)]
    return max(times) if times else None


def _any(track: Track, names: tuple[str, ...]) -> bool:
    return any(track.times_of(name) for name in names)


def _deadline_of(check: Check, track: Track, anchor: datetime) -> datetime:
    if check.use_due_at:
        for name in check.after:
            due = track.due_of(name)
            if due is not None:
                return due
    return anchor + check.deadline(track.key.channel)


def _timed(check: Check, track: Track, as_of: datetime) -> tuple[Failing | None, datetime | None]:
    """A ``missing_step`` or ``silence`` check: failing, or when it would fail."""
    anchor = _latest(track, check.after)
    if anchor is None:
        return None, None
    if check.kind is Kind.MISSING_STEP:
        if _any(track, check.expect):
            return None, None
    else:  # silence: a step that is expected but never an anchor ends it (delivered)
        if _any(track, tuple(n for n in check.expect if n not in check.after)):
            return None, None
    due = _deadline_of(check, track, anchor)
    if as_of >= due:
        missing = " / ".join(check.expect)
        return Failing(check, due, f"no {missing} since {anchor.isoformat()}"), None
    return None, due


def _fact(check: Check, track: Track) -> Failing | None:
    """A check on the order document or on the complaint: failing or not, no deadline."""
    facts = track.facts
    if check.kind is Kind.FALSE_DELIVERY:
        delivered = _latest(track, ("delivered",))
        if delivered is None or track.complaint_at is None:
            return None
        return Failing(check, max(delivered, track.complaint_at),
                       f"delivered {delivered.isoformat()}, buyer says not received {track.complaint_at.isoformat()}")
    if facts is None:
        return None
    if check.kind is Kind.ADDRESS_INCOMPLETE:
        if facts.address_defects:
            return Failing(check, facts.created_at, "address: " + ", ".join(facts.address_defects))
        return None
    if check.kind is Kind.PHONE_INVALID:
        return None if facts.phone_problem is None else Failing(check, facts.created_at,
                                                                f"phone: {facts.phone_problem}")
    if check.kind is Kind.PRICE_BOUNDS:
        low = check.min_paid_share is not None and facts.list_fen > 0 and \
            facts.paid_fen < check.min_paid_share * facts.list_fen
        stacked = check.max_discount_share is not None and facts.goods_fen > 0 and \
            facts.discount_fen > check.max_discount_share * facts.goods_fen
        if low or stacked:
            detail = (f"paid {facts.paid_fen / 100:.2f} of list {facts.list_fen / 100:.2f}, "
                      f"discounts {facts.discount_fen / 100:.2f}")
            return Failing(check, facts.created_at, detail)
        return None
    if check.kind is Kind.DUPLICATE_ORDER:
        return None if track.duplicate_of is None else Failing(check, facts.created_at,
                                                               f"repeats {track.duplicate_of}")
    raise AssertionError(f"unhandled check kind {check.kind}")


def evaluate(track: Track, config: HealthConfig, as_of: datetime) -> Verdict:
    """Every check of ``config`` on ``track`` at ``as_of``.

    An order whose fulfilment is halted (finished, or a refund asked before shipping)
    fails nothing: nothing is owed on it. The order document's facts (address, phone,
    price, duplicate) count from its creation, paid or not (customer service can still
    have an address fixed before payment; an order closed unpaid drops its findings); a
    timed check counts once its anchor happened (a presale's deposit before payment, too).
    """
    if track.halted:
        return Verdict((), None)
    failing: list[Failing] = []
    next_due: datetime | None = None
    for check in config.checks:
        if check.kind in (Kind.MISSING_STEP, Kind.SILENCE):
            fail, due = _timed(check, track, as_of)
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        else:
            fail = _fact(check, track)
            if fail is not None and fail.due_at > as_of:  # an event stamped ahead of the sweep: due then
                next_due = fail.due_at if next_due is None else min(next_due, fail.due_at)
                fail = None
        if fail is not None:
            failing.append(fail)
    return Verdict(tuple(failing), next_due)
