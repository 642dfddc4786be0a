"""The one settings object, built once per entry point and passed down.

Environment variables use the prefix ``ORDERGUARD_`` and ``__`` for nesting, e.g.
``ORDERGUARD_DATABASE__URL=postgresql+psycopg://127.0.0.1/orderguard``. Defaults are
the embedded deployment: SQLite files under ``data_dir`` and no server.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class Settings(BaseSettings):
    """All configuration of one orderguard deployment."""

    model_config = SettingsConfigDict(env_prefix="ORDERGUARD_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Path("var")
    database: DatabaseSettings = DatabaseSettings()
    pii: PiiSettings = PiiSettings()
    api: ApiSettings = ApiSettings()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the order log."""
        return self.database.url or f"sqlite:///{self.data_dir / 'orderguard.db'}"

    def settings_hash(self) -> str:
        """Stable short hash of the effective settings (secrets excluded) for audit trails."""
        dump = self.model_dump_json(exclude={"pii"})
        return hashlib.sha256(dump.encode()).hexdigest()[:12]
