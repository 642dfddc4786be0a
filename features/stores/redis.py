"""Redis online store: state shared by several serving processes.

Layout under a key prefix ``p``:

* ``p:s:<entity>:<kind>:<key>`` - sorted set of the entity key's facts of one kind, score = event time in
  microseconds (exact: below 2**53), member = the fact's *token* (``stores.codec.fact_token``, a digest of
  its encoding);
* ``p:facts`` - hash from token to the encoded fact (``stores.codec``), stored once however many entity keys
  hold the token;
* ``p:r:<group id>`` - the group's record: its version, a digest of its facts and, per fact, the token and
  the sorted sets holding it (so a newer version or eviction removes exactly those);
* ``p:members`` - sorted set of group ids by newest fact time, for eviction;
* ``p:stamps`` - hash from sorted-set key to its *stamp*, which changes whenever the set changes
  other than by an append at its end or an eviction; ``p:meta`` - the stamps' ``clock`` and
  ``evicted_to`` (no evicted fact is later); ``p:generation`` - a marker a flush drops (see
  :data:`_STEP` and :meth:`RedisStore.lost_state`).

Why tokens: a lookup reads a few hundred facts (a busy SKU's week of lines), and moving
each fact's whole encoding out of Redis, through the protocol parser and the JSON decoder,
cost ~10 ms per scored order. A token is 20 bytes; the process maps tokens to facts with a
:class:`~features.stores.fact_cache.FactCache`, filled by its own applies (it holds those
facts already) and, for facts other processes applied, by one ``HMGET`` of the tokens it
has not seen.

Round trips: every call is one run of one Lua script (:data:`_STEP`): optionally apply a
group, optionally evict, then read any number of ranges, atomically, the reads joined
into one reply string (tokens separated by spaces, ranges by commas: one bulk string to
parse instead of one reply per fact). ``apply_and_fetch`` - scoring's path - is thus one
round trip, plus one when some token read is not in the cache.

Reads after the last one: a busy key's read is a thousand tokens, and listing them was
most of the server's time per scored order (~0.9 of 1.3 ms at p99). The process keeps
each key's last read (:class:`~features.stores.range_memo.RangeMemo`) with the key's
stamp as of that read; a new read of the key under the same stamp is answered with only
the tokens after that read's last one, and the process puts the two together.

An earlier layout (``p:e:…``, ``p:g:…``, ``p:groups``, whole encodings as members) is not
read: a service starting on it finds the store empty and warm-starts it from the order log;
:meth:`RedisStore.clear` removes both.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson
import redis
from hiredis import pack_command
from pydantic import BaseModel, ConfigDict, Field

from features.declared import EntityRef
from features.facts import Fact, FactGroup, FactKind
from features.stores.base import EMPTY_RANGE, FactRange, RangeQuery, Step
from features.stores.codec import decode_fact, encode_fact, fact_token, group_digest
from features.stores.fact_cache import FactCache
from features.stores.range_memo import Continued, Kept, MemoTotals, RangeMemo
from orderguard.errors import ServiceUnavailableError

#: One step: apply a group (``ARGV[1] == '1'``), evict groups at or before ``ARGV[8]`` (unless empty, at
#: most ``ARGV[9]`` of them), read the ranges of ``KEYS[ARGV[10]..]`` (five arguments each from ``ARGV[11]``
#: on). Returns ``{changed, evicted, reads, stamps, sent, bodies}``.
#:
#: KEYS: ``members``, ``facts``, the group's record (or any key when not applying), ``stamps``, ``meta``,
#: ``generation``, the sorted sets of the group's facts in fact order, the ranges' sorted sets. ARGV:
#: ``apply, version, max_ts, group_id, digest, record, n_facts, evict_before, evict_batch, first_range_key,
#: first_range_arg, record_prefix, known_generation, new_generation``, then per fact ``token, ts, payload,
#: n_keys``, then per range ``lo, hi, stamp, after, skip``.
#:
#: A replaced group moves only the facts whose token changed: a status change (a newer version, the
#: same facts) rewrites the record and nothing else.
#:
#: Stamps (``stamps`` hash, one field per sorted set): a set's stamp changes whenever the set changes
#: other than by an append after its last member or by an eviction; every new stamp is a fresh value
#: of the ``clock`` in ``meta``, so a stamp never comes back. Evictions instead raise ``evicted_to`` in
#: ``meta`` (every evicted fact is at or before it). So while a set keeps its stamp, the members a
#: client read at or after a time ``lo > evicted_to`` are still there, in place, and every member
#: since added sorts after them: a range read with the stamp the client holds (``stamp`` not empty
#: and equal) answers only the members after the client's last one (score ``after``, then ``skip``
#: members of that score it already has), flagged ``d``; any other read answers the whole range,
#: flagged ``f``. ``generation`` (set from ``new_generation`` when absent: a fresh or flushed store)
#: guards the clock itself, which restarts with a flush: no delta is answered unless the client's
#: ``known_generation`` is the store's. ``stamps`` is the generation, then per range the flag and
#: the set's stamp (none when it has none), all joined by spaces.
#:
#: ``sent`` and ``bodies``: the encoded facts of the tokens a delta read answered (at most
#: :data:`_SENT_BODIES` of them, none this call applied): tokens joined by spaces, and each body
#: as its length in bytes, a space and the body, back to back. Those tokens are new to the
#: reader, so often facts another process applied: sending them here saves that reader a second
#: round trip (``HMGET``) for each scored order when several processes share the store.
_STEP = """
local members, facts, stamps, meta, genkey = KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6]
local stamp = nil
local function unplace(rec, keep)
  for _, placed in ipairs(rec[3]) do
    local token = placed[1]
    if not (keep and keep[token]) then
      for i = 2, #placed do
        local key = placed[i]
        redis.call('ZREM', key, token)
        if redis.call('EXISTS', key) == 0 then
          redis.call('HDEL', stamps, key)
        elseif keep then
          redis.call('HSET', stamps, key, stamp)
        end
      end
      redis.call('HDEL', facts, token)
    end
  end
