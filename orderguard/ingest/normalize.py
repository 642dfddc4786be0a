"""Pure helpers every channel adapter uses to normalise a payload.

Time: channels stamp local Beijing time (``Asia/Shanghai``) as strings, epoch seconds
or epoch milliseconds; everything becomes tz-aware UTC here. Money: yuan strings,
yuan floats or integer fen all become integer fen, rounded half-up on the fen so that
``"19.90"`` is exactly 1990. Identity: ``event_version`` turns the channel's update
time into the version that makes ingest idempotent. Privacy: personal identifiers are
keyed-hashed (HMAC-SHA256) before they enter the domain.
"""

from __future__ import annotations

import functools
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from orderguard.clock import as_utc
from orderguard.errors import InvalidInputError, UnknownStatusError
from orderguard.schema import LIFECYCLE_RANK, EventKind, OrderStatus, Phone
from orderguard.settings import IngestLimits

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: No order costs more; larger values are refused before any arithmetic on them.
_MAX_YUAN = Decimal(10) ** 12

#: Epoch values above this are milliseconds (2001-09-09 in seconds is 1e9; in ms 1e12).
_MS_THRESHOLD = 10_000_000_000


_CASE_INSENSITIVE = frozenset({"phone", "id_card", "wifi"})
#: What :meth:`PiiHasher.hash` removes before hashing: whitespace and dashes.
_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True, slots=True)
class PiiHasher:
    """Keyed hashing of personal identifiers (phone, id card, WiFi BSSID, names).

    A plain SHA-256 of a phone number is reversible by enumerating the ~10^11 numbers;
    an HMAC with a deployment secret is not. The same key must be used everywhere in a
    deployment so hashes match across channels.

    >>> h = PiiHasher(b"k")
    >>> h.hash("phone", "13800138000") == h.hash("phone", "138 0013 8000")
    True
    >>> len(h.hash("phone", "13800138000"))
    32
    """

    key: bytes

    def hash(self, kind: str, value: str) -> str:
        """HMAC of ``value`` with whitespace and dashes removed, namespaced by ``kind``.

        Case is folded only for identifiers that are case-insensitive by nature (id-card
        check letter ``X``, hexadecimal BSSIDs); channel ciphertext tokens keep their case.
        """
        clean = _SEPARATORS.sub("", value)
        if kind in _CASE_INSENSITIVE:
            clean = clean.upper()
        return hmac.digest(self.key, f"{kind}:{clean}".encode(), "sha256")[:16].hex()


#: The bounds of :class:`IngestLimits` when a caller sets none.
DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What parsing needs besides the payload: receive time, the PII key and the input bounds."""

    received_at: datetime
    hasher: PiiHasher
    limits: IngestLimits = DEFAULT_LIMITS


def parse_time(value: object, *, field: str) -> datetime:
    """Channel timestamp → tz-aware UTC.

    Accepts ``"YYYY-MM-DD HH:MM:SS"`` (Beijing time), ISO-8601 with an offset, epoch
    seconds or epoch milliseconds (int, or digits in a string).

    >>> parse_time("2024-11-11 08:00:00", field="t").isoformat()
    '2024-11-11T00:00:00+00:00'
    >>> parse_time(1731283200000, field="t") == parse_time(1731283200, field="t")
    True
    """
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInputError.must(field, "a timestamp", value)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        if (isinstance(value, float) and not math.isfinite(value)) or (isinstance(value, str) and len(value) > 20):
            raise InvalidInputError.must(field, "an epoch time within the calendar", value)
        number = int(value)
        if number <= 0:
            raise InvalidInputError.must(field, "a positive epoch time", value)
        seconds = number / 1000 if number > _MS_THRESHOLD else number
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise InvalidInputError.must(field, "an epoch time within the calendar", value) from e
    if isinstance(value, str):
        moment = _text_time(value)
        if isinstance(moment, str):
            raise InvalidInputError.must(field, moment, value)
        return moment
    raise InvalidInputError.must(field, "a timestamp", value)


@functools.lru_cache(maxsize=1 << 16)
def _text_time(value: str) -> datetime | str:
    """A time string → UTC, or what it must be instead (the caller names the field).

    Cached: every document of an order repeats its creation and payment times, and an
    import reads an order's three or four documents close together: two lookups in three
    were repeats on the bench's simulated shop. The zone conversion is the costly part.
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        return "a 'YYYY-MM-DD HH:MM:SS' time"
    try:
        return as_utc(parsed)
    except (OverflowError, ValueError):  # year 1 with a positive offset, year 9999 with a negative one
        return "a time within the calendar"


