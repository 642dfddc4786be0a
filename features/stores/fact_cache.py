"""Decoded facts by token, for a store that keeps facts outside the process (Redis).

A remote store's sorted sets hold each fact's *token* (a digest of its encoded form,
``stores.codec.fact_token``) rather than the fact itself, so a read moves a few bytes
per fact instead of its whole encoding, and the process turns tokens back into facts
here. A token names one encoding, and an encoding one fact, so an entry never goes
stale: the cache needs no invalidation, only a bound.

The bound is kept with two generations: lookups read the young one, and on a miss the
old one (moving what they find to the young one); when the young one is full it becomes
the old one and the previous old one is dropped. Facts read again and again (a busy
SKU's week of lines) stay; facts nobody reads any more go after two turns. A hit in the
young generation costs one dict lookup, which matters: a lookup resolves hundreds of
tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from features.facts import Fact


class FactCache:
    """Facts by token, at most about ``capacity`` of them.

    >>> from features.facts import FactKind
    >>> cache = FactCache(capacity=4)
    >>> f = Fact(FactKind.ORDER, 7, "jd:1", {}, {})
    >>> cache.put(b"t1", f)
    >>> found, missing = cache.resolve([b"t1", b"t2", b"t2"])
    >>> found == [f, None, None], missing
    (True, [b't2'])
    """

    def __init__(self, *, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2; got {capacity!r}")
        self._half = capacity // 2
        self._young: dict[bytes, Fact] = {}
        self._old: dict[bytes, Fact] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def put(self, token: bytes, fact: Fact) -> None:
        """Remember ``fact`` under ``token`` (its encoding's digest)."""
        young = self._young
        if len(young) >= self._half:
            self._old, young = young, {}
            self._young = young
        young[token] = fact

    def put_many(self, pairs: Iterable[tuple[bytes, Fact]]) -> None:
        """:meth:`put` each pair."""
        for token, fact in pairs:
            self.put(token, fact)

    def resolve(self, tokens: Sequence[bytes]) -> tuple[list[Fact | None], list[bytes]]:
        """The fact of each token (``None`` where unknown), and the unknown tokens (each once, in order)."""
        found = list(map(self._young.get, tokens))
        # compared with ``is``: ``None in found`` would call each fact's ``__eq__``
        unknown = [i for i, fact in enumerate(found) if fact is None]
        if not unknown:
            return found, []
        missing: list[bytes] = []
        old = self._old
        for i in unknown:
            token = tokens[i]
            fact = old.get(token)
            if fact is None:
                missing.append(token)
                continue
            self.put(token, fact)
            found[i] = fact
        return found, list(dict.fromkeys(missing))
