"""Risk-relevant attributes derived from an order's phone and delivery address.

Uses maintained data instead of hand-typed tables where it exists:
* ``phonenumbers`` (libphonenumber's geocoder) gives a mobile number's home
  province/city from its first 7 digits;
* ``cpca`` ships China's administrative divisions (adcodes) with coordinates, used to
  place both the phone's home city and the delivery district on the map.

The only hand-kept lists are the ones no library publishes: the mobile virtual-network
operator (MVNO) number segments assigned by the MIIT, and pick-up-point keywords.

A :class:`Gazetteer` is built once per process by the entry point (it indexes ~3,500
divisions, ~50 ms) and passed down; lookups are memoised per instance.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

import cpca
import phonenumbers
from phonenumbers import geocoder

from orderguard.clearing_cache import ClearingCache
from orderguard.errors import ConfigError
from orderguard.schema import Address, Phone
from orderguard.settings import ReferenceSettings

#: MVNO (虚拟运营商) mobile segments: 170/171 and 162/165/167 (MIIT numbering plan).
VIRTUAL_SEGMENTS: tuple[str, ...] = ("170", "171", "162", "165", "167")

#: Words marking pick-up stations, parcel lockers and temporary addresses.
PICKUP_KEYWORDS: tuple[str, ...] = ("驿站", "代收点", "代收", "菜鸟", "快递柜", "丰巢", "自提", "临时", "暂住")

_EARTH_KM = 6371.0
_WHITESPACE = re.compile(r"\s+")
#: Most (province, city, district) names a gazetteer remembers the place of; it starts afresh when full.
_PLACE_CACHE_SIZE = 100_000
#: Most 7-digit phone blocks a gazetteer remembers the home of (libphonenumber places about 111,000); it starts
#: afresh when full, so orders with made-up numbers cannot grow it without bound.
_PHONE_CACHE_SIZE = 200_000


def is_virtual_phone(phone: Phone | None) -> bool:
    """True when the number's segment belongs to a virtual operator.

    >>> is_virtual_phone(Phone(hash="h", prefix="1701234"))
    True
    >>> is_virtual_phone(Phone(hash="h", prefix="138")) or is_virtual_phone(None)
    False
    """
    return bool(phone and phone.prefix and phone.prefix[:3] in VIRTUAL_SEGMENTS)


def pickup_keyword(address: Address | None) -> str | None:
    """The first pick-up / temporary keyword in the address detail, if any; for an address stored at ingest
    (its detail masked), the keyword ingest found then.

    >>> pickup_keyword(Address("浙江省", "杭州市", "西湖区", "文三路菜鸟驿站"))
    '驿站'
    >>> pickup_keyword(Address("浙江省", "杭州市", "西湖区", "文三路****", key="k", pickup="驿站"))
    '驿站'
    """
    if address is None:
        return None
    if address.key is not None:
        return address.pickup
    text = normalize_text(address.detail)
    return next((k for k in PICKUP_KEYWORDS if k in text), None)


#: What makes a street detail deliverable: a street (road, lane, village …) and a house number.
_STREET = re.compile(r"路|街|大道|道|巷|弄|胡同|村|镇|乡")
_HOUSE_NUMBER = re.compile(r"\d+\s*(号|幢|栋|座|单元|室|组)|[一二三四五六七八九十百]+号")
#: The defects :func:`address_defects` names.
NO_STREET = "no_street"
NO_NUMBER = "no_number"


def address_defects(address: Address | None) -> tuple[str, ...]:
    """What a delivery address lacks for a courier to find it: ``no_street`` and / or ``no_number``.

    Province, city and district come in their own fields (the channels split them); the
    street detail must still name a street (路, 街, 巷, 弄, 村 …) and a house number (12号,
    3幢, 1单元 …). For an address stored at ingest (its detail masked) the defects found
    then are returned.

    >>> address_defects(Address("浙江省", "杭州市", "西湖区", "文三路 88 号 3 幢 2 单元 301 室"))
    ()
    >>> address_defects(Address("浙江省", "杭州市", "西湖区", "翠湖花园东门 菜鸟驿站（12号柜）"))
    ('no_street',)
    >>> address_defects(Address("浙江省", "杭州市", "西湖区", "学院路附近 到了打电话"))
    ('no_number',)
    """
    if address is None:
        return (NO_STREET, NO_NUMBER)
    if address.key is not None:
        return address.defects
    text = unicodedata.normalize("NFKC", address.detail)
    out: list[str] = []
    if not _STREET.search(text):
        out.append(NO_STREET)
    if not _HOUSE_NUMBER.search(text):
        out.append(NO_NUMBER)
    return tuple(out)


def phone_problem(phone: Phone | None) -> str | None:
    """Why a buyer's phone cannot be a reachable mainland mobile number, or ``None`` when it can be.

    Only the leading digits are kept after ingest (7 of a clear number, 3 of a masked one),
    so the check is on them: a mobile segment (13x-19x) that libphonenumber knows, for 7
    digits. A channel that sends no phone at all is not a problem of the order.

    >>> phone_problem(Phone(hash="h", prefix="1380013")), phone_problem(Phone(hash="h", prefix="138"))
    (None, None)
    >>> phone_problem(Phone(hash="h", prefix="1201234")), phone_problem(Phone(hash="h", prefix="1000"))
    ('not a mobile segment (120)', 'not a mobile segment (100)')
    """
    if phone is None or not phone.prefix:
        return None
    prefix = phone.prefix
    if not re.fullmatch(r"1[3-9]\d", prefix[:3]):
        return f"not a mobile segment ({prefix[:3]})"
    if len(prefix) >= 7:
        try:
            number = phonenumbers.parse(prefix[:7] + "0000", "CN")
        except phonenumbers.NumberParseException:
            return f"not a phone number ({prefix[:3]})"
        if not phonenumbers.is_valid_number(number):
            return f"no such mobile segment ({prefix[:7]})"
    return None


_SPACE_PUNCT = re.compile(r"[\s\u3000,，.。;；:：\-_/#()（）\[\]【】]+")
#: Building / unit / room markers people write or leave out at will: 3幢2单元301室, 3栋2单元301, 3-2-301.
_UNIT_MARKERS = re.compile(r"号楼|幢|栋|单元|室")


def normalise_address_part(text: str) -> str:
    """NFKC, lower case, no spaces or punctuation: the form addresses are matched in.

    >>> normalise_address_part(" 幸福路１２号 3-201 ") == normalise_address_part("幸福路12号3201")
    True
    """
    return _SPACE_PUNCT.sub("", unicodedata.normalize("NFKC", text)).lower()


def normalise_address_detail(text: str) -> str:
    """``normalise_address_part`` without building / unit / room markers: one flat, however it is written.

    An address ring's members write their one flat several ways; without this, each way
    would be a different address.

    >>> variants = ("文三路88号3幢2单元301室", "文三路88号3-2-301", "文三路88号3栋2单元301", "文三路88号3号楼2单元301")
    >>> len({normalise_address_detail(v) for v in variants})
    1
    >>> normalise_address_detail("文三路88号3-2-301") == normalise_address_detail("文三路89号3-2-301")
    False
    """
    return _UNIT_MARKERS.sub("", normalise_address_part(text))


def address_text(address: Address) -> str:
    """The whole address in the form addresses are matched in: what an address key is made of.

    >>> address_text(Address("浙江省", "杭州市", "西湖区", "文三路 88 号 3 幢 2 单元 301 室"))
    '浙江省|杭州市|西湖区|文三路88号32301'
    """
    # one pass over the joined parts: "|" is kept by the normalisation, so this equals
    # normalising each part and joining them
    region = normalise_address_part(f"{address.province}|{address.city}|{address.district}")
    return f"{region}|{normalise_address_detail(address.detail)}"


def normalize_text(text: str) -> str:
    """Full-width to half-width, no whitespace, lower case: the form addresses are compared in.

    >>> normalize_text("文三路 １００号 Ａ座")
    '文三路100号a座'
    """
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points in km.

    >>> round(distance_km((30.26, 120.13), (39.90, 116.40)))  # Hangzhou - Beijing
    1124
    """
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_KM * math.asin(math.sqrt(h))


