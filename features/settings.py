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
from orderguard.errors import ConfigError
from orderguard.settings import (
    LOOPBACK,
    AccessSettings,
    AlertSettings,
    ApiSettings,
    DatabaseSettings,
    DeskSettings,
    HealthSettings,
    IngestLimits,
    PiiSettings,
    PolicySettings,
    ReferenceSettings,
    ScoringSettings,
    SegmentSettings,
    SessionSettings,
    TrainingSettings,
    WebhookSettings,
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

    data_dir: Path = Field(default=Path("var"), description="where embedded databases (SQLite order log, "
                                                          "MLflow store, SQLite feature store) live")
    database: DatabaseSettings = DatabaseSettings()
    pii: PiiSettings = PiiSettings()
    api: ApiSettings = ApiSettings()
    access: AccessSettings = AccessSettings()
    session: SessionSettings = SessionSettings()
    webhooks: WebhookSettings = WebhookSettings()
    desk: DeskSettings = DeskSettings()
    alerts: AlertSettings = AlertSettings()
    ingest: IngestLimits = IngestLimits()
    features: FeatureStoreSettings = FeatureStoreSettings()
    reference: ReferenceSettings = ReferenceSettings()
    policy: PolicySettings = PolicySettings()
    scoring: ScoringSettings = ScoringSettings()
    training: TrainingSettings = TrainingSettings()
    segments: SegmentSettings = SegmentSettings()
    health: HealthSettings = HealthSettings()

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

    def development_secrets(self) -> list[str]:
        """The settings that still hold a public development value (empty in a real deployment)."""
        found = ["ORDERGUARD_PII__HASH_KEY"] if self.pii.is_development else []
        if self.session.is_development:
            found.append("ORDERGUARD_SESSION__SECRET")
        found += [f"ORDERGUARD_WEBHOOKS__SECRETS__{c.upper()}" for c in self.webhooks.development_channels()]
        return found

    def check_serving_on(self, host: str) -> str | None:
        """Refuse development secrets on a service reachable beyond this machine; a warning on loopback.

        With the public PII key a phone number is recovered from its hash in a fraction of
        a second; with the public session secret anyone can forge a reviewer's session;
        with a public webhook secret anyone can push orders as a channel. So they may only
        guard a service nobody else can reach.

        Raises:
            ConfigError: ``host`` is not a loopback address and a secret is a development value.
        """
        found = self.development_secrets()
        if not found:
            return None
        if host not in LOOPBACK:
            raise ConfigError(f"refusing to serve on {host}: {', '.join(found)} still "
                              f"{'holds' if len(found) == 1 else 'hold'} the public development value; "
                              "set a secret of your own", field=found[0])
        return (f"{', '.join(found)} {'is' if len(found) == 1 else 'are'} the public development "
                "value: fine on this machine, set secrets before serving real orders")

    def settings_hash(self) -> str:
        """Stable short hash of the effective settings for audit trails: secrets and where this installation
        keeps its files (the docs' assets) are left out, so the same settings hash alike on every machine."""
        dump = self.model_dump_json(exclude={"pii": True, "session": {"secret"}, "webhooks": {"secrets"},
                                           "api": {"docs_assets"},
                                           "alerts": {"receivers", "order_system_callback", "callback_secret"}})
        return hashlib.sha256(dump.encode()).hexdigest()[:12]
