"""A shadow candidate never changes a served answer (property), and a candidate that fails on an order only
records its error."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from features.settings import Settings
from scoring.pack_store import content_hash
from scoring.policy import Bands
from scoring.records import ScoreRecord
from scoring.rules import default_rules_path, load_rules_text
from scoring.scorer import ServedRules, ShadowCandidate
from serving.engine import Engine, build_engine
from tests.factories import BASE_TIME, FixedClock, OrderFactory

DEFAULT = default_rules_path().read_text(encoding="utf-8")
#: A candidate far from the live pack: every burst rule doubled, and a template that fails once it fires (a
#: format spec the loader does not check), so some orders exercise the error path.
CANDIDATE = (DEFAULT.replace("points: 50\n", "points: 100\n")
             .replace('en: "{value:.0f} orders from one device within 5 min (threshold {threshold:.0f})"',
                      'en: "{value:d} orders from one device within 5 min"'))

orders_strategy = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 40),
                                     st.integers(1, 3), st.booleans()), min_size=1, max_size=12)


def engines(settings: Settings) -> tuple[Engine, Engine]:
    """Two engines fed the same orders: the live pack alone, and the live pack with a shadow candidate."""
    clock = FixedClock(BASE_TIME)
    plain, shadowed = build_engine(settings, clock=clock), build_engine(settings, clock=clock)
    names = plain.online.specs.names
    live = ServedRules(load_rules_text(DEFAULT, source="live", known_features=names), "v1:live")
    candidate = ShadowCandidate(load_rules_text(CANDIDATE, source="shadow", known_features=names),
                                f"v2:{content_hash(CANDIDATE)[:8]}",
                                replace(shadowed.scorer.policy, bands=Bands(20, 30, 40)))
    plain.scorer.served = live
    shadowed.scorer.served = replace(live, shadow=candidate)
    return plain, shadowed


def served_part(record: ScoreRecord) -> ScoreRecord:
    """Everything the caller is answered and audited with, the shadow and the timings aside."""
    return replace(record, shadow=None, latency_ms=0.0)


def test_a_shadow_candidate_never_changes_the_answer(settings: Settings) -> None:
    plain, shadowed = engines(settings)
    factory = OrderFactory(prefix="shadow-")
    seen = {"errors": 0, "verdicts": 0, "differ": 0}

    @hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(orders_strategy)
    def check(stream: list[tuple[int, int, int, int, bool]]) -> None:
        for device, account, minutes, qty, coupon in stream:
            order = factory(device=f"d{device}", account=f"u{account}", ip=f"10.0.0.{device}",
                            created_at=BASE_TIME + timedelta(minutes=minutes),
                            lines=(("sku1", qty, 1990),), coupon_fen=500 if coupon else 0)
            a, b = plain.scorer.score(order), shadowed.scorer.score(order)
            assert a.shadow is None and b.shadow is not None and b.shadow.version.startswith("v2:")
            assert served_part(a) == served_part(b)
            assert b.rules_version == "v1:live"
            if b.shadow.error is not None:
                assert b.shadow.decision is None and "ValueError" in b.shadow.error
                seen["errors"] += 1
            else:
                seen["verdicts"] += 1
                seen["differ"] += b.shadow.decision is not b.decision

    try:
        check()
    finally:
        plain.close()
        shadowed.close()
    # the property was exercised on both paths, and the candidate really judged differently somewhere
    assert seen["errors"] > 0 and seen["verdicts"] > 0 and seen["differ"] > 0, seen
