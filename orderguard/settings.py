"""The sections of the settings object every package may read.

The composite :class:`features.settings.Settings` (environment ``ORDERGUARD_*``) is
assembled one layer up, because its ``features.store`` section is the union of the
online store backends that only ``features`` knows; kernel code takes the section it
needs (e.g. :class:`PiiSettings`), never the whole object.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from orderguard.durations import parse_duration
from orderguard.errors import ConfigError
from orderguard.schema import Channel


def duration_text(value: str, info: ValidationInfo) -> str:
    """A duration setting normalised (``" 48H "`` → ``"48h"``), or pydantic's error naming the field."""
    try:
        return parse_duration(value, field=info.field_name or "duration")[1]
    except ConfigError as e:
        raise ValueError(e.message) from e


def duration_value(value: object, info: ValidationInfo) -> object:
    """A timedelta setting given as text the way every other duration is (``"12h"``, ``"15m"``); anything else
    (a timedelta, seconds, ISO 8601) is left to pydantic."""
    if isinstance(value, str) and value.strip()[-1:].isalpha() and not value.strip().upper().startswith("P"):
        try:
            return timedelta(microseconds=parse_duration(value, field=info.field_name or "duration")[0])
        except ConfigError as e:
            raise ValueError(e.message) from e
    return value


class DatabaseSettings(BaseModel):
    """Where the order log lives. ``url=None`` means ``sqlite:///<data_dir>/orderguard.db``."""

    url: str | None = Field(default=None, description="SQLAlchemy URL of the order log, e.g. "
                                                      "postgresql+psycopg://user@127.0.0.1/orderguard")
    echo: bool = Field(default=False, description="log every SQL statement (debugging)")
    checkpoint_s: float = Field(default=1.0, gt=0, le=60,
                                description="SQLite: how often a running service copies its write-ahead log into the "
                                            "database, on a thread of its own (its commits never do it on a request)")
    wal_limit_mb: int = Field(default=256, ge=1, le=65_536,
                              description="SQLite: the most a running service's write-ahead log may hold; past it the "
                                          "next checkpoint runs between two of the score route's commits, so the log "
                                          "starts over (its file is trimmed only past twice this size)")

    @property
    def wal_limit_bytes(self) -> int:
        """``wal_limit_mb`` in bytes, as the order log takes it."""
        return self.wal_limit_mb * 2**20


#: The PII key of a development checkout: public, so anyone can reverse its hashes by brute force.
DEVELOPMENT_HASH_KEY = "orderguard-development-key"
#: Addresses only this machine reaches: development secrets are tolerated there and nowhere else.
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class PiiSettings(BaseModel):
    """Key for HMAC hashing of phones, id cards, BSSIDs. Change it in production."""

    hash_key: SecretStr = Field(default=SecretStr(DEVELOPMENT_HASH_KEY),
                                description="HMAC key of every stored phone, id card, address, device id and IP: set "
                                            "a secret before the first order (stored keys depend on it)")

    @property
    def is_development(self) -> bool:
        """Whether the key is the public development one."""
        return self.hash_key.get_secret_value() == DEVELOPMENT_HASH_KEY


