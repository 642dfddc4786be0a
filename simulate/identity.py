"""Synthetic personal identifiers that look and validate like real ones.

Phones use real operator segments (virtual-operator segments 170/171/162/165/167 are
what abusers favour, but a few honest buyers have them too), id-card numbers carry a
real district code, a birth date and a valid ISO 7064 check digit, BSSIDs start with
real router OUIs, and IPs come from Chinese public ranges: home broadband, the
carriers' shared mobile gateways, and cloud data centres (where bots run).
"""

from __future__ import annotations

import random
import string
from datetime import date, timedelta
from typing import Final

from orderguard.schema import Channel
from simulate.rand import Weighted, digits

_SURNAMES: Final = (
    ("王", 7.1), ("李", 7.0), ("张", 6.7), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("黄", 2.2), ("赵", 2.0),
    ("吴", 1.9), ("周", 1.9), ("徐", 1.5), ("孙", 1.5), ("马", 1.4), ("朱", 1.3), ("胡", 1.3), ("郭", 1.1),
    ("何", 1.1), ("林", 1.1), ("高", 1.0), ("罗", 0.9), ("郑", 0.9), ("梁", 0.8), ("谢", 0.7), ("宋", 0.6),
    ("唐", 0.6), ("许", 0.6), ("韩", 0.5), ("冯", 0.5), ("邓", 0.5), ("曹", 0.5), ("彭", 0.5), ("曾", 0.5),
    ("肖", 0.5), ("田", 0.4), ("董", 0.4), ("潘", 0.4), ("袁", 0.4), ("蔡", 0.4), ("蒋", 0.4), ("余", 0.4),
    ("于", 0.4), ("杜", 0.4), ("叶", 0.4), ("程", 0.4), ("魏", 0.3), ("苏", 0.3), ("吕", 0.3), ("丁", 0.3),
    ("沈", 0.3), ("姚", 0.3), ("陆", 0.3), ("钟", 0.3), ("方", 0.2), ("金", 0.2), ("欧阳", 0.05),
)
_GIVEN: Final = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
                 "明", "超", "霞", "平", "刚", "婷", "雪", "琳", "晨", "宇", "浩", "然", "欣", "怡", "萱",
                 "子", "涵", "梓", "轩", "佳", "思", "雨", "桐", "一", "诺", "嘉", "晴", "悦", "彤", "博",
                 "文", "昊", "瑶", "璐", "倩", "颖", "凯", "鹏", "斌", "慧", "琪", "楠", "晓", "阳", "蕾")

#: Mobile segments of the three operators and China Broadnet, weighted by subscriber share.
_SEGMENTS: Final = (
    *((s, 5.5 / 23) for s in ("134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157",
                              "158", "159", "172", "178", "182", "183", "184", "187", "188", "195", "197",
                              "198")),
    *((s, 2.5 / 11) for s in ("130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186")),
    *((s, 1.9 / 11) for s in ("133", "153", "173", "177", "180", "181", "189", "190", "191", "193", "199")),
    ("192", 0.1),
)
#: Virtual-operator (MVNO) segments: cheap, anonymous, favoured for throwaway accounts.
VIRTUAL_SEGMENTS: Final = ("170", "171", "162", "165", "167")

_OUIS: Final = ("50:bd:5f", "74:05:a5", "d4:6e:0e", "00:9a:cd", "c8:d1:5e", "64:09:80", "78:11:dc",
                "f4:83:cd", "a4:1a:3a", "88:25:93")
#: /16 blocks of Chinese home broadband.
_HOME_NETS: Final = ("115.192", "115.205", "60.186", "183.128", "183.157", "112.10", "36.24", "117.136",
                     "125.118", "114.221", "221.224", "58.100", "101.71", "123.116", "113.87", "171.43")
#: Carrier mobile gateways (CGNAT): many subscribers share each address.
_MOBILE_NETS: Final = ("223.104.1", "223.104.5", "223.104.9", "117.136.8", "112.96.33", "112.97.54",
                       "39.144.10", "39.144.22", "106.39.1", "111.55.7")
#: Cloud data-centre ranges: where order bots and proxies run.
_CLOUD_NETS: Final = ("47.96", "47.98", "120.55", "139.196", "119.29", "121.36", "101.132")

_IPHONE_UA: Final = ("Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 "
                     "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.{b} NetType/{n} Language/zh_CN")
_ANDROID_UA: Final = ("Mozilla/5.0 (Linux; Android {a}; {m} Build/{bd}; wv) AppleWebKit/537.36 (KHTML, like "
                      "Gecko) Version/4.0 Chrome/{c}.0.0.0 Mobile Safari/537.36 MicroMessenger/8.0.{b} "
                      "NetType/{n} Language/zh_CN")
