"""Rate limit of failed sign-ins, per user and address and per address alone.

Argon2 makes one guess slow; this makes many guesses impossible: after
``settings.session.max_failures`` failures for one user from one address within
``failure_window`` that pair is refused until the oldest failure leaves the window, and
an address that fails ``max_failures_per_address`` times (password spraying across many
user names) is refused for every user. Refusals come before the password is checked, so
a locked-out guesser learns nothing, and a locked account's owner signing in from
another address is unaffected (no lock-out of a victim by a stranger).

The record is per process and bounded (the oldest addresses are forgotten first); a
deployment running several processes behind one address multiplies the allowance by
their number, which still bounds guessing far below what a brute force needs.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta

#: Most addresses and user-address pairs remembered (oldest forgotten first).
MAX_TRACKED = 50_000


class _Window:
    """Failure times per key within a sliding window, bounded in keys."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._failures: OrderedDict[object, deque[datetime]] = OrderedDict()

    def _recent(self, key: object, now: datetime) -> deque[datetime] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: object, now: datetime) -> timedelta | None:
        """How long ``key`` must wait, or ``None`` when it may try."""
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return None
        return times[-self.limit] + self.window - now

    def fail(self, key: object, now: datetime) -> None:
        times = self._recent(key, now)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)
        times.append(now)
        self._failures.move_to_end(key)

    def forget(self, key: object) -> None:
        self._failures.pop(key, None)


class SignInThrottle:
    """Failed sign-ins per (user, address) and per address (see the module docstring)."""

    def __init__(self, *, per_user: int, per_address: int, window: timedelta) -> None:
        self._pairs = _Window(per_user, window)
        self._addresses = _Window(per_address, window)

    def retry_after(self, user: str, address: str, now: datetime) -> timedelta | None:
        """How long this user at this address must wait before the next try, or ``None``.

        >>> from datetime import UTC
        >>> t = datetime(2024, 1, 1, tzinfo=UTC)
        >>> throttle = SignInThrottle(per_user=2, per_address=10, window=timedelta(minutes=15))
        >>> throttle.failed("alice", "10.0.0.1", t); throttle.failed("alice", "10.0.0.1", t)
        >>> throttle.retry_after("alice", "10.0.0.1", t + timedelta(minutes=5))
        datetime.timedelta(seconds=600)
        >>> throttle.retry_after("alice", "10.0.0.2", t) is None  # the owner elsewhere is not locked out
        True
        """
        waits = [w for w in (self._pairs.retry_after((user, address), now),
                             self._addresses.retry_after(address, now)) if w is not None]
        return max(waits) if waits else None

    def failed(self, user: str, address: str, now: datetime) -> None:
        """Count a failed sign-in."""
        self._pairs.fail((user, address), now)
        self._addresses.fail(address, now)

    def succeeded(self, user: str, address: str) -> None:
        """A good password clears that user's failures from that address (not the address's count)."""
        self._pairs.forget((user, address))
