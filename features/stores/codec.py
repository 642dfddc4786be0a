"""Byte form of a fact for stores outside the process (SQLite, Redis).

A compact JSON array ``[kind, ts, fact_id, {entity: key}, {attr: value}]``; JSON keeps
the attribute types the aggregators and filters rely on (int, float, str, bool, null).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import orjson

from features.facts import AttrValue, Entity, Fact, FactKind

_KINDS: Mapping[str, FactKind] = MappingProxyType({k.value: k for k in FactKind})
_ENTITIES: Mapping[str, Entity] = MappingProxyType({e.value: e for e in Entity})
_DECLARED = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def encode_fact(fact: Fact) -> bytes:
    """Serialise a fact (see :func:`decode_fact`).

    >>> f = Fact(FactKind.ORDER, 7, "jd:1", {Entity.DEVICE: "d1"}, {"paid_fen": 100, "has_coupon": True})
    >>> decode_fact(encode_fact(f)) == f
    True
    """
    entities = {str(e): k for e, k in fact.entities.items()}  # ``str`` turns an Entity member into its value
    return orjson.dumps([fact.kind.value, fact.ts, fact.fact_id, entities, dict(fact.attrs)])


def decode_fact(data: bytes | str) -> Fact:
    """Rebuild a fact from :func:`encode_fact` output (entities keyed by their plain string, as facts are)."""
    kind, ts, fact_id, entities, attrs = orjson.loads(data)
    typed_attrs: dict[str, AttrValue] = attrs
    for name in entities:
        if name not in _ENTITIES and not _DECLARED.match(name):  # a declared entity (features.declared)
            raise ValueError(f"stored fact {fact_id!r} names an unknown entity {name!r}")
    return Fact(_KINDS[kind], ts, fact_id, entities, typed_attrs)


def group_digest(payloads: Sequence[bytes]) -> bytes:
    """Fingerprint of a group's encoded facts: tells "same version, same facts" from a re-derivation.

    >>> group_digest([b"a", b"b"]) == group_digest([b"a", b"b"]) != group_digest([b"ab"])
    True
    """
    h = hashlib.blake2b(digest_size=16)
    for payload in payloads:
        h.update(len(payload).to_bytes(4, "big"))
        h.update(payload)
    return h.digest()


def fact_token(payload: bytes) -> bytes:
    """A short name for one encoded fact: what a remote store's sorted sets hold instead of the fact.

    Twenty hex digits (80 bits of BLAKE2b): a read moves these instead of the whole
    encoding, and a process maps them back to facts (``stores.fact_cache``). Hex, so a
    token never holds the separators a read joins tokens with (space and comma).

    >>> fact_token(b'["order",7]'), len(fact_token(b"x"))
    (b'a69ba4429a17a0c90454', 20)
    """
    return hashlib.blake2b(payload, digest_size=10).hexdigest().encode()
