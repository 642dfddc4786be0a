"""Online stores for tests: every backend of ``features.stores.STORE_TYPES``, isolated per test.

The top-level ``online_store`` fixture (``tests/conftest.py``) is parametrised over the
registry, so a new backend registered there runs every test that asks for a store - the
contract suite (``tests/contracts/test_online_store_contract.py``) first of all - with
its defaults, moved out of the way of real data.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from features.stores import STORE_TYPES, OnlineStore, RedisStoreConfig, SqliteStoreConfig
from features.stores.memory import MemoryStoreConfig

StoreConfigModel = MemoryStoreConfig | SqliteStoreConfig | RedisStoreConfig
#: Stores whose state outlives the process (memory is rebuilt by replaying the order log).
DURABLE_TYPES = tuple(t for t in sorted(STORE_TYPES) if t != "memory")


@dataclass(frozen=True)
class StoreRecipe:
    """How to open (and reopen) one test store: its configuration, with state in a test-only place."""

    config: StoreConfigModel
    directory: Path

    @property
    def kind(self) -> str:
        return self.config.type

    def open(self) -> OnlineStore:
        return self.config.open(self.directory)


def isolated_config(kind: str, directory: Path, *, redis_url: str, tag: str) -> StoreConfigModel:
    """The backend's default configuration, moved out of the way of real data.

    The options this knows how to isolate (a file ``path``, a key ``prefix``, a server
    ``url``) are pointed at the test's own places; ``tag`` makes them unique.
    """
    config_class = STORE_TYPES[kind]
    options: dict[str, object] = {"type": kind}
    fields = config_class.model_fields
    if "path" in fields:
        options["path"] = directory / f"{kind}-{tag}.db"
    if "prefix" in fields:
        options["prefix"] = f"og:test:store:{tag}"
    if "url" in fields:
        options["url"] = redis_url
    return config_class.model_validate(options)


def forget(config: StoreConfigModel, directory: Path) -> None:
    """Remove a test store's keys from a shared server (files go with the test's directory)."""
    if "prefix" in type(config).model_fields:
        cleaner: Any = config.open(directory)  # a prefixed store can clear its own keys
        cleaner.clear()
        cleaner.close()


def make_recipe(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRecipe]:
    """A recipe for ``kind`` isolated to this test; its keys on a shared server are removed after."""
    redis_url = request.getfixturevalue("redis_url") if "url" in STORE_TYPES[kind].model_fields else ""
    made = StoreRecipe(isolated_config(kind, tmp_path, redis_url=redis_url, tag=uuid.uuid4().hex), tmp_path)
    yield made
    forget(made.config, tmp_path)


@contextmanager
def every_store(redis_url: str) -> Iterator[dict[str, OnlineStore]]:
    """One fresh, isolated, open store of each registered backend (for tests that compare them in one run)."""
    with tempfile.TemporaryDirectory(prefix="og-stores-") as tmp:
        directory, tag = Path(tmp), uuid.uuid4().hex
        configs = {kind: isolated_config(kind, directory, redis_url=redis_url, tag=tag) for kind in sorted(STORE_TYPES)}
        stores: dict[str, OnlineStore] = {kind: config.open(directory) for kind, config in configs.items()}
        try:
            yield stores
        finally:
            for kind, store in stores.items():
                store.close()
                forget(configs[kind], directory)
