"""Readable phrases for feature values, in Chinese and English: what a model reason shows.

A model reason names a feature and the order's value for it the way a reviewer would
say it, next to the rules' reasons (``同一设备5分钟内下单6次（阈值5）``)::

    count_orders_by_device_5m = 6      → 同一设备5分钟内下单6次
                                         6 orders from this device in 5 min
    distinct_users_by_address_30d = 3  → 同一收货地址30天内关联3个账号
                                         3 accounts linked to this delivery address in 30 days
    order_virtual_phone = 1            → 虚拟运营商号段 / virtual-operator phone number
    time_since_orders_by_user_30d = NaN → 同一账号30天内距上一单：无记录
                                         time since the previous order by this account within 30 days: none on record

Phrases are built from the feature set's spec objects, never from parsing names: the
entity, the field and its kind of facts, the aggregation, the window and its delay, and
the filter's conditions (``features.specs``); attributes (``AttributeSpec``) have their
own phrases; derived features (``DerivedSpec``) are phrased from the phrases of the
features they read. Any valid feature set is therefore describable, and a feature added
to ``shop.yaml`` reads well without touching this module when its parts are known ones
(a filter on an attribute without a phrase of its own still reads, as ``attr ≥ value``).

A missing value (NaN) reads as the feature's *label* followed by "无记录" / "none on record".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from features.declared import Catalog
from features.facts import AttrType, Entity, FactKind
from features.operators import MEANING, Op
from features.specs import (
    Agg,
    Condition,
    DerivedOp,
    DerivedSpec,
    FeatureSet,
    FeatureSpec,
    Scalar,
)
from features.windows import Duration
from orderguard.clearing_cache import ClearingCache

#: How a missing value reads after a feature's label.
MISSING_ZH = "无记录"
MISSING_EN = "none on record"


@dataclass(frozen=True, slots=True)
class Phrase:
    """One text in both languages."""

    zh: str
    en: str


#: Renders a known (non-NaN) value of one feature.
_Render = Callable[[float], Phrase]


@dataclass(frozen=True, slots=True)
class _Text:
    """How one feature reads.

    Attributes:
        label: what the feature measures, without a value (shown with "无记录" for NaN
            and inside the phrases of derived features).
        render: the phrase of a known value.
        absent: how "no value" reads when another feature asks (``is_missing``): the
            label plus "无记录" unless the feature has a better way to say it.
        present: how "has a value" reads (``is_missing`` = 0).
    """

    label: Phrase
    render: _Render
    absent: Phrase
    present: Phrase


def _missing(label: Phrase) -> Phrase:
    return Phrase(f"{label.zh}：{MISSING_ZH}", f"{label.en}: {MISSING_EN}")


def _text(label: Phrase, render: _Render, *, absent: Phrase | None = None, present: Phrase | None = None) -> _Text:
    return _Text(label, render, absent or _missing(label),
                 present or Phrase(f"{label.zh}：有记录", f"{label.en}: on record"))


# -- numbers ------------------------------------------------------------------------------------------------


def number(value: float) -> str:
    """A count or plain quantity: whole numbers without decimals, others with one or two.

    >>> number(6.0), number(2.5), number(0.25), number(1234.4)
    ('6', '2.5', '0.25', '1234')
    """
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == round(value):
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}".rstrip("0")


def money(fen: float) -> str:
    """An amount in fen as yuan: ``¥59.90``, whole yuan without decimals.

    >>> money(5990), money(100_000), money(12.0)
    ('¥59.90', '¥1,000', '¥0.12')
    """
    yuan = fen / 100
    return f"¥{yuan:,.0f}" if yuan == round(yuan) else f"¥{yuan:,.2f}"


def percent(value: float) -> str:
    """A ratio as a percentage.

    >>> percent(0.456), percent(3.0)
    ('46%', '300%')
    """
    return f"{value:.0%}"


def _plural(value: float, one: str, many: str) -> str:
    return one if value == 1 else many


def elapsed(seconds: float) -> Phrase:
    """Seconds as the largest unit that keeps the number readable.

    >>> elapsed(45), elapsed(600), elapsed(9000), elapsed(86400 * 3)
    (Phrase(zh='45秒', en='45 s'), Phrase(zh='10分钟', en='10 min'), Phrase(zh='2.5小时', en='2.5 h'), \
Phrase(zh='3天', en='3 days'))
    >>> elapsed(0.2)
    Phrase(zh='不到1秒', en='under 1 s')
    """
    if seconds < 1:
        return Phrase("不到1秒", "under 1 s")
    if seconds < 120:
        return Phrase(f"{seconds:.0f}秒", f"{seconds:.0f} s")
    if seconds < 2 * 3600:
        return Phrase(f"{number(round(seconds / 60))}分钟", f"{number(round(seconds / 60))} min")
    if seconds < 2 * 86400:
        hours = number(round(seconds / 3600, 1))
        return Phrase(f"{hours}小时", f"{hours} h")
    days = round(seconds / 86400, 1) if seconds < 10 * 86400 else round(seconds / 86400)
    return Phrase(f"{number(days)}天", f"{number(days)} {_plural(days, 'day', 'days')}")


def duration(d: Duration) -> Phrase:
    """A window length as written in feature names, in words.

    >>> duration(Duration.parse("5m")), duration(Duration.parse("1d")), duration(Duration.parse("30d"))
    (Phrase(zh='5分钟', en='5 min'), Phrase(zh='1天', en='1 day'), Phrase(zh='30天', en='30 days'))
    """
    amount, unit = int(d.text[:-1]), d.text[-1]
    zh = {"s": "秒", "m": "分钟", "h": "小时", "d": "天", "w": "周"}[unit]
    one, many = {"s": ("s", "s"), "m": ("min", "min"), "h": ("h", "h"), "d": ("day", "days"),
                 "w": ("week", "weeks")}[unit]
    return Phrase(f"{amount}{zh}", f"{amount} {one if amount == 1 else many}")


def _join_zh(left: str, right: str) -> str:
    """Concatenate Chinese text, with a space between Latin letters and a following digit.

    >>> _join_zh("同一IP", "5分钟"), _join_zh("同一设备", "5分钟")
    ('同一IP 5分钟', '同一设备5分钟')
    """
    if left and right and left[-1].isascii() and left[-1].isalpha() and right[0].isdigit():
        return f"{left} {right}"
    return left + right


# -- vocabulary ----------------------------------------------------------------------------------------------


class _Unit(StrEnum):
    """How the values of an attribute are shown."""

    MONEY = "money"  # fen, shown as yuan
    UNITS = "units"
    COUNT = "count"
    DAYS = "days"
    HOURS = "hours"
    KM = "km"
    FLAG = "flag"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class _Attr:
    zh: str
    en: str
    unit: _Unit


#: Every attribute of every kind of fact, and every order attribute, by name (the test suite checks
#: that none is missing: ``features.facts.ATTRIBUTES`` and ``ORDER_ATTRIBUTES``).
_ATTRS: Mapping[str, _Attr] = MappingProxyType({
    "channel": _Attr("渠道", "channel", _Unit.TEXT),
    "province": _Attr("省份", "province", _Unit.TEXT),
    "city": _Attr("城市", "city", _Unit.TEXT),
    "sku": _Attr("商品", "SKU", _Unit.TEXT),
    "reason": _Attr("退款原因", "refund reason", _Unit.TEXT),
    "verdict": _Attr("审核结论", "verdict", _Unit.TEXT),
    "paid_fen": _Attr("实付", "paid", _Unit.MONEY),
    "goods_fen": _Attr("商品金额", "goods amount", _Unit.MONEY),
    "discount_fen": _Attr("优惠金额", "discount", _Unit.MONEY),
    "coupon_fen": _Attr("券抵扣金额", "coupon discount", _Unit.MONEY),
    "shipping_fen": _Attr("运费", "shipping fee", _Unit.MONEY),
    "unit_price_fen": _Attr("单价", "unit price", _Unit.MONEY),
    "line_fen": _Attr("商品行金额", "line amount", _Unit.MONEY),
    "list_price_fen": _Attr("标价", "list price", _Unit.MONEY),
    "refund_fen": _Attr("退款金额", "refund amount", _Unit.MONEY),
    "max_unit_price_fen": _Attr("最高单价", "dearest unit price", _Unit.MONEY),
    "min_unit_price_fen": _Attr("最低单价", "cheapest unit price", _Unit.MONEY),
    "units": _Attr("件数", "units", _Unit.UNITS),
    "line_count": _Attr("商品行数", "order lines", _Unit.COUNT),
    "coupons": _Attr("优惠券张数", "coupons", _Unit.COUNT),
    "member_level": _Attr("会员等级", "member level", _Unit.COUNT),
    "account_age_days": _Attr("注册天数", "account age", _Unit.DAYS),
    "open_hours": _Attr("下单到未付款关闭的时长", "time from order to unpaid close", _Unit.HOURS),
    "claim_hours": _Attr("下单到申请退款的时长", "time from order to claim", _Unit.HOURS),
    "phone_delivery_km": _Attr("手机号归属地与收货地距离",
                               "distance from the phone's home city to the delivery address", _Unit.KM),
    "phone_warehouse_km": _Attr("手机号归属地与发货仓距离",
                                "distance from the phone's home city to the ship-from warehouse", _Unit.KM),
    "urgent_note": _Attr("留言要求加急", "buyer note asks for rushed shipping", _Unit.FLAG),
    "has_coupon": _Attr("用券", "with a coupon", _Unit.FLAG),
    "virtual_phone": _Attr("虚拟号段", "virtual-operator phone", _Unit.FLAG),
    "pickup_address": _Attr("代收地址", "pick-up address", _Unit.FLAG),
    "night": _Attr("凌晨下单", "night-time", _Unit.FLAG),
    "weekend": _Attr("周末下单", "weekend", _Unit.FLAG),
    "whole_thousand_no_message": _Attr("整千无留言", "whole-thousand amount without message", _Unit.FLAG),
    "delivered_before_claim": _Attr("签收后申请", "claimed after delivery", _Unit.FLAG),
})

_CATEGORY_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    # refund reasons
    "damaged": ("破损", "damaged"), "not_received": ("未收到", "not received"), "wrong_item": ("错发", "wrong item"),
    "no_reason": ("七天无理由", "no-reason return"), "other": ("其他", "other"),
    # verdicts
    "confirmed_fraud": ("已确认欺诈", "confirmed fraud"), "false_positive": ("误判", "false-positive"),
    "needs_investigation": ("待调查", "under investigation"),
    # channels
    "tmall": ("天猫", "Tmall"), "jd": ("京东", "JD"), "douyin": ("抖音", "Douyin"), "kuaishou": ("快手", "Kuaishou"),
    "wechat": ("微信", "WeChat"), "site": ("官网", "own-site"),
})


@dataclass(frozen=True, slots=True)
class _Who:
    """An entity in phrases.

    Attributes:
        zh: subject (``同一设备``); for SKU pairs the subject without the SKU.
        zh_whole: the subject naming both parts of a pair (``同一账号同一商品``).
        zh_object: the SKU of a pair, placed after the verb (``购买同一商品5件``).
        noun: English noun phrase (``this device``).
        by: English phrase after what is counted (``orders from this device``).
    """

    zh: str
    noun: str
    by: str
    zh_object: str = ""
    zh_whole: str = ""

    @property
    def subject(self) -> str:
        return self.zh_whole or self.zh


_WHO: Mapping[Entity, _Who] = MappingProxyType({
    Entity.ORDER: _Who("本订单", "this order", "in this order"),
    Entity.USER: _Who("同一账号", "this account", "by this account"),
    Entity.DEVICE: _Who("同一设备", "this device", "from this device"),
    Entity.IP: _Who("同一IP", "this IP", "from this IP"),
    Entity.IP_PREFIX: _Who("同一IP网段", "this IP range", "from this IP range"),
    Entity.WIFI: _Who("同一WiFi", "this WiFi", "on this WiFi"),
    Entity.ADDRESS: _Who("同一收货地址", "this delivery address", "to this delivery address"),
    Entity.PHONE: _Who("同一手机号", "this phone number", "with this phone number"),
    Entity.ID_CARD: _Who("同一身份证", "this id card", "with this id card"),
    Entity.SHOP: _Who("同一店铺", "this shop", "in this shop"),
    Entity.SKU: _Who("同一商品", "this SKU", "of this SKU"),
    Entity.DEVICE_SKU: _Who("同一设备", "this device and SKU", "of one SKU from this device", "同一商品",
                            "同一设备同一商品"),
    Entity.USER_SKU: _Who("同一账号", "this account and SKU", "of one SKU by this account", "同一商品",
                          "同一账号同一商品"),
    Entity.ADDRESS_SKU: _Who("同一收货地址", "this delivery address and SKU", "of one SKU to this delivery address",
                             "同一商品", "同一收货地址同一商品"),
    Entity.USER_ADDRESS: _Who("该账号在此收货地址", "this account at this delivery address",
                              "by this account to this delivery address"),
    Entity.USER_DEVICE: _Who("该账号在此设备", "this account on this device", "by this account from this device"),
    Entity.USER_CART: _Who("该账号相同商品组合", "this account's same cart", "of the same cart by this account"),
})

#: ``distinct`` fields: (zh noun, zh measure word, en singular, en plural).
_COUNTED: Mapping[str, tuple[str, str, str, str]] = MappingProxyType({
    "users": ("账号", "个", "account", "accounts"),
    "devices": ("设备", "台", "device", "devices"),
    "ips": ("IP", "个", "IP", "IPs"),
    "wifis": ("WiFi", "个", "WiFi network", "WiFi networks"),
    "addresses": ("收货地址", "个", "delivery address", "delivery addresses"),
    "phones": ("手机号", "个", "phone number", "phone numbers"),
    "id_cards": ("身份证", "张", "id card", "id cards"),
    "shops": ("店铺", "家", "shop", "shops"),
    "skus": ("商品", "种", "SKU", "SKUs"),
    "orders": ("订单", "笔", "order", "orders"),
})

def _who(spec: FeatureSpec) -> _Who:
    """How a reason names the spec's entity; a declared entity by its ``label`` (or its name)."""
    known = _WHO.get(spec.entity) if isinstance(spec.entity, Entity) else None
    if known is not None:
        return known
    declared = spec.catalog.declared_entities[spec.entity.value]
    en = declared.label_en or f"this {declared.name.replace('_', ' ')}"
    return _Who(declared.label_zh or f"同一{declared.name}", en, f"on {en}")