_ANDROID_MODELS: Final = ("PGT-AN10", "ALN-AL00", "23049RAD8C", "2211133C", "V2307A", "PHW110", "CPH2449",
                          "RMX3706", "24031PN0DC", "NOH-AN00")


def person_name(rng: random.Random, *, surname: str | None = None) -> str:
    """A Chinese full name; ``surname`` fixes the family name (relatives).

    >>> person_name(random.Random(0), surname="王").startswith("王")
    True
    """
    family = surname or rng.choices([s for s, _ in _SURNAMES], weights=[w for _, w in _SURNAMES])[0]
    given = rng.choice(_GIVEN) if rng.random() < 0.3 else rng.choice(_GIVEN) + rng.choice(_GIVEN)
    return family + given


def segment_picker() -> Weighted[str]:
    """Draws an ordinary (non-virtual) operator segment by subscriber share."""
    return Weighted.of(list(_SEGMENTS))


def mobile(rng: random.Random, prefix: str) -> str:
    """An 11-digit mainland mobile number starting with ``prefix`` (a segment, or longer).

    >>> mobile(random.Random(0), "138")[:3], len(mobile(random.Random(0), "1705"))
    ('138', 11)
    """
    return prefix + digits(rng, 11 - len(prefix))


def id_card_check_digit(body: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of an id-card number.

    >>> id_card_check_digit("11010519491231002")
    'X'
    """
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(ch) * w for ch, w in zip(body, weights, strict=True))
    return "10X98765432"[total % 11]


def id_card(rng: random.Random, *, adcode: str, born_from: int = 1965, born_to: int = 2005) -> str:
    """An 18-digit resident id-card number born in ``adcode`` between the given years.

    >>> n = id_card(random.Random(1), adcode="330106")
    >>> n[:6], id_card_check_digit(n[:17]) == n[17]
    ('330106', True)
    """
    start = date(born_from, 1, 1)
    span = (date(born_to, 12, 31) - start).days
    born = start + timedelta(days=rng.randint(0, span))
    body = f"{adcode}{born:%Y%m%d}{rng.randint(1, 999):03d}"
    return body + id_card_check_digit(body)


def device_id(rng: random.Random) -> str:
    """A device identifier (IDFV / OAID style UUID, upper case)."""
    raw = f"{rng.getrandbits(128):032X}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def bssid(rng: random.Random) -> str:
    """A WiFi access point MAC with a real router vendor prefix.

    >>> len(bssid(random.Random(0)).split(":"))
    6
    """
    tail = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
    return f"{rng.choice(_OUIS)}:{tail}"


def home_ip(rng: random.Random) -> str:
    """A home broadband address (stable for a household over weeks)."""
    return f"{rng.choice(_HOME_NETS)}.{rng.randrange(256)}.{rng.randint(1, 254)}"


def mobile_ip(rng: random.Random) -> str:
    """A carrier mobile-gateway address, shared by many unrelated subscribers."""
    return f"{rng.choice(_MOBILE_NETS)}.{rng.randint(1, 254)}"


def cloud_ip(rng: random.Random) -> str:
    """A data-centre address (bots, proxies)."""
    return f"{rng.choice(_CLOUD_NETS)}.{rng.randrange(256)}.{rng.randint(1, 254)}"


def user_agent(rng: random.Random) -> str:
    """A mobile WeChat web-view user agent (the mini-program / H5 shop)."""
    net = rng.choice(("WIFI", "WIFI", "4G", "5G"))
    build = rng.randint(38, 49)
    if rng.random() < 0.45:
        version = rng.choice(("16_6", "17_1_2", "17_4", "17_5_1", "18_0"))
        return _IPHONE_UA.format(v=version, b=build, n=net)
    return _ANDROID_UA.format(a=rng.choice((11, 12, 13, 14)), m=rng.choice(_ANDROID_MODELS),
                              bd=rng.choice(("HUAWEIPGT-AN10", "TKQ1.221114.001", "UKQ1.230804.001")),
                              c=rng.randint(110, 126), b=build, n=net)


_B62: Final = string.digits + string.ascii_letters


def account_id(rng: random.Random, channel: Channel) -> str:
    """A buyer identity in the shape each platform uses (open uid, pin, open id ...)."""
    if channel is Channel.TMALL:
        return "AAH" + "".join(rng.choice(_B62 + "_-") for _ in range(21))
    if channel is Channel.JD:
        return "jd_" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(13))
    if channel is Channel.DOUYIN:
        return str(rng.randint(10**15, 10**16 - 1))
    if channel is Channel.KUAISHOU:
        return "3x" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(13))
    if channel is Channel.WECHAT:
        return "o" + "".join(rng.choice(_B62 + "_-") for _ in range(27))
    return f"u{rng.randint(10**8, 10**9 - 1)}"
