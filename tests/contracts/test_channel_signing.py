"""The channel contract, signing part: every adapter's push-signing scheme signs and verifies alike.

Parametrised over ``ADAPTERS``: a channel registered there is checked by every test below;
:data:`DOCUMENTED` must gain its platform's signed string, written here independently from
the platform's documentation (the adapter's own ``message`` is not reused), so a scheme
that drifts from what the platform publishes fails. WeChat's published test vector is
checked as a known answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orderguard.ingest.channels import ADAPTERS
from orderguard.ingest.channels.signing import (
    DEVELOPMENT_APP_KEY,
    SignedRequest,
    TimeFormat,
    VerifiedPush,
    WebhookRejected,
    WebhookSigning,
)
from orderguard.schema import Channel

SAMPLES_DIR = Path(__file__).parent / "samples"
CHANNELS = list(ADAPTERS)
SECRET = "shop-secret-0001"
TOLERANCE = timedelta(minutes=5)
T0 = datetime(2024, 11, 11, 2, 0, 7, 654_321, tzinfo=UTC)
RESOLUTION = {TimeFormat.BEIJING_SECONDS: timedelta(seconds=1), TimeFormat.UNIX_SECONDS: timedelta(seconds=1),
              TimeFormat.UNIX_MILLIS: timedelta(milliseconds=1)}


def body_of(channel: Channel) -> bytes:
    """The channel's literal order document, as the platform would push it (bytes, untouched)."""
    return (SAMPLES_DIR / f"{channel.value}_order.json").read_bytes()


def scheme(channel: Channel) -> WebhookSigning:
    return ADAPTERS[channel].signing


def floor_to(moment: datetime, step: timedelta) -> datetime:
    return moment - (moment - datetime(1970, 1, 1, tzinfo=UTC)) % step


def verify(channel: Channel, signed: SignedRequest, body: bytes, *, now: datetime = T0, secret: str = SECRET,
           app_key: str | None = None) -> VerifiedPush:
    return scheme(channel).verify(secret=secret, headers=signed.headers, params=signed.params, body=body, now=now,
                                  tolerance=TOLERANCE, app_key=app_key)


def rejected(channel: Channel, signed: SignedRequest, body: bytes, **kwargs: object) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        verify(channel, signed, body, **kwargs)  # type: ignore[arg-type]
    assert caught.value.http_status == 401 and caught.value.code == "webhook_rejected"
    return caught.value


def without(signed: SignedRequest, name: str) -> SignedRequest:
    """``signed`` without the value ``name`` (header or parameter)."""
    return SignedRequest({k: v for k, v in signed.headers.items() if k != name},
                         {k: v for k, v in signed.params.items() if k != name})


def replaced(signed: SignedRequest, name: str, value: str) -> SignedRequest:
    """``signed`` with the value ``name`` set to ``value`` where it travels."""
    headers, params = dict(signed.headers), dict(signed.params)
    (headers if name in headers else params)[name] = value
    return SignedRequest(headers, params)


# --------------------------------------------------------------------------- the platforms' signed strings


def _sorted_kv(params: Mapping[str, str | bytes], *, pair: bytes = b"", between: bytes = b"") -> bytes:
    return between.join(k.encode() + pair + (v if isinstance(v, bytes) else v.encode())
                        for k, v in sorted(params.items()) if v)


def _top(secret: bytes, s: SignedRequest, body: bytes) -> str:
    signed = _sorted_kv({k: v for k, v in s.params.items() if k != "sign"}) + body
    return hmac.new(secret, signed, hashlib.sha256).hexdigest().upper()


def _jos(secret: bytes, s: SignedRequest, body: bytes) -> str:
    params: dict[str, str | bytes] = {k: v for k, v in s.params.items() if k != "sign"}
    params["360buy_param_json"] = body
    return hashlib.md5(secret + _sorted_kv(params) + secret).hexdigest().upper()


def _doudian(secret: bytes, s: SignedRequest, body: bytes) -> str:
    signed = s.headers["app-id"].encode() + s.headers["event-timestamp"].encode() + body + secret
    return hmac.new(secret, signed, hashlib.sha256).hexdigest()


def _kuaishou(secret: bytes, s: SignedRequest, body: bytes) -> str:
    params: dict[str, str | bytes] = {k: v for k, v in s.params.items() if k != "sign"}
    params["param"] = body
    signed = _sorted_kv(params, pair=b"=", between=b"&") + b"&signSecret=" + secret
    return base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def _wechat(secret: bytes, s: SignedRequest, body: bytes) -> str:
    return hashlib.sha1(b"".join(sorted([secret, s.params["timestamp"].encode(), s.params["nonce"].encode(),
                                         body]))).hexdigest()


def _site(secret: bytes, s: SignedRequest, body: bytes) -> str:
    stamp = s.headers["X-Orderguard-Timestamp"].encode()
    return "sha256=" + hmac.new(secret, stamp + b"." + body, hashlib.sha256).hexdigest()