def _counted(spec: FeatureSpec) -> tuple[str, str, str, str]:
    """The ``distinct`` field in words; a declared entity's plural by its name."""
    known = _COUNTED.get(spec.field)
    if known is not None:
        return known
    entity = spec.distinct_entity
    declared = spec.catalog.declared_entities[entity.value] if entity is not None else None
    name = declared.name.replace("_", " ") if declared is not None else spec.field
    zh = declared.label_zh.removeprefix("同一") if declared is not None and declared.label_zh else name
    return zh, "个", name, f"{name}s"


def _attr(name: str, catalog: Catalog) -> _Attr:
    """An attribute's words and unit; a declared one by its name (a flag shown as yes/no, a number as it is)."""
    known = _ATTRS.get(name)
    if known is not None:
        return known
    declared = catalog.declared[name]
    unit = _Unit.FLAG if declared.type is AttrType.FLAG else _Unit.TEXT
    words = name.replace("_", " ") + (f" ({declared.unit})" if declared.unit else "")
    return _Attr(words, words, unit)


#: ``count`` / ``time_since`` fields: (zh noun, zh measure word, en singular, en plural).
_FACTS: Mapping[str, tuple[str, str, str, str]] = MappingProxyType({
    "orders": ("订单", "笔", "order", "orders"),
    "lines": ("商品行", "行", "order line", "order lines"),
    "refunds": ("退款申请", "笔", "refund claim", "refund claims"),
    "labels": ("审核结论", "条", "reviewer label", "reviewer labels"),
    "unpaid_closes": ("未付款关闭订单", "笔", "order closed unpaid", "orders closed unpaid"),
})


