"""Online store backends, chosen by ``type`` through one explicit registry.

``open_store(settings, data_dir=...)`` is the only constructor entry points call; the
registry maps each ``StoreSettings.type`` to a factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from features.stores.base import OnlineStore, RangeQuery
from features.stores.memory import MemoryStore
from features.stores.redis import RedisStore
from features.stores.sqlite import SqliteStore
from orderguard.errors import ConfigError, must
from orderguard.settings import StoreSettings

__all__ = ["STORE_TYPES", "MemoryStore", "OnlineStore", "RangeQuery", "RedisStore", "SqliteStore",
           "open_store"]

StoreFactory = Callable[[StoreSettings, Path], OnlineStore]


def _memory(settings: StoreSettings, data_dir: Path) -> OnlineStore:
    return MemoryStore()


def _sqlite(settings: StoreSettings, data_dir: Path) -> OnlineStore:
    return SqliteStore(settings.sqlite.path or data_dir / "features.db")


def _redis(settings: StoreSettings, data_dir: Path) -> OnlineStore:
    r = settings.redis
    return RedisStore(r.url, prefix=r.prefix, timeout_s=r.timeout_s)


#: ``StoreSettings.type`` → factory. The one place a backend is chosen.
STORE_TYPES: Mapping[str, StoreFactory] = MappingProxyType({
    "memory": _memory, "sqlite": _sqlite, "redis": _redis,
})


def open_store(settings: StoreSettings, *, data_dir: Path) -> OnlineStore:
    """Build the configured store; embedded files go under ``data_dir``."""
    factory = STORE_TYPES.get(settings.type)
    if factory is None:
        raise ConfigError(must("features.store.type", "one of " + ", ".join(sorted(STORE_TYPES)),
                               settings.type), field="features.store.type")
    return factory(settings, data_dir)
