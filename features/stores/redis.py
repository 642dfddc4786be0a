"""Redis online store: state shared by several serving processes.

Layout under a key prefix ``p``:

* ``p:e:<entity>:<kind>:<key>`` - sorted set of the entity key's facts of one kind, score = event time in
  microseconds (exact: below 2**53), member = the encoded fact (``stores.codec``), so a
  read needs no second lookup;
* ``p:g:<group id>`` - the group's version, the (sorted set, member) pairs it placed (so
  a newer version or eviction removes exactly those) and a digest of its facts;
* ``p:groups`` - sorted set of group ids by newest fact time, for eviction.

Round trips: ``apply`` is one Lua script (version check, remove old members, add new,
atomically), ``fetch`` is one pipeline of ``ZRANGEBYSCORE`` for all entity keys of a
lookup, ``evict`` one script call per batch of groups.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import redis
from pydantic import BaseModel, ConfigDict, Field

from features.declared import EntityRef
from features.facts import FactGroup, FactKind
from features.stores.base import FactRange, RangeQuery
from features.stores.codec import decode_fact, encode_fact, group_digest
from orderguard.errors import ServiceUnavailableError

_APPLY = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local rec = cjson.decode(cur)
  local stored, incoming = tonumber(rec[1]), tonumber(ARGV[1])
  if stored > incoming or (stored == incoming and rec[3] == ARGV[4]) then return 0 end
  for _, pair in ipairs(rec[2]) do redis.call('ZREM', pair[1], pair[2]) end
end
local placed = {}
for i = 3, #KEYS do
  local member = ARGV[2 * i]
  redis.call('ZADD', KEYS[i], ARGV[2 * i - 1], member)
  placed[#placed + 1] = {KEYS[i], member}
end
redis.call('SET', KEYS[1], cjson.encode({ARGV[1], placed, ARGV[4]}))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

_EVICT = """
local groups = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, g in ipairs(groups) do
  local gk = ARGV[3] .. g
  local cur = redis.call('GET', gk)
  if cur then
    local rec = cjson.decode(cur)
    for _, pair in ipairs(rec[2]) do redis.call('ZREM', pair[1], pair[2]) end
    redis.call('DEL', gk)
  end
  redis.call('ZREM', KEYS[1], g)
end
return #groups
"""

_EVICT_BATCH = 500
_T = TypeVar("_T")
_GLOB = re.compile(r"[*?\[\]\\]")  # characters SCAN MATCH would read as a pattern


class RedisStoreConfig(BaseModel):
    """``type: redis``: a shared server, so several service processes see the same facts."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["redis"] = Field(default="redis", description="the online feature store: memory, sqlite or redis")
    url: str = Field(default="redis://127.0.0.1:6379/0", description="the Redis server")
    prefix: str = Field(default="og:features", min_length=1, description="namespace of every key")
    timeout_s: float = Field(default=0.5, gt=0, description="socket timeout in seconds")
    cooldown_s: float = Field(default=5.0, ge=0, description="after a failure, fail at once for this long")

    def open(self, data_dir: Path) -> RedisStore:
        """The store this configuration describes (``data_dir`` is unused: the state is on the server)."""
        return RedisStore(self.url, prefix=self.prefix, timeout_s=self.timeout_s, cooldown_s=self.cooldown_s)


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs.

    >>> redacted("redis://:s3cret@cache:6379/0"), redacted("redis://127.0.0.1:6379/15")
    ('redis://***@cache:6379/0', 'redis://127.0.0.1:6379/15')
    """
    scheme, sep, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}{sep}***@{host}" if sep and at else url


def ping(url: str, *, timeout_s: float = 2.0) -> None:
    """Check that Redis answers at ``url``; a ``ServiceUnavailableError`` says why not."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as e:
        raise ServiceUnavailableError(f"Redis at {redacted(url)} does not answer: {e}") from e
    finally:
        client.close()


