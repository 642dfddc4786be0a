"""The one settings object, built once per entry point and passed down.

Environment variables use the prefix ``ORDERGUARD_`` and ``__`` for nesting, e.g.
``ORDERGUARD_DATABASE__URL=postgresql+psycopg://127.0.0.1/orderguard``. Defaults are
the embedded deployment: SQLite files under ``data_dir`` and no server.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orderguard.durations import parse_duration, to_timedelta
from orderguard.errors import ConfigError


class DatabaseSettings(BaseModel):
    """Where the order log lives. ``url=None`` means ``sqlite:///<data_dir>/orderguard.db``."""

    url: str | None = None
    echo: bool = False


class PiiSettings(BaseModel):
    """Key for HMAC hashing of phones, id cards, BSSIDs. Change it in production."""

    hash_key: SecretStr = SecretStr("orderguard-development-key")


class ApiSettings(BaseModel):
    """HTTP service options."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_batch: int = Field(default=1000, ge=1, description="most payloads accepted in one batch request")


class SqliteStoreSettings(BaseModel):
    """SQLite store: ``path=None`` means ``<data_dir>/features.db``."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = None


class RedisStoreSettings(BaseModel):
    """Redis store: server, key namespace and socket timeout."""

    model_config = ConfigDict(extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = Field(default="og:features", min_length=1, description="namespace of every key")
    timeout_s: float = Field(default=2.0, gt=0, description="socket timeout in seconds")


class StoreSettings(BaseModel):
    """Which online store backend, by ``type`` (see ``features.stores.STORE_TYPES``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["memory", "sqlite", "redis"] = "memory"
    sqlite: SqliteStoreSettings = SqliteStoreSettings()
    redis: RedisStoreSettings = RedisStoreSettings()


class FeatureStoreSettings(BaseModel):
    """Everything the feature engines need from configuration.

    Attributes:
        store: the online store backend.
        retention_margin: how far behind the newest event lookups stay exact (and how
            late an order may arrive and still count), e.g. ``1h``.
        specs_path: YAML feature set; ``None`` means the default shop set (``features.shop``).
    """

    model_config = ConfigDict(extra="forbid")

    store: StoreSettings = StoreSettings()
    retention_margin: str = "1h"
    specs_path: Path | None = None

    @field_validator("retention_margin")
    @classmethod
    def _check_margin(cls, value: str) -> str:
        try:
            return parse_duration(value, field="retention_margin")[1]
        except ConfigError as e:
            raise ValueError(e.message) from e

    @property
    def retention(self) -> timedelta:
        """``retention_margin`` as a timedelta."""
        return to_timedelta(self.retention_margin)


class BandSettings(BaseModel):
    """Lowest score of each decision band (see ``orderguard.policy``)."""

    model_config = ConfigDict(extra="forbid")

    verify: float = Field(default=35.0, gt=0, le=100)
    review: float = Field(default=55.0, gt=0, le=100)
    hold: float = Field(default=80.0, gt=0, le=100)


class CampaignSettings(BaseModel):
    """A promotion period (Beijing days, inclusive) during which every band moves up."""

    model_config = ConfigDict(extra="forbid")

    name: str
    first_day: date
    last_day: date
    band_shift: float = Field(default=10.0, ge=0, le=50)


class PolicySettings(BaseModel):
    """Blend and decision parameters; the formula is documented in ``orderguard.policy``."""

    model_config = ConfigDict(extra="forbid")

    points_scale: float = Field(default=60.0, gt=0, description="rule points that give ~63 of 100")
    model_weight: float = Field(default=1.0, ge=0, le=1)
    bands: BandSettings = BandSettings()
    campaigns: list[CampaignSettings] = []


class ScoringSettings(BaseModel):
    """Rule pack and response options of the score endpoint."""

    model_config = ConfigDict(extra="forbid")

    rules_path: Path | None = Field(default=None, description="YAML rule pack; None = the shipped default")
    max_reasons: int = Field(default=8, ge=1, le=50)
    warm_start: bool = Field(default=True, description="replay recent orders into an empty online store at start")


class Settings(BaseSettings):
    """All configuration of one orderguard deployment."""

    model_config = SettingsConfigDict(env_prefix="ORDERGUARD_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Path("var")
    database: DatabaseSettings = DatabaseSettings()
    pii: PiiSettings = PiiSettings()
    api: ApiSettings = ApiSettings()
    features: FeatureStoreSettings = FeatureStoreSettings()
    policy: PolicySettings = PolicySettings()
    scoring: ScoringSettings = ScoringSettings()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the order log."""
        return self.database.url or f"sqlite:///{self.data_dir / 'orderguard.db'}"

    def settings_hash(self) -> str:
        """Stable short hash of the effective settings (secrets excluded) for audit trails."""
        dump = self.model_dump_json(exclude={"pii"})
        return hashlib.sha256(dump.encode()).hexdigest()[:12]