class IngestLimits(BaseModel):
    """Bounds every channel payload and event keeps (``orderguard.ingest.guard``), for every way in.

    The defaults are far beyond what the channels send (a platform order holds at most a
    few hundred lines; a buyer message at most a few hundred characters) and far below
    what would strain the order log or the warm start that replays it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_text_chars: int = Field(default=4_000, ge=64, description="longest text value in a payload")
    max_list_items: int = Field(default=1_000, ge=10, description="most items in one list or object of a payload")
    max_depth: int = Field(default=16, ge=4, description="deepest nesting of a payload")
    max_id_chars: int = Field(default=128, ge=16, description="longest order id")
    max_fen: int = Field(default=10**10, ge=100, le=2**62, description="largest amount, in fen (default 100 M yuan)")
    max_qty: int = Field(default=100_000, ge=1, description="largest quantity on one line")
    earliest: datetime = Field(default=datetime(2000, 1, 1, tzinfo=UTC), description="earliest plausible time")
    future_skew: timedelta = Field(default=timedelta(hours=1), ge=timedelta(0),
                                   description="how far after its receipt a channel's time may lie (clock skew)")

    @field_validator("earliest")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ApiSettings(BaseModel):
    """HTTP service options."""

    host: str = Field(default="127.0.0.1", description="address the service binds to")
    port: int = Field(default=8000, ge=1, le=65535, description="port the service listens on")
    max_batch: int = Field(default=1000, ge=1, description="most payloads accepted in one batch request")
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024,
                                description="largest request body; larger ones get 413 before parsing")
    docs_assets: Path = Field(default_factory=lambda: Path(sys.prefix) / "share" / "orderguard" / "swagger-ui",
                              description="Swagger UI files /docs serves (scripts/bootstrap.sh installs them)")
    switch_interval_ms: float = Field(
        default=0.5, gt=0, le=100,
        description="how long a busy thread keeps the interpreter before a waiting one gets it (Python's "
                    "switch interval, 5 ms by default): the score route's writer thread waits this long each "
                    "time a database call returns while the event loop is busy")


class AccessSettings(BaseModel):
    """Who may call the service (``orderguard.access``)."""

    model_config = ConfigDict(extra="forbid")

    refresh_s: float = Field(default=2.0, gt=0, le=300,
                             description="how often a running service re-reads API keys: a revoked key is "
                                         "refused within this many seconds")


#: The session secret of a development checkout: public, so anyone could forge a reviewer's session with it.
DEVELOPMENT_SESSION_SECRET = "orderguard-development-session-secret"


class SessionSettings(BaseModel):
    """How people stay signed in to the web pages (``serving.web``).

    The session is a signed, http-only cookie (itsdangerous) holding the user name, the
    time of sign-in and the CSRF token of that session; roles are read from the user
    directory on every request, so a disabled user or a removed role counts at once.
    """

    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(default=SecretStr(DEVELOPMENT_SESSION_SECRET),
                              description="signs the session cookies: anyone who knows it can forge a session")
    max_age: timedelta = Field(default=timedelta(hours=12), gt=timedelta(0), le=timedelta(days=30),
                               description="a session ends this long after sign-in (one working day by default)")
    secure_cookie: bool = Field(default=False, description="send the cookie over HTTPS only (set it behind TLS)")
    max_failures: int = Field(default=5, ge=1, le=1000,
                              description="failed sign-ins allowed per user and address within failure_window")
    max_failures_per_address: int = Field(default=50, ge=1, le=100_000,
                                          description="failed sign-ins allowed per address (any user) within "
                                                      "failure_window")
    failure_window: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0), le=timedelta(days=1),
                                      description="the window failed sign-ins are counted in (and a lock lasts)")

    _durations = field_validator("max_age", "failure_window", mode="before")(duration_value)

    @property
    def is_development(self) -> bool:
        """Whether the secret is the public development one."""
        return self.secret.get_secret_value() == DEVELOPMENT_SESSION_SECRET


def development_webhook_secret(channel: str) -> str:
    """The public development secret of one channel's webhooks (``orderguard-development-webhook-jd`` …)."""
    return f"orderguard-development-webhook-{channel}"


def _development_webhook_secrets() -> dict[str, SecretStr]:
    return {c.value: SecretStr(development_webhook_secret(c.value)) for c in Channel}


