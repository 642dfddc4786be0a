"""The rules replay decides as the service does and counts recall / false positives by pattern."""

from __future__ import annotations

from datetime import timedelta

from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.stores.memory import MemoryStore
from orderguard.enrich import Gazetteer
from orderguard.ingest.state import derive_order
from orderguard.schema import ClientInfo, Order, Party
from scoring.policy import Decision, Policy
from scoring.rules import default_rules_path, load_rules_file
from tests.factories import BASE_TIME, make_event
from training.rules_report import replay, report


def _orders() -> list[Order]:
    burst = [make_event(order_id=f"b{i}", event_time=BASE_TIME + timedelta(minutes=i),
                        buyer=Party(account_id=f"bot{i}"), client=ClientInfo(device_id="dev-bot"))
             for i in range(5)]
    calm = [make_event(order_id="n1", event_time=BASE_TIME, buyer=Party(account_id="calm"),
                       client=ClientInfo(device_id="dev-calm"))]
    orders = [derive_order([e]) for e in burst + calm]
    return [o for o in orders if o is not None]


def test_burst_is_flagged_and_the_calm_order_is_not() -> None:
    specs = default_shop_features()
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=Gazetteer.build())
    rules = load_rules_file(default_rules_path(), known_features=specs.names)
    replayed = replay(_orders(), online=online, rules=rules, policy=Policy())
    by_key = {r.order_key: r for r in replayed}
    assert "DEVICE_BURST_5M" in by_key["site:b4"].codes and by_key["site:b4"].decision is not Decision.APPROVE
    assert by_key["site:n1"].codes == () and by_key["site:n1"].decision is Decision.APPROVE
    truth = {**{f"site:b{i}": ("bot_burst", True, "g1") for i in range(5)}, "site:n1": ("normal", False, "")}
    result = report(replayed, truth, flag_at=Decision.VERIFY)
    rows = {r.pattern: r for r in result.rows}
    assert rows["bot_burst"].groups_caught == 1 and rows["bot_burst"].flagged >= 1
    assert rows["normal"].flagged == 0 and result.false_positive_rate == 0.0 and result.precision == 1.0
