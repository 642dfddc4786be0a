"""Buyers: people with homes, phones and devices, and their accounts on each channel.

A :class:`Person` is the real human (phone, id card, home, phone handset, home WiFi);
an :class:`Account` is that person's identity on one channel. Honest people sometimes
share things -- a household shares WiFi and address, one person may hold accounts on
two channels with the same phone -- which is the background noise abuse hides in.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from orderguard.schema import Channel
from simulate import geo, identity
from simulate.plain import PlainAddress, PlainBuyer, PlainClient
from simulate.rand import Weighted, chance

#: Median account age at order time per channel, in days (marketplace accounts are old,
#: the own mini-program's membership is young).
_MEDIAN_AGE_DAYS = MappingProxyType({
    Channel.TMALL: 1500, Channel.JD: 1300, Channel.DOUYIN: 700, Channel.KUAISHOU: 600,
    Channel.WECHAT: 900, Channel.SITE: 150,
})
_MEMBER_LEVELS = Weighted.of([(0, 0.55), (1, 0.22), (2, 0.13), (3, 0.07), (4, 0.03)])


@dataclass(frozen=True, slots=True)
class Home:
    """Where a person lives: a district of a city and the text below it."""

    city: geo.City
    district: geo.District
    detail: str

    def address(self, receiver: str) -> PlainAddress:
        """The home as a delivery address for ``receiver``."""
        return PlainAddress(self.city.province, self.city.city, self.district.name, self.detail, receiver)


@dataclass(frozen=True, slots=True)
class Person:
    """A human buyer with clear personal data (the simulator's ground truth)."""

    name: str
    phone: str
    id_card: str | None
    home: Home
    device_id: str
    user_agent: str
    home_wifi: str | None
    home_ip: str

    def address(self) -> PlainAddress:
        """Delivery to their own home, in their own name."""
        return self.home.address(self.name)

    def client(self, rng: random.Random, *, mobile_share: float = 0.4) -> PlainClient:
        """Device and network of one visit: home WiFi, or the carrier's shared gateway."""
        if self.home_wifi is None or chance(rng, mobile_share):
            return PlainClient(self.device_id, identity.mobile_ip(rng), None, self.user_agent)
        return PlainClient(self.device_id, self.home_ip, self.home_wifi, self.user_agent)


@dataclass(frozen=True, slots=True)
class Account:
    """One person's buyer account on one channel."""

    channel: Channel
    account_id: str
    person: Person
    member_level: int
    registered_at: datetime

    def buyer(self) -> PlainBuyer:
        """The buyer block of this account's orders."""
        return PlainBuyer(self.account_id, self.person.phone, self.person.id_card, self.member_level,
                          self.registered_at)


def account_age(rng: random.Random, channel: Channel) -> timedelta:
    """How long before an order an ordinary account was registered (log-normal spread).

    >>> account_age(random.Random(0), Channel.TMALL) > timedelta(0)
    True
    """
    days = _MEDIAN_AGE_DAYS[channel] * math.exp(rng.gauss(0.0, 0.9))
    return timedelta(days=min(max(days, 1.0), 5000.0), seconds=rng.randint(0, 86_399))


class Population:
    """Creates people and accounts and remembers returning buyers per channel.

    A builder owned by one simulation run (never shared): it guarantees unique account
    ids and phone numbers and keeps, per channel, the accounts that may order again.

    Args:
        rng: the population's own random stream.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._cities = geo.city_picker()
        self._segments = identity.segment_picker()
        self._account_ids: set[str] = set()
        self._phones: set[str] = set()
        self._returning: dict[Channel, list[Account]] = {c: [] for c in Channel}
        self._households: list[Person] = []

    @property
    def rng(self) -> random.Random:
        """The stream people are drawn from."""
        return self._rng

    def phone(self, *, virtual: bool = False, prefix: str | None = None) -> str:
        """A fresh, never-issued mobile number (virtual-operator segment if asked).

        ``prefix`` fixes the leading digits, e.g. one batch of numbers bought together.
        """
        rng = self._rng
        while True:
            lead = prefix or (rng.choice(identity.VIRTUAL_SEGMENTS) if virtual else self._segments.draw(rng))
            number = identity.mobile(rng, lead)
            if number not in self._phones:
                self._phones.add(number)
                return number

    def home(self, *, city: geo.City | None = None, detail: str | None = None) -> Home:
        """A random home, optionally in a given city or at a given address text."""
        rng = self._rng
        where = city or self._cities.draw(rng)
        return Home(where, rng.choice(where.districts), detail or geo.home_detail(rng))

    def person(self, *, home: Home | None = None, virtual_phone: bool = False, id_card_share: float = 0.15,
               wifi: str | None = None, ip: str | None = None, device: str | None = None,
               household_share: float = 0.0, surname: str | None = None, phone: str | None = None,
               user_agent: str | None = None, name: str | None = None, id_card: str | None = None,
               has_wifi: bool | None = None) -> Person:
        """A new person; by default with their own home, handset and home WiFi.

        Every keyword fixes one attribute instead of drawing it (abuse rings share them).
        ``household_share`` is the chance they move in with an earlier person (same home,
        WiFi and broadband IP, different phone and handset).
        """
        rng = self._rng
        mate = rng.choice(self._households) if household_share and self._households and chance(
            rng, household_share) else None
        if mate is not None:
            home, wifi, ip = mate.home, mate.home_wifi, mate.home_ip
        where = home or self.home()
        card = id_card or (identity.id_card(rng, adcode=rng.choice(where.city.districts).adcode)
                           if chance(rng, id_card_share) else None)
        if has_wifi is None:
            has_wifi = wifi is not None or chance(rng, 0.85)
        person = Person(
            name=name or identity.person_name(rng, surname=surname),
            phone=phone or self.phone(virtual=virtual_phone or chance(rng, 0.008)),
            id_card=card,
            home=where,
            device_id=device or identity.device_id(rng),
            user_agent=user_agent or identity.user_agent(rng),
            home_wifi=(wifi or identity.bssid(rng)) if has_wifi else None,
            home_ip=ip or identity.home_ip(rng),
        )
        if household_share and mate is None and len(self._households) < 5000:
            self._households.append(person)
        return person

    def account(self, person: Person, channel: Channel, *, registered_at: datetime,
                member_level: int | None = None) -> Account:
        """A new account of ``person`` on ``channel`` with a never-issued id."""
        rng = self._rng
        while True:
            account_id = identity.account_id(rng, channel)
            if account_id not in self._account_ids:
                self._account_ids.add(account_id)
                break
        level = _MEMBER_LEVELS.draw(rng) if member_level is None else member_level
        return Account(channel, account_id, person, level, registered_at.replace(microsecond=0))

    def enroll(self, account: Account) -> None:
        """Make an honest account eligible to order again later."""
        self._returning[account.channel].append(account)

    def returning(self, channel: Channel) -> Account | None:
        """A random earlier honest buyer of ``channel``, or ``None`` if there is none yet."""
        pool = self._returning[channel]
        return self._rng.choice(pool) if pool else None
