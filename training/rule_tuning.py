"""Tune a rule pack's points from reviewer labels: per-rule precision, lift and a suggested change.

Reviewers label the orders they look at (``confirmed_fraud`` / ``false_positive`` /
``needs_investigation``). Replaying the order log through the pack point-in-time
(:func:`training.rules_report.replay`) tells which rules fired on each order; joined
with each order's *current* label this gives, per rule:

* ``hits`` -- replayed orders the rule fired on, labelled or not;
* the verdicts among its labelled hits, and ``precision = fraud / (fraud + false positive)``
  (``needs_investigation`` is no verdict yet and stays out of it);
* ``lift`` -- that precision over the base rate, the share of fraud among all decided labels.

Labels come from the review desk, whose queue the rules themselves filled: precision
among a rule's hits is measured fairly, recall is not (orders no rule flagged are rarely
labelled). So the suggestions only move the weight of rules that fire; they never invent
rules or thresholds.

The suggestion rule (:class:`TuningPolicy`, defaults in brackets), applied to rules with
positive points -- credit rules (negative points) are left alone:

1. fewer than ``min_decided`` [10] decided labels among the hits → no change,
   *insufficient evidence*;
2. precision below ``low_precision`` [0.2] → points scaled by ``precision / target_precision``
   [0.5], but by no less than ``min_factor`` [0.25]: a rule loses at most three quarters of its
   weight in one round, and one more round of labels decides the rest;
3. precision at or above ``high_precision`` [0.9] and a lift of at least ``min_lift`` [1.5]
   → a modest increase, ``increase_factor`` [1.2], capped at ``max_points`` [90] so that no rule
   reaches *hold* on its own through tuning (97 points alone with the default policy): holding
   an order unseen stays a human decision. Without the lift condition a rule would gain weight
   merely because nearly everything reviewers see is fraud;
4. anything in between → no change.

Suggested points are rounded to ``step`` [5] points; a change smaller than that is no change.

Label-derived rules (``*_CONFIRMED_FRAUD``) read labels as features; the replay applies no
labels, so they never fire there and always come out as *insufficient evidence* -- tuning
them on the labels they read would be circular anyway.

Suggestions are written to a YAML file a person reads; ``orderguard rules apply`` writes a
new pack from it, editing only the ``points`` of the named rules (comments and layout of
the pack are kept) and checking the result loads before anything is written.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orderguard.atomicfile import write_text_atomic
from orderguard.errors import ConfigError, InvalidInputError
from orderguard.label_files import LabelFormat, read_label_file
from orderguard.labels import current_labels as in_force
from orderguard.schema import Label, Verdict
from scoring.rules import RulePack, load_rules_text

#: ``kind`` of a suggestions file, so a rule pack or a label file passed by mistake is refused.
SUGGESTIONS_KIND = "orderguard.rule-suggestions"


class Action(StrEnum):
    """What a suggestion does to a rule's points."""

    DECREASE = "decrease"
    INCREASE = "increase"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class TuningPolicy:
    """The documented suggestion rule (see the module docstring); precisions are in [0, 1], points as in packs."""

    min_decided: int = 10
    low_precision: float = 0.2
    target_precision: float = 0.5
    high_precision: float = 0.9
    min_factor: float = 0.25
    increase_factor: float = 1.2
    max_points: float = 90.0
    step: float = 5.0
    min_lift: float = 1.5

    def __post_init__(self) -> None:
        checks = [
            ("min_decided", self.min_decided >= 1, ">= 1", self.min_decided),
            ("low_precision", 0 <= self.low_precision <= self.target_precision,
             "between 0 and target_precision", self.low_precision),
            ("target_precision", 0 < self.target_precision <= 1, "in (0, 1]", self.target_precision),
            ("high_precision", self.target_precision <= self.high_precision <= 1,
             "between target_precision and 1", self.high_precision),
            ("min_factor", 0 < self.min_factor <= 1, "in (0, 1]", self.min_factor),
            ("increase_factor", self.increase_factor >= 1, ">= 1", self.increase_factor),
            ("max_points", self.max_points > 0, "> 0", self.max_points),
            ("step", self.step > 0, "> 0", self.step),
            ("min_lift", self.min_lift >= 1, ">= 1", self.min_lift),
        ]
        for field, ok, constraint, value in checks:
            if not ok:
                raise InvalidInputError.must(field, constraint, value)


