"""Event-time window semantics, written down once for both engines.

Every feature aggregates the facts of one entity that fall in a window ending at the
query time ``t`` (the event time of the order being scored, or any ``as_of``):

* **Window** ``(t - o - w, t - o]``: ``w`` is the window length, ``o`` an optional
  delay (offset, default 0). The lower edge is *open*, the upper edge *closed*: a fact
  stamped exactly ``t - w`` is out, a fact stamped exactly ``t`` is in. With ``o = 0``
  the window therefore includes the current order itself and every other fact stamped
  at the same instant (its *peers*), whatever their arrival order.
* **Strict windows** ``(t - o - w, t - o)`` exclude the upper edge; ``time_since``
  uses them so that "seconds since the previous fact" never sees the current one.
* **Event time only.** Facts land by their own event time (a late fact fills the past
  window it belongs to); receive time is never used.
* **Duplicates** are ignored by fact identity (see ``features.facts``): applying the
  same order twice never counts it twice.

Time is handled as integer microseconds since the Unix epoch (``to_us``), the
resolution of :class:`datetime.datetime`: window edges are then exact integers and the
batch engine can use ``RANGE BETWEEN a PRECEDING AND b PRECEDING`` frames over a
``BIGINT`` column with the very same ``a`` and ``b`` (``Window.frame``).

Why peers are included: channels stamp many orders to the second, and a burst of
orders from one device within one second is exactly what velocity features must see.
The cost is a bounded skew at serving time: an order scored before a same-instant peer
arrived does not count that peer, while the training frame does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orderguard.durations import parse_duration

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(at: datetime) -> int:
    """A tz-aware datetime as integer microseconds since the Unix epoch (exact).

    >>> to_us(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC))
    1000005
    """
    if at.tzinfo is None:
        raise ValueError(f"event times must be tz-aware UTC; got {at!r}")
    return (at - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """Inverse of :func:`to_us`, in UTC.

    >>> from_us(1000005).isoformat()
    '1970-01-01T00:00:01.000005+00:00'
    """
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class Duration:
    """A positive length of time written the way feature names show it (``5m``, ``48h``).

    The text is kept as written (normalised to lower case, no spaces) because it is
    part of the feature name: ``48h`` stays ``48h`` and is not rewritten to ``2d``.

    Attributes:
        us: the length in microseconds, always > 0.
        text: ``<integer><unit>`` with unit one of s, m, h, d, w.

    >>> Duration.parse("48h").us == 48 * 3600 * 10**6
    True
    >>> Duration.parse(" 5M ").text
    '5m'
    """

    us: int
    text: str

    @classmethod
    def parse(cls, text: str, *, field: str = "window") -> Duration:
        """Parse ``<integer><unit>``; zero, negative or malformed values are a ``ConfigError``.

        >>> Duration.parse("0m")
        Traceback (most recent call last):
        ...
        orderguard.errors.ConfigError: `window` must be a positive duration like 5m, 48h or 30d; got '0m'
        """
        us, normalised = parse_duration(text, field=field)
        return cls(us, normalised)

    def to_timedelta(self) -> timedelta:
        """The same length as a :class:`timedelta`.

        >>> Duration.parse("90s").to_timedelta()
        datetime.timedelta(seconds=90)
        """
        return timedelta(microseconds=self.us)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Window:
    """The window ``(t - offset - length, t - offset]`` of one feature.

    Attributes:
        length_us: window length ``w`` in microseconds (> 0).
        offset_us: delay ``o`` in microseconds (>= 0); a delayed window never sees the
            most recent ``o`` of history, e.g. labels that were not yet known.

    >>> w = Window(length_us=300, offset_us=0)
    >>> w.frame(strict=False), w.frame(strict=True)
    ((299, 0), (299, 1))
    >>> Window(length_us=10, offset_us=5).frame(strict=False)  # at t = 100: 86 <= ts <= 95
    (14, 5)
    """

    length_us: int
    offset_us: int = 0

    def __post_init__(self) -> None:
        if self.length_us <= 0 or self.offset_us < 0:
            raise ValueError(f"window length must be > 0 and offset >= 0; got {self!r}")

    @property
    def span_us(self) -> int:
        """How far back from ``t`` the window reaches (``o + w``): the history it needs."""
        return self.length_us + self.offset_us

    def frame(self, *, strict: bool) -> tuple[int, int]:
        """``(a, b)`` such that a fact at ``ts`` is in the window iff ``t - a <= ts <= t - b``.

        These are exactly the bounds of the SQL frame
        ``RANGE BETWEEN a PRECEDING AND b PRECEDING`` over integer microseconds, so the
        batch engine and the online engine share one definition of the edges.
        """
        return self.span_us - 1, self.offset_us + (1 if strict else 0)