class WebhookSettings(BaseModel):
    """How channel pushes to ``POST /v1/orders/{channel}`` are verified (``orderguard.ingest.webhooks``).

    Each channel signs its pushes with the shop's app secret for that channel; a push
    older than ``tolerance`` (or that far in the future) or seen before within it is refused.
    ``secrets`` maps a channel (``tmall``, ``jd``, …) to its secret; the defaults are public
    development values, refused on a service reachable beyond this machine.
    """

    model_config = ConfigDict(extra="forbid")

    secrets: dict[str, SecretStr] = Field(default_factory=_development_webhook_secrets,
                                          description="each channel's app secret its pushes are verified with; "
                                                      "setting any replaces the whole map")
    tolerance: timedelta = Field(default=timedelta(minutes=5), ge=timedelta(seconds=10), le=timedelta(hours=1),
                                 description="how far a push's timestamp may lie from now")
    _durations = field_validator("tolerance", mode="before")(duration_value)
    app_keys: dict[str, str] = Field(default_factory=dict,
                                     description="the shop's app key (app id) per channel, where the platform "
                                                 "names it in the push; checked when set")

    @field_validator("secrets", "app_keys")
    @classmethod
    def _known_channels(cls, value: dict[str, object]) -> dict[str, object]:
        known = {c.value for c in Channel}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"channels must be among {', '.join(sorted(known))}; got {', '.join(unknown)}")
        return value

    def development_channels(self) -> list[str]:
        """Channels whose secret is still the public development value."""
        return sorted(c for c, s in self.secrets.items() if s.get_secret_value() == development_webhook_secret(c))


class DeskSettings(BaseModel):
    """The review desk (``serving.web.desk``)."""

    model_config = ConfigDict(extra="forbid")

    window: timedelta = Field(default=timedelta(days=30), gt=timedelta(0),
                              description="how far back the queue reads flagged orders")
    claim_for: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0), le=timedelta(hours=8),
                                 description="how long opening a case keeps it for its reviewer")
    similar_cases: int = Field(default=5, ge=1, le=20, description="labelled past cases shown beside a case")
    verify_timeout: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0), le=timedelta(days=7),
                                      description="a verify order with no reported outcome this long after its "
                                                  "decision goes to the review queue")

    _durations = field_validator("window", "claim_for", "verify_timeout", mode="before")(duration_value)


class SegmentSettings(BaseModel):
    """The trusted-customer pool (``segments``): which criteria, and how the API serves it."""

    model_config = ConfigDict(extra="forbid")

    criteria: str = Field(default="standard", min_length=1,
                          description="a shipped preset (standard, loose, strict) or a criteria YAML file")
    page_max: int = Field(default=1000, ge=1, le=10_000, description="most customers in one page of the API")
    cache_for: timedelta = Field(default=timedelta(minutes=10), ge=timedelta(0), le=timedelta(days=1),
                                 description="how long the service keeps a computed pool for the pages that follow")
    cache_entries: int = Field(default=2, ge=1, le=16, description="pools (as-of, criteria) kept at once")

    _durations = field_validator("cache_for", mode="before")(duration_value)