@dataclass(frozen=True, slots=True)
class _Mods:
    """A filter in words: Chinese before the noun, English before and after it."""

    zh: str = ""
    en_before: str = ""
    en_after: str = ""


def _words(values: Iterable[Scalar]) -> tuple[str, str]:
    zh, en = [], []
    for v in values:
        word = _CATEGORY_WORDS.get(str(v), (str(v), str(v)))
        zh.append(word[0])
        en.append(word[1])
    return "/".join(zh), " / ".join(en)




def _scalar_text(attr: _Attr, value: Scalar | tuple[Scalar, ...]) -> Phrase:
    if isinstance(value, tuple):
        shown = [_scalar_text(attr, v) for v in value]
        return Phrase("/".join(p.zh for p in shown), ", ".join(p.en for p in shown))
    if isinstance(value, bool | str):
        return Phrase(str(value), str(value))
    return _value(attr.unit, float(value))


def _condition_mods(c: Condition) -> _Mods:
    """One filter condition as modifiers (see ``_Mods``)."""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    negated = c.op in (Op.NE, Op.NOT_IN)
    if c.attr == "reason" and c.op in (Op.EQ, Op.IN, Op.NE, Op.NOT_IN):
        zh, en = _words(values)
        return _Mods(zh=("非" if negated else "") + f"“{zh}”", en_before=("not " if negated else "") + f"'{en}'")
    if c.attr == "verdict" and c.op in (Op.EQ, Op.IN):
        zh, en = _words(values)
        return _Mods(zh=zh, en_before=en)
    if c.attr == "channel" and c.op in (Op.EQ, Op.IN):
        zh, en = _words(values)
        return _Mods(zh=f"{zh}渠道", en_after=f"on {en}")
    if c.attr == "delivered_before_claim" and c.op in (Op.EQ, Op.NE):
        after = (c.value is True) != negated
        return _Mods(zh="签收后" if after else "签收前", en_after="after delivery" if after else "before delivery")
    if c.attr == "has_coupon" and c.op in (Op.EQ, Op.NE):
        used = (c.value is True) != negated
        return _Mods(zh="用券" if used else "未用券", en_after="with a coupon" if used else "without a coupon")
    attr = _ATTRS.get(c.attr, _Attr(c.attr, c.attr.replace("_", " "), _Unit.TEXT))  # a declared attribute
    if c.op in (Op.IN, Op.NOT_IN):
        zh, en = _words(values)
        word = "不属于" if negated else "属于"
        return _Mods(zh=f"{attr.zh}{word}{zh}的", en_after=f"with {attr.en} {'not ' if negated else ''}in {en}")
    if attr.unit is _Unit.FLAG:
        yes = (c.value is True) != negated
        return _Mods(zh=f"{'' if yes else '非'}{attr.zh}的", en_after=f"{'' if yes else 'not '}{attr.en}")
    sign = MEANING[c.op].sign
    shown = _scalar_text(attr, c.value)
    return _Mods(zh=f"{attr.zh}{sign}{shown.zh}的", en_after=f"with {attr.en} {sign} {shown.en}")