end
local changed, evicted = 0, 0
local keep = {}
if ARGV[1] == '1' then
  local cur = redis.call('GET', KEYS[3])
  local old = nil
  local stale = false
  if cur then
    old = cjson.decode(cur)
    local stored, incoming = tonumber(old[1]), tonumber(ARGV[2])
    stale = stored > incoming or (stored == incoming and old[2] == ARGV[5])
  end
  if not stale then
    stamp = redis.call('HINCRBY', meta, 'clock', 1)
    local had = {}
    if old then for _, placed in ipairs(old[3]) do had[placed[1]] = true end end
    local k, a = 7, 15
    for _ = 1, tonumber(ARGV[7]) do
      local token, n = ARGV[a], tonumber(ARGV[a + 3])
      keep[token] = true
      if not had[token] then
        for i = k, k + n - 1 do
          redis.call('ZADD', KEYS[i], ARGV[a + 1], token)
          if redis.call('ZREVRANK', KEYS[i], token) ~= 0 then
            redis.call('HSET', stamps, KEYS[i], stamp)
          else
            redis.call('HSETNX', stamps, KEYS[i], stamp)
          end
        end
        redis.call('HSET', facts, token, ARGV[a + 2])
      end
      k, a = k + n, a + 4
    end
    if old then unplace(old, keep) end
    redis.call('SET', KEYS[3], ARGV[6])
    redis.call('ZADD', members, ARGV[3], ARGV[4])
    changed = 1
  end
