"""The scorer's allow / deny list keys come from the facts the online engine built, and equal a fresh derivation."""

from __future__ import annotations

from features.online import OnlineFeatures
from features.shop import default_shop_features
from features.stores.memory import MemoryStore
from orderguard.enrich import Gazetteer
from scoring.judge import list_keys
from tests.factories import make_order


def test_keys_of_an_applied_order_give_the_same_list_keys_as_deriving_them() -> None:
    online = OnlineFeatures(MemoryStore(), default_shop_features(), gazetteer=Gazetteer.build())
    orders = [make_order("o1", phone="ph1"),
              make_order("o2", address=("上海市", "上海市", "浦东新区", "世纪大道 100 号 3 楼"), device=None),
              make_order("o3", address=None)]
    for order in orders:
        online.apply(order)
        assert list_keys(order, online.keys_of(order)) == list_keys(order)
    assert list_keys(orders[0]).address is not None and list_keys(orders[2]).address is None
    # an order other than the last applied one is derived afresh, never mixed up with it
    assert list_keys(orders[0], online.keys_of(orders[0])) == list_keys(orders[0])