def _filter_mods(spec: FeatureSpec, *, with_kind: bool) -> _Mods:
    """The spec's filter in words; with ``with_kind`` (``distinct``), also the kind of facts
    counted when it is not the order itself: accounts *with refund claims*, *reviewed* orders.

    Joined modifiers: ``en_before`` ends with a space, ``en_after`` starts with one.
    """
    parts = [_condition_mods(c) for c in spec.filter]
    joined = _Mods(zh="".join(p.zh for p in parts),
                   en_before="".join(f"{p.en_before} " for p in parts if p.en_before),
                   en_after="".join(f" {p.en_after}" for p in parts if p.en_after))
    if with_kind and spec.kind is FactKind.REFUND:  # the filter qualifies the claims, not what is counted
        return _Mods(zh=f"申请{joined.zh}退款的", en_after=f" with {joined.en_before}refund claims{joined.en_after}")
    if with_kind and spec.kind is FactKind.LABEL and not any(c.attr == "verdict" for c in spec.filter):
        return _Mods(zh=f"已审核的{joined.zh}", en_before=f"reviewed {joined.en_before}", en_after=joined.en_after)
    return joined


def _value(unit: _Unit, value: float, *, agg: Agg | None = None) -> Phrase:
    """A value of an attribute (or of an aggregate over it) with its unit."""
    if unit is _Unit.MONEY:
        return Phrase(money(value), money(value))
    if unit is _Unit.UNITS:
        return Phrase(f"{number(value)}件", f"{number(value)} {_plural(value, 'unit', 'units')}")
    if unit is _Unit.DAYS:
        return Phrase(f"{number(value)}天", f"{number(value)} {_plural(value, 'day', 'days')}")
    if unit is _Unit.HOURS:
        return Phrase(f"{number(value)}小时", f"{number(value)} h")
    if unit is _Unit.KM:
        return Phrase(f"{number(round(value))}公里", f"{number(round(value))} km")
    if unit is _Unit.FLAG and agg in (Agg.MEAN, Agg.STD):
        return Phrase(percent(value), percent(value))
    return Phrase(number(value), number(value))


