"""Store selection by ``type`` through the registry, and the feature store settings."""

from __future__ import annotations

import typing
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from features.stores import STORE_TYPES, MemoryStore, RedisStore, SqliteStore, open_store
from orderguard.errors import ConfigError
from orderguard.settings import FeatureStoreSettings, StoreSettings


def test_every_settings_type_has_a_factory_and_back() -> None:
    allowed = typing.get_args(StoreSettings.model_fields["type"].annotation)
    assert set(allowed) == set(STORE_TYPES)


def test_default_is_the_in_process_store(tmp_path: Path) -> None:
    store = open_store(FeatureStoreSettings().store, data_dir=tmp_path)
    assert isinstance(store, MemoryStore)


def test_sqlite_defaults_to_a_file_in_the_data_dir(tmp_path: Path) -> None:
    store = open_store(StoreSettings(type="sqlite"), data_dir=tmp_path / "data")
    try:
        assert isinstance(store, SqliteStore)
        assert (tmp_path / "data" / "features.db").exists()
    finally:
        store.close()


def test_redis_store_uses_its_settings(tmp_path: Path, feature_redis_url: str) -> None:
    settings = StoreSettings.model_validate({"type": "redis", "redis": {"url": feature_redis_url,
                                                                          "prefix": "og:test:settings"}})
    store = open_store(settings, data_dir=tmp_path)
    try:
        assert isinstance(store, RedisStore)
        assert store.size() == 0
    finally:
        store.close()


def test_unknown_type_is_refused_at_load() -> None:
    with pytest.raises(ValidationError):
        StoreSettings.model_validate({"type": "cassandra"})


def test_open_store_guards_against_a_type_without_factory(tmp_path: Path) -> None:
    forged = StoreSettings.model_construct(type="cassandra")  # type: ignore[arg-type]  # bypasses validation
    with pytest.raises(ConfigError) as info:
        open_store(forged, data_dir=tmp_path)
    assert info.value.field == "features.store.type"


def test_retention_margin_is_a_duration() -> None:
    assert FeatureStoreSettings(retention_margin="90m").retention == timedelta(minutes=90)
    with pytest.raises(ValidationError, match="retention_margin"):
        FeatureStoreSettings(retention_margin="0h")
    with pytest.raises(ValidationError):
        FeatureStoreSettings.model_validate({"store": {"type": "memory", "colour": "red"}})
