"""The last decoded read of each sorted set, reused when the next read continues it.

A scored order reads the same busy keys again and again (a SKU's week of lines, a
province's day): between two reads of a key its window slides forward, a few facts
drop off the front and a few arrive at the end. The Redis store answers a read with the
facts' tokens, fixed width and joined by spaces. When the new answer is the tail of the
last one from some token on, followed by new tokens, the new range is the last range's
facts from that point (a list slice) plus the facts of the new tokens: the comparison is
a byte comparison and the slice a list copy, both in C, and only the new tokens are
looked up one by one. Resolving every token of every read was most of a scored order's
time on Redis (a lookup reads ~400 facts, ~1,300 at p99).

A token is the digest of a fact's encoding, so what a memo holds never goes stale; a
read that does not continue the last one (a fact inserted in the middle by a late event,
one removed by a newer version) is resolved in full and becomes the new last read.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.facts import Fact

#: Characters of a token (``stores.codec.fact_token``: twenty hex digits).
TOKEN_CHARS = 20


@dataclass(frozen=True, slots=True)
class Continued:
    """What a read shares with the last read of its key: the facts kept (and their times) and the tokens
    that follow them, still to be resolved."""

    facts: list[Fact]
    times: list[int]
    new_tokens: list[bytes]


class RangeMemo:
    """The last read of at most ``capacity`` keys (all forgotten at once when full: a bound, not a policy).

    The lists handed out are shared with the memo: callers only read them.

    >>> from features.facts import FactKind
    >>> a, b, c = (Fact(FactKind.ORDER, ts, f"o{ts}", {}, {}) for ts in (1, 2, 3))
    >>> ta, tb, tc = b"a" * 20, b"b" * 20, b"c" * 20
    >>> memo = RangeMemo(capacity=10)
    >>> memo.keep("k", ta + b" " + tb, [a, b], [1, 2])
    >>> slid = memo.continued("k", tb + b" " + tc)
    >>> slid.facts == [b], slid.times, slid.new_tokens
    (True, [2], [b'cccccccccccccccccccc'])
    >>> memo.continued("k", tc) is None  # starts after the last read ended: nothing shared
    True
    """

    def __init__(self, *, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1; got {capacity!r}")
        self._capacity = capacity
        self._last: dict[str, tuple[bytes, list[Fact], list[int]]] = {}

    def __len__(self) -> int:
        return len(self._last)

    def keep(self, key: str, read: bytes, facts: list[Fact], times: list[int]) -> None:
        """Remember ``read`` (the tokens as the store sent them) of ``key`` and its decoded facts."""
        last = self._last
        if key not in last and len(last) >= self._capacity:
            last.clear()
        last[key] = (read, facts, times)

    def continued(self, key: str, read: bytes) -> Continued | None:
        """The part of ``read`` the last read of ``key`` already decoded, or ``None`` when it shares none.

        The last read must match ``read`` from its token equal to ``read``'s first token
        to its end. Tokens hold no spaces, so a match of the first token can only start at
        a token boundary; a sorted set holds each token once, so there is one match at most.
        """
        last = self._last.get(key)
        if last is None:
            return None
        old, facts, times = last
        if read == old:
            return Continued(facts, times, [])
        at = old.find(read[:TOKEN_CHARS])
        if at < 0:
            return None
        rest = len(old) - at
        if not read.startswith(old[at:]) or (len(read) > rest and read[rest] != 0x20):
            return None
        skip = len(facts) - (rest + 1) // (TOKEN_CHARS + 1)
        tail = read[rest + 1:]
        return Continued(facts[skip:], times[skip:], tail.split(b" ") if tail else [])
