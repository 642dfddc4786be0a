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

The store need not even send the tokens a memo already holds: each sorted set carries a
*stamp* that changes whenever the set changes other than by an append at its end (see
``stores.redis``), and a read whose key still has the stamp its memo was read under asks
only for the tokens after the memo's last one (:meth:`RangeMemo.since`,
:meth:`RangeMemo.extended`). On a busy key that is a few tokens instead of a thousand: the
server's time to list them was most of a scored order's round trip.

A long read also carries running totals (:class:`MemoTotals`), as the memory store's
ranges do: a SKU's week of lines averaged for its usual price is then two subtractions
instead of a pass over every line, and the totals continue with the read (a slice and the
new facts), so they are summed once per fact, not once per read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from features.facts import Fact
from features.stores.base import TOTALS_FROM, Running, running_totals

#: Characters of a token (``stores.codec.fact_token``: twenty hex digits).
TOKEN_CHARS = 20
_WIDTH = TOKEN_CHARS + 1  # a token and the space after it


@dataclass(frozen=True, slots=True)
class Kept:
    """One key's last read: the tokens as the store sent them, their decoded facts and times, the
    facts' totals, the read's lower bound and the key's stamp when it was read (empty: none known)."""

    read: bytes
    facts: list[Fact]
    times: list[int]
    totals: MemoTotals | None
    lo: int
    stamp: bytes


@dataclass(frozen=True, slots=True)
class Continued:
    """What a read shares with the last read of its key: the facts kept (and their times) and the tokens
    that follow them, still to be resolved."""

    facts: list[Fact]
    times: list[int]
    new_tokens: list[bytes]
    previous: MemoTotals | None = None  # the last read's totals
    skip: int = 0  # facts of the last read that slid out of this one

    def with_new(self, more: list[Fact]) -> tuple[list[Fact], list[int], MemoTotals | None]:
        """The whole range once the new tokens are resolved to ``more``: facts, times and totals
        (a range shorter than ``TOTALS_FROM`` goes without)."""
        facts = self.facts + more if more else self.facts
        times = self.times + [f.ts for f in more] if more else self.times
        if len(facts) < TOTALS_FROM or self.previous is None:
            return facts, times, MemoTotals.of(facts)
        if not self.skip and not more:  # the very same read
            return facts, times, self.previous
        return facts, times, self.previous.continued(self.skip, facts)


class MemoTotals:
    """Running integer totals of one read's facts, per attribute: ``totals(attr, i, j)`` is the sum and the
    count of the known values of ``attr`` over ``facts[i:j]`` (``base.Totals``), or ``None`` when a value
    is not an integer (the engine then folds the facts).

    Each attribute's totals are built on first use and carried to the read that continues this one
    (:meth:`continued`). Nothing is ever changed in place: ranges handed out earlier keep their totals,
    whichever thread reads them.

    >>> from features.facts import FactKind
    >>> facts = [Fact(FactKind.LINE, ts, f"l{ts}", {}, {"units": ts}) for ts in range(1, 6)]
    >>> totals = MemoTotals(facts)
    >>> totals("units", 1, 4)  # facts 2, 3, 4
    (9, 3)
    >>> slid = totals.continued(2, facts[2:] + [Fact(FactKind.LINE, 6, "l6", {}, {"units": 6})])
    >>> slid("units", 0, 4), totals("units", 0, 5)  # 3 + 4 + 5 + 6; the earlier read's totals unchanged
    ((18, 4), (15, 5))
    """

    __slots__ = ("_facts", "_found")

    def __init__(self, facts: Sequence[Fact], found: dict[str, Running] | None = None) -> None:
        self._facts = facts
        self._found: dict[str, Running] = {} if found is None else found

    @classmethod
    def of(cls, facts: Sequence[Fact]) -> MemoTotals | None:
        """Totals for a read of ``facts``; none for a read shorter than ``TOTALS_FROM`` (folded as fast)."""
        return cls(facts) if len(facts) >= TOTALS_FROM else None

    def __call__(self, attr: str, i: int, j: int) -> tuple[int, int] | None:
        if attr not in self._found:
            self._found[attr] = running_totals(self._facts, attr)
        found = self._found[attr]
        if found is None:
            return None
        sums, counts = found
        return sums[j] - sums[i], counts[j] - counts[i]

    def continued(self, skip: int, facts: Sequence[Fact]) -> MemoTotals:
        """The totals of ``facts``: this read's facts from ``skip`` on, then new ones at the end.

        Totals already built move along (the new facts' totals added after them); an attribute
        with a non-integer value is left to be built afresh on use, since that value may have
        slid out of the window.
        """
        found: dict[str, Running] = {}
        added = facts[len(self._facts) - skip:]
        for attr, totals in self._found.items():
            if totals is None:
                continue
            more = running_totals(added, attr)
            if more is None:
                continue
            (sums, counts), (more_sums, more_counts) = totals, more
            total, count = sums[-1], counts[-1]
            found[attr] = (sums[skip:] + [total + s for s in more_sums[1:]],
                           counts[skip:] + [count + c for c in more_counts[1:]])
        return MemoTotals(facts, found)


