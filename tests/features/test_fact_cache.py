"""The bounded cache of decoded facts a remote store reads its tokens back with."""

from __future__ import annotations

import pytest

from features.facts import Fact, FactKind
from features.stores.fact_cache import FactCache


def fact(i: int) -> Fact:
    return Fact(FactKind.ORDER, i, f"f{i}", {}, {})


def token(i: int) -> bytes:
    return f"t{i}".encode()


def test_facts_read_again_stay_and_the_others_go_after_two_turns() -> None:
    cache = FactCache(capacity=6)  # generations of three
    for i in range(3):
        cache.put(token(i), fact(i))
    cache.put(token(3), fact(3))  # the young generation was full: 0-2 are now the old one
    found, missing = cache.resolve([token(0)])  # read again: back to the young generation
    assert found == [fact(0)] and missing == []
    for i in range(4, 6):
        cache.put(token(i), fact(i))  # young: 3, 0, 4 full, then 5 starts a new one
    found, missing = cache.resolve([token(0), token(1), token(2), token(5)])
    assert found == [fact(0), None, None, fact(5)] and missing == [token(1), token(2)]
    assert len(cache) <= 6


def test_unknown_tokens_are_reported_once_in_order() -> None:
    cache = FactCache(capacity=10)
    cache.put(token(1), fact(1))
    found, missing = cache.resolve([token(2), token(1), token(3), token(2)])
    assert found == [None, fact(1), None, None] and missing == [token(2), token(3)]


def test_the_capacity_must_hold_two_generations() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 2"):
        FactCache(capacity=1)
