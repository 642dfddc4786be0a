"""Properties of the blend and the decision bands."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderguard.errors import ConfigError
from scoring.policy import Bands, Campaign, Decision, Policy, blend, decide, decision_rank

points = st.floats(min_value=-50, max_value=1000, allow_nan=False)
probs = st.floats(min_value=0, max_value=1, allow_nan=False)
scores = st.floats(min_value=0, max_value=100, allow_nan=False)
policies = st.builds(Policy, points_scale=st.floats(min_value=1, max_value=500),
                     model_weight=st.floats(min_value=0, max_value=1))
bands = st.lists(st.floats(min_value=1, max_value=100), min_size=3, max_size=3).map(sorted).map(
    lambda v: Bands(v[0], v[1], v[2]))


@given(policies, points, points, st.one_of(st.none(), probs))
def test_score_is_monotone_in_rule_points(policy: Policy, a: float, b: float, p: float | None) -> None:
    low, high = sorted((a, b))
    assert blend(low, p, policy=policy) <= blend(high, p, policy=policy)


@given(policies, points, probs, probs)
def test_score_is_monotone_in_model_probability(policy: Policy, pts: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert blend(pts, low, policy=policy) <= blend(pts, high, policy=policy)


@given(policies, points, st.one_of(st.none(), probs))
def test_score_stays_in_0_100(policy: Policy, pts: float, p: float | None) -> None:
    assert 0.0 <= blend(pts, p, policy=policy) <= 100.0


@given(bands, scores, scores, st.booleans())
def test_decision_is_monotone_in_score(b: Bands, s1: float, s2: float, vip: bool) -> None:
    low, high = sorted((s1, s2))
    assert decision_rank(decide(low, bands=b, never_hold=vip)) <= decision_rank(decide(high, bands=b, never_hold=vip))


@given(bands, scores)
def test_allow_listed_vip_is_never_held(b: Bands, s: float) -> None:
    assert decide(s, bands=b, never_hold=True) is not Decision.HOLD


@given(bands, scores, st.floats(min_value=0, max_value=50))
def test_campaign_shift_never_makes_a_decision_stricter(b: Bands, s: float, shift: float) -> None:
    assert decision_rank(decide(s, bands=b.shifted(shift))) <= decision_rank(decide(s, bands=b))


def test_campaign_covers_beijing_days_only() -> None:
    policy = Policy(campaigns=(Campaign("11.11", date(2024, 11, 11), date(2024, 11, 11), 10.0),))
    # 2024-11-10 16:30 UTC is 00:30 on 11-11 in Beijing.
    assert policy.bands_at(datetime(2024, 11, 10, 16, 30, tzinfo=UTC)).review == policy.bands.review + 10
    assert policy.bands_at(datetime(2024, 11, 10, 15, 30, tzinfo=UTC)) == policy.bands


@pytest.mark.parametrize("args", [(0, 50, 80), (60, 50, 80), (30, 50, 101)])
def test_bad_bands_fail_at_load_naming_the_field(args: tuple[float, float, float]) -> None:
    with pytest.raises(ConfigError) as info:
        Bands(*args)
    assert info.value.field == "policy.bands"