# -- windowed aggregates ---------------------------------------------------------------------------------------


def _window(spec: FeatureSpec) -> tuple[Phrase, Phrase]:
    """(``5分钟内`` / ``in 5 min``, delay suffix ``（截至2小时前）`` / `` (up to 2 h ago)`` or empty)."""
    w = duration(spec.window)
    lag = Phrase("", "")
    if spec.offset is not None:
        o = duration(spec.offset)
        lag = Phrase(f"（截至{o.zh}前）", f" (up to {o.en} ago)")
    return Phrase(f"{w.zh}内", f"in {w.en}"), lag


def _count_text(spec: FeatureSpec) -> _Text:
    who, mods = _who(spec), _filter_mods(spec, with_kind=False)
    (w, lag), (zh_noun, measure, one, many) = _window(spec), _FACTS[spec.field]
    head = _join_zh(who.subject, w.zh)
    if spec.field == "orders":
        label = Phrase(f"{head}{mods.zh}下单次数{lag.zh}",
                       f"{mods.en_before}orders {who.by}{mods.en_after} {w.en}{lag.en}")

        def render(v: float) -> Phrase:
            return Phrase(f"{head}{mods.zh}下单{number(v)}次{lag.zh}",
                          f"{number(v)} {mods.en_before}{_plural(v, one, many)} {who.by}{mods.en_after} "
                          f"{w.en}{lag.en}")
    else:
        label = Phrase(f"{head}{mods.zh}{zh_noun}数{lag.zh}",
                       f"{mods.en_before}{many} {who.by}{mods.en_after} {w.en}{lag.en}")

        def render(v: float) -> Phrase:
            return Phrase(f"{head}{number(v)}{measure}{mods.zh}{zh_noun}{lag.zh}",
                          f"{number(v)} {mods.en_before}{_plural(v, one, many)} {who.by}{mods.en_after} "
                          f"{w.en}{lag.en}")
    return _text(label, render)