class HealthSettings(BaseModel):
    """The order-health monitor (``health``): which checks, how often the service sweeps, what it tells whom."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="run the sweeper in the service")
    checks: str = Field(default="default", min_length=1,
                        description="the shipped check preset (default) or a health-check YAML file")
    sweep_every: timedelta = Field(default=timedelta(seconds=60), ge=timedelta(seconds=1), le=timedelta(hours=1),
                                   description="how often the service sweeps: a fault is flagged within its "
                                               "deadline plus this")
    horizon: timedelta = Field(default=timedelta(days=14), ge=timedelta(hours=1), le=timedelta(days=120),
                               description="how far back the service loads orders at start-up")
    digest_every: timedelta = Field(default=timedelta(minutes=30), ge=timedelta(minutes=1), le=timedelta(days=1),
                                    description="at most one low-health (top 5) message per this")
    pause_on_red: bool = Field(default=True, description="ask the order system to pause fulfilment of a red order "
                                                         "(alerts.order_system_callback)")

    _durations = field_validator("sweep_every", "horizon", "digest_every", mode="before")(duration_value)


RobotKind = Literal["dingtalk", "wecom", "feishu"]
"""The team chat robots alerts can go to (``serving.notify.messages`` renders and signs each one's request)."""

HealthTopic = Literal["yellow", "orange", "red", "digest"]
"""Order-health messages a robot may get (``health``): each tier's newly escalated orders, the low-health digest."""



def _default_health_topics() -> list[HealthTopic]:
    return ["red", "digest"]


_RECEIVER_NAME = r"^[a-z0-9][a-z0-9_-]{0,47}$"


def _http_url(value: str, field: str) -> str:
    text = value.strip()
    if not text.lower().startswith(("http://", "https://")) or len(text) <= len("https://"):
        raise ValueError(f"`{field}` must be an http:// or https:// URL")
    return text


class AlertReceiver(BaseModel):
    """One chat group's robot that is told about held orders.

    ``url`` is the robot's webhook address as the chat app shows it; it carries the robot's
    token (DingTalk ``access_token``, WeCom ``key``, Feishu hook id), so it is as secret as
    ``secret`` and is left out of logs and of the settings hash. ``secret`` is the signing
    secret of a DingTalk robot (加签, ``SEC…``) or a Feishu robot (签名校验); leave it unset
    for a robot secured by keyword or IP allow list instead. WeCom group robots are not
    signed (the key in the URL is the credential), so a secret there is refused rather
    than silently unused. ``name`` tells two robots of one kind apart (default: the kind).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: RobotKind
    url: str
    secret: SecretStr | None = None
    name: str | None = Field(default=None, pattern=_RECEIVER_NAME,
                             description="lower-case id of this robot in the outbox (default: its kind)")
    health: list[HealthTopic] = Field(default_factory=_default_health_topics,
                                      description="order-health messages this group gets: orders newly yellow, "
                                                  "orange or red, and the low-health digest (top 5)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value, "url")

    @model_validator(mode="after")
    def _wecom_unsigned(self) -> AlertReceiver:
        if self.kind == "wecom" and self.secret is not None:
            raise ValueError("a wecom robot takes no `secret` (its webhook key is the credential); remove it")
        return self

    @property
    def label(self) -> str:
        """The name that identifies this robot in the outbox and in logs (never its URL)."""
        return self.name or self.kind


class OutboxSettings(BaseModel):
    """How the outbox sender delivers (``serving.notify.sender``): retries, backoff, timeouts.

    A failed delivery is retried after ``backoff_first``, doubling per attempt up to
    ``backoff_cap``; after ``max_attempts`` the message is a dead letter (kept, not
    retried). The defaults ride out an overnight outage of a robot (20 attempts span
    about 13 hours) while a short blip costs half a minute.
    """

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=20, ge=1, le=100, description="deliveries tried before a dead letter")
    backoff_first: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0), le=timedelta(hours=1),
                                     description="wait after a first failed delivery (doubling after each)")
    backoff_cap: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0), le=timedelta(days=1),
                                   description="longest wait between two tries of one message")
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="longest wait for one receiver's answer")
    poll_s: float = Field(default=2.0, gt=0, le=300, description="how often the sender looks for due messages")
    batch: int = Field(default=20, ge=1, le=500, description="most messages claimed per look")

    _durations = field_validator("backoff_first", "backoff_cap", mode="before")(duration_value)

    @model_validator(mode="after")
    def _cap_above_first(self) -> OutboxSettings:
        if self.backoff_cap < self.backoff_first:
            raise ValueError("`backoff_cap` must be at least `backoff_first`")
        return self


class AlertSettings(BaseModel):
    """Messages to other systems, all sent through the outbox (``orderguard.outbox``).

    * ``receivers``: chat robots told about every ``hold`` decision and, when
      ``review_score_at_least`` is set, every ``review`` decision scoring at least that;
      the message links to the case at ``{base_url}/desk/case/{channel}/{order_id}``.
    * ``order_system_callback``: where reviewers' actions on an order (release, cancel,
      keep on hold) are POSTed, signed with ``callback_secret`` (required with it).
    """

    model_config = ConfigDict(extra="forbid")

    receivers: list[AlertReceiver] = Field(default_factory=list,
                                           description="team chat robots: [{\"kind\": \"dingtalk\", \"url\": …, "
                                                       "\"secret\": …, \"health\": [\"red\", \"digest\"]}]")
    review_score_at_least: float | None = Field(default=None, ge=0, le=100,
                                                description="also alert on review decisions scoring at least this")
    base_url: str = Field(default="http://127.0.0.1:8000",
                          description="how reviewers reach this service: the case links in alerts start with it")
    order_system_callback: str | None = Field(default=None, description="URL the order system takes actions at")
    callback_secret: SecretStr | None = Field(default=None, description="signs the calls to the order system "
                                                                       "(required with order_system_callback)")
    delivery: OutboxSettings = OutboxSettings()

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _http_url(value, "base_url").rstrip("/")

    @field_validator("order_system_callback")
    @classmethod
    def _callback(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "order_system_callback")

    @model_validator(mode="after")
    def _consistent(self) -> AlertSettings:
        labels = [r.label for r in self.receivers]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ValueError(f"receivers must have distinct names; {', '.join(twice)} is used twice "
                             "(give each robot of one kind a `name`)")
        if self.order_system_callback is not None and (
                self.callback_secret is None or not self.callback_secret.get_secret_value()):
            raise ValueError("`callback_secret` must be set with `order_system_callback`: the order system "
                             "must be able to tell orderguard's calls from anyone else's")
        return self


class WarehouseSettings(BaseModel):
    """Where a shop's parcels leave from: a city (and district) of the gazetteer (``orderguard.enrich``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    province: str = Field(min_length=1, description="province of the ship-from warehouse, e.g. 浙江省")
    city: str = Field(default="", description="city of the ship-from warehouse, e.g. 杭州市")
    district: str = Field(default="", description="district of the ship-from warehouse, e.g. 余杭区")