def parse_optional_time(value: object, *, field: str) -> datetime | None:
    """Like :func:`parse_time` but empty values (None, "", 0, "0") mean "not yet"."""
    if value in (None, "", 0, "0") or value == "0000-00-00 00:00:00":
        return None
    return parse_time(value, field=field)


def yuan_to_fen(value: object, *, field: str) -> int:
    """Yuan amount (string or number) → integer fen, half-up on the fen.

    >>> yuan_to_fen("19.90", field="p"), yuan_to_fen(0.1 + 0.2, field="p"), yuan_to_fen(5, field="p")
    (1990, 30, 500)
    """
    plain = _plain_fen(value)
    if plain is not None:
        return plain
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidInputError.must(field, "an amount in yuan", value)
    try:
        amount = Decimal(str(value))
    except InvalidOperation as e:
        raise InvalidInputError.must(field, "an amount in yuan", value) from e
    if not amount.is_finite() or amount < 0:
        raise InvalidInputError.must(field, "a non-negative amount in yuan", value)
    if amount > _MAX_YUAN:  # beyond any order, and beyond what quantize can hold ("1e400")
        raise InvalidInputError.must(field, f"an amount of at most {_MAX_YUAN:,} yuan", value)
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


#: A plain yuan amount: ASCII digits with at most two decimals, nothing to round.
_PLAIN_YUAN = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?")


