"""How a sales platform signs the pushes it sends to ``POST /v1/orders/{channel}``, and how they are checked.

Every channel adapter states its platform's published scheme as a :class:`WebhookSigning`
(``ADAPTERS[channel].signing``): where the signature, the timestamp, the sign method, the
app key and the nonce travel (header or query parameter), which digests the platform offers
and the exact bytes it signs (``message``). One engine then does what every scheme shares:

* :meth:`WebhookSigning.sign` is what the platform does: given the shop's secret, the raw
  body, the time and the app key it returns the headers and query parameters to send
  (tests, the demo and the simulator push through it);
* :meth:`WebhookSigning.verify` is what orderguard does: recompute the signature over the
  raw body with the shop's secret, compare in constant time, then refuse a timestamp
  further than ``tolerance`` from now (either way), naming the reason in a
  :class:`WebhookRejected` (401). It returns the push's time and a replay id (the
  recomputed signature, in canonical case, so a replay with the hex case flipped is still
  recognised) for the replay guard of ``orderguard.ingest.webhooks``.

Where a platform signs its parameters but not the body (TOP, JOS, Kuaishou sign API calls,
whose business parameters travel among the signed parameters), the body is made part of what
is signed in the position the platform gives its business parameters: an unsigned body could
otherwise be swapped for another under a captured signature.

Everything here is pure: no clock (``now`` and the push time are arguments), no network, no
randomness (the nonce a scheme needs is derived from the body and time when not given).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from orderguard.clock import SHOP_TZ
from orderguard.errors import OrderGuardError, excerpt

#: The app key :meth:`WebhookSigning.sign` sends when the caller names none (development and tests).
DEVELOPMENT_APP_KEY = "orderguard-development"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Unix times outside this range (seconds) are refused as unparseable rather than overflowing.
_UNIX_RANGE_S = (946_684_800, 4_102_444_800)  # 2000-01-01 … 2100-01-01


class WebhookRejected(OrderGuardError):  # noqa: N818 - reads as the outcome, like the 401 it becomes
    """A channel push whose signature, time or freshness does not hold; ``reason`` names which."""

    code = "webhook_rejected"
    http_status = 401
    reason: str = ""

    @classmethod
    def because(cls, reason: str, detail: str, *, field: str) -> WebhookRejected:
        """The error for ``reason`` (a few stable words: ``bad signature``, ``stale timestamp`` …).

        >>> WebhookRejected.because("replayed", "seen before", field="sign").message
        'replayed: seen before'
        """
        error = cls(f"{reason}: {detail}", field=field)
        error.reason = reason
        return error


Location = Literal["header", "query"]


@dataclass(frozen=True, slots=True)
class PushField:
    """One value a push carries: its name, where it travels, and what it holds (for the API docs)."""

    name: str
    location: Location
    meaning: str

    @property
    def label(self) -> str:
        """How messages and docs name it.

        >>> PushField("sign", "query", "").label
        '`sign` (query parameter)'
        """
        return f"`{self.name}` ({'header' if self.location == 'header' else 'query parameter'})"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a signed push sends besides its body."""

    headers: dict[str, str]
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class VerifiedPush:
    """A push whose signature holds and whose time is within the tolerance.

    Attributes:
        timestamp: when the platform says it signed the push (aware UTC).
        replay_id: the recomputed signature in canonical case: equal for equal pushes.
    """

    timestamp: datetime
    replay_id: str


@dataclass(frozen=True, slots=True)
class SignedParts:
    """What a scheme's ``message`` builder may put in the signed bytes.

    ``params`` are the signed query parameters (every one but the signature) for schemes that
    sign their parameters, else empty; the other texts are as sent ("" when a scheme has no
    such field).
    """

    secret: bytes
    body: bytes
    params: Mapping[str, str]
    timestamp: str
    app_key: str = ""
    nonce: str = ""


