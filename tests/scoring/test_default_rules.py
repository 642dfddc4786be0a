"""The shipped rule pack on hand-built histories: each shop-requested rule fires on its abuse and stays
silent on the honest look-alike the simulator plays beside it (``simulate.account_abuse`` /
``simulate.account_lookalikes``). Orders are replayed as ``orderguard rules-report`` does: at creation and
at the refund claim, point in time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.specs import FeatureSet
from features.stores import MemoryStore
from orderguard.enrich import Gazetteer
from orderguard.schema import Channel, Order, OrderStatus, Phone, RefundReason
from orderguard.settings import PolicySettings, ReferenceSettings, WarehouseSettings
from scoring.policy import Decision, policy_from
from scoring.rules import RulePack, default_rules_path, load_rules_file
from tests.factories import at, closed_unpaid, delivered, make_order, refunded
from training.rules_report import replay

BIG = (("PH-LB-SMART", 1, 199_900),)
SMALL = (("PH-TY-WAND", 1, 1_990),)


@pytest.fixture(scope="module")
def specs() -> FeatureSet:
    return default_shop_features()


@pytest.fixture(scope="module")
def pack(specs: FeatureSet) -> RulePack:
    return load_rules_file(default_rules_path(), known_features=specs.names)


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.build()


def codes(orders: Sequence[Order], specs: FeatureSet, pack: RulePack, gazetteer: Gazetteer) -> dict[str, set[str]]:
    """Rule codes of each order's strongest moment, replayed point in time with the default policy."""
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=gazetteer)
    return {r.order_key: set(r.codes) for r in replay(orders, online=online, rules=pack,
                                                          policy=policy_from(PolicySettings()))}


def decisions(orders: Sequence[Order], specs: FeatureSet, pack: RulePack, gazetteer: Gazetteer) -> dict[str, Decision]:
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=gazetteer)
    return {r.order_key: r.decision for r in replay(orders, online=online, rules=pack,
                                                    policy=policy_from(PolicySettings()))}


def order(order_id: str, *, account: str, **kwargs: Any) -> Order:
    """``make_order`` with the account's own device and home (the factory's defaults are shared by all)."""
    kwargs.setdefault("device", f"dev-{account}")
    kwargs.setdefault("address", ("浙江省", "杭州市", "西湖区", f"文三路{account}号"))
    return make_order(order_id, account=account, **kwargs)


def key(order: Order) -> str:
    return str(order.key)


def with_phone(order: Order, prefix: str) -> Order:
    buyer = replace(order.details.buyer, phone=Phone(f"h{prefix}", prefix=prefix))
    return replace(order, details=replace(order.details, buyer=buyer))


def with_message(order: Order, message: str) -> Order:
    return replace(order, details=replace(order.details, buyer_message=message))


def test_account_burst_without_device_fires_at_five_orders_not_at_a_split_cart(specs: FeatureSet, pack: RulePack,
                                                                                gazetteer: Gazetteer) -> None:
    burst = [order(f"b{i}", channel=Channel.TMALL, account="script", device=None, address=None,
                        created_at=at(seconds=90 * i), lines=((f"sku{i}", 1, 1_990),)) for i in range(5)]
    split = [order(f"s{i}", channel=Channel.TMALL, account="shopper", device=None,
                        created_at=at(minutes=3 * i), lines=((f"sku{i}", 1, 9_900),)) for i in range(4)]
    fired = codes(burst + split, specs, pack, gazetteer)
    assert "ACCOUNT_BURST_10M" in fired[key(burst[-1])]
    assert not any("ACCOUNT_BURST_10M" in fired[key(o)] for o in burst[:-1] + split)


def test_returns_within_a_week_verify_at_three_and_review_at_four(specs: FeatureSet, pack: RulePack,
                                                                           gazetteer: Gazetteer) -> None:
    def returned(order_id: str, account: str, day: float) -> Order:
        placed = delivered(order(order_id, account=account, created_at=at(days=day)), when=at(days=day + 1))
        return refunded(placed, when=at(days=day + 2), reason=RefundReason.NO_REASON, refund_id=f"r{order_id}")

    abuser = [returned(f"a{i}", "returner", 1.5 * i) for i in range(4)]
    sizes = [returned(f"z{i}", "sizes", 6.0 * i) for i in range(3)]  # one harness back every six days
    fired = codes(abuser + sizes, specs, pack, gazetteer)
    assert "RETURNS_7D" in fired[key(abuser[2])] and "RETURN_SPREE_7D" not in fired[key(abuser[2])]
    assert {"RETURNS_7D", "RETURN_SPREE_7D"} <= fired[key(abuser[3])]
    assert not any(fired[key(o)] & {"RETURNS_7D", "RETURN_SPREE_7D"} for o in abuser[:2] + sizes)
    decided = decisions(abuser + sizes, specs, pack, gazetteer)
    assert decided[key(abuser[2])] is Decision.VERIFY and decided[key(abuser[3])] is Decision.REVIEW


