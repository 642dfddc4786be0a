"""Properties of the two-way campaign shifts and the VIP release (scoring.policy, scoring.judge)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from orderguard.schema import Order
from orderguard.settings import PolicySettings
from scoring.judge import judge
from scoring.policy import (
    Bands,
    BandShift,
    Campaign,
    Decision,
    Policy,
    VipRelease,
    decide,
    decision_rank,
    policy_from,
)
from scoring.rules import RulePack, load_rules
from tests.factories import make_order

scores = st.floats(min_value=0, max_value=100, allow_nan=False)
shift_values = st.floats(min_value=-50, max_value=50, allow_nan=False)
shifts = st.builds(BandShift, shift_values, shift_values, shift_values)
bands = st.lists(st.floats(min_value=1, max_value=100), min_size=3, max_size=3).map(sorted).map(
    lambda v: Bands(v[0], v[1], v[2]))
levels = st.none() | st.integers(0, 9)
caps = st.none() | st.sampled_from([Decision.APPROVE, Decision.VERIFY])

DAY = date(2026, 11, 11)
AT = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)  # 12:00 Beijing on the campaign day


@given(bands, shifts)
def test_moved_bands_are_always_valid(b: Bands, shift: BandShift) -> None:
    moved = b.moved(shift)  # Bands validates 0 < verify <= review <= hold <= 100 itself
    assert moved.verify >= 1


@given(bands, shifts, shifts, scores)
def test_a_wider_shift_never_makes_a_decision_stricter(b: Bands, s1: BandShift, s2: BandShift, s: float) -> None:
    narrow = BandShift(min(s1.verify, s2.verify), min(s1.review, s2.review), min(s1.hold, s2.hold))
    wide = BandShift(max(s1.verify, s2.verify), max(s1.review, s2.review), max(s1.hold, s2.hold))
    assert decision_rank(decide(s, bands=b.moved(wide))) <= decision_rank(decide(s, bands=b.moved(narrow)))


@given(bands, st.floats(min_value=-50, max_value=0), scores)
def test_a_tightening_campaign_never_makes_a_decision_looser(b: Bands, shift: float, s: float) -> None:
    assert decision_rank(decide(s, bands=b.shifted(shift))) >= decision_rank(decide(s, bands=b))


@given(st.lists(shifts, min_size=1, max_size=4), shifts)
def test_overlapping_campaigns_keep_the_strictest_tightening(found: list[BandShift], tight: BandShift) -> None:
    tight = BandShift(min(tight.verify, -1), min(tight.review, -1), min(tight.hold, -1))
    combined = BandShift.combined([*found, tight])
    assert combined.verify <= tight.verify and combined.review <= tight.review and combined.hold <= tight.hold


def test_a_launch_window_tightens_inside_a_promotion_that_widens() -> None:
    policy = Policy(campaigns=(
        Campaign("11.11", DAY, DAY, 10.0),
        Campaign("limited drop", DAY, DAY, shift=BandShift(0, -20, -20), hours=(time(20), time(22)))))
    noon, drop = AT, datetime(2026, 11, 11, 12, 30, tzinfo=UTC)  # 12:00 and 20:30 Beijing
    assert policy.bands_at(noon) == Bands(45, 65, 90)
    assert policy.bands_at(drop) == Bands(45, 45, 60)  # review would fall below verify: it sits on it
    assert decide(50, bands=policy.bands_at(noon)) is Decision.VERIFY
    assert decide(50, bands=policy.bands_at(drop)) is Decision.REVIEW


@given(bands, scores, scores, st.booleans(), caps)
def test_capped_decisions_stay_monotone_in_score(b: Bands, s1: float, s2: float, vip: bool,
                                                  cap: Decision | None) -> None:
    low, high = sorted((s1, s2))
    assert decision_rank(decide(low, bands=b, never_hold=vip, cap=cap)) <= \
        decision_rank(decide(high, bands=b, never_hold=vip, cap=cap))


def _pack(*, hard: bool, deny_device: str | None = None, vip_allow: int | None = None) -> RulePack:
    return load_rules({
        "rules": [{"code": "BURST", "points": 150, "hard": hard,
                   "when": {"feature": "burst", "op": "ge", "value": 5},
                   "reason": {"zh": "爆发{value:.0f}", "en": "burst {value:.0f}"}}],
        "allow": {"vip_min_member_level": vip_allow},
        "deny": {"devices": [deny_device] if deny_device else []}})


def _member(level: int | None) -> Order:
    order = make_order(device="d1")
    buyer = dataclasses.replace(order.details.buyer, member_level=level)
    return dataclasses.replace(order, details=dataclasses.replace(order.details, buyer=buyer))


@given(levels, st.floats(min_value=0, max_value=20), st.none() | st.floats(min_value=0, max_value=1),
       st.integers(1, 9), st.sampled_from([Decision.APPROVE, Decision.VERIFY]))
def test_a_released_member_is_never_judged_stricter_than_anyone(level: int | None, burst: float,
                                                                 p: float | None, min_level: int,
                                                                 to: Decision) -> None:
    rules = _pack(hard=False)
    released = Policy(vip_release=VipRelease(min_level, to))
    plain = Policy()
    mine = judge(_member(level), {"burst": burst}, rules=rules, policy=released, at=AT, probability=p)
    anyone = judge(_member(level), {"burst": burst}, rules=rules, policy=plain, at=AT, probability=p)
    assert mine.score == anyone.score  # the release moves the decision, never the score
    assert decision_rank(mine.decision) <= decision_rank(anyone.decision)
    if level is not None and level >= min_level:
        assert decision_rank(mine.decision) <= decision_rank(to)
        assert mine.released == (mine.decision is not anyone.decision)
    else:
        assert mine.decision is anyone.decision and not mine.released


@given(st.integers(4, 9), st.floats(min_value=5, max_value=20), st.booleans())
def test_a_hard_rule_still_holds_a_vip(level: int, burst: float, allow_listed: bool) -> None:
    policy = Policy(vip_release=VipRelease(4))
    rules = _pack(hard=True, vip_allow=1 if allow_listed else None)
    judged = judge(_member(level), {"burst": burst}, rules=rules, policy=policy, at=AT)
    assert judged.decision is Decision.HOLD and not judged.released
    soft = judge(_member(level), {"burst": burst}, rules=_pack(hard=False), policy=policy, at=AT)
    assert soft.decision is Decision.APPROVE and soft.released


def test_a_deny_list_hit_is_hard_even_for_an_allow_listed_vip() -> None:
    rules = _pack(hard=False, deny_device="d1", vip_allow=1)
    judged = judge(_member(7), {"burst": 0}, rules=rules, policy=Policy(vip_release=VipRelease(4)), at=AT)
    assert [h.code for h in judged.evaluation.hits] == ["DENY_DEVICE"]
    assert judged.decision is Decision.HOLD


def test_policy_settings_take_both_directions_hours_and_the_release() -> None:
    settings = PolicySettings.model_validate({
        "campaigns": [{"name": "drop", "first_day": "2026-11-11", "last_day": "2026-11-11",
                       "shifts": {"review": -15, "hold": -25}, "hours": "20:00-02:00"}],
        "vip_release": {"min_member_level": 5, "release_to": "verify"}})
    policy = policy_from(settings)
    assert policy.vip_release == VipRelease(5, Decision.VERIFY)
    assert policy.campaigns[0].hours == (time(20), time(2))
    assert policy.bands_at(datetime(2026, 11, 11, 13, tzinfo=UTC)) == Bands(35, 40, 55)  # 21:00 Beijing
    off = policy_from(PolicySettings.model_validate({"vip_release": {"min_member_level": None}}))
    assert off.vip_release is None


@pytest.mark.parametrize(("campaign", "field"), [
    ({"hours": "25:00-02:00"}, "hours"),
    ({"band_shift": -60}, "band_shift"),
    ({"last_day": "2026-11-10"}, "campaigns"),
])
def test_bad_campaigns_are_refused_naming_the_field(campaign: dict[str, object], field: str) -> None:
    raw = {"name": "drop", "first_day": "2026-11-11", "last_day": "2026-11-11", **campaign}
    with pytest.raises(ValidationError) as info:
        PolicySettings.model_validate({"campaigns": [raw]})
    assert field in str(info.value)