#: Buyer-note words that ask for rushed shipping (priority, not abuse: see ``ReferenceSettings``).
URGENT_NOTE_KEYWORDS: tuple[str, ...] = ("急用", "急需", "今天发", "今天发货", "马上发", "立刻发", "加急", "当天发")


class ReferenceSettings(BaseModel):
    """Shop facts the order attributes read besides the order (``features.facts.reference_attributes``).

    Kept out of stored facts on purpose: changing a warehouse or a keyword changes what the next lookup
    computes, never what a durable store already holds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    warehouse: WarehouseSettings = Field(
        default=WarehouseSettings(province="浙江省", city="杭州市", district="余杭区"),
        description="ship-from warehouse of every shop not listed in `warehouses`")
    warehouses: dict[str, WarehouseSettings] = Field(
        default={}, description="ship-from warehouse by shop id (the channel's seller id, as events carry it)")
    urgent_note_keywords: tuple[str, ...] = Field(
        default=URGENT_NOTE_KEYWORDS, min_length=1,
        description="words in a buyer note that ask for rushed shipping (a low-points priority signal)")

    @field_validator("urgent_note_keywords")
    @classmethod
    def _no_blank_keyword(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not word.strip() for word in value):
            raise ValueError("keywords must not be blank")
        return value


class BandSettings(BaseModel):
    """Lowest score of each decision band (see ``scoring.policy``)."""

    model_config = ConfigDict(extra="forbid")

    verify: float = Field(default=35.0, gt=0, le=100, description="lowest score decided verify")
    review: float = Field(default=55.0, gt=0, le=100, description="lowest score decided review")
    hold: float = Field(default=80.0, gt=0, le=100, description="lowest score decided hold")


class BandShiftSettings(BaseModel):
    """Points added to each band during a campaign: positive widens (fewer flags), negative tightens."""

    model_config = ConfigDict(extra="forbid")

    verify: float = Field(default=0.0, ge=-50, le=50)
    review: float = Field(default=0.0, ge=-50, le=50)
    hold: float = Field(default=0.0, ge=-50, le=50)


class CampaignSettings(BaseModel):
    """A promotion or launch period (Beijing days, inclusive; optionally some hours of each day) during which
    the bands move: up on a promotion day so honest volume is not flooded into review, down in a scalper
    window so more is held. Overlapping campaigns: per band, tightening wins."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    first_day: date
    last_day: date
    band_shift: float = Field(default=10.0, ge=-50, le=50, description="points added to every band")
    shifts: BandShiftSettings | None = Field(default=None, description="per-band shifts (replace band_shift)")
    hours: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$",
                              description="HH:MM-HH:MM Beijing time each day; a start after the end wraps midnight")

    @model_validator(mode="after")
    def _days_in_order(self) -> CampaignSettings:
        if self.last_day < self.first_day:
            raise ValueError(f"last_day must not be before first_day; got {self.first_day} .. {self.last_day}")
        if self.hours is not None and self.hours_window is not None and self.hours_window[0] == self.hours_window[1]:
            raise ValueError(f"hours must be a window, not one instant; got {self.hours!r}")
        return self

    @property
    def hours_window(self) -> tuple[time, time] | None:
        """``hours`` as times, or None for whole days."""
        if self.hours is None:
            return None
        start, end = self.hours.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)