end
if ARGV[8] ~= '' then
  local groups = redis.call('ZRANGEBYSCORE', members, '-inf', ARGV[8], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[9]))
  for i = 1, #groups, 2 do
    local g = groups[i]
    local rk = ARGV[12] .. g
    local cur = redis.call('GET', rk)
    if cur then
      unplace(cjson.decode(cur), nil)
      redis.call('DEL', rk)
    end
    redis.call('ZREM', members, g)
  end
  evicted = #groups / 2
  if evicted > 0 then
    local upto = tonumber(groups[#groups])
    local was = tonumber(redis.call('HGET', meta, 'evicted_to') or groups[#groups])
    redis.call('HSET', meta, 'evicted_to', string.format('%d', math.max(upto, was)))
  end
end
local gen = redis.call('GET', genkey)
if not gen then
  gen = ARGV[14]
  redis.call('SET', genkey, gen)
end
local same = gen == ARGV[13]
local floor = redis.call('HGET', meta, 'evicted_to')
floor = floor and tonumber(floor)
local reads, marks = {}, {gen}
local sent, bodies = {}, {}
local a = tonumber(ARGV[11])
for i = tonumber(ARGV[10]), #KEYS do
  local key = KEYS[i]
  local now = redis.call('HGET', stamps, key)
  if same and now and ARGV[a + 2] == now and (not floor or tonumber(ARGV[a]) > floor) then
    local got = redis.call('ZRANGEBYSCORE', key, ARGV[a + 3], ARGV[a + 1], 'LIMIT', ARGV[a + 4], -1)
    reads[#reads + 1] = table.concat(got, ' ')
    marks[#marks + 1] = 'd' .. now
    for _, token in ipairs(got) do
      if #sent < SENT_BODIES and not keep[token] then
        local body = redis.call('HGET', facts, token)
        if body then
          keep[token] = true
          sent[#sent + 1] = token
          bodies[#bodies + 1] = string.len(body) .. ' ' .. body
        end
      end
    end
  else
    reads[#reads + 1] = table.concat(redis.call('ZRANGEBYSCORE', key, ARGV[a], ARGV[a + 1]), ' ')
    marks[#marks + 1] = 'f' .. (now or '')
  end
  a = a + 5
end
return {changed, evicted, table.concat(reads, ','), table.concat(marks, ' '), table.concat(sent, ' '),
        table.concat(bodies)}
"""

_EVICT_BATCH = 500
_SENT_BODIES = 200  # most facts a delta read's answer carries (a pause's worth of new facts is fetched apart)
_STEP = _STEP.replace("SENT_BODIES", str(_SENT_BODIES))
_DEFAULT_CACHE = 200_000
_MEMO_KEYS = 20_000  # sorted sets whose last read is kept (a busy shop reads a few thousand)
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
    fact_cache: int = Field(default=_DEFAULT_CACHE, ge=2,
                            description="most decoded facts a process keeps to read the store's tokens back")

    def open(self, data_dir: Path) -> RedisStore:
        """The store this configuration describes (``data_dir`` is unused: the state is on the server)."""
        return RedisStore(self.url, prefix=self.prefix, timeout_s=self.timeout_s, cooldown_s=self.cooldown_s,
                          fact_cache=self.fact_cache)


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
    """Facts in Redis: sorted sets of tokens, one hash of encoded facts (see the module docstring).

    Args:
        url: ``redis://host:port/db``.
        prefix: namespace of every key, so several deployments (or tests) share one database.
        timeout_s: socket timeout; a slow or absent server is a ``ServiceUnavailableError``.
        cooldown_s: after a failure, calls fail at once for this long (a circuit breaker)
            instead of each waiting for the timeout; then one call tries the server again.
        fact_cache: most decoded facts kept in this process (:class:`FactCache`); reads of
            facts beyond it cost a second round trip.
    """

    def __init__(self, url: str, *, prefix: str = "og:features", timeout_s: float = 0.5,
                 cooldown_s: float = 5.0, fact_cache: int = _DEFAULT_CACHE) -> None:
        self._url = url
        self._prefix = prefix
        self._cooldown_s = cooldown_s
        self._open_until = 0.0  # circuit breaker: no call before this monotonic time
        self._last_error = ""
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._generation_key = f"{prefix}:generation"
        self._generation: bytes | str | None = None
        self._sha = hashlib.sha1(_STEP.encode()).hexdigest()  # what the server names the script (EVALSHA)
        self._members_key = f"{prefix}:members"
        self._stamps_key = f"{prefix}:stamps"
        self._meta_key = f"{prefix}:meta"
        self._facts_key = f"{prefix}:facts"
        self._record_prefix = f"{prefix}:r:"
        self._cache = FactCache(capacity=fact_cache)
        self._memo = RangeMemo(capacity=_MEMO_KEYS)

    def _entity_key(self, entity: str, kind: str, key: str) -> str:
        return f"{self._prefix}:s:{entity}:{kind}:{key}"

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
        changed, _, _ = self._run(group, (), evict_before_us=None)
        return changed

    def fetch(self, queries: Sequence[RangeQuery]) -> list[FactRange]:
        if not queries:
            return []
        _, _, ranges = self._run(None, queries, evict_before_us=None)
        return ranges

    def apply_and_fetch(self, group: FactGroup, queries: Sequence[RangeQuery], *,
                        evict_before_us: int | None = None) -> tuple[bool, list[FactRange]]:
        """One run of the step script: apply, evict (a batch; more rarely needs more calls), read."""
        changed, evicted, ranges = self._run(group, queries, evict_before_us=evict_before_us)
        if evict_before_us is not None and evicted == _EVICT_BATCH:
            # a burst of old groups (a start after a pause): evict the rest, then read again, so the
            # reads never see a group the eviction should have dropped first
            self.evict(before_us=evict_before_us)
            ranges = self.fetch(queries)
        return changed, ranges

    def evict(self, *, before_us: int) -> int:
        total = 0
        while True:
            _, evicted, _ = self._run(None, (), evict_before_us=before_us)
            total += evicted
            if evicted < _EVICT_BATCH:
                return total

    def apply_and_fetch_many(self, steps: Sequence[Step]) -> list[tuple[bool, list[FactRange]]]:
        """The steps' script runs sent together on one connection and answered in order: one round trip for a
        batch of scored orders instead of one each. Redis runs them one after the other, so each step's reads
        see the steps before it and none after.

        A step that evicts is sent alone (:func:`_runs`): the facts the steps before it read are
        fetched before it drops any, and when its eviction was cut at the batch size, the rest is
        evicted and its reads taken again (as :meth:`apply_and_fetch` does) before any later
        step is sent, so no step sees a group the eviction should have dropped. A fact another
        process replaces between the run and that fetch is read as of the fetch, as with
        :meth:`apply_and_fetch`: reads were never atomic across processes.
        """
        out: list[tuple[bool, list[FactRange]]] = []
        for run in _runs(steps):
            results = self._run_many(run)
            last = run[-1]
            if last.evict_before_us is not None and results[-1][1] == _EVICT_BATCH:
                self.evict(before_us=last.evict_before_us)
                results[-1] = (results[-1][0], 0, self.fetch(last.queries))
            out.extend((changed, ranges) for changed, _, ranges in results)
        return out

    def _run(self, group: FactGroup | None, queries: Sequence[RangeQuery], *,
             evict_before_us: int | None) -> tuple[bool, int, list[FactRange]]:
        """One run of :data:`_STEP` (see there for its arguments); the reads turned back into facts."""
        return self._run_many([Step(group, queries, evict_before_us)])[0]

    def _run_many(self, steps: Sequence[Step]) -> list[tuple[bool, int, list[FactRange]]]:
        """Runs of :data:`_STEP`, sent together and answered in order: (changed, evicted, ranges) of each.

        A range whose key's last read (:class:`RangeMemo`) can be extended is asked only for the
        tokens after that read's last one, under the stamp it was read with. Every step's arguments
        are built before the first is sent, so two steps reading one key both ask from the read the
        memo held before them; each answer is joined to the base its own step asked from.
        """
        calls = [self._step_arguments(step) for step in steps]
        self._check_breaker()
        memo = self._memo
        out: list[tuple[bool, int, list[FactRange]]] = []
        try:
            replies = self._evalsha_many([(keys, args) for keys, args, _ in calls])
            for (keys, args, bases), step, reply in zip(calls, steps, replies, strict=True):
                changed, evicted, reads, marks, sent, bodies = reply
                generation, *stamps = marks.split(b" ")
                memo.adopt(generation)
                if sent:
                    self._receive(sent.split(b" "), bodies)
                queries = step.queries
                ranges = self._ranges(reads, stamps, keys[args[9] - 1:], queries, bases) if queries else []
                out.append((bool(changed), int(evicted), ranges))
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return out

    def _step_arguments(self, step: Step) -> tuple[list[str], list[Any], list[Kept | None]]:
        """The keys and arguments of one run of :data:`_STEP`, and the memo's base of each read (or None)."""
        group, queries, evict_before_us = step
        keys: list[str] = [self._members_key, self._facts_key, self._members_key, self._stamps_key,
                           self._meta_key, self._generation_key]  # the third: the group's record, if any
        memo = self._memo
        known = memo.generation
        args: list[Any] = ["0", "", "", "", "", "", 0,
                           "" if evict_before_us is None else evict_before_us, _EVICT_BATCH, 0, 0,
                           self._record_prefix, b"" if known is None else known, uuid.uuid4().hex]
        if group is not None:
            self._add_group(group, keys, args)
        args[9], args[10] = len(keys) + 1, len(args) + 1  # where the ranges start (Lua counts from 1)
        bases: list[Kept | None] = []
        for q in queries:
            key = self._entity_key(q.entity.value, q.kind.value, q.key)
            keys.append(key)
            base = memo.since(key, q.lo)
            bases.append(base)
            if base is None:
                args.extend((q.lo, q.hi, b"", 0, 0))
            else:
                times = base.times
                last = times[-1]
                args.extend((q.lo, q.hi, base.stamp, last, len(times) - bisect_left(times, last)))
        return keys, args, bases

    def _evalsha_many(self, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        """``EVALSHA`` of :data:`_STEP` once per call, packed here, all sent together on one pooled connection,
        the replies read in order.

        Why not ``Script.__call__`` or a redis-py pipeline: redis-py's generic packer costs
        ~100 µs for the ~180 arguments of an apply with its reads, a twentieth of the whole
        budget of a scored order; hiredis's ``pack_command`` (C) takes 17 µs. As redis-py
        would, the calls are tried again (twice at most in all) on a fresh connection when the
        pooled one is found broken (a server restarted since), and after loading the script
        when the server does not know it (restarted, flushed), but only while no reply has
        been read: once a step has run, sending the batch again would let the steps before it
        read its group, so the error goes on instead. A timeout is not retried: the breaker
        takes over. A connection left with replies unread is closed, so that no later call
        reads them as its own.
        """
        pool = self._client.connection_pool
        for attempt in range(3):
            packed = [pack_command(("EVALSHA", self._sha, len(keys), *keys, *args)) for keys, args in calls]
            conn: Any = pool.get_connection()  # redis-py's connection methods are untyped
            replies: list[Any] = []
            try:
                conn.send_packed_command(packed)
                for _ in packed:
                    replies.append(conn.read_response())
                return replies
            except redis.exceptions.NoScriptError:
                conn.disconnect()  # the other calls' replies (the same error) are not read
                if attempt == 2 or replies:
                    raise
                self._sha = self._client.script_load(_STEP)
            except redis.ConnectionError:
                if attempt == 2 or replies:
                    raise
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    def _add_group(self, group: FactGroup, keys: list[str], args: list[Any]) -> None:
        """The script's arguments to apply ``group``; its facts go to the cache under their tokens."""
        payloads = [encode_fact(fact) for fact in group.facts]
        placed: list[list[str]] = []
        keys[2] = self._record_prefix + group.group_id
        cache = self._cache
        for fact, payload in zip(group.facts, payloads, strict=True):
            token = fact_token(payload)
            kind = fact.kind.value
            where = [self._entity_key(str(entity), kind, key) for entity, key in fact.entities.items()]
            keys.extend(where)
            args.extend((token, fact.ts, payload, len(where)))
            placed.append([token.decode(), *where])
            cache.put(token, fact)
        digest = group_digest(payloads).hex()
        args[0:7] = ["1", str(group.version), group.max_ts, group.group_id, digest,
                     orjson.dumps([str(group.version), digest, placed]), len(payloads)]

    def _ranges(self, reads: bytes, stamps: Sequence[bytes], keys: Sequence[str], queries: Sequence[RangeQuery],
                bases: Sequence[Kept | None]) -> list[FactRange]:
        """Turn the script's reads (tokens joined by spaces, ranges by commas) into facts.

        A read flagged ``d`` holds only the tokens after its base's last one; a whole read
        that continues the key's last read reuses its facts too (:class:`RangeMemo`). The
        other tokens come from the cache, and those this process has not seen from Redis, in
        one ``HMGET`` for all the ranges. Each read becomes its key's last read.
        """
        parts = reads.split(b",")
        assert len(parts) == len(keys) == len(stamps), (len(parts), len(keys), len(stamps))
        cache, memo = self._cache, self._memo
        generation = memo.generation
        new = tuple.__new__  # a named tuple without the class's Python-level ``__new__``
        out: list[FactRange] = []
        # (range, its whole read, what it shares with the last read or None, its tokens to resolve, found)
        unresolved: list[tuple[int, bytes, Continued | None, list[bytes], list[Fact | None]]] = []
        missing: list[bytes] = []
        for i, (key, part, mark, q) in enumerate(zip(keys, parts, stamps, queries, strict=True)):
            stamp = mark[1:]
            base = bases[i]
            if mark[:1] == b"d":
                assert base is not None, key  # the store answers a delta only to a read that asked for one
                shared: Continued | None
                shared, part = memo.extended(base, q.lo, q.hi, part)
            elif not part:
                out.append(EMPTY_RANGE)
                continue
            else:
                shared = memo.continued(key, part)
            if shared is not None:
                more, unknown = cache.resolve(shared.new_tokens) if shared.new_tokens else ([], [])
                if not unknown:
                    facts, times, totals = shared.with_new(more)  # type: ignore[arg-type]  # no None in ``more``
                    memo.keep(key, part, facts, times, totals, lo=q.lo, stamp=stamp, generation=generation)
                    out.append(new(FactRange, (times, facts, totals)) if facts else EMPTY_RANGE)
                    continue
                missing.extend(unknown)
                unresolved.append((i, part, shared, shared.new_tokens, more))
                out.append(EMPTY_RANGE)  # replaced below
                continue
            tokens = part.split(b" ")
            found, unknown = cache.resolve(tokens)
            if unknown:
                missing.extend(unknown)
                unresolved.append((i, part, None, tokens, found))
                out.append(EMPTY_RANGE)  # replaced below
                continue
            times = [f.ts for f in found]  # type: ignore[union-attr]  # no None in ``found``
            totals = MemoTotals.of(found)  # type: ignore[arg-type]
            memo.keep(key, part, found, times, totals, lo=q.lo, stamp=stamp, generation=generation)  # type: ignore[arg-type]
            out.append(new(FactRange, (times, found, totals)))
        if unresolved:
            loaded = self._load(missing)
            for i, part, shared, tokens, found in unresolved:
                # a token whose fact is gone was evicted or replaced between the two round trips: the read
                # is then as of the second one for that fact (reads of several ranges were never atomic
                # across processes either)
                got = [f for f in (f or loaded.get(t) for f, t in zip(found, tokens, strict=True)) if f is not None]
                whole = len(got) == len(tokens)
                if shared is not None and whole:
                    facts, times, totals = shared.with_new(got)
                else:
                    facts = shared.facts + got if shared is not None else got
                    times = [f.ts for f in facts]
                    totals = MemoTotals.of(facts)
                if whole:
                    memo.keep(keys[i], part, facts, times, totals, lo=queries[i].lo, stamp=stamps[i][1:],
                              generation=generation)
                out[i] = new(FactRange, (times, facts, totals)) if facts else EMPTY_RANGE
        return out

    def _receive(self, tokens: list[bytes], bodies: bytes) -> None:
        """Cache the facts the script sent with a delta read (see :data:`_STEP`), decoding only those
        this process does not hold already."""
        _, unknown = self._cache.resolve(tokens)
        if not unknown:
            return
        wanted = set(unknown)
        cache, at = self._cache, 0
        for token in tokens:
            space = bodies.index(b" ", at)
            end = space + 1 + int(bodies[at:space])
            if token in wanted:
                cache.put(token, decode_fact(bodies[space + 1:end]))
            at = end

    def _load(self, tokens: list[bytes]) -> dict[bytes, Fact]:
        """The facts of ``tokens`` still stored in Redis, decoded (and kept in the cache)."""
        unique = list(dict.fromkeys(tokens))
        payloads = self._client.hmget(self._facts_key, unique)
        loaded = {token: decode_fact(payload) for token, payload in zip(unique, payloads, strict=True)
                  if payload is not None}
        self._cache.put_many(loaded.items())
        return loaded

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
            return int(self._client.zcard(self._members_key))
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


def _runs(steps: Sequence[Step]) -> Iterator[Sequence[Step]]:
    """The steps in runs sent together, each step that evicts in a run of its own.

    Why alone: a read's tokens this process has not seen are fetched (``HMGET``) once its run is
    answered, and an eviction later in the same run would have dropped their facts by then; and a
    cut eviction is finished before any later step runs.

    >>> [[s.evict_before_us for s in run] for run in _runs([Step(None, (), e) for e in (None, None, 5, None)])]
    [[None, None], [5], [None]]
    """
    start = 0
    for i, step in enumerate(steps):
        if step.evict_before_us is not None:
            if i > start:
                yield steps[start:i]
            yield steps[i:i + 1]
            start = i + 1
    if start < len(steps):
        yield steps[start:]