@dataclass(frozen=True, slots=True)
class Digest:
    """One sign method: ``compute(secret, message)`` → signature text; ``fold_case`` for hex digests, whose
    case carries no meaning (compared and remembered upper-cased)."""

    compute: Callable[[bytes, bytes], str]
    fold_case: bool = True


class TimeFormat(StrEnum):
    """How a platform writes the push time."""

    BEIJING_SECONDS = "beijing_seconds"  # "2024-11-11 10:00:00", Asia/Shanghai (TOP, JOS)
    UNIX_SECONDS = "unix_seconds"  # "1731290400"
    UNIX_MILLIS = "unix_millis"  # "1731290400000" (Kuaishou)

    def render(self, moment: datetime) -> str:
        """``moment`` as the platform writes it (truncated to the format's resolution).

        >>> at = datetime(2024, 11, 11, 2, 0, 0, 999_999, tzinfo=UTC)
        >>> [f.render(at) for f in TimeFormat]
        ['2024-11-11 10:00:00', '1731290400', '1731290400999']
        """
        if self is TimeFormat.BEIJING_SECONDS:
            return moment.astimezone(SHOP_TZ).strftime("%Y-%m-%d %H:%M:%S")
        if self is TimeFormat.UNIX_SECONDS:
            return str((moment - _EPOCH) // timedelta(seconds=1))
        return str((moment - _EPOCH) // timedelta(milliseconds=1))

    def parse(self, text: str) -> datetime:
        """The aware UTC time ``text`` names.

        >>> TimeFormat.BEIJING_SECONDS.parse("2024-11-11 10:00:00").isoformat()
        '2024-11-11T02:00:00+00:00'

        Raises:
            ValueError: ``text`` is not a time in this format.
        """
        value = text.strip()
        if self is TimeFormat.BEIJING_SECONDS:
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHOP_TZ).astimezone(UTC)
        if not value.isdigit() or len(value) > 16:
            raise ValueError("not a unix time")
        amount = int(value)
        seconds = amount if self is TimeFormat.UNIX_SECONDS else amount // 1000
        if not _UNIX_RANGE_S[0] <= seconds < _UNIX_RANGE_S[1]:
            raise ValueError("out of range")
        unit = timedelta(seconds=1) if self is TimeFormat.UNIX_SECONDS else timedelta(milliseconds=1)
        return _EPOCH + amount * unit

    @property
    def example(self) -> str:
        """An example for messages and docs."""
        return {TimeFormat.BEIJING_SECONDS: "2024-11-11 10:00:00 (Beijing time)",
                TimeFormat.UNIX_SECONDS: "1731290400 (unix seconds)",
                TimeFormat.UNIX_MILLIS: "1731290400000 (unix milliseconds)"}[self]


# --------------------------------------------------------------------------- digests and message helpers


def _md5_wrapped_upper(secret: bytes, message: bytes) -> str:
    return hashlib.md5(secret + message + secret).hexdigest().upper()


def _hmac_md5_upper(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.md5).hexdigest().upper()


def _hmac_sha256_upper(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest().upper()


def _hmac_sha256_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _hmac_sha256_base64(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode("ascii")


def _md5_hex(_: bytes, message: bytes) -> str:
    return hashlib.md5(message).hexdigest()


def _sha1_hex(_: bytes, message: bytes) -> str:
    return hashlib.sha1(message).hexdigest()


#: MD5 of secret + message + secret, upper-case hex (TOP ``md5``, JOS).
MD5_WRAPPED_UPPER = Digest(_md5_wrapped_upper)
#: HMAC-MD5 keyed with the secret, upper-case hex (TOP ``hmac``).
HMAC_MD5_UPPER = Digest(_hmac_md5_upper)
#: HMAC-SHA256 keyed with the secret, upper-case hex (TOP ``hmac-sha256``).
HMAC_SHA256_UPPER = Digest(_hmac_sha256_upper)
#: HMAC-SHA256 keyed with the secret, lower-case hex (Doudian ``hmac-sha256``, the own site).
HMAC_SHA256_HEX = Digest(_hmac_sha256_hex)
#: HMAC-SHA256 keyed with the secret, base64 (Kuaishou ``HMAC_SHA256``): case matters.
HMAC_SHA256_BASE64 = Digest(_hmac_sha256_base64, fold_case=False)
#: MD5 of the message (which carries the secret itself), lower-case hex (Doudian, Kuaishou ``MD5``).
MD5_HEX = Digest(_md5_hex)
#: SHA-1 of the message (which carries the token itself), lower-case hex (WeChat).
SHA1_HEX = Digest(_sha1_hex)


def concat_sorted(params: Mapping[str, str | bytes], *, pair: bytes = b"", between: bytes = b"") -> bytes:
    """Parameters sorted by name (byte order), each as name + ``pair`` + value, joined by ``between``;
    empty values are left out, as the platforms leave them out of the signature.

    >>> concat_sorted({"foo": "1", "bar": "2", "foo_bar": "3", "foobar": "4", "empty": ""})
    b'bar2foo1foo_bar3foobar4'
    >>> concat_sorted({"b": "2", "a": b"1"}, pair=b"=", between=b"&")
    b'a=1&b=2'
    """
    items = sorted((name.encode(), value if isinstance(value, bytes) else value.encode())
                   for name, value in params.items() if value)
    return between.join(name + pair + value for name, value in items)


def derived_nonce(body: bytes, timestamp: str) -> str:
    """A nonce for :meth:`WebhookSigning.sign` without randomness: different for different pushes.

    >>> derived_nonce(b"{}", "1731290400")
    '879561639'
    """
    return str(int.from_bytes(hashlib.sha256(timestamp.encode() + b"\n" + body).digest()[:4], "big"))


def span(delta: timedelta) -> str:
    """A duration as people read it in a message.

    >>> span(timedelta(minutes=7, seconds=3)), span(timedelta(hours=2)), span(timedelta(seconds=1.5))
    ('7 min 3 s', '2 h 0 min', '1.5 s')
    """
    seconds = delta.total_seconds()
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds:g} s"


class _Lookup:
    """The push's values by field: headers case-insensitively (HTTP), query parameters exactly."""

    def __init__(self, headers: Mapping[str, str], params: Mapping[str, str]) -> None:
        self.headers = {name.lower(): value for name, value in headers.items()}
        self.params = params

    def get(self, where: PushField) -> str | None:
        if where.location == "header":
            return self.headers.get(where.name.lower())
        return self.params.get(where.name)


# --------------------------------------------------------------------------- the scheme


@dataclass(frozen=True, slots=True)
class WebhookSigning:
    """One platform's push-signing scheme (see the module docstring).

    Attributes:
        platform: the platform's name, for messages and docs.
        source: where the scheme is published.
        signature: where the signature travels.
        timestamp: where the push time travels, written as ``time_format``.
        message: the exact bytes the platform signs.
        digests: sign-method name → digest; ``default_method`` is what :meth:`sign` uses.
        method: where the sign method is named; ``None`` when the signature text itself starts
            with ``<method>=`` (``prefixed``) or there is one method only.
        implicit_method: the method assumed when ``method`` is absent from a push (``None``:
            the platform always names it, and a push without is refused).
        prefixed: the signature reads ``<method>=<digest>`` (the own site's ``sha256=…``).
        app_key: where the app key (app id) travels, when the platform sends one.
        nonce: where a nonce travels, when the platform sends one.
        signs_query: every query parameter but the signature is signed (TOP, JOS, Kuaishou), so
            a parameter added after signing (``atomic``) breaks the signature.
        formula: the signed string in one line, for the API docs.
        note: anything orderguard adds to or changes in the platform's scheme, and why.
    """

    platform: str
    source: str
    signature: PushField
    timestamp: PushField
    time_format: TimeFormat
    message: Callable[[SignedParts], bytes]
    digests: Mapping[str, Digest]
    default_method: str
    method: PushField | None = None
    implicit_method: str | None = None
    prefixed: bool = False
    app_key: PushField | None = None
    nonce: PushField | None = None
    signs_query: bool = False
    formula: str = ""
    note: str = ""
    _methods: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.default_method not in self.digests:
            raise ValueError(f"default_method {self.default_method!r} is not among the digests")
        object.__setattr__(self, "_methods", {name.lower(): name for name in self.digests})

    @property
    def fields(self) -> tuple[PushField, ...]:
        """Every value a push carries for its signature, in the order the docs list them."""
        found = (self.signature, self.timestamp, self.method, self.app_key, self.nonce)
        return tuple(f for f in found if f is not None)

    def carries_signature(self, headers: Mapping[str, str], params: Mapping[str, str]) -> bool:
        """Whether a request claims to be a signed push of this platform (it carries a signature)."""
        return bool(_Lookup(headers, params).get(self.signature))

    def describe(self) -> str:
        """The scheme for an integrator, as Markdown (the ingest routes' OpenAPI descriptions)."""
        lines = [f"**Signed push ({self.platform}).** Instead of an API key a push may carry the "
                 f"platform's signature, made with the shop's webhook secret for this channel:", ""]
        lines += [f"* {f.label}: {f.meaning}" for f in self.fields]
        lines += ["", f"Signed string: {self.formula}", "",
                  "Send the body exactly as signed. A push is refused (401 `webhook_rejected`, naming why) when its "
                  "signature does not hold, when its timestamp lies further than the tolerance "
                  "(`ORDERGUARD_WEBHOOKS__TOLERANCE`, 5 minutes by default) from the server's time either way, or "
                  "when the same signed request arrives again within that window.", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append(f"Source: {self.source}")
        return "\n".join(lines)

    def sign(self, *, secret: str, body: bytes, timestamp: datetime, app_key: str | None = None,
             params: Mapping[str, str] | None = None, nonce: str | None = None,
             method: str | None = None) -> SignedRequest:
        """What the platform sends with ``body``: the headers and query parameters of a signed push.

        Args:
            secret: the shop's secret for this channel.
            body: the raw request body, exactly as it will be sent.
            timestamp: the signing time (aware), truncated to ``time_format``'s resolution.
            app_key: the shop's app key; :data:`DEVELOPMENT_APP_KEY` when not given.
            params: further query parameters to send (``atomic``); signed where the platform
                signs its parameters.
            nonce: the nonce, where the scheme has one; derived from body and time when not given.
            method: the sign method; ``default_method`` when not given.
        """
        chosen = self._methods.get((method or self.default_method).lower())
        if chosen is None:
            raise ValueError(f"{self.platform} has no sign method {method!r}; it has {', '.join(self.digests)}")
        headers: dict[str, str] = {}
        query: dict[str, str] = dict(params or {})

        def put(where: PushField, value: str) -> None:
            (headers if where.location == "header" else query)[where.name] = value

        stamp = self.time_format.render(timestamp)
        put(self.timestamp, stamp)
        if self.method is not None:
            put(self.method, chosen)
        key = app_key or DEVELOPMENT_APP_KEY
        if self.app_key is not None:
            put(self.app_key, key)
        used_nonce = ""
        if self.nonce is not None:
            used_nonce = nonce or derived_nonce(body, stamp)
            put(self.nonce, used_nonce)
        parts = SignedParts(secret=secret.encode(), body=body, params=dict(query) if self.signs_query else {},
                            timestamp=stamp, app_key=key if self.app_key is not None else "", nonce=used_nonce)
        digest = self.digests[chosen].compute(parts.secret, self.message(parts))
        put(self.signature, f"{chosen}={digest}" if self.prefixed else digest)
        return SignedRequest(headers=headers, params=query)

    def verify(self, *, secret: str, headers: Mapping[str, str], params: Mapping[str, str], body: bytes,
               now: datetime, tolerance: timedelta, app_key: str | None = None) -> VerifiedPush:
        """Check a push: its signature over ``body`` with ``secret``, its app key, its time against ``now``.

        Args:
            headers: the request headers (any case).
            params: the query parameters (last value of each name).
            body: the raw request body, as received.
            now: the receiving time (aware).
            tolerance: how far the push time may lie from ``now``, either way.
            app_key: the shop's app key for this platform; checked when given.

        Raises:
            WebhookRejected: naming the reason (``missing signature``, ``unknown sign method``,
                ``bad signature``, ``missing timestamp``, ``unparseable timestamp``, ``missing nonce``,
                ``app key mismatch``, ``stale timestamp``, ``future timestamp``) and the field.
        """
        found = _Lookup(headers, params)
        sent = (found.get(self.signature) or "").strip()
        if not sent:
            raise WebhookRejected.because(
                "missing signature", f"{self.signature.label} is required: {self.platform} signs every push",
                field=self.signature.name)
        method, sent = self._method_of(found, sent)
        digest = self.digests[method]
        stamp_text = (found.get(self.timestamp) or "").strip()
        if not stamp_text:
            raise WebhookRejected.because("missing timestamp", f"{self.timestamp.label} is required",
                                          field=self.timestamp.name)
        try:
            stamp = self.time_format.parse(stamp_text)
        except ValueError:
            raise WebhookRejected.because(
                "unparseable timestamp",
                f"{self.timestamp.label} must be a time like {self.time_format.example}; got {excerpt(stamp_text)}",
                field=self.timestamp.name) from None
        sent_key = found.get(self.app_key) if self.app_key is not None else None
        if self.app_key is not None and app_key is not None and sent_key != app_key:
            raise WebhookRejected.because(
                "app key mismatch", f"{self.app_key.label} must be the shop's app key for {self.platform}; "
                                    f"got {excerpt(sent_key) if sent_key else 'none'}", field=self.app_key.name)
        nonce = ""
        if self.nonce is not None:
            nonce = (found.get(self.nonce) or "").strip()
            if not nonce:
                raise WebhookRejected.because("missing nonce", f"{self.nonce.label} is required",
                                              field=self.nonce.name)
        signed = {k: v for k, v in params.items() if k != self.signature.name} if self.signs_query else {}
        parts = SignedParts(secret=secret.encode(), body=body, params=signed, timestamp=stamp_text,
                            app_key=sent_key or "", nonce=nonce)
        expected = digest.compute(parts.secret, self.message(parts))
        if digest.fold_case:
            expected, sent = expected.upper(), sent.upper()
        if not hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace")):
            raise WebhookRejected.because(
                "bad signature", f"{self.signature.label} does not match the push: signed with another secret, "
                                 "or the body or signed values were changed", field=self.signature.name)
        age = now - stamp
        if age > tolerance:
            raise WebhookRejected.because(
                "stale timestamp", f"{self.timestamp.label} says the push was signed {span(age)} ago, "
                                   f"beyond the {span(tolerance)} tolerance", field=self.timestamp.name)
        if -age > tolerance:
            raise WebhookRejected.because(
                "future timestamp", f"{self.timestamp.label} lies {span(-age)} in the future, beyond the "
                                    f"{span(tolerance)} tolerance (is the sender's clock right?)",
                field=self.timestamp.name)
        return VerifiedPush(timestamp=stamp, replay_id=expected)

    def _method_of(self, found: _Lookup, sent: str) -> tuple[str, str]:
        """The push's sign method (canonical spelling) and its signature without a method prefix."""
        if self.prefixed:
            named, _, rest = sent.partition("=")
            where, value, sent = self.signature, named, rest
        elif self.method is not None:
            where, value = self.method, (found.get(self.method) or "").strip()
            if not value and self.implicit_method is not None:
                value = self.implicit_method
        else:
            return self.default_method, sent
        chosen = self._methods.get(value.lower())
        if chosen is None:
            raise WebhookRejected.because(
                "unknown sign method", f"{where.label} must name one of {', '.join(self.digests)}; "
                                       f"got {excerpt(value) if value else 'none'}", field=where.name)
        return chosen, sent