class VipReleaseSettings(BaseModel):
    """High-level members released quickly unless a hard rule (deny list, ``hard: true``) fires."""

    model_config = ConfigDict(extra="forbid")

    min_member_level: int | None = Field(default=4, ge=1, le=20,
                                         description="lowest member level released; None turns the release off")
    release_to: Literal["approve", "verify"] = Field(default="approve",
                                                     description="the strictest decision a released member gets")


class PolicySettings(BaseModel):
    """Blend and decision parameters; the formula is documented in ``scoring.policy``."""

    model_config = ConfigDict(extra="forbid")

    points_scale: float = Field(default=60.0, gt=0, description="rule points that give ~63 of 100")
    model_weight: float = Field(default=1.0, ge=0, le=1, description="weight of the model's probability in "
                                                                    "the blended score")
    bands: BandSettings = BandSettings()
    campaigns: list[CampaignSettings] = Field(default=[], description="promotion or launch windows that move "
                                                                       "the bands (widen or tighten)")
    vip_release: VipReleaseSettings = VipReleaseSettings()


class ScoringSettings(BaseModel):
    """Rule pack and response options of the score endpoint."""

    model_config = ConfigDict(extra="forbid")

    rules_path: Path | None = Field(default=None, description="YAML rule pack; None = the shipped default")
    max_reasons: int = Field(default=8, ge=1, le=50, description="most reasons a decision carries")
    warm_start: bool = Field(default=True, description="replay recent orders into an empty online store at start")
    rules_poll_s: float = Field(default=5.0, gt=0, le=300,
                                description="how often a running service looks for a rule pack published by another "
                                            "process (every process of a shared database swaps within this)")
    commit_batch: int = Field(default=256, ge=1, le=10_000,
                              description="most score requests committed together (one order-log and one record "
                                          "transaction per batch; a request waits at most for the batch before it)")


GateMetric = Literal[
    "pr_auc", "roc_auc", "precision_at_capacity", "recall_at_capacity",
    "fpr_verify", "fpr_review", "fpr_hold", "recall_verify", "recall_review", "recall_hold",
    "precision_verify", "precision_review", "precision_hold",
]
"""Metrics of the served blend the gate can check (``training.evaluate``'s ``blend_<metric>``)."""


