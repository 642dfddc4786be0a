"""Store selection by ``type`` through the one registry, and the feature store settings."""

from __future__ import annotations

import typing
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from features.settings import FeatureStoreSettings, Settings
from features.stores import STORE_TYPES, MemoryStore, RedisStore, SqliteStore, StoreConfig

CONFIG = TypeAdapter(StoreConfig)


def test_the_registry_is_the_settings_union() -> None:
    members = typing.get_args(typing.get_args(StoreConfig)[0])
    assert set(STORE_TYPES.values()) == set(members)
    for name, config in STORE_TYPES.items():
        assert config().type == name
        assert isinstance(CONFIG.validate_python({"type": name}), config)


def test_default_is_the_in_process_store(tmp_path: Path) -> None:
    store = FeatureStoreSettings().store.open(tmp_path)
    assert isinstance(store, MemoryStore)


def test_sqlite_defaults_to_a_file_in_the_data_dir(tmp_path: Path) -> None:
    store = CONFIG.validate_python({"type": "sqlite"}).open(tmp_path / "data")
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "data" / "features.db").exists()
    finally:
        store.close()


def test_redis_store_uses_its_settings(tmp_path: Path, redis_url: str) -> None:
    config = CONFIG.validate_python({"type": "redis", "url": redis_url, "prefix": "og:test:settings"})
    store = config.open(tmp_path)
    try:
        assert isinstance(store, RedisStore)
        assert store.size() == 0
    finally:
        store.close()


def test_environment_selects_the_backend_and_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERGUARD_FEATURES__STORE__TYPE", "redis")
    monkeypatch.setenv("ORDERGUARD_FEATURES__STORE__PREFIX", "og:shop2")
    store = Settings().features.store
    assert store.type == "redis" and store.prefix == "og:shop2"


def test_unknown_type_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="cassandra"):
        CONFIG.validate_python({"type": "cassandra"})


def test_an_option_of_another_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="url"):
        CONFIG.validate_python({"type": "sqlite", "url": "redis://127.0.0.1"})


def test_retention_margin_is_a_duration() -> None:
    assert FeatureStoreSettings(retention_margin="90m").retention == timedelta(minutes=90)
    with pytest.raises(ValidationError, match="retention_margin"):
        FeatureStoreSettings(retention_margin="0h")
    with pytest.raises(ValidationError):
        FeatureStoreSettings.model_validate({"store": {"type": "memory", "colour": "red"}})