def _plain_fen(value: object) -> int | None:
    """Fen of the amounts channels nearly always send (``"19.90"``, ``"5"``, ``5``) by integer arithmetic, or
    None for anything else, which :func:`yuan_to_fen` reads with ``Decimal`` (a third of its calls' cost).

    >>> _plain_fen("19.9"), _plain_fen("007"), _plain_fen(3), _plain_fen("1.005"), _plain_fen(True)
    (1990, 700, 300, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 100 if 0 <= value <= _MAX_YUAN else None
    if not isinstance(value, str) or (match := _PLAIN_YUAN.fullmatch(value)) is None:
        return None
    cents = match[2] or ""
    amount = int(match[1]) * 100 + int(cents.ljust(2, "0"))
    return amount if amount <= _MAX_YUAN * 100 else None


def fen(value: object, *, field: str) -> int:
    """An amount already in fen (int or digit string) → int, refusing negatives.

    >>> fen("1990", field="p")
    1990
    """
    if isinstance(value, bool):
        raise InvalidInputError.must(field, "an integer amount in fen", value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit() \
            and len(value) <= 30:
        number = int(value)
    else:
        raise InvalidInputError.must(field, "an integer amount in fen", value)
    if number < 0:
        raise InvalidInputError.must(field, "a non-negative amount in fen", value)
    return number


def event_version(update_time: datetime, *, kind: EventKind, status: OrderStatus) -> int:
    """Version of an event from the channel's update time.

    ``epoch ms × 1000 + kind × 100 + lifecycle rank``: newer updates always win; two
    documents stamped in the same millisecond are ordered by kind and then by how far
    along the life cycle they are, deterministically, so arrival order never matters.

    >>> t = parse_time(1731283200000, field="t")
    >>> event_version(t, kind=EventKind.ORDER, status=OrderStatus.PAID) < event_version(
    ...     t, kind=EventKind.ORDER, status=OrderStatus.SHIPPED)
    True
    """
    ms = (update_time - _EPOCH) // timedelta(milliseconds=1)  # exact, unlike float timestamps
    kind_rank = list(EventKind).index(kind)
    return ms * 1000 + kind_rank * 100 + LIFECYCLE_RANK[status]


def map_status(table: Mapping[str, OrderStatus], code: object, *, field: str) -> OrderStatus:
    """Look up a channel status code in the adapter's total mapping table.

    An unknown code is an error, never a silent default: a new platform status must be
    mapped deliberately.

    >>> map_status({"1": OrderStatus.PAID}, 1, field="status")
    <OrderStatus.PAID: 'paid'>
    """
    try:
        return table[str(code)]
    except KeyError as e:
        known = ", ".join(sorted(table))
        raise UnknownStatusError.must(field, f"one of the channel's status codes ({known})", code) from e


_MASK = re.compile(r"[*＊xX]+")


_PHONE_TEXT = re.compile(r"[+\d\s()\-]{7,24}")


def phone_from(value: str | None, *, hasher: PiiHasher, encrypted_token: str | None = None,
               field: str = "phone") -> Phone | None:
    """Build a :class:`Phone` from what a channel reveals.

    * a clear number: hash of the digits, prefix = first 7 digits (carrier segment and
      home city), shown as ``138******00``: the prefix and the shown digits together
      never make the whole number;
    * a masked number (``138****1234``) with an encrypted token: hash of the token
      (stable within that channel), prefix = the clear leading digits;
    * a masked number alone: hash of the masked form (weak identity, still useful).

    Clear text that is not a phone number (letters, too few or too many digits) is an
    error about ``field``.

    >>> h = PiiHasher(b"k")
    >>> (phone_from("+86 138-0013-8000", hasher=h).prefix, phone_from("13800138000", hasher=h).masked)
    ('1380013', '138******00')
    >>> p = phone_from("138****8000", hasher=h, encrypted_token="~AbC~")
    >>> (p.prefix, p.masked)
    ('138', '138****8000')
    """
    if not value and not encrypted_token:
        return None
    text = (value or "").strip()
    digits = re.sub(r"\D", "", text)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if text and not _MASK.search(text):
        if not _PHONE_TEXT.fullmatch(text) or not 7 <= len(digits) <= 15:
            raise InvalidInputError.must(field, "a phone number (7 to 15 digits) or a masked one like 138****1234",
                                         text)
        return Phone(hash=hasher.hash("phone", digits), prefix=digits[:7],
                     masked=f"{digits[:3]}{'*' * (len(digits) - 5)}{digits[-2:]}")
    lead = re.match(r"\D*(\d+)", text)
    prefix = lead.group(1) if lead and _MASK.search(text) else None
    if prefix is not None and (prefix.startswith("86") and len(prefix) > 3):
        prefix = prefix[2:]
    identity = encrypted_token or text
    return Phone(hash=hasher.hash("phone-token" if encrypted_token else "phone-masked", identity),
                 prefix=prefix[:7] if prefix else None, masked=text or None)


_ID_CARD = re.compile(r"\d{17}[\dX]")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_card(number: str) -> bool:
    """Whether ``number`` is a well-formed 18-character resident identity number (GB 11643-1999): 17 digits, a
    real birth date from 1900 on, and the ISO 7064 MOD 11-2 check character.

    >>> valid_id_card("11010519491231002X"), valid_id_card("110105194912310021"), valid_id_card("1994293788X")
    (True, False, False)
    """
    if not _ID_CARD.fullmatch(number):
        return False
    try:
        born = datetime.strptime(number[6:14], "%Y%m%d")
    except ValueError:
        return False
    if born.year < 1900:
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def id_card_from(value: str | None, *, hasher: PiiHasher, field: str) -> str | None:
    """HMAC of a clear resident identity number, or ``None`` when none was given.

    A channel that sends the number in clear guarantees its format, so a malformed one
    (wrong length, impossible birth date, bad check character) is an error about
    ``field`` rather than a hash of garbage that would never match anything.
    """
    if value is None or not value.strip():
        return None
    number = re.sub(r"[\s\-]", "", value).upper()
    if not valid_id_card(number):
        raise InvalidInputError.must(field, "an 18-character resident identity number with a valid birth date and "
                                            "check character", value)
    return hasher.hash("id_card", number)
