"""What of a buyer's personal data each role sees, in every response and page, and what an export holds.

The order log holds no clear phone, id-card number, street, device id or IP
(``orderguard.ingest.protect``): only keyed hashes and masked display forms. This module
decides, from the caller's roles, how much even of that is shown:

* ``CASE`` (reviewers, admins — they decide on the order and may call the buyer back
  through the channel): the phone as the channel masks it (``138****1234``), the address
  down to the first characters of the street (``文三路****``), the pick-up keyword.
* ``SUMMARY`` (every other role: operations, data scientists, marketing, the order
  system): the same masked phone and the address to the district only; nothing of the
  street but the pick-up keyword, which is a risk signal, not a person.
* Exports (files that leave the service: segments, datasets) carry only the keyed
  hashes (:func:`export_identity`), which join across files of one deployment and mean
  nothing elsewhere.

No view ever carries an id-card number: only whether one is on file.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from orderguard.access import Role
from orderguard.ingest.protect import mask_detail
from orderguard.schema import Address, Party, Phone

#: Roles that work cases and so see the street's first characters.
CASE_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})


class Disclosure(StrEnum):
    """How much of a buyer's personal data a caller sees (see the module docstring)."""

    CASE = "case"
    SUMMARY = "summary"


def disclosure_for(roles: Iterable[Role]) -> Disclosure:
    """The disclosure of a caller holding ``roles``.

    >>> disclosure_for([Role.REVIEWER]), disclosure_for([Role.MARKETING, Role.OPERATIONS])
    (<Disclosure.CASE: 'case'>, <Disclosure.SUMMARY: 'summary'>)
    """
    return Disclosure.CASE if CASE_ROLES.intersection(roles) else Disclosure.SUMMARY


def masked_phone(phone: Phone | None) -> str | None:
    """A phone's display form: the channel's mask, or the clear prefix's first 3 digits and a mask.

    >>> masked_phone(Phone("h", prefix="1380013", masked="138****8000")), masked_phone(Phone("h", prefix="1380013"))
    ('138****8000', '138********')
    >>> masked_phone(Phone("h")) is None
    True
    """
    if phone is None:
        return None
    if phone.masked:
        return phone.masked
    return f"{phone.prefix[:3]}********" if phone.prefix else None


def buyer_view(buyer: Party, disclosure: Disclosure) -> dict[str, Any]:
    """The buyer as a response or page shows them (the same for both disclosures today: the phone is masked
    for everyone, the id card is only ever "on file")."""
    return {"account_id": buyer.account_id, "phone": masked_phone(buyer.phone),
            "id_card_on_file": buyer.id_card_hash is not None, "member_level": buyer.member_level,
            "registered_at": buyer.registered_at}


def address_view(address: Address | None, disclosure: Disclosure) -> dict[str, Any] | None:
    """The delivery address as a response or page shows it: to the district, plus the masked street for
    ``CASE``; the pick-up keyword for both."""
    if address is None:
        return None
    street = None
    if disclosure is Disclosure.CASE:
        # an address not stored by ingest (a test, a simulation) still holds its clear detail: mask it here too
        street = address.detail if address.key is not None else mask_detail(address.detail)
    return {"province": address.province, "city": address.city, "district": address.district,
            "street": street, "pickup": address.pickup}


def export_identity(buyer: Party, address: Address | None) -> dict[str, str | None]:
    """What an export file holds of a buyer's personal data: keyed hashes only (joinable, not readable)."""
    return {"phone_hash": buyer.phone.hash if buyer.phone else None, "id_card_hash": buyer.id_card_hash,
            "address_hash": address.key if address is not None else None}
