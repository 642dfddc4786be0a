"""Where buyers live: real provinces, cities and districts, and Chinese address text.

Districts carry their real administrative codes (they also seed id-card numbers).
``transit_days`` is the usual express time from the brand's Hangzhou warehouse.
Pick-up points (驿站, 代收点, 菜鸟, temporary addresses) are written the way buyers
type them, because their keywords are what risk rules look for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from simulate.rand import Weighted


@dataclass(frozen=True, slots=True)
class District:
    """A county-level district with its 6-digit administrative code."""

    name: str
    adcode: str


@dataclass(frozen=True, slots=True)
class City:
    """A prefecture-level city (municipalities repeat their name as the city)."""

    province: str
    city: str
    districts: tuple[District, ...]
    transit_days: int
    weight: float


def _c(province: str, city: str, transit: int, weight: float, *districts: tuple[str, str]) -> City:
    return City(province, city, tuple(District(n, a) for n, a in districts), transit, weight)


CITIES: Final[tuple[City, ...]] = (
    _c("浙江省", "杭州市", 1, 9.0, ("上城区", "330102"), ("拱墅区", "330105"), ("西湖区", "330106"),
       ("滨江区", "330108"), ("萧山区", "330109"), ("余杭区", "330110")),
    _c("浙江省", "宁波市", 1, 3.0, ("海曙区", "330203"), ("江北区", "330205"), ("鄞州区", "330212")),
    _c("浙江省", "温州市", 1, 2.0, ("鹿城区", "330302"), ("瓯海区", "330304")),
    _c("浙江省", "绍兴市", 1, 1.5, ("越城区", "330602"), ("柯桥区", "330603")),
    _c("浙江省", "金华市", 1, 1.5, ("婺城区", "330702"), ("义乌市", "330782")),
    _c("上海市", "上海市", 1, 9.0, ("浦东新区", "310115"), ("徐汇区", "310104"), ("静安区", "310106"),
       ("闵行区", "310112"), ("杨浦区", "310110")),
    _c("江苏省", "南京市", 1, 3.5, ("玄武区", "320102"), ("鼓楼区", "320106"), ("江宁区", "320115")),
    _c("江苏省", "苏州市", 1, 4.0, ("姑苏区", "320508"), ("吴中区", "320506"), ("昆山市", "320583")),
    _c("江苏省", "无锡市", 1, 1.5, ("梁溪区", "320213"), ("滨湖区", "320211")),
    _c("安徽省", "合肥市", 1, 2.0, ("蜀山区", "340104"), ("包河区", "340111")),
    _c("北京市", "北京市", 2, 7.0, ("朝阳区", "110105"), ("海淀区", "110108"), ("东城区", "110101"),
       ("丰台区", "110106"), ("昌平区", "110114")),
    _c("天津市", "天津市", 2, 1.5, ("南开区", "120104"), ("河西区", "120103")),
    _c("广东省", "广州市", 2, 5.0, ("天河区", "440106"), ("越秀区", "440104"), ("海珠区", "440105"),
       ("番禺区", "440113")),
    _c("广东省", "深圳市", 2, 6.0, ("福田区", "440304"), ("南山区", "440305"), ("宝安区", "440306"),
       ("龙岗区", "440307")),
    _c("福建省", "厦门市", 2, 1.5, ("思明区", "350203"), ("湖里区", "350206")),
    _c("福建省", "福州市", 2, 1.2, ("鼓楼区", "350102"), ("仓山区", "350104")),
    _c("江西省", "南昌市", 2, 1.0, ("东湖区", "360102"), ("西湖区", "360103")),
    _c("山东省", "济南市", 2, 1.5, ("历下区", "370102"), ("市中区", "370103")),
    _c("山东省", "青岛市", 2, 2.0, ("市南区", "370202"), ("崂山区", "370212")),
    _c("湖北省", "武汉市", 2, 3.0, ("江汉区", "420103"), ("武昌区", "420106"), ("洪山区", "420111")),
    _c("湖南省", "长沙市", 2, 2.5, ("岳麓区", "430104"), ("雨花区", "430111"), ("开福区", "430105")),
    _c("河南省", "郑州市", 2, 2.0, ("金水区", "410105"), ("二七区", "410103")),
    _c("四川省", "成都市", 3, 4.5, ("锦江区", "510104"), ("武侯区", "510107"), ("成华区", "510108"),
       ("双流区", "510116")),
    _c("重庆市", "重庆市", 3, 2.5, ("渝中区", "500103"), ("江北区", "500105"), ("渝北区", "500112")),
    _c("陕西省", "西安市", 3, 2.0, ("雁塔区", "610113"), ("碑林区", "610103"), ("未央区", "610112")),
    _c("河北省", "石家庄市", 3, 1.0, ("长安区", "130102"), ("桥西区", "130104")),
    _c("山西省", "太原市", 3, 0.8, ("小店区", "140105"), ("迎泽区", "140106")),
    _c("辽宁省", "沈阳市", 3, 1.0, ("和平区", "210102"), ("沈河区", "210103")),
    _c("辽宁省", "大连市", 3, 1.0, ("中山区", "210202"), ("沙河口区", "210204")),
    _c("广西壮族自治区", "南宁市", 3, 0.8, ("青秀区", "450103"), ("兴宁区", "450102")),
    _c("贵州省", "贵阳市", 3, 0.6, ("南明区", "520102"), ("云岩区", "520103")),
    _c("云南省", "昆明市", 3, 1.0, ("五华区", "530102"), ("盘龙区", "530103")),
    _c("海南省", "海口市", 3, 0.5, ("美兰区", "460108"), ("龙华区", "460106")),
    _c("吉林省", "长春市", 4, 0.6, ("朝阳区", "220104"), ("南关区", "220102")),
    _c("黑龙江省", "哈尔滨市", 4, 0.7, ("南岗区", "230103"), ("道里区", "230102")),
    _c("甘肃省", "兰州市", 4, 0.4, ("城关区", "620102"), ("七里河区", "620103")),
    _c("内蒙古自治区", "呼和浩特市", 4, 0.3, ("赛罕区", "150105"), ("新城区", "150102")),
    _c("宁夏回族自治区", "银川市", 4, 0.2, ("金凤区", "640106"), ("兴庆区", "640104")),
    _c("青海省", "西宁市", 4, 0.15, ("城西区", "630104"), ("城中区", "630103")),
    _c("新疆维吾尔自治区", "乌鲁木齐市", 5, 0.3, ("天山区", "650102"), ("沙依巴克区", "650103")),
    _c("西藏自治区", "拉萨市", 5, 0.05, ("城关区", "540102"),),
)

_ROADS: Final = ("人民路", "解放路", "中山路", "建设路", "和平路", "文化路", "新华路", "长江路", "学院路",
                 "光明路", "胜利路", "青年路", "朝阳路", "东风路", "环城北路", "滨江大道", "科技路",
                 "金沙大道", "湖滨路", "幸福路", "友谊路", "丰收路", "振兴路", "育才路")
_COMMUNITY_HEAD: Final = ("阳光", "金色", "翠湖", "绿城", "万科", "保利", "世纪", "春晓", "锦绣", "东方",
                          "香樟", "碧水", "蓝湾", "紫金", "桂花", "枫林", "星河", "时代", "新城", "御景")
_COMMUNITY_TAIL: Final = ("花园", "小区", "家园", "公寓", "苑", "府", "雅居", "城", "里", "名邸")
_TOWERS: Final = ("国际金融中心", "创业大厦", "科技大厦", "中心广场", "信息港", "天地大厦", "数字产业园")
_STATIONS: Final = ("菜鸟驿站", "妈妈驿站", "兔喜生活驿站", "快递代收点", "菜鸟裹裹代收点")


def community(rng: random.Random) -> str:
    """A residential compound name such as 翠湖花园.

    >>> community(random.Random(1))[-1] in "园区寓苑府居城里邸"
    True
    """
    return rng.choice(_COMMUNITY_HEAD) + rng.choice(_COMMUNITY_TAIL)


def road(rng: random.Random) -> str:
    """A road's name without a house number, e.g. 学院路 (how a sloppy address starts).

    >>> road(random.Random(2))[-1] in "路道"
    True
    """
    return rng.choice(_ROADS)


def street(rng: random.Random) -> str:
    """A road and house number, e.g. 学院路128号."""
    return f"{rng.choice(_ROADS)}{rng.randint(1, 999)}号"


def home_detail(rng: random.Random) -> str:
    """A home address below district level: road, compound, building, unit, room."""
    return (f"{street(rng)}{community(rng)}{rng.randint(1, 32)}幢{rng.randint(1, 4)}单元"
            f"{rng.randint(1, 33)}{rng.randint(1, 4):02d}室")


def office_detail(rng: random.Random) -> str:
    """An office address: a tower and a floor (colleagues share it)."""
    return f"{street(rng)}{rng.choice(_TOWERS)}{rng.choice('ABC')}座{rng.randint(3, 38)}楼"


def pickup_detail(rng: random.Random) -> str:
    """A pick-up point or temporary address, carrying the keywords risk rules look for.

    >>> any(k in pickup_detail(random.Random(s)) for s in range(20) for k in ("驿站", "代收点", "临时"))
    True
    """
    roll = rng.random()
    if roll < 0.75:
        return f"{street(rng)}{community(rng)}{rng.choice(_STATIONS)}"
    if roll < 0.9:
        return f"{community(rng)}东门 {rng.choice(_STATIONS)}（{rng.randint(1, 30)}号柜）"
    return f"临时地址 {street(rng)}附近 到了打电话"


#: Keywords that mark a pick-up point or throwaway address.
PICKUP_KEYWORDS: Final = ("驿站", "代收点", "临时", "菜鸟")


def city_picker() -> Weighted[City]:
    """Draws a city with probability proportional to the brand's sales there."""
    return Weighted.of([(c, c.weight) for c in CITIES])


def city_of(province: str, city: str) -> City:
    """The table entry of a (province, city) pair.

    >>> city_of("浙江省", "杭州市").transit_days
    1
    """
    for entry in CITIES:
        if entry.province == province and entry.city == city:
            return entry
    raise KeyError(f"{province}{city}")
