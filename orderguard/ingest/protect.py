"""Personal data at rest: what ingest keeps of an address, a device id and an IP address.

The order log, and everything derived from it, must not hold a whole address, device
id or IP (a phone and an id card are already hashed by the adapters). Features only ever
*compare* these values (same device, same address), so a keyed hash (HMAC, the
deployment's ``ORDERGUARD_PII__HASH_KEY``) serves them as well as the clear value does,
and without the key nobody can enumerate it back. Encryption would let a reviewer read
the clear text, but then every store, backup and export holds it readable to anyone
with the one key; a reviewer sees the masked form instead, as the channels themselves
show addresses to sellers.

Applied once, in ``orderguard.ingest.service.parse_payload`` (every way in), after the
bounds check and before storing; deterministic, so a retried payload is still a
duplicate of the stored one.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from orderguard.enrich import address_defects, address_text, pickup_keyword
from orderguard.errors import InvalidInputError
from orderguard.ingest.normalize import PiiHasher, phone_from
from orderguard.schema import Address, ClientInfo, OrderDetails, OrderEvent

#: Characters of the street detail shown in clear: the road's name, rarely more.
SHOWN = 4


def mask_detail(detail: str) -> str:
    """The display form of a street detail: its first :data:`SHOWN` characters, the rest masked.

    >>> mask_detail("文三路 88 号 3 幢 2 单元 301 室"), mask_detail("驿站")
    ('文三路 ****', '****')
    """
    text = detail.strip()
    return f"{text[:SHOWN]}****" if len(text) > SHOWN else "****"


def protect_address(address: Address, hasher: PiiHasher) -> Address:
    """The address as stored: masked detail, keyed hash of the whole address, pick-up keyword, defects."""
    if address.key is not None:
        return address  # already protected (an address is protected once)
    return dataclasses.replace(address, detail=mask_detail(address.detail),
                               key=hasher.hash("address", address_text(address)),
                               pickup=pickup_keyword(address), defects=address_defects(address))


#: Prefix length of the network an IP is grouped by: one subscriber line, office or campus.
IPV4_PREFIX = 24
IPV6_PREFIX = 48


def ip_network(ip: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of a clear IP, ``None`` when it does not parse.

    An IPv4-mapped IPv6 address is grouped with its IPv4 network: it is the same line.

    >>> ip_network("203.0.113.77"), ip_network("2001:db8:1:2::9"), ip_network("::ffff:203.0.113.5")
    ('203.0.113.0/24', '2001:db8:1::/48', '203.0.113.0/24')
    >>> ip_network("not an ip") is None
    True
    """
    quick = _dotted_quad_network(ip)
    return quick if quick is not None else network_by_ipaddress(ip)


def network_by_ipaddress(ip: str) -> str | None:
    """:func:`ip_network` by the standard library alone, for every input: the general path, and the
    reference its dotted-quad shortcut is held to."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = IPV4_PREFIX if isinstance(address, ipaddress.IPv4Address) else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def _dotted_quad_network(ip: str) -> str | None:
    """The /24 of a plain dotted-quad IPv4 (``203.0.113.77``), without ``ipaddress`` (a quarter of protecting
    an order went there); None for anything else, which :func:`ip_network` leaves to ``ipaddress``.

    >>> _dotted_quad_network(" 10.1.2.3 "), _dotted_quad_network("10.01.2.3"), _dotted_quad_network("::1")
    ('10.1.2.0/24', None, None)
    """
    parts = ip.strip().split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if not (part.isascii() and part.isdigit() and len(part) <= 3 and int(part) <= 255
                and (part[0] != "0" or part == "0")):
            return None
    return f"{parts[0]}.{parts[1]}.{parts[2]}.0/{IPV4_PREFIX}"


def protect_client(client: ClientInfo, hasher: PiiHasher) -> ClientInfo:
    """Device id and IP as keyed hashes (the WiFi BSSID arrives hashed already), plus the keyed hash of the
    IP's network: once only the IP's hash is stored, the range it belongs to can never be told again."""
    if client.ip_prefix is not None:
        return client  # already protected (the prefix exists only on a protected client)
    network = ip_network(client.ip) if client.ip else None
    return dataclasses.replace(client, device_id=hasher.hash("device", client.device_id) if client.device_id else None,
                               ip=hasher.hash("ip", client.ip) if client.ip else None,
                               ip_prefix=hasher.hash("ip_prefix", network) if network else None)


def protect_details(details: OrderDetails, hasher: PiiHasher) -> OrderDetails:
    """An order snapshot with its address, device id and IP in the form they are stored in."""
    address = protect_address(details.address, hasher) if details.address is not None else None
    client = protect_client(details.client, hasher) if details.client is not None else None
    if address is details.address and client is details.client:
        return details
    return dataclasses.replace(details, address=address, client=client)


def protect(event: OrderEvent, hasher: PiiHasher) -> OrderEvent:
    """``event`` with its address, device id and IP in the form they are stored in."""
    if event.details is None:
        return event
    details = protect_details(event.details, hasher)
    return event if details is event.details else dataclasses.replace(event, details=details)


#: What ``stored_key`` can key: the values allow and deny lists name.
KEY_KINDS = ("phone", "device", "ip", "address")


def stored_key(kind: str, value: str, hasher: PiiHasher) -> str:
    """The stored (keyed) form of a clear value, as allow and deny lists must name it.

    ``address`` is written ``province|city|district|detail``.

    >>> h = PiiHasher(b"k")
    >>> stored_key("device", "dev-1", h) == protect_client(ClientInfo(device_id="dev-1"), h).device_id
    True
    >>> stored_key("address", "浙江省|杭州市|西湖区|文三路 1 号", h) == protect_address(
    ...     Address("浙江省", "杭州市", "西湖区", "文三路1号"), h).key
    True
    """
    if kind == "phone":
        phone = phone_from(value, hasher=hasher, field="value")
        assert phone is not None
        return phone.hash
    if kind in ("device", "ip"):
        return hasher.hash(kind, value)
    if kind == "address":
        parts = value.split("|")
        if len(parts) != 4 or not all(p.strip() for p in parts):
            raise InvalidInputError.must("value", "an address written province|city|district|detail", value)
        key = protect_address(Address(parts[0], parts[1], parts[2], parts[3]), hasher).key
        assert key is not None
        return key
    raise InvalidInputError.must("kind", f"one of {', '.join(KEY_KINDS)}", kind)