class RedisStore:
    """Facts in Redis sorted sets.

    Args:
        url: ``redis://host:port/db``.
        prefix: namespace of every key, so several deployments (or tests) share one database.
        timeout_s: socket timeout; a slow or absent server is a ``ServiceUnavailableError``.
        cooldown_s: after a failure, calls fail at once for this long (a circuit breaker)
            instead of each waiting for the timeout; then one call tries the server again.
    """

    def __init__(self, url: str, *, prefix: str = "og:features", timeout_s: float = 0.5,
                 cooldown_s: float = 5.0) -> None:
        self._url = url
        self._prefix = prefix
        self._cooldown_s = cooldown_s
        self._open_until = 0.0  # circuit breaker: no call before this monotonic time
        self._last_error = ""
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._generation_key = f"{prefix}:generation"
        self._generation: bytes | str | None = None
        self._apply = self._client.register_script(_APPLY)
        self._evict = self._client.register_script(_EVICT)
        self._groups_key = f"{prefix}:groups"

    def _entity_key(self, entity: str, kind: str, key: str) -> str:
        return f"{self._prefix}:e:{entity}:{kind}:{key}"

    def _unavailable(self, e: redis.RedisError) -> ServiceUnavailableError:
        """Open the breaker for ``cooldown_s`` and say why: a down or stalled server costs one timeout, not one
        per request."""
        self._open_until = time.monotonic() + self._cooldown_s
        self._last_error = str(e)
        return ServiceUnavailableError(f"Redis feature store at {redacted(self._url)} failed: {e}")

    def _check_breaker(self) -> None:
        if time.monotonic() < self._open_until:
            raise ServiceUnavailableError(f"Redis feature store at {redacted(self._url)} is unavailable "
                                          f"(last error: {self._last_error}); retrying in "
                                          f"{self._open_until - time.monotonic():.1f} s")

    def apply(self, group: FactGroup) -> bool:
        keys: list[str] = [f"{self._prefix}:g:{group.group_id}", self._groups_key]
        payloads = [encode_fact(fact) for fact in group.facts]
        args: list[Any] = [str(group.version), group.max_ts, group.group_id, group_digest(payloads).hex()]
        for fact, member in zip(group.facts, payloads, strict=True):
            for entity, key in fact.entities.items():
                keys.append(self._entity_key(str(entity), fact.kind.value, key))
                args.extend((fact.ts, member))
        self._check_breaker()
        try:
            return bool(self._apply(keys=keys, args=args))
        except redis.RedisError as e:
            raise self._unavailable(e) from e

    def fetch(self, queries: Sequence[RangeQuery]) -> list[FactRange]:
        if not queries:
            return []
        pipe = self._client.pipeline(transaction=False)
        for q in queries:
            pipe.zrangebyscore(self._entity_key(q.entity.value, q.kind.value, q.key), q.lo, q.hi,
                               withscores=True)
        self._check_breaker()
        try:
            results = pipe.execute()
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return [FactRange([int(score) for _, score in pairs], [decode_fact(member) for member, _ in pairs])
                for pairs in results]

    def evict(self, *, before_us: int) -> int:
        evicted = 0
        self._check_breaker()
        try:
            while True:
                n = int(self._evict(keys=[self._groups_key],
                                    args=[before_us, _EVICT_BATCH, f"{self._prefix}:g:"]))
                evicted += n
                if n < _EVICT_BATCH:
                    return evicted
        except redis.RedisError as e:
            raise self._unavailable(e) from e

    def declare_reads(self, pairs: Iterable[tuple[EntityRef, FactKind]]) -> None:
        """Ignored: a durable store indexes every entity key, so any later feature set can read it."""

    @property
    def remote(self) -> bool:
        """``True``: a server across the network."""
        return True

    def lost_state(self) -> bool:
        """Whether the generation marker this store found (or set) on first contact is gone or changed.

        Every instance sharing the prefix adopts the first marker (``SET NX``); a Redis that
        restarted empty, or a flush, drops it. Answering ``True`` sets a new marker, so the
        loss is reported once, to the one who re-warms.
        """
        self._check_breaker()
        try:
            fresh = uuid.uuid4().hex.encode()
            self._client.set(self._generation_key, fresh, nx=True)
            current = self._client.get(self._generation_key)
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        if self._generation is None:
            self._generation = current
            return False
        lost = current != self._generation
        self._generation = current
        return lost

    def size(self) -> int:
        self._check_breaker()
        try:
            return int(self._client.zcard(self._groups_key))
        except redis.RedisError as e:
            raise self._unavailable(e) from e

    def clear(self) -> int:
        """Delete every key under the prefix (tests, rebuilds); returns how many keys went."""
        deleted = 0
        try:
            pattern = _GLOB.sub(r"\\\g<0>", self._prefix) + ":*"
            for batch in _chunks(self._client.scan_iter(match=pattern, count=1000), 500):
                deleted += int(self._client.delete(*batch))
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return deleted

    def close(self) -> None:
        self._client.close()


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Yield lists of at most ``size`` items.

    >>> list(_chunks(iter(range(5)), 2))
    [[0, 1], [2, 3], [4]]
    """
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
