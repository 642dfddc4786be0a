"""The shop: a Hangzhou pet-products brand, its SKUs, shops, coupons and channel mix.

Prices are integer fen. ``list_price_fen`` is the crossed-out tag price, ``price_fen``
the price the SKU usually sells at; below-price abuse is judged against the latter.
Two limited editions exist only in small drops (``drop_stock`` units each); they are what
scalpers hoard.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from orderguard.schema import Channel


class Category(StrEnum):
    """Product families; they drive basket mix, refund reasons and repeat cycles."""

    LITTER = "litter"
    LITTER_BOX = "litter_box"
    CAT_FOOD = "cat_food"
    DOG_FOOD = "dog_food"
    TREATS = "treats"
    FOUNTAIN = "fountain"
    LEASH = "leash"
    TOY = "toy"
    ACCESSORY = "accessory"
    FEEDER = "feeder"
    CARRIER = "carrier"


@dataclass(frozen=True, slots=True)
class Sku:
    """One sellable item.

    Attributes:
        popularity: relative weight of the SKU in ordinary baskets (limited SKUs are
            never drawn there: they sell only in drops).
        max_qty: most units an ordinary buyer puts on one line; also the per-account
            purchase limit of limited SKUs.
        drop_stock: units of a limited edition released at each drop when the shop
            sells ``REFERENCE_ORDERS_PER_DAY`` orders a day (scaled with volume), else 0.
    """

    sku_id: str
    title: str
    category: Category
    list_price_fen: int
    price_fen: int
    popularity: float
    max_qty: int = 3
    drop_stock: int = 0

    @property
    def limited(self) -> bool:
        """True for a limited edition sold only in drops."""
        return self.drop_stock > 0


BRAND: Final = "爪印家"

#: The daily order volume the catalog's drop sizes are calibrated for.
REFERENCE_ORDERS_PER_DAY: Final = 500

CATALOG: Final[tuple[Sku, ...]] = (
    Sku("PH-LT-TOFU-4", "爪印家 原味豆腐猫砂 2.5kg×4包", Category.LITTER, 11900, 7990, 10.0, 4),
    Sku("PH-LT-TOFU-8", "爪印家 原味豆腐猫砂 2.5kg×8包 整箱装", Category.LITTER, 22900, 14900, 5.0, 2),
    Sku("PH-LT-GT-4", "爪印家 绿茶豆腐猫砂 2.5kg×4包", Category.LITTER, 12900, 8490, 4.0, 4),
    Sku("PH-LT-MIX-4", "爪印家 混合猫砂 豆腐+膨润土 2.5kg×4包", Category.LITTER, 9900, 6990, 8.0, 4),
    Sku("PH-LT-BENT-10", "爪印家 无尘膨润土猫砂 10kg", Category.LITTER, 6900, 4590, 6.0, 3),
    Sku("PH-LT-CRYS-4", "爪印家 水晶猫砂 3.8L×4袋", Category.LITTER, 9900, 5990, 2.0, 3),
    Sku("PH-LB-OPEN", "爪印家 半封闭防外溅猫砂盆 大号", Category.LITTER_BOX, 8900, 6900, 3.0, 2),
    Sku("PH-LB-CLOSED", "爪印家 全封闭抽屉式猫砂盆 特大号", Category.LITTER_BOX, 19900, 15900, 3.0, 2),
    Sku("PH-LB-TOP", "爪印家 顶入式防带砂猫砂盆", Category.LITTER_BOX, 16900, 12900, 2.0, 2),
    Sku("PH-LB-SMART", "爪印家 智能全自动猫砂盆 P1", Category.LITTER_BOX, 259900, 199900, 1.2, 1),
    Sku("PH-LB-SMART-PRO", "爪印家 智能全自动猫砂盆 Pro 双层除臭", Category.LITTER_BOX, 359900, 289900, 0.5, 1),
    Sku("PH-LB-SMART-LTD", "爪印家 智能全自动猫砂盆 星空白限量联名款", Category.LITTER_BOX, 329900, 299900,
        0.0, 2, drop_stock=120),
    Sku("PH-CF-FD-15", "爪印家 冻干双拼全价猫粮 1.5kg", Category.CAT_FOOD, 15900, 12900, 7.0, 3),
    Sku("PH-CF-FD-5", "爪印家 冻干双拼全价猫粮 5kg", Category.CAT_FOOD, 45900, 36900, 3.0, 2),
    Sku("PH-CF-KIT-15", "爪印家 幼猫奶糕全价猫粮 1.5kg", Category.CAT_FOOD, 13900, 10900, 3.0, 3),
    Sku("PH-CF-GF-2", "爪印家 无谷鲜肉猫粮 2kg", Category.CAT_FOOD, 22900, 18900, 2.0, 3),
    Sku("PH-CF-CAN-24", "爪印家 主食罐头 鸡肉三文鱼 85g×24罐", Category.CAT_FOOD, 16800, 12900, 4.0, 3),
    Sku("PH-CF-STICK-50", "爪印家 鸡肉猫条 15g×50支", Category.CAT_FOOD, 8900, 5990, 6.0, 4),
    Sku("PH-DF-ADULT-10", "爪印家 成犬全价狗粮 牛肉味 10kg", Category.DOG_FOOD, 39900, 32900, 1.5, 2),
    Sku("PH-DF-SMALL-2", "爪印家 小型犬全价狗粮 2kg", Category.DOG_FOOD, 12900, 9900, 2.0, 3),
    Sku("PH-TR-CHK-500", "爪印家 鸡胸肉冻干 500g", Category.TREATS, 9900, 6990, 5.0, 4),
    Sku("PH-TR-SAL-300", "爪印家 三文鱼冻干 300g", Category.TREATS, 12900, 8990, 3.0, 4),
    Sku("PH-TR-QUAIL-20", "爪印家 鹌鹑整只冻干 20只装", Category.TREATS, 8900, 5990, 2.5, 4),
    Sku("PH-TR-GIFT-6", "爪印家 冻干零食礼盒 6口味", Category.TREATS, 19900, 14900, 1.5, 3),
    Sku("PH-TR-JERKY-400", "爪印家 狗狗鸡肉干 400g", Category.TREATS, 5900, 3990, 2.0, 4),
    Sku("PH-FT-W1", "爪印家 智能静音饮水机 2L", Category.FOUNTAIN, 26900, 19900, 2.5, 2),
    Sku("PH-FT-WL", "爪印家 无线感应饮水机 3L", Category.FOUNTAIN, 36900, 29900, 1.2, 2),
    Sku("PH-FT-LTD", "爪印家 樱花粉陶瓷饮水机 限定款", Category.FOUNTAIN, 39900, 35900, 0.0, 2,
        drop_stock=100),
    Sku("PH-FT-FILTER-4", "爪印家 饮水机替换滤芯 4片装", Category.FOUNTAIN, 4900, 3900, 3.0, 4),
    Sku("PH-LS-AUTO-5", "爪印家 自动伸缩狗狗牵引绳 5m", Category.LEASH, 9900, 6900, 2.0, 2),
    Sku("PH-LS-HARNESS-M", "爪印家 胸背带牵引绳套装 M码", Category.LEASH, 8900, 6500, 2.0, 2),
    Sku("PH-LS-HARNESS-L", "爪印家 胸背带牵引绳套装 L码", Category.LEASH, 9900, 6900, 1.5, 2),
    Sku("PH-LS-REFLECT", "爪印家 夜光反光牵引绳 1.5m", Category.LEASH, 4900, 3500, 1.5, 2),
    Sku("PH-TY-WAND", "爪印家 羽毛逗猫棒 替换头×5", Category.TOY, 2900, 1990, 3.0, 3),
    Sku("PH-TY-SCRATCH", "爪印家 瓦楞纸猫抓板 大号", Category.TOY, 5900, 3990, 3.0, 3),
    Sku("PH-TY-TUNNEL", "爪印家 三通猫隧道", Category.TOY, 6900, 4990, 1.0, 2),
    Sku("PH-AC-SCOOP", "爪印家 铝合金猫砂铲", Category.ACCESSORY, 3900, 2990, 2.0, 2),
    Sku("PH-AC-BAGS-10", "爪印家 猫砂盆垃圾袋 10卷", Category.ACCESSORY, 2900, 1990, 2.0, 3),
    Sku("PH-AC-DEODOR", "爪印家 猫砂除臭喷雾 500ml", Category.ACCESSORY, 4900, 3490, 2.0, 3),
    Sku("PH-FD-AUTO-4L", "爪印家 智能定时喂食器 4L", Category.FEEDER, 49900, 39900, 1.0, 1),
    Sku("PH-FD-CAM", "爪印家 可视喂食器 带摄像头", Category.FEEDER, 79900, 64900, 0.5, 1),
    Sku("PH-CR-AIR", "爪印家 宠物航空箱 中号", Category.CARRIER, 25900, 19900, 0.7, 1),
    Sku("PH-CR-BAG", "爪印家 太空舱外出猫包", Category.CARRIER, 19900, 13900, 1.0, 1),
)

SKUS: Final = MappingProxyType({sku.sku_id: sku for sku in CATALOG})

#: The seller account of the brand on each channel (the ``shop_id`` of every event).
SHOP_IDS: Final = MappingProxyType({
    Channel.TMALL: "2207416523981",
    Channel.JD: "10237856",
    Channel.DOUYIN: "GceKxbTy",
    Channel.KUAISHOU: "1873094652",
    Channel.WECHAT: "wx7f3a9c2e51d08b64",
    Channel.SITE: "pawhome-mp",
})
#: The brand's second storefront on its own site (the clearance outlet): a second shop on one channel,
#: sharing the site's accounts and real-name id cards.
OUTLET_SHOP_ID: Final = "pawhome-outlet"

#: Most SKU lines one order can carry on a channel (Kuaishou orders hold a single SKU;
#: a cart checkout there becomes one order per SKU). Channels not listed: no limit.
MAX_LINES: Final = MappingProxyType({Channel.KUAISHOU: 1})

#: Share of ordinary orders per channel for a Tmall-led DTC pet brand.
CHANNEL_MIX: Final[tuple[tuple[Channel, float], ...]] = (
    (Channel.TMALL, 0.34), (Channel.JD, 0.16), (Channel.DOUYIN, 0.24),
    (Channel.KUAISHOU, 0.08), (Channel.WECHAT, 0.08), (Channel.SITE, 0.10),
)

#: On the promotion day the marketplaces dominate even more.
PROMO_CHANNEL_MIX: Final[tuple[tuple[Channel, float], ...]] = (
    (Channel.TMALL, 0.44), (Channel.JD, 0.18), (Channel.DOUYIN, 0.22),
    (Channel.KUAISHOU, 0.06), (Channel.WECHAT, 0.04), (Channel.SITE, 0.06),
)


class CouponKind(StrEnum):
    """What a coupon is for; new-user coupons are the ones farmed."""

    NEW_USER = "new_user"
    STORE = "store"
    PROMO = "promo"


@dataclass(frozen=True, slots=True)
class Coupon:
    """A coupon template: ``value_fen`` off an order of at least ``threshold_fen`` goods."""

    coupon_id: str
    kind: CouponKind
    value_fen: int
    threshold_fen: int


NEW_USER_COUPON: Final = Coupon("NEW20-49", CouponKind.NEW_USER, 2000, 4900)
STORE_COUPONS: Final[tuple[Coupon, ...]] = (
    Coupon("SHOP10-99", CouponKind.STORE, 1000, 9900),
    Coupon("SHOP20-199", CouponKind.STORE, 2000, 19900),
)
PROMO_COUPON: Final = Coupon("PROMO50-300", CouponKind.PROMO, 5000, 30000)


def limited_skus() -> tuple[Sku, ...]:
    """The limited editions, in catalog order.

    >>> [s.sku_id for s in limited_skus()]
    ['PH-LB-SMART-LTD', 'PH-FT-LTD']
    """
    return tuple(s for s in CATALOG if s.limited)


def regular_skus() -> tuple[Sku, ...]:
    """Everything an ordinary basket may hold (limited editions excluded)."""
    return tuple(s for s in CATALOG if not s.limited)
