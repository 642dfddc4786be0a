"""Online store backends and the one registry that chooses between them.

Each backend module holds its store and its configuration model (``type`` plus the
backend's own options, with ``open(data_dir)``). :data:`StoreConfig` is the one list of
backends: the settings validate ``features.store`` as this discriminated union, and
:data:`STORE_TYPES` (``type`` → config class, as Feast's ``ONLINE_STORE_CLASS_FOR_TYPE``)
is derived from it, so the contract suite (``tests/contracts``) runs on every member. A
new backend is one module and one entry in the union.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated

from pydantic import BaseModel, Field

from features.stores.base import OnlineStore, RangeQuery
from features.stores.memory import MemoryStore, MemoryStoreConfig
from features.stores.redis import RedisStore, RedisStoreConfig
from features.stores.sqlite import SqliteStore, SqliteStoreConfig

__all__ = ["STORE_TYPES", "MemoryStore", "MemoryStoreConfig", "OnlineStore", "RangeQuery", "RedisStore",
           "RedisStoreConfig", "SqliteStore", "SqliteStoreConfig", "StoreConfig"]

#: The backends, told apart by ``type``: the settings' ``features.store``.
StoreConfig = Annotated[MemoryStoreConfig | SqliteStoreConfig | RedisStoreConfig, Field(discriminator="type")]


def _type_of(config: type[BaseModel]) -> str:
    (name,) = typing.get_args(config.model_fields["type"].annotation)
    return str(name)


#: ``type`` → configuration class, derived from :data:`StoreConfig`.
STORE_TYPES: Mapping[str, type[MemoryStoreConfig | SqliteStoreConfig | RedisStoreConfig]] = MappingProxyType({
    _type_of(config): config for config in typing.get_args(typing.get_args(StoreConfig)[0])
})