def _distinct_text(spec: FeatureSpec) -> _Text:
    who, mods = _who(spec), _filter_mods(spec, with_kind=True)
    (w, lag), (zh_noun, measure, one, many) = _window(spec), _counted(spec)
    head = _join_zh(who.subject, w.zh)
    if spec.field == "orders":
        label = Phrase(f"{head}{mods.zh}订单数{lag.zh}",
                       f"{mods.en_before}orders {who.by}{mods.en_after} {w.en}{lag.en}")

        def render(v: float) -> Phrase:
            return Phrase(f"{head}有{number(v)}笔{mods.zh}订单{lag.zh}",
                          f"{number(v)} {mods.en_before}{_plural(v, one, many)} {who.by}{mods.en_after} "
                          f"{w.en}{lag.en}")
    else:
        label = Phrase(f"{head}关联{mods.zh}{zh_noun}数{lag.zh}",
                       f"{mods.en_before}{many}{mods.en_after} linked to {who.noun} {w.en}{lag.en}")

        def render(v: float) -> Phrase:
            return Phrase(f"{head}关联{number(v)}{measure}{mods.zh}{zh_noun}{lag.zh}",
                          f"{number(v)} {mods.en_before}{_plural(v, one, many)}{mods.en_after} linked to "
                          f"{who.noun} {w.en}{lag.en}")
    return _text(label, render)


def _since_text(spec: FeatureSpec) -> _Text:
    who, mods = _who(spec), _filter_mods(spec, with_kind=False)
    (w, lag), (zh_noun, _, one, _) = _window(spec), _FACTS[spec.field]
    zh_noun = "单" if spec.field == "orders" else zh_noun
    before = f"{mods.en_before}{one} {who.by}{mods.en_after}"
    label = Phrase(f"{_join_zh(who.subject, w.zh)}距上一{mods.zh}{zh_noun}{lag.zh}",
                   f"time since the previous {before} within {w.en[3:]}{lag.en}")
    earlier = "订单" if spec.field == "orders" else zh_noun

    def render(v: float) -> Phrase:
        took = elapsed(v)
        return Phrase(f"{who.subject}距上一{mods.zh}{zh_noun}{took.zh}{lag.zh}",
                      f"{took.en} since the previous {before}{lag.en}")

    absent = Phrase(f"{_join_zh(who.subject, w.zh)}无更早的{mods.zh}{earlier}{lag.zh}",
                    f"no earlier {before} within {w.en[3:]}{lag.en}")
    present = Phrase(f"{_join_zh(who.subject, w.zh)}有更早的{mods.zh}{earlier}{lag.zh}",
                     f"an earlier {before} within {w.en[3:]}{lag.en}")
    return _text(label, render, absent=absent, present=present)


_AGG_WORDS: Mapping[Agg, tuple[str, str, str]] = MappingProxyType({
    # (zh before the attribute, zh after it, en before it)
    Agg.SUM: ("", "合计", "total"),
    Agg.MEAN: ("平均", "", "average"),
    Agg.MAX: ("最高", "", "highest"),
    Agg.MIN: ("最低", "", "lowest"),
    Agg.STD: ("", "标准差", "standard deviation of"),
})


def _numeric_text(spec: FeatureSpec) -> _Text:
    who, mods = _who(spec), _filter_mods(spec, with_kind=False)
    w, lag = _window(spec)
    attr = _attr(spec.field, spec.catalog)
    if spec.agg is Agg.SUM and spec.field == "units":  # 同一账号24小时内购买同一商品5件
        head = _join_zh(who.zh, w.zh)
        label = Phrase(f"{head}{mods.zh}购买{who.zh_object}件数{lag.zh}",
                       f"units {who.by}{mods.en_after} {w.en}{lag.en}")

        def units(v: float) -> Phrase:
            shown = _value(_Unit.UNITS, v)
            return Phrase(f"{head}{mods.zh}购买{who.zh_object}{shown.zh}{lag.zh}",
                          f"{shown.en} {who.by}{mods.en_after} {w.en}{lag.en}")
        return _text(label, units)
    zh_before, zh_after, en_agg = _AGG_WORDS[spec.agg]
    head = f"{_join_zh(who.subject, w.zh)}{mods.zh}{zh_before}{attr.zh}{zh_after}"
    tail = f"{who.by}{mods.en_after} {w.en}{lag.en}"
    label = Phrase(f"{head}{lag.zh}", f"{en_agg} {attr.en} {tail}")

    def render(v: float) -> Phrase:
        shown = _value(attr.unit, v, agg=spec.agg)
        return Phrase(f"{head}{shown.zh}{lag.zh}", f"{en_agg} {attr.en} {shown.en} {tail}")
    return _text(label, render)


def _spec_text(spec: FeatureSpec) -> _Text:
    if spec.agg is Agg.COUNT:
        return _count_text(spec)
    if spec.agg is Agg.DISTINCT:
        return _distinct_text(spec)
    if spec.agg is Agg.TIME_SINCE:
        return _since_text(spec)
    return _numeric_text(spec)


# -- attributes of the order itself ------------------------------------------------------------------------------