@dataclass(frozen=True, slots=True)
class Place:
    """An administrative division with its coordinates."""

    name: str
    adcode: str
    lat: float
    lng: float


@dataclass(slots=True)
class Gazetteer:
    """Name → coordinates for provinces, cities and districts (from cpca's adcodes).

    >>> g = Gazetteer.build()
    >>> g.locate("浙江省", "杭州市", "西湖区").adcode
    '330106'
    >>> g.phone_home("1596811").name
    '杭州市'
    """

    provinces: dict[str, Place]
    children: dict[str, dict[str, Place]]  # parent adcode prefix -> short name -> place
    reference: ReferenceSettings = field(default_factory=ReferenceSettings)
    _phone_cache: ClearingCache[str, Place | None] = field(
        default_factory=lambda: ClearingCache(_PHONE_CACHE_SIZE))
    # Scoring asks for the place of every order's delivery district and of the shop's warehouse, and
    # for the note keywords: each answer is kept (names recur all day), so a new phone block or note
    # costs dictionary reads, not suffix stripping and Unicode normalisation of every name again.
    _place_cache: ClearingCache[tuple[str, str, str], Place | None] = field(
        default_factory=lambda: ClearingCache(_PLACE_CACHE_SIZE))
    _keywords: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        self._keywords = tuple((word, normalize_text(word)) for word in self.reference.urgent_note_keywords)

    @classmethod
    def build(cls, reference: ReferenceSettings | None = None) -> Gazetteer:
        """Index cpca's divisions; ``reference`` (the settings' warehouses and note keywords) defaults to the
        settings' defaults, so an entry point that passes none still computes every attribute."""
        provinces: dict[str, Place] = {}
        children: dict[str, dict[str, Place]] = {}
        for info in cpca.ad_2_addr_dict.values():
            if not info.latitude or not info.longitude:
                continue  # a few divisions ship without coordinates
            place = Place(info.name, info.adcode, float(info.latitude), float(info.longitude))
            if info.rank == 0:
                provinces[_short(info.name)] = place
            elif info.rank == 1:
                children.setdefault(info.adcode[:2], {})[_short(info.name)] = place
            elif info.rank == 2:
                children.setdefault(info.adcode[:4], {})[_short(info.name)] = place
                children.setdefault(info.adcode[:2], {}).setdefault(_short(info.name), place)
        built = cls(provinces=provinces, children=children, reference=reference or ReferenceSettings())
        built.check_warehouses()
        return built

    def check_warehouses(self) -> None:
        """Refuse a configured warehouse the gazetteer cannot place: its distance would be silently missing on
        every order, and the far-from-warehouse rule would never fire.

        >>> from orderguard.settings import WarehouseSettings
        >>> Gazetteer.build(ReferenceSettings(warehouses={"s1": WarehouseSettings(province="火星")}))
        Traceback (most recent call last):
        ...
        orderguard.errors.ConfigError: `reference.warehouses.s1.province` must be a province of China; got '火星'
        """
        named = {"reference.warehouse": self.reference.warehouse,
                 **{f"reference.warehouses.{shop}": w for shop, w in self.reference.warehouses.items()}}
        for where, warehouse in named.items():
            if self.provinces.get(_short(warehouse.province)) is None:
                raise ConfigError.must(f"{where}.province", "a province of China", warehouse.province)

    def locate(self, province: str, city: str = "", district: str = "") -> Place | None:
        """The most precise known place for the given names (district, else city, else province)."""
        return self._place_cache.get((province, city, district), self._locate)

    def _locate(self, names: tuple[str, str, str]) -> Place | None:
        province, city, district = names
        prov = self.provinces.get(_short(province))
        if prov is None:
            return None
        best = prov
        city_place = self.children.get(prov.adcode[:2], {}).get(_short(city)) if city else None
        if city_place is not None:
            best = city_place
        if district:
            scope = city_place.adcode[:4] if city_place is not None else prov.adcode[:2]
            found = self.children.get(scope, {}).get(_short(district))
            if found is not None:
                best = found
        return best

    def phone_home(self, prefix: str | None) -> Place | None:
        """Home city (or province) of a mobile number from its first 7 digits, via libphonenumber."""
        if not prefix or len(prefix) < 7:
            return None
        return self._phone_cache.get(prefix[:7], self._lookup_phone)

    def _lookup_phone(self, prefix7: str) -> Place | None:
        if not (prefix7.isascii() and prefix7.isdigit()):
            return None
        # the number built directly: ``phonenumbers.parse`` would spend twice the geocoding itself on
        # reading the text of digits we already hold
        number = phonenumbers.PhoneNumber(country_code=86, national_number=int(prefix7 + "0000"))
        text = geocoder.description_for_number(number, "zh")
        for short, prov in self.provinces.items():
            if text.startswith(prov.name) or text.startswith(short):
                rest = text[len(prov.name):] if text.startswith(prov.name) else text[len(short):]
                return self.locate(prov.name, rest) if rest else prov
        return None

    def phone_to_delivery_km(self, phone: Phone | None, address: Address | None) -> float | None:
        """Distance between the phone's home city and the delivery district, km (None if unknown)."""
        if phone is None or address is None:
            return None
        home = self.phone_home(phone.prefix)
        target = self.locate(address.province, address.city, address.district)
        if home is None or target is None:
            return None
        return distance_km((home.lat, home.lng), (target.lat, target.lng))

    def warehouse(self, shop_id: str) -> Place | None:
        """The place the shop ships from: its own warehouse setting, else the default one.

        >>> Gazetteer.build().warehouse("any-shop").name
        '余杭区'
        """
        where = self.reference.warehouses.get(shop_id, self.reference.warehouse)
        return self.locate(where.province, where.city, where.district)

    def phone_to_warehouse_km(self, phone: Phone | None, shop_id: str) -> float | None:
        """Distance between the phone's home city and the shop's ship-from warehouse, km (None if unknown).

        >>> round(Gazetteer.build().phone_to_warehouse_km(Phone(hash="h", prefix="1596811"), "s"))  # Hangzhou
        21
        """
        if phone is None:
            return None
        home = self.phone_home(phone.prefix)
        origin = self.warehouse(shop_id)
        if home is None or origin is None:
            return None
        return distance_km((home.lat, home.lng), (origin.lat, origin.lng))

    def urgent_keyword(self, message: str) -> str | None:
        """The first rush-shipping keyword (``ReferenceSettings.urgent_note_keywords``) in a buyer note, if any.

        >>> g = Gazetteer.build()
        >>> g.urgent_keyword("明天生日，今天发货可以吗"), g.urgent_keyword("放门口就行")
        ('今天发', None)
        """
        text = normalize_text(message)
        return next((word for word, normal in self._keywords if normal in text), None)


_SUFFIXES = (
    "维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "自治州", "地区", "省", "市", "区", "县", "盟",
)


def _short(name: str) -> str:
    """Division name without its administrative suffix, so 浙江 matches 浙江省.

    >>> _short("广西壮族自治区"), _short("杭州市"), _short("西湖区")
    ('广西', '杭州', '西湖')
    """
    name = name.strip()
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name