@dataclass(frozen=True, slots=True)
class RuleStats:
    """One rule's hits among the replayed orders and the current verdicts on them."""

    code: str
    points: float
    hits: int
    confirmed_fraud: int
    false_positive: int
    needs_investigation: int

    @property
    def decided(self) -> int:
        """Hits labelled fraud or false positive (what precision is measured on)."""
        return self.confirmed_fraud + self.false_positive

    @property
    def precision(self) -> float:
        """``fraud / (fraud + false positive)``; NaN without a decided hit.

        >>> RuleStats("R", 30, 9, 3, 1, 2).precision
        0.75
        """
        return self.confirmed_fraud / self.decided if self.decided else math.nan

    def lift(self, base_rate: float) -> float:
        """Precision over the base rate of fraud among decided labels; NaN when either is unknown or 0.

        >>> RuleStats("R", 30, 9, 3, 1, 2).lift(0.25)
        3.0
        """
        if math.isnan(self.precision) or not base_rate > 0:
            return math.nan
        return self.precision / base_rate


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A proposed points change for one rule, with the reason a reviewer reads."""

    code: str
    points: float
    suggested_points: float
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class TuningReport:
    """Per-rule statistics (pack order), the base rate and one suggestion per rule.

    Attributes:
        rows: one per enabled rule of the pack, in pack order.
        labelled_orders: replayed orders with a current label.
        fraud_orders: of those, confirmed fraud.
        decided_orders: of those, confirmed fraud or false positive.
        suggestions: one per row, same order.
    """

    rows: tuple[RuleStats, ...]
    labelled_orders: int
    fraud_orders: int
    decided_orders: int
    suggestions: tuple[Suggestion, ...]

    @property
    def base_rate(self) -> float:
        """Share of fraud among decided labels; NaN without any."""
        return self.fraud_orders / self.decided_orders if self.decided_orders else math.nan

    @property
    def changes(self) -> tuple[Suggestion, ...]:
        """The suggestions that change points."""
        return tuple(s for s in self.suggestions if s.action is not Action.KEEP)


def current_labels(labels: Iterable[Label]) -> dict[str, Label]:
    """Per order key (``jd:123``), its label in force (:func:`orderguard.labels.current_labels`),
    keyed as the rules replay keys orders.

    >>> from datetime import UTC, datetime
    >>> from orderguard.schema import Channel, OrderKey
    >>> k = OrderKey(Channel.JD, "1")
    >>> old = Label(k, Verdict.CONFIRMED_FRAUD, datetime(2024, 11, 1, tzinfo=UTC), "a")
    >>> new = Label(k, Verdict.FALSE_POSITIVE, datetime(2024, 11, 2, tzinfo=UTC), "b")
    >>> current_labels([new, old])["jd:1"].verdict.value
    'false_positive'
    """
    return {str(key): label for key, label in in_force(labels).items()}


def read_current_labels(path: Path) -> dict[str, Label]:
    """The generic label file (``order_key, verdict, labeled_at, reviewer_id, note``; CSV, XLSX or JSONL)
    → each order's current label.

    A file with any unreadable row is refused whole, naming the first bad line: tuning on
    a silently shortened label set would mislead.

    Raises:
        InvalidInputError: missing or unreadable file, a bad row, or no label at all.
    """
    if not path.is_file():
        raise InvalidInputError.must("labels", "an existing label file", str(path))
    parsed = read_label_file(path, fmt=LabelFormat.GENERIC)
    if parsed.errors:
        first = parsed.errors[0]
        more = f" (and {len(parsed.errors) - 1} more bad rows)" if len(parsed.errors) > 1 else ""
        raise InvalidInputError(f"{path.name}:{first.position}: {first.error.message}{more}",
                                field=first.error.field or "labels")
    if not parsed.labels:
        raise InvalidInputError.must("labels", "a file with at least one label", path.name)
    return current_labels(label for _, label in parsed.labels)


def rule_stats(fired: Mapping[str, Collection[str]], verdicts: Mapping[str, Verdict],
               rules: RulePack) -> tuple[RuleStats, ...]:
    """Per enabled rule of ``rules`` (pack order): hits over ``fired`` (order key → codes that fired)
    and the verdicts on them. Labels of orders not in ``fired`` are ignored; codes that are not
    rules of the pack (deny lists) are not reported.

    >>> from scoring.rules import load_rules
    >>> pack = load_rules({"rules": [{"code": "A", "points": 30, "when": {"feature": "x", "op": "ge", "value": 1},
    ...                               "reason": {"zh": "a", "en": "a"}}]})
    >>> rule_stats({"jd:1": ("A",), "jd:2": ("A",), "jd:3": ()}, {"jd:1": Verdict.FALSE_POSITIVE}, pack)
    (RuleStats(code='A', points=30.0, hits=2, confirmed_fraud=0, false_positive=1, needs_investigation=0),)
    """
    counts = {rule.code: [0, 0, 0, 0] for rule in rules.rules}
    slot = {Verdict.CONFIRMED_FRAUD: 1, Verdict.FALSE_POSITIVE: 2, Verdict.NEEDS_INVESTIGATION: 3}
    for key, codes in fired.items():
        verdict = verdicts.get(key)
        for code in set(codes):
            c = counts.get(code)
            if c is None:
                continue
            c[0] += 1
            if verdict is not None:
                c[slot[verdict]] += 1
    return tuple(RuleStats(rule.code, rule.points, *counts[rule.code]) for rule in rules.rules)


def _rounded(points: float, step: float) -> float:
    """Nearest multiple of ``step``, never below one step.

    >>> _rounded(12.4, 5), _rounded(1.0, 5), _rounded(37.5, 5)
    (10.0, 5.0, 40.0)
    """
    return float(max(step, step * math.floor(points / step + 0.5)))


def suggest(stats: RuleStats, *, base_rate: float, policy: TuningPolicy = TuningPolicy()) -> Suggestion:
    """The suggestion for one rule by the documented rule (module docstring)."""
    points = stats.points

    def keep(reason: str) -> Suggestion:
        return Suggestion(stats.code, points, points, Action.KEEP, reason)

    if points <= 0:
        return keep("credit rule: not tuned")
    if stats.decided < policy.min_decided:
        return keep(f"insufficient evidence: {stats.decided} of {policy.min_decided} decided labels")
    p = stats.precision
    low, high = policy.low_precision, policy.high_precision
    if p < low:
        factor = max(p / policy.target_precision, policy.min_factor)
        new = _rounded(points * factor, policy.step)
        if new >= points:
            return keep(f"precision < {low:.2f}; already at the smallest step")
        return Suggestion(stats.code, points, new, Action.DECREASE,
                          f"precision < {low:.2f}: x{factor:.2f} toward {policy.target_precision:.2f}")
    if p >= high:
        lift = stats.lift(base_rate)
        if not lift >= policy.min_lift:
            return keep(f"precision >= {high:.2f} but lift {lift:.1f} < {policy.min_lift:g}: no better than the queue")
        new = min(_rounded(points * policy.increase_factor, policy.step), policy.max_points)
        if new <= points:
            return keep(f"precision >= {high:.2f}; at the {policy.max_points:g}-point cap")
        return Suggestion(stats.code, points, new, Action.INCREASE,
                          f"precision >= {high:.2f}: x{policy.increase_factor:g}, cap {policy.max_points:g}")
    return keep(f"precision in [{low:.2f}, {high:.2f})")


def tune(fired: Mapping[str, Collection[str]], verdicts: Mapping[str, Verdict], rules: RulePack, *,
         policy: TuningPolicy = TuningPolicy()) -> TuningReport:
    """Statistics and suggestions for every rule of ``rules`` over the replayed orders in ``fired``."""
    labelled = [v for key, v in verdicts.items() if key in fired]
    fraud = sum(1 for v in labelled if v is Verdict.CONFIRMED_FRAUD)
    decided = fraud + sum(1 for v in labelled if v is Verdict.FALSE_POSITIVE)
    rows = rule_stats(fired, verdicts, rules)
    base_rate = fraud / decided if decided else math.nan
    return TuningReport(rows=rows, labelled_orders=len(labelled), fraud_orders=fraud, decided_orders=decided,
                        suggestions=tuple(suggest(row, base_rate=base_rate, policy=policy) for row in rows))


# -- the suggestions file ----------------------------------------------------------------------------


class _SuggestionModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    points: float
    suggested_points: float = Field(ge=-100, le=200)
    action: Action
    reason: str = ""
    evidence: dict[str, float | int | None] = {}


class _SuggestionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["orderguard.rule-suggestions"]
    version: Literal[1] = 1
    rules: str = ""
    labels: str = ""
    summary: dict[str, float | int | None] = {}
    suggestions: list[_SuggestionModel]


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def suggestions_document(report: TuningReport, *, rules: str = "", labels: str = "") -> dict[str, Any]:
    """The YAML-ready suggestions file: every rule's suggestion with its evidence (``keep`` included,
    so a reader sees why a rule was left alone); ``rules apply`` acts on the others only."""
    stats = {row.code: row for row in report.rows}
    items = []
    for s in report.suggestions:
        row = stats[s.code]
        items.append({
            "code": s.code, "points": s.points, "suggested_points": s.suggested_points, "action": s.action.value,
            "reason": s.reason,
            "evidence": {"hits": row.hits, "confirmed_fraud": row.confirmed_fraud,
                         "false_positive": row.false_positive, "needs_investigation": row.needs_investigation,
                         "precision": _finite(row.precision), "lift": _finite(row.lift(report.base_rate))},
        })
    return {"kind": SUGGESTIONS_KIND, "version": 1, "rules": rules, "labels": labels,
            "summary": {"labelled_orders": report.labelled_orders, "fraud_orders": report.fraud_orders,
                        "decided_orders": report.decided_orders, "base_rate": _finite(report.base_rate)},
            "suggestions": items}


def write_suggestions(report: TuningReport, path: Path, *, rules: str = "", labels: str = "") -> None:
    """Write :func:`suggestions_document` as YAML (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(suggestions_document(report, rules=rules, labels=labels), allow_unicode=True,
                          sort_keys=False, width=120)
    path.write_text(text, encoding="utf-8")


def _validation_error(e: ValidationError, source: str) -> ConfigError:
    first = e.errors()[0]
    parts: list[str] = []
    for p in first["loc"]:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        else:
            parts.append(str(p))
    field = ".".join(parts) or "suggestions"
    return ConfigError(f"`{field}` in {source}: {first['msg']}; got {first.get('input')!r}", field=field)


def parse_suggestions(data: Any, *, source: str = "suggestions") -> tuple[Suggestion, ...]:
    """Validate a suggestions document (see :func:`suggestions_document`); codes must be unique.

    Raises:
        ConfigError: naming the field, e.g. ``suggestions[2].suggested_points``.
    """
    try:
        model = _SuggestionsFile.model_validate(data)
    except ValidationError as e:
        raise _validation_error(e, source) from e
    seen: set[str] = set()
    out = []
    for i, item in enumerate(model.suggestions):
        if item.code in seen:
            raise ConfigError(f"`suggestions[{i}].code` must be unique in {source}; got {item.code!r} twice",
                              field=f"suggestions[{i}].code")
        seen.add(item.code)
        out.append(Suggestion(item.code, item.points, item.suggested_points, item.action, item.reason))
    return tuple(out)


def read_suggestions(path: Path) -> tuple[Suggestion, ...]:
    """Read and validate a suggestions YAML file; an unreadable file is a ``ConfigError`` naming it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"`{path}` must be a readable YAML suggestions file; {e}", field="suggestions") from e
    return parse_suggestions(data, source=str(path))


# -- applying suggestions to a pack ------------------------------------------------------------------


def _format_points(points: float) -> str:
    """Points as a pack writes them.

    >>> _format_points(25.0), _format_points(12.5)
    ('25', '12.5')
    """
    return str(int(points)) if float(points).is_integer() else repr(float(points))


def _points_spans(text: str, *, source: str) -> dict[str, tuple[int, int, float]]:
    """Rule code → (start, end) character span of its ``points`` value in ``text``, and the value."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"`{source}` must be a readable YAML rule pack; {e}", field="rules") from e
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"`{source}` must hold a mapping with `rules`", field="rules")
    rules_node = next((v for k, v in root.value if k.value == "rules"), None)
    if not isinstance(rules_node, yaml.SequenceNode):
        raise ConfigError(f"`rules` in {source} must be a list of rules", field="rules")
    spans: dict[str, tuple[int, int, float]] = {}
    for i, rule in enumerate(rules_node.value):
        if not isinstance(rule, yaml.MappingNode):
            raise ConfigError(f"`rules[{i}]` in {source} must be a mapping", field=f"rules[{i}]")
        fields = {k.value: v for k, v in rule.value if isinstance(k, yaml.ScalarNode)}
        code, points = fields.get("code"), fields.get("points")
        if not isinstance(code, yaml.ScalarNode) or not isinstance(points, yaml.ScalarNode):
            raise ConfigError(f"`rules[{i}]` in {source} must have a `code` and a scalar `points`",
                              field=f"rules[{i}]")
        try:
            value = float(points.value)
        except ValueError as e:
            raise ConfigError(f"`rules[{i}].points` in {source} must be a number; got {points.value!r}",
                              field=f"rules[{i}].points") from e
        spans[code.value] = (points.start_mark.index, points.end_mark.index, value)
    return spans


