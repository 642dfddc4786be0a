"""The weights of rules and model in the served score, learned from labels with each model (pure).

The served blend (``scoring.policy.blend``) is a noisy-OR of the rule evidence and the
model probability; the rule evidence comes from the points the rule pack's authors gave.
Authors write rules for the shop they know. On another shop's data a rule may fire on
most honest orders (a "new account" rule where every account is new, a "night order"
rule where a shop sells at night), and its points then drag honest orders into the
review and hold bands while adding nothing to the ranking.

So every trained model carries ``BlendWeights``: one multiplier in ``[0, 1]`` per rule
and the weight of the model's probability, fitted on the training data's validation
part (``training.blend_fit``) and stored beside the booster. The score a rule adds is
``multiplier * points``: a rule that fires on honest orders loses weight instead of
dragging the score; a precise rule keeps its author's points (never more: a multiplier
above 1 would let the data make a rule stronger than its author wrote it, which a
reviewer reading "+50" could not know). Multipliers are non-negative, so the score stays
non-decreasing in every rule hit and in the probability (the documented monotonicity).

Credits (negative points: allow-list rules) and deny-list hits are applied as written:
they are the shop's decisions, not evidence to weigh. Rules the weights do not name
(added to the pack after the model was trained) keep multiplier 1.

Without a model (rules-only, or a degraded score) there is nothing to weigh against,
and rule points apply as written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from orderguard.errors import ConfigError
from scoring.rules import RuleHit

#: File name of the weights beside a registered model's booster.
BLEND_FILE = "blend.json"


@dataclass(frozen=True, slots=True)
class BlendWeights:
    """Per-rule multipliers and the model's weight (see the module docstring).

    Attributes:
        rules: rule code → multiplier of its points, in ``[0, 1]``.
        model_weight: weight of the model probability in the noisy-OR, in ``(0, 1]``.
        fitted_on: validation rows the weights were fitted on (0: not fitted).
        evidence: rule code → the fraud share the fit measured where it fired (for the report).
    """

    rules: Mapping[str, float] = field(default_factory=dict)
    model_weight: float = 1.0
    fitted_on: int = 0
    evidence: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for code, weight in self.rules.items():
            if not (0.0 <= weight <= 1.0):
                raise ConfigError.must(f"blend.rules.{code}", "between 0 and 1", weight)
        if not (0.0 < self.model_weight <= 1.0):
            raise ConfigError.must("blend.model_weight", "in (0, 1]", self.model_weight)
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))
        object.__setattr__(self, "evidence", MappingProxyType(dict(self.evidence)))

    def weight(self, hit: RuleHit) -> float:
        """The multiplier of one hit: its rule's, or 1 for credits, deny-list hits and unknown rules."""
        if hit.points <= 0:
            return 1.0
        return self.rules.get(hit.code, 1.0)

    def points(self, hits: Iterable[RuleHit]) -> float:
        """The weighted sum of the hits' points: what the served blend reads as rule evidence.

        >>> w = BlendWeights({"NIGHT": 0.1})
        >>> w.points([RuleHit("NIGHT", 30, "", "", {}), RuleHit("BURST", 50, "", "", {})])
        53.0
        """
        return sum(h.points * self.weight(h) for h in hits)

    def to_json(self) -> str:
        """The stored form (``blend.json``)."""
        return json.dumps({"rules": dict(sorted(self.rules.items())), "model_weight": self.model_weight,
                           "fitted_on": self.fitted_on, "evidence": dict(sorted(self.evidence.items()))},
                          indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BlendWeights:
        """Read the stored form; a damaged file is a ``ConfigError`` naming ``blend``."""
        try:
            data: Any = json.loads(text)
            rules = {str(k): float(v) for k, v in data.get("rules", {}).items()}
            evidence = {str(k): float(v) for k, v in data.get("evidence", {}).items()}
            weight = float(data.get("model_weight", 1.0))
            fitted_on = int(data.get("fitted_on", 0))
        except (ValueError, TypeError, AttributeError) as e:
            raise ConfigError(f"`blend` must be the JSON of blend weights; {e}", field="blend") from e
        if any(not math.isfinite(v) for v in [*rules.values(), weight]):
            raise ConfigError.must("blend", "finite weights", text[:80])
        return cls(rules, weight, fitted_on, evidence)