#: Flag attributes: (label zh, label en, true zh, true en, false zh, false en).
_ORDER_FLAGS: Mapping[str, tuple[str, str, str, str, str, str]] = MappingProxyType({
    "has_coupon": ("本单是否用券", "coupon on this order", "本单使用优惠券", "a coupon on this order",
                   "本单未使用优惠券", "no coupon on this order"),
    "virtual_phone": ("收货手机号段", "receiver phone segment", "虚拟运营商号段", "virtual-operator phone number",
                      "非虚拟运营商号段", "not a virtual-operator phone number"),
    "pickup_address": ("收货地址类型", "delivery address type", "收货地址为驿站、代收点或临时地址",
                       "delivery to a pick-up station, parcel point or temporary address",
                       "收货地址非驿站或代收点", "delivery to a regular address"),
    "whole_thousand_no_message": ("整千金额无留言", "whole-thousand amount without message",
                                  "整千金额且无买家留言", "whole-thousand amount with no buyer message",
                                  "非整千无留言订单", "not a whole-thousand amount without message"),
    "night": ("下单时段", "time of day", "凌晨下单（北京时间0-7点）", "placed at night (00:00-06:59 Beijing time)",
              "非凌晨下单", "placed in the daytime"),
    "weekend": ("下单日", "day of week", "周末下单", "placed at the weekend", "工作日下单", "placed on a weekday"),
    "urgent_note": ("买家留言", "buyer note", "留言要求加急/当天发货", "the buyer note asks for rushed shipping",
                    "留言未要求加急", "no rush asked in the buyer note"),
})

#: Numeric attributes: (label zh, label en, value zh, value en) with ``{}`` for the shown value.
_ORDER_NUMBERS: Mapping[str, tuple[str, str, str, str]] = MappingProxyType({
    "paid_fen": ("本单实付", "amount paid on this order", "本单实付{}", "{} paid on this order"),
    "goods_fen": ("本单商品金额", "goods amount of this order", "本单商品金额{}", "goods worth {} on this order"),
    "discount_fen": ("本单优惠金额", "discount on this order", "本单优惠{}", "{} discount on this order"),
    "coupon_fen": ("本单券抵扣", "coupon discount on this order", "本单券抵扣{}", "{} off with coupons on this order"),
    "shipping_fen": ("本单运费", "shipping fee of this order", "本单运费{}", "{} shipping fee on this order"),
    "units": ("本单件数", "units on this order", "本单共{}", "{} on this order"),
    "line_count": ("本单商品行数", "lines on this order", "本单{}行商品", "{} lines on this order"),
    "coupons": ("本单优惠券张数", "coupons on this order", "本单使用{}张优惠券", "{} coupons on this order"),
    "account_age_days": ("账号注册时长", "account age", "账号注册{}", "account registered {} before the order"),
    "member_level": ("会员等级", "member level", "会员等级{}", "member level {}"),
    "max_unit_price_fen": ("本单最高单价", "dearest unit price on this order", "本单最高单价{}",
                           "dearest unit price {} on this order"),
    "min_unit_price_fen": ("本单最低单价", "cheapest unit price on this order", "本单最低单价{}",
                           "cheapest unit price {} on this order"),
    "phone_delivery_km": ("手机号归属地与收货地距离", "distance from the phone's home city to the delivery address",
                          "手机号归属地距收货地{}", "phone's home city {} from the delivery address"),
    "phone_warehouse_km": ("手机号归属地与发货仓距离", "distance from the phone's home city to the ship-from warehouse",
                           "手机号归属地距发货仓{}", "phone's home city {} from the ship-from warehouse"),
})


def _attribute_text(attr: str, catalog: Catalog) -> _Text:
    if attr in catalog.declared:
        words = _attr(attr, catalog)
        declared = catalog.declared[attr]

        def render_declared(v: float) -> Phrase:
            if declared.type is AttrType.CATEGORY and declared.values is not None:
                shown = declared.values[int(v)] if 0 <= v < len(declared.values) else "?"
                return Phrase(f"本单{words.zh}为{shown}", f"{words.en} {shown} on this order")
            value = _value(words.unit, v)
            return Phrase(f"本单{words.zh}{value.zh}", f"{words.en} {value.en} on this order")
        return _text(Phrase(f"本单{words.zh}", f"{words.en} of this order"), render_declared)
    if attr in _ORDER_FLAGS:
        label_zh, label_en, yes_zh, yes_en, no_zh, no_en = _ORDER_FLAGS[attr]

        def flag(v: float) -> Phrase:
            return Phrase(yes_zh, yes_en) if v != 0 else Phrase(no_zh, no_en)
        return _text(Phrase(label_zh, label_en), flag)
    vocabulary = _ATTRS[attr]
    label_zh, label_en, value_zh, value_en = _ORDER_NUMBERS.get(
        attr, (f"本单{vocabulary.zh}", f"{vocabulary.en} of this order", f"本单{vocabulary.zh}{{}}",
               f"{vocabulary.en} {{}} on this order"))

    def render(v: float) -> Phrase:
        shown = _value(vocabulary.unit, v)
        return Phrase(value_zh.format(shown.zh), value_en.format(shown.en))
    return _text(Phrase(label_zh, label_en), render)


