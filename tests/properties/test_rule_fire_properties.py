"""A rule fires exactly when its comparisons say so, read one by one with ``features.operators.compare``.

``scoring.rules._fire`` short-circuits and resolves each operator once for speed; this pins
it to the plain definition on any vector: missing features, NaN, integers, values on the
threshold, ``all`` and ``any`` rules.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from features.operators import SCALAR_OPS, Op, compare
from scoring.rules import Comparison, Rule, _fire

_FEATURES = ("a", "b", "c")
_THRESHOLDS = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0, 5.0])
_VALUES = st.one_of(_THRESHOLDS, st.integers(-2, 6), st.just(math.nan), st.floats(-10, 10))


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    comparisons = tuple(Comparison(draw(st.sampled_from(_FEATURES)), draw(st.sampled_from(sorted(SCALAR_OPS))),
                                   draw(_THRESHOLDS)) for _ in range(draw(st.integers(1, 3))))
    return Rule("R", 10.0, comparisons, draw(st.sampled_from(["all", "any"])), "{value}", "{value}")


@settings(max_examples=400, deadline=None)
@given(rule=rules(), vector=st.dictionaries(st.sampled_from(_FEATURES), _VALUES))
def test_a_rule_fires_exactly_when_its_comparisons_hold(rule: Rule, vector: dict[str, float]) -> None:
    results = [compare(Op(c.op), float(vector.get(c.feature, math.nan)), c.threshold) for c in rule.comparisons]
    expected = all(results) if rule.mode == "all" else any(results)
    hit = _fire(rule, vector)
    assert (hit is not None) == expected
    if hit is not None:
        first = rule.comparisons[0].feature
        assert set(hit.values) == set(rule.features)
        assert hit.reason_zh == str(float(vector.get(first, math.nan)))