class MetricThreshold(BaseModel):
    """One entry of the gate: how the candidate must compare with the baseline on one metric.

    ``min_gain`` is in absolute metric units (0.01 = one point); a negative gain tolerates a
    small loss on a secondary metric. For a metric where lower is better (a false-positive
    rate) set ``greater_is_better: false`` and the gain is measured the other way round.
    ``min_value`` is an absolute floor the candidate must reach whatever the baseline.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_gain: float = Field(default=0.0, ge=-1, le=1,
                            description="candidate - baseline must exceed this on the primary metric (a tie "
                                        "does not promote) and reach it on the others")
    min_value: float | None = Field(default=None, ge=0, le=1, description="absolute floor for the candidate")
    greater_is_better: bool = True


def _default_gate_metrics() -> dict[GateMetric, MetricThreshold]:
    return {"pr_auc": MetricThreshold(min_gain=0.0), "roc_auc": MetricThreshold(min_gain=-0.01),
            "recall_at_capacity": MetricThreshold(min_gain=-0.02)}


class GateSettings(BaseModel):
    """The promotion gate as data: one threshold per metric, one reason per threshold.

    A candidate is promoted only if every entry of ``metrics`` holds against the champion on
    the same holdout. The list is the whole gate: an environment override
    (``ORDERGUARD_TRAINING__GATE__METRICS='{"pr_auc": {"min_gain": 0.01}}'``) replaces it.
    Before the first champion only ``primary`` is checked, against the rules alone, and its
    gain may not be negative (a first model must add something to the rules).
    """

    model_config = ConfigDict(extra="forbid")

    metrics: dict[GateMetric, MetricThreshold] = Field(default_factory=_default_gate_metrics, min_length=1,
                                                       description="the promotion gate: {metric: {min_gain, "
                                                                   "min_value}}; replaces the whole list")
    primary: GateMetric = Field(default="pr_auc", description="the metric a candidate is ranked by")
    min_holdout_positives: int = Field(default=20, ge=1,
                                       description="fewer frauds (or honest orders) in the holdout: no verdict")
    blend_vs_model_min_gain: float = Field(
        default=-0.01, ge=-1, le=1,
        description="the served blend's primary metric minus the candidate's own model alone must be at least "
                    "this (a blend of rules that drags the model down is refused; default: a loss of 0.01 "
                    "tolerated as noise)")

    @model_validator(mode="after")
    def _primary_is_checked(self) -> GateSettings:
        if self.primary not in self.metrics:
            raise ValueError(f"primary metric {self.primary!r} must be one of the gate's metrics "
                             f"{sorted(self.metrics)}")
        return self

    def with_gains(self, **min_gain: float) -> GateSettings:
        """A copy with some metrics' ``min_gain`` changed (added if absent), e.g. ``with_gains(pr_auc=0.01)``."""
        metrics = dict(self.metrics)
        for name, gain in min_gain.items():
            old = metrics.get(name, MetricThreshold())  # type: ignore[call-overload]
            metrics[name] = old.model_copy(update={"min_gain": gain})  # type: ignore[index]
        return GateSettings.model_validate({**self.model_dump(), "metrics": metrics})


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
        cards_dir: where the model card of each promoted champion is written (``training.cards``);
            relative paths are relative to the working directory (``models/`` of the checkout).
    """

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = None
    cards_dir: Path = Path("models")
    artifact_dir: Path | None = None
    experiment: str = "orderguard"
    model_name: str = "orderguard-risk"
    holdout_days: int = Field(default=7, ge=1)
    gap: str = "2d"
    maturity: str = "14d"
    needs_investigation: Literal["drop", "positive"] = "drop"
    review_capacity_per_day: int = Field(default=50, ge=1)
    validation_fraction: float = Field(default=0.2, gt=0, lt=0.9)
    features_memory_limit: str | None = Field(
        default="4GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="most memory DuckDB may hold while it builds the training features (e.g. 4GB); beyond it the "
                    "window queries spill to a temporary folder; unset: 80% of the machine")
    late_labels_warn_share: float = Field(
        default=0.02, ge=0, le=1,
        description="share of fraud labels given later than `maturity` after their order above which a run "
                    "carries a note")
    late_labels_max_share: float = Field(
        default=0.10, ge=0, le=1,
        description="share of fraud labels given later than `maturity` above which training is refused before "
                    "any feature is built (they would train as honest)")
    seed: int = 7
    num_boost_round: int = Field(default=400, ge=1, description="most LightGBM boosting rounds")
    early_stopping_rounds: int = Field(default=40, ge=1, description="stop when validation has not improved "
                                                                   "for this many rounds")
    learning_rate: float = Field(default=0.05, gt=0, le=1, description="LightGBM learning rate")
    num_leaves: int = Field(default=31, ge=2, description="LightGBM leaves per tree")
    min_data_in_leaf: int = Field(default=20, ge=1, description="LightGBM fewest orders in a leaf")
    gate: GateSettings = GateSettings()

    @field_validator("gap", "maturity")
    @classmethod
    def _check_duration(cls, value: str, info: ValidationInfo) -> str:
        return duration_text(value, info)