#: Each platform's signature of a push with its default method, from its documentation (see the adapters).
DOCUMENTED: dict[Channel, Callable[[bytes, SignedRequest, bytes], str]] = {
    Channel.TMALL: _top,
    Channel.JD: _jos,
    Channel.DOUYIN: _doudian,
    Channel.KUAISHOU: _kuaishou,
    Channel.WECHAT: _wechat,
    Channel.SITE: _site,
}


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_signature_is_the_platforms_documented_one(channel: Channel) -> None:
    assert channel in DOCUMENTED, f"add {channel.value}'s documented signed string to DOCUMENTED"
    body = body_of(channel)
    signed = scheme(channel).sign(secret=SECRET, body=body, timestamp=T0)
    sent = (signed.headers | signed.params)[scheme(channel).signature.name]
    assert sent == DOCUMENTED[channel](SECRET.encode(), signed, body)


def test_wechat_verifies_the_published_test_vector() -> None:
    """WXBizMsgCrypt's published URL-verification vector (token QDG6eK), the echo string as the message."""
    echo = b"P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    params = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
              "nonce": "263014780"}
    at = datetime.fromtimestamp(1409659589, UTC)
    verified = scheme(Channel.WECHAT).verify(secret="QDG6eK", headers={}, params=params, body=echo, now=at,
                                             tolerance=TOLERANCE)
    assert verified == VerifiedPush(timestamp=at, replay_id="5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3")
    assert scheme(Channel.WECHAT).sign(secret="QDG6eK", body=echo, timestamp=at, nonce="263014780").params == params


def test_top_md5_and_hmac_are_the_documented_digests() -> None:
    """TOP's other methods: ``md5`` wraps the string in the secret, ``hmac`` is HMAC-MD5 (upper-case hex)."""
    body, secret = body_of(Channel.TMALL), SECRET.encode()

    def md5(message: bytes) -> str:
        return hashlib.md5(secret + message + secret).hexdigest().upper()

    def hmac_md5(message: bytes) -> str:
        return hmac.new(secret, message, hashlib.md5).hexdigest().upper()

    for method, digest in [("md5", md5), ("hmac", hmac_md5)]:
        signed = scheme(Channel.TMALL).sign(secret=SECRET, body=body, timestamp=T0, method=method)
        assert signed.params["sign_method"] == method
        signed_string = _sorted_kv({k: v for k, v in signed.params.items() if k != "sign"}) + body
        assert signed.params["sign"] == digest(signed_string)
        verify(Channel.TMALL, signed, body)


def test_top_timestamps_are_beijing_time_and_kuaishou_milliseconds() -> None:
    assert scheme(Channel.TMALL).sign(secret=SECRET, body=b"{}", timestamp=T0).params["timestamp"] \
        == "2024-11-11 10:00:07"
    assert scheme(Channel.KUAISHOU).sign(secret=SECRET, body=b"{}", timestamp=T0).params["timestamp"] \
        == "1731290407654"


# --------------------------------------------------------------------------- every scheme alike


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_signed_push_verifies_with_its_time_and_replay_id(channel: Channel) -> None:
    body = body_of(channel)
    signing = scheme(channel)
    signed = signing.sign(secret=SECRET, body=body, timestamp=T0)
    verified = verify(channel, signed, body, now=T0 + timedelta(seconds=3))
    assert verified.timestamp == floor_to(T0, RESOLUTION[signing.time_format])
    sent = (signed.headers | signed.params)[signing.signature.name]
    assert verified.replay_id.upper().endswith(sent.partition("=")[2].upper() if signing.prefixed else sent.upper())
    assert signing.carries_signature(signed.headers, signed.params)
    assert not signing.carries_signature({}, {})


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_sign_method_of_a_scheme_round_trips(channel: Channel) -> None:
    body = body_of(channel)
    for method in scheme(channel).digests:
        signed = scheme(channel).sign(secret=SECRET, body=body, timestamp=T0, method=method)
        verify(channel, signed, body)


@pytest.mark.parametrize("channel", CHANNELS)
def test_one_flipped_byte_of_the_body_is_a_bad_signature(channel: Channel) -> None:
    body = body_of(channel)
    signed = scheme(channel).sign(secret=SECRET, body=body, timestamp=T0)
    middle = len(body) // 2
    tampered = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1:]
    error = rejected(channel, signed, tampered)
    assert error.reason == "bad signature" and error.field == scheme(channel).signature.name
    assert error.message.startswith("bad signature: ")


