"""The one settings object, built once per entry point and passed down.

Environment variables use the prefix ``ORDERGUARD_`` and ``__`` for nesting, e.g.
``ORDERGUARD_DATABASE__URL=postgresql+psycopg://127.0.0.1/orderguard`` or
``ORDERGUARD_FEATURES__STORE__TYPE=redis``. Defaults are the embedded deployment:
SQLite files under ``data_dir`` and no server.

It lives here, not in the kernel, because ``features.store`` is the union of the online
store backends (:data:`features.stores.StoreConfig`); the other sections are the
kernel's (:mod:`orderguard.settings`).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.stores import MemoryStoreConfig, StoreConfig
from orderguard.durations import to_timedelta
from orderguard.settings import (
    AccessSettings,
    ApiSettings,
    DatabaseSettings,
    IngestLimits,
    PiiSettings,
    PolicySettings,
    ScoringSettings,
    TrainingSettings,
    duration_text,
)


class FeatureStoreSettings(BaseModel):
    """Everything the feature engines need from configuration.

    Attributes:
        store: the online store backend.
        retention_margin: how far behind the newest event lookups stay exact (and how
            late an order may arrive and still count), e.g. ``1h``.
        specs_path: YAML feature set; ``None`` means the default shop set (``features.shop``).
    """

    model_config = ConfigDict(extra="forbid")

    store: StoreConfig = MemoryStoreConfig()
    retention_margin: str = "1h"
    specs_path: Path | None = None
    state_check_s: float = Field(default=5.0, gt=0, description="how often the service asks the online store "
                                                               "whether it lost its state (then re-warms it)")

    @field_validator("retention_margin")
    @classmethod
    def _check_margin(cls, value: str, info: ValidationInfo) -> str:
        return duration_text(value, info)

    @property
    def retention(self) -> timedelta:
        """``retention_margin`` as a timedelta."""
        return to_timedelta(self.retention_margin)


class Settings(BaseSettings):
    """All configuration of one orderguard deployment."""

    model_config = SettingsConfigDict(env_prefix="ORDERGUARD_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Path("var")
    database: DatabaseSettings = DatabaseSettings()
    pii: PiiSettings = PiiSettings()
    api: ApiSettings = ApiSettings()
    access: AccessSettings = AccessSettings()
    ingest: IngestLimits = IngestLimits()
    features: FeatureStoreSettings = FeatureStoreSettings()
    policy: PolicySettings = PolicySettings()
    scoring: ScoringSettings = ScoringSettings()
    training: TrainingSettings = TrainingSettings()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the order log."""
        return self.database.url or f"sqlite:///{self.data_dir / 'orderguard.db'}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI (a local SQLite file by default)."""
        return self.training.tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_location(self) -> Path:
        """Where the default tracking store keeps run artifacts."""
        return (self.training.artifact_dir or self.data_dir / "mlartifacts").resolve()

    def settings_hash(self) -> str:
        """Stable short hash of the effective settings for audit trails: secrets and where this installation
        keeps its files (the docs' assets) are left out, so the same settings hash alike on every machine."""
        dump = self.model_dump_json(exclude={"pii": True, "api": {"docs_assets"}})
        return hashlib.sha256(dump.encode()).hexdigest()[:12]