def test_second_damaged_claim_on_a_delivered_parcel_fires(specs: FeatureSet, pack: RulePack,
                                                          gazetteer: Gazetteer) -> None:
    def claimed(order_id: str, account: str, day: float, *, deliver: bool) -> Order:
        placed = order(order_id, account=account, created_at=at(days=day))
        if deliver:
            placed = delivered(placed, when=at(days=day + 1))
        return refunded(placed, when=at(days=day + 2), reason=RefundReason.DAMAGED, refund_id=f"r{order_id}")

    habit = [claimed("h1", "claimer", 0, deliver=True), claimed("h2", "claimer", 10, deliver=True)]
    # bad luck once, and a claim on a parcel still in transit (not "signed for intact")
    luck = [claimed("l1", "unlucky", 0, deliver=True), claimed("l2", "unlucky", 10, deliver=False)]
    fired = codes(habit + luck, specs, pack, gazetteer)
    assert "DAMAGED_ON_DELIVERED_REPEAT" in fired[key(habit[1])]
    assert not any("DAMAGED_ON_DELIVERED_REPEAT" in fired[key(o)] for o in (habit[0], *luck))


def test_id_card_in_two_shops_adds_to_many_orders_and_reaches_review(specs: FeatureSet, pack: RulePack,
                                                                     gazetteer: Gazetteer) -> None:
    across = [order(f"c{i}", account=f"acc{i % 2}", id_card="card-a", shop=("main", "outlet")[i % 2],
                         created_at=at(hours=10 * i)) for i in range(5)]
    one_shop = [order(f"o{i}", account="family", id_card="card-b", shop="main", created_at=at(hours=10 * i))
                for i in range(5)]
    fired = codes(across + one_shop, specs, pack, gazetteer)
    assert {"ID_CARD_MANY_ORDERS_3D", "ID_CARD_ACROSS_SHOPS_3D"} <= fired[key(across[-1])]
    assert "ID_CARD_MANY_ORDERS_3D" in fired[key(one_shop[-1])]
    assert "ID_CARD_ACROSS_SHOPS_3D" not in fired[key(one_shop[-1])]
    decided = decisions(across + one_shop, specs, pack, gazetteer)
    assert decided[key(across[-1])] in (Decision.REVIEW, Decision.HOLD)
    assert decided[key(one_shop[-1])] is Decision.VERIFY


def test_big_ticket_from_a_device_new_to_a_young_account(specs: FeatureSet, pack: RulePack,
                                                         gazetteer: Gazetteer) -> None:
    registered = at(days=-10)

    def history(account: str, device: str | None) -> list[Order]:
        """A small order from the account's phone, then a big one from ``device``."""
        return [order(f"{account}1", account=account, device=f"phone-{account}", registered_at=registered,
                      lines=SMALL),
                order(f"{account}2", account=account, device=device, registered_at=registered, lines=BIG,
                      created_at=at(days=2))]

    cashed = history("farmed", "unknown-handset")
    same_device = history("loyal", "phone-loyal")
    no_device = history("marketplace", None)
    first_order = [order("first", account="newbie", device="laptop", registered_at=registered, lines=BIG)]
    old_account = [replace(o, details=replace(o.details, buyer=replace(o.details.buyer,
                                                                       registered_at=at(days=-400))))
                   for o in history("veteran", "laptop")]
    fired = codes(cashed + same_device + no_device + first_order + old_account, specs, pack, gazetteer)
    assert "NEW_DEVICE_BIG_TICKET" in fired[key(cashed[1])]
    for quiet in (same_device[1], no_device[1], first_order[0], old_account[1], cashed[0]):
        assert "NEW_DEVICE_BIG_TICKET" not in fired[key(quiet)], quiet.key


def test_far_phone_counts_on_a_new_accounts_first_order_against_the_configured_warehouse(
        specs: FeatureSet, pack: RulePack, gazetteer: Gazetteer) -> None:
    urumqi = "1390000"
    throwaway = with_phone(order("t1", account="fresh", registered_at=at(hours=-5)), urumqi)
    gift = with_phone(order("g1", account="migrant", registered_at=at(days=-700)), urumqi)
    near = with_phone(order("n1", account="local", registered_at=at(hours=-5)), "1596811")  # Hangzhou
    fired = codes([throwaway, gift, near], specs, pack, gazetteer)
    assert "PHONE_FAR_FROM_WAREHOUSE_NEW_ACCOUNT" in fired[key(throwaway)]
    assert "PHONE_FAR_FROM_WAREHOUSE_NEW_ACCOUNT" not in fired[key(gift)] | fired[key(near)]
    # a shop that ships from Urumqi: the same number is next door
    local = Gazetteer.build(ReferenceSettings(warehouses={"shop1": WarehouseSettings(province="新疆维吾尔自治区",
                                                                                     city="乌鲁木齐市")}))
    assert "PHONE_FAR_FROM_WAREHOUSE_NEW_ACCOUNT" not in codes([throwaway], specs, pack, local)[key(throwaway)]


