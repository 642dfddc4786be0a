"""The sections of the settings object every package may read.

The composite :class:`features.settings.Settings` (environment ``ORDERGUARD_*``) is
assembled one layer up, because its ``features.store`` section is the union of the
online store backends that only ``features`` knows; kernel code takes the section it
needs (e.g. :class:`PiiSettings`), never the whole object.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from orderguard.durations import parse_duration
from orderguard.errors import ConfigError


def duration_text(value: str, info: ValidationInfo) -> str:
    """A duration setting normalised (``" 48H "`` → ``"48h"``), or pydantic's error naming the field."""
    try:
        return parse_duration(value, field=info.field_name or "duration")[1]
    except ConfigError as e:
        raise ValueError(e.message) from e


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


class BandSettings(BaseModel):
    """Lowest score of each decision band (see ``scoring.policy``)."""

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
    """Blend and decision parameters; the formula is documented in ``scoring.policy``."""

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


class GateSettings(BaseModel):
    """How much better a candidate must be than the champion, on the same holdout, to be promoted.

    A margin is in absolute metric units (0.01 = one point of PR AUC); a negative margin
    tolerates a small loss on a secondary metric.
    """

    model_config = ConfigDict(extra="forbid")

    min_pr_auc_gain: float = Field(default=0.0, ge=-1, le=1, description="candidate PR AUC - champion PR AUC >=")
    min_roc_auc_gain: float = Field(default=-0.01, ge=-1, le=1, description="candidate ROC AUC - champion ROC AUC >=")
    min_recall_at_capacity_gain: float = Field(default=-0.02, ge=-1, le=1,
                                               description="candidate - champion recall at review capacity >=")
    min_holdout_positives: int = Field(default=20, ge=1,
                                       description="fewer frauds (or honest orders) in the holdout: no verdict")


class TrainingSettings(BaseModel):
    """Dataset, LightGBM, MLflow and promotion options of ``orderguard train`` / ``promote``.

    Attributes:
        tracking_uri: MLflow tracking store; ``None`` means ``sqlite:///<data_dir>/mlflow.db``.
        artifact_dir: where run artifacts go for the default store; ``None`` = ``<data_dir>/mlartifacts``.
        experiment: MLflow experiment name.
        model_name: registered model name; the served model carries the alias ``champion``.
        holdout_days: the newest days before the cutoff kept out of training.
        gap: delay between the last training order and the first holdout order, so labels
            that arrive late cannot leak across the split (e.g. ``7d``).
        maturity: an unlabelled order older than this at the cutoff, with no refund claim,
            counts as honest (a negative); younger unlabelled orders are left out.
        needs_investigation: ``drop`` leaves such orders out; ``positive`` counts them as fraud.
        review_capacity_per_day: orders the review team can look at per day (precision and
            recall "at capacity" are measured on the top orders of each holdout day).
        validation_fraction: the newest share of the training period used for early stopping.
        seed: LightGBM seed, for repeatable runs.
    """

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = None
    artifact_dir: Path | None = None
    experiment: str = "orderguard"
    model_name: str = "orderguard-risk"
    holdout_days: int = Field(default=7, ge=1)
    gap: str = "2d"
    maturity: str = "14d"
    needs_investigation: Literal["drop", "positive"] = "drop"
    review_capacity_per_day: int = Field(default=50, ge=1)
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    seed: int = 7
    num_boost_round: int = Field(default=400, ge=1)
    early_stopping_rounds: int = Field(default=40, ge=1)
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    num_leaves: int = Field(default=31, ge=2)
    min_data_in_leaf: int = Field(default=20, ge=1)
    gate: GateSettings = GateSettings()

    @field_validator("gap", "maturity")
    @classmethod
    def _check_duration(cls, value: str, info: ValidationInfo) -> str:
        return duration_text(value, info)