def apply_suggestions(pack_text: str, suggestions: Sequence[Suggestion], *,
                      source: str = "rule pack") -> tuple[str, tuple[Suggestion, ...]]:
    """The pack's text with the ``points`` of every changing suggestion replaced; nothing else is touched
    (comments, order, reasons stay). Returns the new text and the suggestions applied.

    A suggestion must name a rule of the pack, and the points it was made against must
    still be the pack's: a pack edited since the labels were read is refused rather than
    changed on stale evidence.

    Raises:
        ConfigError: an unknown code or stale points, naming ``suggestions[i]``.
    """
    spans = _points_spans(pack_text, source=source)
    edits: list[tuple[int, int, str]] = []
    applied: list[Suggestion] = []
    for i, s in enumerate(suggestions):
        if s.action is Action.KEEP or s.suggested_points == s.points:
            continue
        found = spans.get(s.code)
        if found is None:
            raise ConfigError(f"`suggestions[{i}].code` must name a rule of {source}; got {s.code!r}",
                              field=f"suggestions[{i}].code")
        start, end, current = found
        if current != s.points:
            raise ConfigError(f"`suggestions[{i}].points` must match {s.code}'s points in {source} "
                              f"({_format_points(current)}): the pack changed since tuning; got "
                              f"{_format_points(s.points)}", field=f"suggestions[{i}].points")
        edits.append((start, end, _format_points(s.suggested_points)))
        applied.append(s)
    text = pack_text
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text, tuple(applied)


def write_pack(text: str, out: Path, *, known_features: Collection[str] | None = None) -> RulePack:
    """Write a rule pack only if it loads: the text is loaded first (every feature name checked,
    errors naming ``out``), then replaces ``out`` atomically; on any error ``out`` is left as
    it was.

    Raises:
        ConfigError: the pack does not load.
    """
    pack = load_rules_text(text, source=str(out), known_features=known_features)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    return pack