class RangeMemo:
    """The last read of at most ``capacity`` keys, the least recently read forgotten first.

    Why not forget all at once when full: that dropped a busy shop's hot keys with the rest
    (their next reads whole again), and freeing twenty thousand reads at once took
    milliseconds inside one scored order.

    The lists handed out are shared with the memo: callers only read them. Stamps are only
    meaningful within one *generation* of the store (a flush starts a new one, and stamps may
    repeat across it): :meth:`adopt` forgets everything when the generation changes, and
    :meth:`keep` ignores a read made in another generation than the memo's.

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
        self._last: OrderedDict[str, Kept] = OrderedDict()
        self._generation: bytes | None = None

    def __len__(self) -> int:
        return len(self._last)

    @property
    def generation(self) -> bytes | None:
        """The store generation the kept reads belong to (``None`` before the first is adopted)."""
        return self._generation

    def adopt(self, generation: bytes) -> None:
        """The store is in ``generation``: forget every read of an earlier one."""
        if generation != self._generation:
            self._last = OrderedDict()
            self._generation = generation

    def keep(self, key: str, read: bytes, facts: list[Fact], times: list[int], totals: MemoTotals | None = None,
             *, lo: int = 0, stamp: bytes = b"", generation: bytes | None = None) -> None:
        """Remember ``read`` (the tokens as the store sent them) of ``key``, its decoded facts and their totals.

        ``lo`` is the read's lower bound and ``stamp`` the key's stamp as of the read (empty:
        the read cannot be extended, only continued). A read of another ``generation`` than
        the memo's (one that raced a flush) is not kept.
        """
        if generation != self._generation:
            return
        last = self._last
        last.pop(key, None)  # then set again: to the end, the most recently read
        last[key] = Kept(read, facts, times, totals, lo, stamp)
        while len(last) > self._capacity:
            last.popitem(last=False)

    def since(self, key: str, lo: int) -> Kept | None:
        """The last read of ``key`` if a read from ``lo`` can extend it: it has a stamp and facts, it
        starts at or before ``lo``, and its last fact is not before ``lo`` (else it holds nothing of use)."""
        last = self._last.get(key)
        if last is None or not last.stamp or not last.times or lo < last.lo or last.times[-1] < lo:
            return None
        return last

    @staticmethod
    def extended(base: Kept, lo: int, hi: int, tail: bytes) -> tuple[Continued, bytes]:
        """A read of ``[lo, hi]`` made of ``base`` (from :meth:`since`) and the tokens the store sent after
        its last one (``tail``): the shared part, and the whole read's tokens as the store would send them.

        >>> from features.facts import FactKind
        >>> facts = [Fact(FactKind.ORDER, ts, f"o{ts}", {}, {}) for ts in (1, 2, 3)]
        >>> base = Kept(b" ".join(bytes([97 + i]) * 20 for i in range(3)), facts, [1, 2, 3], None, 0, b"7")
        >>> shared, read = RangeMemo.extended(base, 2, 9, b"d" * 20)
        >>> [f.ts for f in shared.facts], shared.skip, read == b" ".join(c * 20 for c in (b"b", b"c", b"d"))
        ([2, 3], 1, True)
        """
        times = base.times
        i, j = bisect_left(times, lo), bisect_right(times, hi)
        kept = base.read[i * _WIDTH:j * _WIDTH - 1] if j > i else b""
        read = kept + b" " + tail if kept and tail else kept or tail
        # totals continue only a read kept to its end (new facts follow its last one)
        previous = base.totals if j == len(times) else None
        return Continued(base.facts[i:j], times[i:j], tail.split(b" ") if tail else [], previous, i), read

    def continued(self, key: str, read: bytes) -> Continued | None:
        """The part of ``read`` the last read of ``key`` already decoded, or ``None`` when it shares none.

        The last read must match ``read`` from its token equal to ``read``'s first token
        to its end. Tokens hold no spaces, so a match of the first token can only start at
        a token boundary; a sorted set holds each token once, so there is one match at most.
        """
        last = self._last.get(key)
        if last is None:
            return None
        old, facts, times, totals = last.read, last.facts, last.times, last.totals
        if read == old:
            return Continued(facts, times, [], totals)
        at = old.find(read[:TOKEN_CHARS])
        if at < 0:
            return None
        rest = len(old) - at
        if not read.startswith(old[at:]) or (len(read) > rest and read[rest] != 0x20):
            return None
        skip = len(facts) - (rest + 1) // _WIDTH
        tail = read[rest + 1:]
        return Continued(facts[skip:], times[skip:], tail.split(b" ") if tail else [], totals, skip)
