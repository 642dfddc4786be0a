"""Reviewer rules as data: a YAML rule pack → :class:`RuleHit` s over a feature vector (pure).

A rule is a condition over named features, a number of points, a stable code and a
reason template in Chinese and English that shows the values that fired::

    - code: DEVICE_BURST_5M
      points: 50
      when: {feature: count_orders_by_device_5m, op: ge, value: 5}
      reason:
        zh: "同一设备5分钟内下单{value:.0f}次（阈值{threshold:.0f}）"
        en: "{value:.0f} orders from one device within 5 min (threshold {threshold:.0f})"

``when`` is one comparison or ``{all: [...]}`` / ``{any: [...]}`` of comparisons.
Templates may use ``{value}`` / ``{threshold}`` (the first comparison) and any feature
of the rule by name (``{count_orders_by_ip_5m:.0f}``). A missing (NaN) feature never
satisfies a comparison.

The pack also carries allow and deny lists. Deny lists (phone, device id, address, each
in its stored keyed form: ``orderguard stored-key device <id>`` prints it) fire a rule of
their own with ``deny.points``; the VIP allow list (member
level) and known-good addresses mark the order ``allow_listed``, which the policy uses
so such a buyer is never held automatically. A deny-list hit, or a rule marked
``hard: true``, is *hard*: it undoes every member-level exemption (the allow list's and
the policy's VIP release), because a stolen VIP account is what those are for.

Everything is validated at load: an unknown feature, operator or placeholder is a
``ConfigError`` naming the rule and the field, e.g. ``rules[3].when.feature``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.operators import MEANING, SCALAR_OPS, Op
from features.settings import Settings
from features.specs import FeatureSet
from orderguard.errors import ConfigError


class _Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feature: str = Field(min_length=1)
    op: Op
    value: float

    @field_validator("op")
    @classmethod
    def _one_value(cls, op: Op) -> Op:
        if op not in SCALAR_OPS:
            raise ValueError(f"must be one of {', '.join(sorted(SCALAR_OPS))} (a rule compares with one threshold)")
        return op


class _Compound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: list[_Comparison] | None = Field(default=None, min_length=1)
    any: list[_Comparison] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> _Compound:
        if (self.all is None) == (self.any is None):
            raise ValueError("give exactly one of `all` or `any`")
        return self


class _Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    points: float = Field(ge=-100, le=200)
    when: _Comparison | _Compound
    reason: _Reason
    enabled: bool = True
    description: str = ""
    pattern: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    hard: bool = False


class _AllowList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vip_min_member_level: int | None = Field(default=None, ge=1)
    addresses: list[str] = []


class _DenyList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: float = Field(default=100, ge=0, le=200)
    phones: list[str] = []
    devices: list[str] = []
    addresses: list[str] = []


class _Pack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: list[_Rule]
    allow: _AllowList = _AllowList()
    deny: _DenyList = _DenyList()


@dataclass(frozen=True, slots=True)
class Comparison:
    """``feature <op> threshold``."""

    feature: str
    op: Op
    threshold: float


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule; ``mode`` is ``all`` or ``any`` over its comparisons."""

    code: str
    points: float
    comparisons: tuple[Comparison, ...]
    mode: str
    reason_zh: str
    reason_en: str
    description: str = ""
    pattern: str | None = None  # the abuse the rule catches (bot_burst, account_ring …), for filtering cases
    hard: bool = False  # certain enough that no member-level exemption releases the order
    #: Features the rule reads, in order of first use (derived once: the score path asks for every order).
    features: tuple[str, ...] = field(init=False, compare=False, repr=False)
    #: ``(feature, test, threshold)`` per comparison, the operator resolved once (see :func:`_fire`).
    checks: tuple[tuple[str, Callable[[Any, Any], bool], float], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(dict.fromkeys(c.feature for c in self.comparisons)))
        object.__setattr__(self, "checks", tuple((c.feature, MEANING[c.op].test, c.threshold)
                                                 for c in self.comparisons))


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A fired rule with the values that made it fire and its rendered reasons."""

    code: str
    points: float
    reason_zh: str
    reason_en: str
    values: Mapping[str, float]
    hard: bool = False


@dataclass(frozen=True, slots=True)
class ListKeys:
    """The order's identifiers the allow / deny lists match against (hashes / ids)."""

    phone: str | None = None
    device: str | None = None
    address: str | None = None
    member_level: int | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Result of a pack on one order: the hits (in pack order) and the allow-list flag."""

    hits: tuple[RuleHit, ...]
    allow_listed: bool

    @property
    def points(self) -> float:
        """Sum of the points of every hit (may be negative with credit rules)."""
        return sum(h.points for h in self.hits)

    @property
    def hard(self) -> bool:
        """Whether a hard hit fired (a deny list, or a rule marked ``hard``): no VIP exemption applies."""
        return any(h.hard for h in self.hits)


@dataclass(frozen=True, slots=True)
class RulePack:
    """A loaded rule pack (see the module docstring)."""

    rules: tuple[Rule, ...]
    vip_min_member_level: int | None
    allowed_addresses: frozenset[str]
    deny_points: float
    denied_phones: frozenset[str]
    denied_devices: frozenset[str]
    denied_addresses: frozenset[str]

    @property
    def features(self) -> frozenset[str]:
        """Every feature some rule reads."""
        return frozenset(f for r in self.rules for f in r.features)

    def evaluate(self, vector: Mapping[str, float], keys: ListKeys | None = None) -> Evaluation:
        """Fire every rule whose condition holds on ``vector``; then the deny and allow lists."""
        hits = [hit for rule in self.rules if (hit := _fire(rule, vector)) is not None]
        if keys is not None:
            hits.extend(self._deny_hits(keys))
        allow = keys is not None and (
            (self.vip_min_member_level is not None and (keys.member_level or 0) >= self.vip_min_member_level)
            or (keys.address is not None and keys.address in self.allowed_addresses))
        return Evaluation(hits=tuple(hits), allow_listed=allow)

    def _deny_hits(self, keys: ListKeys) -> list[RuleHit]:
        found = []
        for code, key, listed, zh, en in (
            ("DENY_PHONE", keys.phone, self.denied_phones, "手机号在黑名单中", "phone number is on the deny list"),
            ("DENY_DEVICE", keys.device, self.denied_devices, "设备在黑名单中", "device is on the deny list"),
            ("DENY_ADDRESS", keys.address, self.denied_addresses, "收货地址在黑名单中",
             "delivery address is on the deny list"),
        ):
            if key is not None and key in listed:
                found.append(RuleHit(code, self.deny_points, zh, en, {}, hard=True))
        return found


def _fire(rule: Rule, vector: Mapping[str, float]) -> RuleHit | None:
    """The rule's hit on ``vector``, or ``None``: each comparison as ``features.operators.compare`` (an
    unknown value, NaN, is never true), short-circuited, and the values collected only for a rule that fires.

    This runs for every rule on every scored order, and most rules do not fire: hence the early exits and no
    per-call allocation before a hit.
    """
    get = vector.get
    nan = math.nan
    if rule.mode == "all":
        for feature, test, threshold in rule.checks:
            value = float(get(feature, nan))
            if value != value or not test(value, threshold):  # value != value: NaN
                return None
    else:
        for feature, test, threshold in rule.checks:
            value = float(get(feature, nan))
            if value == value and test(value, threshold):
                break
        else:
            return None
    values = {f: float(get(f, nan)) for f in rule.features}
    first = rule.comparisons[0]
    context = {**values, "value": values[first.feature], "threshold": first.threshold}
    return RuleHit(rule.code, rule.points, rule.reason_zh.format(**context), rule.reason_en.format(**context),
                   values, hard=rule.hard)


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _build(pack: _Pack, *, known_features: Collection[str] | None, source: str) -> RulePack:
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(pack.rules):
        where = f"rules[{i}]"
        if raw.code in seen:
            raise ConfigError(f"`{where}.code` must be unique in {source}; got {raw.code!r} twice",
                              field=f"{where}.code")
        seen.add(raw.code)
        if isinstance(raw.when, _Comparison):
            comparisons, mode = [raw.when], "all"
        else:
            comparisons, mode = (raw.when.all or raw.when.any or []), ("all" if raw.when.all else "any")
        for j, c in enumerate(comparisons):
            if known_features is not None and c.feature not in known_features:
                single = isinstance(raw.when, _Comparison)
                field = f"{where}.when.feature" if single else f"{where}.when.{mode}[{j}].feature"
                raise ConfigError(f"`{field}` must name a feature of the feature set ({raw.code}); "
                                  f"got {c.feature!r}", field=field)
        names = {c.feature for c in comparisons} | {"value", "threshold"}
        for lang in ("zh", "en"):
            template = getattr(raw.reason, lang)
            try:
                unknown = [p for p in _placeholders(template) if p.split(".")[0].split("[")[0] not in names]
            except ValueError as e:
                raise ConfigError(f"`{where}.reason.{lang}` must be a valid template ({raw.code}); {e}",
                                  field=f"{where}.reason.{lang}") from e
            if unknown:
                raise ConfigError(f"`{where}.reason.{lang}` may only use value, threshold or the rule's features "
                                  f"({raw.code}); got {{{unknown[0]}}}", field=f"{where}.reason.{lang}")
        if raw.enabled:
            rules.append(Rule(raw.code, raw.points, tuple(Comparison(c.feature, c.op, c.value) for c in comparisons),
                              mode, raw.reason.zh, raw.reason.en, raw.description, raw.pattern, raw.hard))
    return RulePack(rules=tuple(rules), vip_min_member_level=pack.allow.vip_min_member_level,
                    allowed_addresses=frozenset(pack.allow.addresses), deny_points=pack.deny.points,
                    denied_phones=frozenset(pack.deny.phones), denied_devices=frozenset(pack.deny.devices),
                    denied_addresses=frozenset(pack.deny.addresses))


def load_rules(data: Mapping[str, Any], *, known_features: Collection[str] | None = None,
               source: str = "rule pack") -> RulePack:
    """Validate a rule pack given as data; ``known_features`` checks every feature name."""
    try:
        pack = _Pack.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = first["loc"]
        parts: list[str] = []
        for p in loc:
            if isinstance(p, int):
                parts[-1] = f"{parts[-1]}[{p}]" if parts else f"[{p}]"
            elif p not in ("_Comparison", "_Compound") and not str(p).startswith("function-"):
                parts.append(str(p))
        field = ".".join(parts) or "rules"
        code = _code_at(data, loc)
        label = f" ({code})" if code else ""
        raise ConfigError(f"`{field}`{label} in {source}: {first['msg']}; got {first.get('input')!r}",
                          field=field) from e
    return _build(pack, known_features=known_features, source=source)


def _code_at(data: Mapping[str, Any], loc: Sequence[int | str]) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rules = data.get("rules")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], Mapping):
            code = rules[loc[1]].get("code")
            return str(code) if code is not None else None
    return None


def load_rules_file(path: Path, *, known_features: Collection[str] | None = None) -> RulePack:
    """Load a YAML rule pack; a missing file or bad YAML is a ``ConfigError`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"`{path}` must be a readable YAML rule pack; {e}", field="rules") from e
    return load_rules_text(text, source=str(path), known_features=known_features)


def load_rules_text(text: str, *, source: str, known_features: Collection[str] | None = None) -> RulePack:
    """Load a rule pack from YAML text; errors name ``source`` (the file it is, or is about to be, in)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"`{source}` must be a readable YAML rule pack; {e}", field="rules") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"`{source}` must hold a mapping with `rules`; got {type(data).__name__}", field="rules")
    return load_rules(data, known_features=known_features, source=source)


def default_rules_path() -> Path:
    """The rule pack shipped with orderguard (what experienced reviewers use)."""
    return Path(__file__).with_name("default_rules.yaml")


def rules_from(settings: Settings, specs: FeatureSet) -> RulePack:
    """The configured rule pack (or the shipped default), checked against the feature set's names."""
    return load_rules_file(settings.scoring.rules_path or default_rules_path(), known_features=specs.names)