@pytest.mark.parametrize("channel", CHANNELS)
def test_another_secret_is_a_bad_signature(channel: Channel) -> None:
    body = body_of(channel)
    signed = scheme(channel).sign(secret="someone-elses-secret", body=body, timestamp=T0)
    assert rejected(channel, signed, body).reason == "bad signature"


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_stale_or_far_future_timestamp_is_refused_saying_by_how_much(channel: Channel) -> None:
    body = body_of(channel)
    signed = scheme(channel).sign(secret=SECRET, body=body, timestamp=T0)
    stamp = floor_to(T0, RESOLUTION[scheme(channel).time_format])
    stale = rejected(channel, signed, body, now=stamp + timedelta(minutes=12))
    assert stale.reason == "stale timestamp" and stale.field == scheme(channel).timestamp.name
    assert "signed 12 min 0 s ago" in stale.message and "5 min 0 s tolerance" in stale.message, stale.message
    future = rejected(channel, signed, body, now=stamp - timedelta(hours=2))
    assert future.reason == "future timestamp" and "2 h 0 min in the future" in future.message, future.message
    verify(channel, signed, body, now=T0 + TOLERANCE - timedelta(seconds=1))  # just inside the window
    verify(channel, signed, body, now=T0 - TOLERANCE + timedelta(seconds=1))


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_push_without_signature_or_timestamp_is_refused_naming_it(channel: Channel) -> None:
    body = body_of(channel)
    signing = scheme(channel)
    signed = signing.sign(secret=SECRET, body=body, timestamp=T0)
    missing = rejected(channel, without(signed, signing.signature.name), body)
    assert missing.reason == "missing signature" and missing.field == signing.signature.name
    assert signing.signature.name in missing.message
    no_time = rejected(channel, without(signed, signing.timestamp.name), body)
    assert no_time.reason == "missing timestamp" and no_time.field == signing.timestamp.name
    garbled = rejected(channel, replaced(signed, signing.timestamp.name, "yesterday"), body)
    assert garbled.reason == "unparseable timestamp" and "'yesterday'" in garbled.message


@pytest.mark.parametrize("channel", [c for c in CHANNELS if ADAPTERS[c].signing.method or ADAPTERS[c].signing.prefixed])
def test_an_unknown_sign_method_is_refused(channel: Channel) -> None:
    body = body_of(channel)
    signing = scheme(channel)
    signed = signing.sign(secret=SECRET, body=body, timestamp=T0)
    if signing.prefixed:
        field = signing.signature.name
        signed = replaced(signed, field, "sha1=" + signed.headers[field].partition("=")[2])
    else:
        assert signing.method is not None
        field = signing.method.name
        signed = replaced(signed, field, "sha1")
    error = rejected(channel, signed, body)
    assert error.reason == "unknown sign method" and error.field == field
    assert "'sha1'" in error.message, error.message


@pytest.mark.parametrize("channel", [c for c in CHANNELS if ADAPTERS[c].signing.app_key is not None])
def test_the_app_key_is_checked_when_the_shop_configured_it(channel: Channel) -> None:
    body = body_of(channel)
    signing = scheme(channel)
    assert signing.app_key is not None
    signed = signing.sign(secret=SECRET, body=body, timestamp=T0, app_key="shop-app-1")
    verify(channel, signed, body, app_key="shop-app-1")
    verify(channel, signed, body)  # not configured: not checked (the signature covers it anyway)
    error = rejected(channel, signed, body, app_key="shop-app-2")
    assert error.reason == "app key mismatch" and error.field == signing.app_key.name
    assert "'shop-app-1'" in error.message
    assert rejected(channel, replaced(signed, signing.app_key.name, DEVELOPMENT_APP_KEY), body).reason \
        == "bad signature"


@pytest.mark.parametrize("channel", [c for c in CHANNELS if ADAPTERS[c].signing.signs_query])
def test_query_parameters_are_signed_where_the_platform_signs_them(channel: Channel) -> None:
    body = body_of(channel)
    signing = scheme(channel)
    signed = signing.sign(secret=SECRET, body=body, timestamp=T0, params={"atomic": "true"})
    assert signed.params["atomic"] == "true"
    verify(channel, signed, body)
    assert rejected(channel, replaced(signed, "atomic", "false"), body).reason == "bad signature"


@pytest.mark.parametrize("channel", CHANNELS)
def test_header_names_are_case_insensitive_and_hex_case_does_not_dodge_the_replay_id(channel: Channel) -> None:
    body = body_of(channel)
    signing = scheme(channel)
    signed = signing.sign(secret=SECRET, body=body, timestamp=T0)
    shouted = SignedRequest({k.upper(): v for k, v in signed.headers.items()}, signed.params)
    first = verify(channel, shouted, body)
    if signing.digests[signing.default_method].fold_case:
        name = signing.signature.name
        method, equals, digest = (signed.headers | signed.params)[name].rpartition("=")
        flipped = replaced(signed, name, method + equals + digest.swapcase())
        assert flipped != signed
        assert verify(channel, flipped, body).replay_id == first.replay_id


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_scheme_documents_every_field_it_reads(channel: Channel) -> None:
    signing = scheme(channel)
    text = signing.describe()
    for field in signing.fields:
        assert f"`{field.name}`" in text
    assert signing.source and signing.formula and signing.platform in text
    assert len({f.name.lower() for f in signing.fields}) == len(signing.fields)