# -- derived features --------------------------------------------------------------------------------------------


def _derived_text(spec: DerivedSpec, known: Mapping[str, _Text]) -> _Text:
    args = [known[a] for a in spec.args]
    if spec.op is DerivedOp.IS_MISSING:
        arg = args[0]
        label = Phrase(f"{arg.label.zh}是否有记录", f"whether {arg.label.en} is on record")
        return _text(label, lambda v: arg.absent if v != 0 else arg.present)
    if spec.op is DerivedOp.IS_ZERO:
        arg = args[0]
        label = Phrase(f"{arg.label.zh}是否为0", f"whether {arg.label.en} is zero")
        zero = Phrase(f"{arg.label.zh}为0", f"{arg.label.en}: none")
        nonzero = Phrase(f"{arg.label.zh}不为0", f"{arg.label.en}: some")
        return _text(label, lambda v: zero if v != 0 else nonzero)
    if spec.op is DerivedOp.RATIO:
        a, b = args
        label = Phrase(f"{a.label.zh}与{b.label.zh}之比", f"{a.label.en} relative to {b.label.en}")
        return _text(label, lambda v: Phrase(f"{a.label.zh}为{b.label.zh}的{percent(v)}",
                                             f"{a.label.en} is {percent(v)} of {b.label.en}"))
    each = [a.render(1.0) for a in args]
    label = Phrase("同时满足：" + "、".join(a.label.zh for a in args), "all of: " + "; ".join(a.label.en for a in args))
    both = Phrase("，且".join(p.zh for p in each), " and ".join(p.en for p in each))
    not_all = Phrase("并非同时满足：" + "、".join(p.zh for p in each), "not all of: " + "; ".join(p.en for p in each))
    return _text(label, lambda v: both if v != 0 else not_all)


# -- the describer ---------------------------------------------------------------------------------------------


#: Most phrases a describer keeps written (then it starts over): a few MB at most.
_PHRASE_CACHE_SIZE = 20_000

_Said = tuple[str, float]


class FeatureDescriber:
    """Every feature of a feature set, as readable phrases of its values.

    Built once per feature set (at model load), then :meth:`describe` is a dictionary
    lookup and one string format.

    >>> from features.shop import default_shop_features
    >>> d = FeatureDescriber(default_shop_features())
    >>> d.describe("count_orders_by_device_5m", 6.0)
    Phrase(zh='同一设备5分钟内下单6次', en='6 orders from this device in 5 min')
    >>> d.describe("order_virtual_phone", 1.0).zh, d.describe("time_since_orders_by_user_30d", float("nan")).en
    ('虚拟运营商号段', 'time since the previous order by this account within 30 days: none on record')
    """

    __slots__ = ("_phrases", "_texts")

    def __init__(self, feature_set: FeatureSet) -> None:
        texts: dict[str, _Text] = {}
        for spec in feature_set.specs:
            texts[spec.name] = _spec_text(spec)
        for attribute in feature_set.attributes:
            texts[attribute.name] = _attribute_text(attribute.attr, attribute.catalog)
        for derived in feature_set.derived:
            texts[derived.name] = _derived_text(derived, texts)
        self._texts: Mapping[str, _Text] = MappingProxyType(texts)
        # The phrases already written, by (feature, value): an order flagged by the model reads up to five
        # of them, and counts, flags and round amounts recur all day (a format is 3-9 us, a lookup 0.1).
        self._phrases: ClearingCache[_Said, Phrase] = ClearingCache(_PHRASE_CACHE_SIZE)

    @property
    def names(self) -> tuple[str, ...]:
        """The described features, in feature-set order."""
        return tuple(self._texts)

    def __contains__(self, name: object) -> bool:
        return name in self._texts

    def label(self, name: str) -> Phrase:
        """What the feature measures, without a value (``KeyError`` for an unknown feature)."""
        return self._texts[name].label

    def describe(self, name: str, value: float) -> Phrase:
        """The feature's value in words; NaN reads as the label with "无记录" / "none on record".

        Raises:
            KeyError: ``name`` is not a feature of the set.
        """
        if value != value:
            return _missing(self._texts[name].label)
        return self._phrases.get((name, value + 0.0), self._render)  # -0.0 reads as 0 (and is 0.0's key)

    def _render(self, said: _Said) -> Phrase:
        name, value = said
        return self._texts[name].render(value)


#: Attribute names the vocabulary knows (filters and aggregates over others still read, by their raw name).
KNOWN_ATTRIBUTES: frozenset[str] = frozenset(_ATTRS)
