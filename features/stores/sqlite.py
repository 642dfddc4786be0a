"""SQLite online store: facts survive restarts with no server (the embedded default's durable option).

One row per (fact, entity key) in ``feature_facts``, indexed by ``(entity, key, kind, ts)`` so a
read is an index range scan; ``feature_groups`` holds each group's version and newest
fact time, with a digest of its facts, for idempotence and eviction. Applying a group is one transaction. The
connection is shared between threads behind a lock; WAL journaling keeps readers of
the same file from blocking.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from features.declared import EntityRef
from features.facts import FactGroup, FactKind
from features.stores.base import FactRange, RangeQuery, Step, apply_then_fetch, each_step
from features.stores.codec import decode_fact, encode_fact, group_digest
from orderguard.errors import ServiceUnavailableError

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feature_groups ("
    " group_id TEXT PRIMARY KEY, version INTEGER NOT NULL, digest BLOB NOT NULL, max_ts INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS feature_groups_max_ts ON feature_groups (max_ts)",
    "CREATE TABLE IF NOT EXISTS feature_facts ("
    " entity TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, ts INTEGER NOT NULL,"
    " group_id TEXT NOT NULL,"
    " payload BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS feature_facts_range ON feature_facts (entity, key, kind, ts)",
    "CREATE INDEX IF NOT EXISTS feature_facts_group ON feature_facts (group_id)",
)
_EVICT_BATCH = 500


class SqliteStoreConfig(BaseModel):
    """``type: sqlite``: facts in one file; ``path=None`` means ``<data_dir>/features.db``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["sqlite"] = Field(default="sqlite", description="the online feature store: memory, sqlite "
                                                                  "or redis")
    path: Path | None = Field(default=None, description="the SQLite file (default: features.db in the data dir)")

    def open(self, data_dir: Path) -> SqliteStore:
        """The store this configuration describes."""
        return SqliteStore(self.path or data_dir / "features.db")


class SqliteStore:
    """Facts in a SQLite file (or ``":memory:"``).

    Args:
        path: database file; its directory is created if missing.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            if str(path) != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except sqlite3.Error as e:
            raise ServiceUnavailableError(f"feature store database {str(path)!r} cannot be opened: {e}") from e
        self._lock = threading.Lock()

    def apply(self, group: FactGroup) -> bool:
        payloads = [encode_fact(fact) for fact in group.facts]
        digest = group_digest(payloads)
        rows = [(str(entity), key, fact.kind.value, fact.ts, group.group_id, payload)
                for fact, payload in zip(group.facts, payloads, strict=True)
                for entity, key in fact.entities.items()]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                found = db.execute("SELECT version, digest FROM feature_groups WHERE group_id = ?",
                                   (group.group_id,)).fetchone()
                if found is not None and (found[0] > group.version
                                          or (found[0] == group.version and found[1] == digest)):
                    db.execute("ROLLBACK")
                    return False
                if found is not None:
                    db.execute("DELETE FROM feature_facts WHERE group_id = ?", (group.group_id,))
                db.executemany("INSERT INTO feature_facts (entity, key, kind, ts, group_id, payload)"
                               " VALUES (?, ?, ?, ?, ?, ?)", rows)
                db.execute("INSERT OR REPLACE INTO feature_groups (group_id, version, digest, max_ts)"
                           " VALUES (?, ?, ?, ?)", (group.group_id, group.version, digest, group.max_ts))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return True

    def fetch(self, queries: Sequence[RangeQuery]) -> list[FactRange]:
        out: list[FactRange] = []
        with self._lock:
            for q in queries:
                rows = self._db.execute(
                    "SELECT ts, payload FROM feature_facts WHERE entity = ? AND key = ? AND kind = ?"
                    " AND ts BETWEEN ? AND ? ORDER BY ts", (q.entity.value, q.key, q.kind.value, q.lo, q.hi)
                ).fetchall()
                out.append(FactRange([r[0] for r in rows], [decode_fact(r[1]) for r in rows]))
        return out

    def apply_and_fetch(self, group: FactGroup, queries: Sequence[RangeQuery], *,
                        evict_before_us: int | None = None) -> tuple[bool, list[FactRange]]:
        """Apply, evict, fetch, one after the other: no round trip to save here."""
        return apply_then_fetch(self, group, queries, evict_before_us=evict_before_us)

    def apply_and_fetch_many(self, steps: Sequence[Step]) -> list[tuple[bool, list[FactRange]]]:
        """One step after the other: no round trip to save here."""
        return each_step(self, steps)

    def evict(self, *, before_us: int) -> int:
        evicted = 0
        with self._lock:
            db = self._db
            while True:
                groups = [row[0] for row in db.execute(
                    "SELECT group_id FROM feature_groups WHERE max_ts <= ? LIMIT ?", (before_us, _EVICT_BATCH))]
                if not groups:
                    return evicted
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("DELETE FROM feature_facts WHERE group_id = ?", [(g,) for g in groups])
                    db.executemany("DELETE FROM feature_groups WHERE group_id = ?", [(g,) for g in groups])
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                evicted += len(groups)

    def declare_reads(self, pairs: Iterable[tuple[EntityRef, FactKind]]) -> None:
        """Ignored: a durable store indexes every entity key, so any later feature set can read it."""

    @property
    def remote(self) -> bool:
        """``False``: a local file."""
        return False

    def lost_state(self) -> bool:
        """Never: the state lives as long as this object (memory) or its file (SQLite)."""
        return False

    def size(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM feature_groups").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