def test_duplicate_carts_a_double_tap_is_low_points_three_copies_reach_review(specs: FeatureSet, pack: RulePack,
                                                                              gazetteer: Gazetteer) -> None:
    cart = (("a", 1, 5_990), ("b", 2, 1_990))
    copies = [order(f"x{i}", account="tester", lines=cart if i % 2 else cart[::-1], created_at=at(minutes=i))
              for i in range(3)]
    double = [order(f"d{i}", account="tapper", lines=cart, created_at=at(seconds=20 * i)) for i in range(2)]
    other_qty = [order("q0", account="bulk", lines=cart), order("q1", account="bulk",
                                                                          lines=(("a", 2, 5_990), ("b", 2, 1_990)))]
    orders = copies + double + other_qty
    fired = codes(orders, specs, pack, gazetteer)
    assert {"DUPLICATE_CART_30M", "REPEATED_CART_30M"} <= fired[key(copies[-1])]
    assert "DUPLICATE_CART_30M" in fired[key(double[1])] and "REPEATED_CART_30M" not in fired[key(double[1])]
    assert not fired[key(other_qty[1])] & {"DUPLICATE_CART_30M", "REPEATED_CART_30M"}
    decided = decisions(orders, specs, pack, gazetteer)
    assert decided[key(copies[-1])] in (Decision.REVIEW, Decision.HOLD)
    assert decided[key(double[1])] is Decision.APPROVE


def test_urgent_note_is_a_priority_signal_that_never_acts_alone(specs: FeatureSet, pack: RulePack,
                                                                 gazetteer: Gazetteer) -> None:
    birthday = with_message(order("bd", account="aunt"), "明天宝贝生日，今天发货可以吗")
    polite = with_message(order("pl", account="uncle"), "请尽快发货，谢谢")
    fired = codes([birthday, polite], specs, pack, gazetteer)
    assert "URGENT_NOTE" in fired[key(birthday)] and "URGENT_NOTE" not in fired[key(polite)]
    assert decisions([birthday], specs, pack, gazetteer)[key(birthday)] is Decision.APPROVE


def test_new_address_needs_an_address(specs: FeatureSet, pack: RulePack, gazetteer: Gazetteer) -> None:
    home = ("浙江省", "杭州市", "西湖区", "文三路1号")
    history = [order(f"h{i}", account="mover", address=home, created_at=at(days=i)) for i in range(2)]
    no_address = order("none", account="mover", address=None, created_at=at(days=3))
    moved = order("moved", account="mover", address=("上海市", "上海市", "浦东新区", "张江路88号"),
                       created_at=at(days=4))
    fired = codes([*history, no_address, moved], specs, pack, gazetteer)
    assert "NEW_ADDRESS_FOR_ACCOUNT" not in fired[key(no_address)]
    assert "NEW_ADDRESS_FOR_ACCOUNT" in fired[key(moved)]


def test_every_rule_names_its_pattern_and_new_features_are_in_the_shop_set(specs: FeatureSet,
                                                                          pack: RulePack) -> None:
    assert all(rule.pattern for rule in pack.rules)
    assert {"count_refunds_by_user_7d", "count_refunds_damaged_after_delivery_by_user_90d",
            "is_missing_time_since_orders_by_user_device_90d", "count_orders_by_user_cart_30m",
            "order_phone_warehouse_km", "order_urgent_note"} <= set(specs.names)


def test_stock_holding_fires_once_five_closes_from_the_range_are_known_not_on_a_campus(
        specs: FeatureSet, pack: RulePack, gazetteer: Gazetteer) -> None:
    def unpaid(order_id: str, prefix: str, minute: float, *, closes: bool = True) -> Order:
        placed = order(order_id, account=f"acct-{order_id}", ip=f"ip-{order_id}", ip_prefix=prefix,
                       created_at=at(minutes=minute), lines=(("PH-LB-SMART-PRO", 2, 129_900),),
                       status=OrderStatus.CREATED)
        return closed_unpaid(placed, when=at(minutes=minute + 29)) if closes else placed

    # a bot every 3 minutes, each order closed 29 minutes later: at order k, the closes of orders 0..k-10 are known
    bots = [unpaid(f"b{i}", "range-bot", 3 * i) for i in range(16)]
    # a campus range: an order every 20 minutes over eight hours, every sixth one left unpaid (4 closes)
    campus = [unpaid(f"c{i}", "range-campus", 20 * i, closes=i % 6 == 0) if i % 6 == 0
              else order(f"c{i}", account=f"student{i}", ip_prefix="range-campus", created_at=at(minutes=20 * i))
              for i in range(24)]
    fired = codes(bots + campus, specs, pack, gazetteer)
    assert all("IP_RANGE_STOCK_HOLDING_24H" in fired[key(o)] for o in bots[14:])
    assert not any("IP_RANGE_STOCK_HOLDING_24H" in fired[key(o)] for o in bots[:14] + campus)
    assert decisions(bots, specs, pack, gazetteer)[key(bots[14])] is Decision.REVIEW
