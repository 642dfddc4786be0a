"""Lossless JSON codec for :class:`~orderguard.schema.OrderEvent` and :class:`~orderguard.schema.Order`.

The order log stores every event as JSON and recognises a re-sent event by a hash of
its content, so the JSON form has to be both exact and canonical:

* dataclasses become objects whose keys are the field names; a field equal to its
  default is left out, so adding an optional field to the schema later changes neither
  the stored form nor the content hash of existing events;
* enums are written by value, tuples as arrays, ``raw`` verbatim;
* datetimes are ISO-8601 strings in UTC with an explicit offset and microseconds
  (``2024-11-11T02:00:00.000000+00:00``); decoding gives tz-aware UTC datetimes, equal
  (same instant) to the encoded ones. A naive datetime is refused rather than guessed.

``raw`` holds what the channel sent that the adapter does not model: it must be JSON
(string keys; strings, numbers, booleans, null, arrays, objects) and round-trips
exactly as such. Text anywhere must not contain NUL (``\\x00``), which PostgreSQL
cannot store: such an event is refused on every backend alike.

The mapping between the dataclasses and JSON is derived from the type hints of
:mod:`orderguard.schema`, so a field added there is encoded and decoded without
touching this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

from orderguard.errors import InvalidInputError
from orderguard.schema import Order, OrderEvent

#: Top-level event fields that do not take part in the content hash: the receive time
#: and the unmodelled channel fields differ between two deliveries of the same change.
HASH_EXCLUDED_FIELDS: frozenset[str] = frozenset({"received_at", "raw"})

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[Any, str], Any]
_MISSING = object()


class _EncodeError(Exception):
    """Raised deep inside an encoder; parents prepend their field names on the way out,
    so the happy path never builds path strings."""

    def __init__(self, constraint: str, value: object) -> None:
        super().__init__(constraint)
        self.constraint = constraint
        self.value = value
        self.segments: list[str] = []


def _invalid(path: str, constraint: str, value: object) -> InvalidInputError:
    return InvalidInputError.must(path, constraint, value)


# --------------------------------------------------------------------------- encoding


def _iso(value: datetime) -> str:
    """UTC ISO-8601 text with offset and microseconds, so equal instants encode equally.

    >>> from datetime import timedelta, timezone
    >>> _iso(datetime(2024, 11, 11, 10, 0, tzinfo=timezone(timedelta(hours=8))))
    '2024-11-11T02:00:00.000000+00:00'
    """
    if not isinstance(value, datetime):
        raise _EncodeError("a datetime", value)
    tz = value.tzinfo
    if tz is not UTC:
        if tz is None or value.utcoffset() is None:
            raise _EncodeError("a tz-aware datetime", value)
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _enc_str(value: Any) -> str:
    """Text, refusing NUL: PostgreSQL cannot store it, and the log must accept the same
    events on every backend.

    >>> _enc_str("店铺")
    '店铺'
    """
    if not isinstance(value, str):
        raise _EncodeError("of type str", value)
    if "\x00" in value:
        raise _EncodeError("text without NUL characters", value)
    return value


def _encode_json(value: object) -> Any:
    """A JSON value of ``raw`` → the same value with tuples as lists; anything else refused."""
    if isinstance(value, str):
        return _enc_str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str) or "\x00" in k:
                raise _EncodeError("an object with string keys without NUL characters", k)
            try:
                out[k] = _encode_json(v)
            except _EncodeError as e:
                e.segments.append(f".{k}")
                raise
        return out
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for i, v in enumerate(value):
            try:
                items.append(_encode_json(v))
            except _EncodeError as e:
                e.segments.append(f"[{i}]")
                raise
        return items
    raise _EncodeError("a JSON value", value)


def _enc_primitive(tp: type) -> _Encoder:
    def encode(value: Any) -> Any:
        if not isinstance(value, tp) or (isinstance(value, bool) and tp is not bool):
            raise _EncodeError(f"of type {tp.__name__}", value)
        return value

    return encode


def _enc_enum(tp: type[Enum]) -> _Encoder:
    def encode(value: Any) -> Any:
        if not isinstance(value, tp):
            raise _EncodeError(f"a {tp.__name__}", value)
        return value.value

    return encode


def _enc_optional(inner: _Encoder) -> _Encoder:
    def encode(value: Any) -> Any:
        return None if value is None else inner(value)

    return encode


def _enc_tuple(inner: _Encoder) -> _Encoder:
    def encode(value: Any) -> Any:
        if not isinstance(value, tuple | list):
            raise _EncodeError("a tuple", value)
        items: list[Any] = []
        for i, v in enumerate(value):
            try:
                items.append(inner(v))
            except _EncodeError as e:
                e.segments.append(f"[{i}]")
                raise
        return items

    return encode


def _top_level(path: str, encode: _Encoder, value: Any) -> dict[str, Any]:
    try:
        out: dict[str, Any] = encode(value)
    except _EncodeError as e:
        field = path + "".join(reversed(e.segments))
        raise _invalid(field, e.constraint, e.value) from e
    return out


def event_to_dict(event: OrderEvent) -> dict[str, Any]:
    """Encode an event as JSON-native values (see the module docstring for the format).

    Raises:
        InvalidInputError: a field has the wrong type, a datetime is naive or ``raw``
            holds something that is not JSON; ``field`` is the dotted path, e.g.
            ``event.details.paid_at``.
    """
    return _top_level("event", _PLANS[OrderEvent].encode, event)


def order_to_dict(order: Order, *, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Encode an order's current state as JSON-native values.

    ``details``, when given, must be the encoding of ``order.details`` (say, from the event it came from, which
    the caller has just encoded to store it): it is used as is rather than encoded a second time, the larger
    half of the work. The result is the same dict either way.
    """
    if details is None or type(order) is not Order:
        return _top_level("order", _PLANS[Order].encode, order)
    out: dict[str, Any] = {}
    try:
        for fp in _PLANS[Order].fields:
            if fp.name == "details":
                out["details"] = details
                continue
            value = getattr(order, fp.name)
            if fp.default is _MISSING or not (value is fp.default or value == fp.default):
                out[fp.name] = fp.encode(value)
    except _EncodeError as e:
        raise _invalid("order." + fp.name + "".join(reversed(e.segments)), e.constraint, e.value) from e
    return out


# --------------------------------------------------------------------------- decoding


def _decode_any(value: Any, path: str) -> Any:
    return value


def _decode_datetime(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise _invalid(path, "an ISO-8601 time string", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise _invalid(path, "an ISO-8601 time string", value) from e
    if parsed.tzinfo is None:
        raise _invalid(path, "an ISO-8601 time with a UTC offset", value)
    return parsed.astimezone(UTC)


def _primitive(tp: type) -> _Decoder:
    def decode(value: Any, path: str) -> Any:
        if isinstance(value, bool) and tp is not bool:
            raise _invalid(path, f"of type {tp.__name__}", value)
        if tp is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, tp):
            raise _invalid(path, f"of type {tp.__name__}", value)
        return value

    return decode


def _enum(tp: type[Enum]) -> _Decoder:
    def decode(value: Any, path: str) -> Any:
        try:
            return tp(value)
        except ValueError as e:
            allowed = ", ".join(str(m.value) for m in tp)
            raise _invalid(path, f"one of ({allowed})", value) from e

    return decode


def _optional(inner: _Decoder) -> _Decoder:
    def decode(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return decode


def _tuple_of(inner: _Decoder) -> _Decoder:
    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise _invalid(path, "an array", value)
        return tuple(inner(v, f"{path}[{i}]") for i, v in enumerate(value))

    return decode


def _json_object(value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise _invalid(path, "a JSON object", value)
    return dict(value)


def _encode_json_object(value: Any) -> Any:
    """Payload extras (``raw``): JSON-native, string keys, no NUL anywhere.

    orjson checks and copies that in C; only when it objects does the slow path run, to
    name the offending field. Extras are usually large and always clean, so this matters
    for bulk ingest.
    """
    if not isinstance(value, Mapping):
        raise _EncodeError("a mapping", value)
    try:
        dumped = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return _encode_json(value)
    if b"\\u0000" in dumped:
        return _encode_json(value)
    return orjson.loads(dumped)


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    default: Any
    encode: _Encoder
    decode: _Decoder


@dataclasses.dataclass(frozen=True, slots=True)
class _ClassPlan:
    cls: type
    fields: tuple[_FieldPlan, ...]
    names: frozenset[str]
    encode: _Encoder  # compiled by :func:`_compile_encoder`

    def decode(self, value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            raise _invalid(path, "a JSON object", value)
        unknown = set(value) - self.names
        if unknown:
            name = sorted(unknown)[0]
            raise _invalid(f"{path}.{name}", f"a field of {self.cls.__name__}", value[name])
        kwargs: dict[str, Any] = {}
        for fp in self.fields:
            if fp.name in value:
                kwargs[fp.name] = fp.decode(value[fp.name], f"{path}.{fp.name}")
            elif fp.default is _MISSING:
                raise InvalidInputError(f"`{path}.{fp.name}` is required", field=f"{path}.{fp.name}")
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise _invalid(path, f"a valid {self.cls.__name__} ({e})", dict(value)) from e


def _leaf_expr(tp: Any, encoder: str, env: dict[str, object]) -> str:
    """Python source encoding ``v`` of type ``tp``: the common exact type inline, anything else (a subclass,
    a wrong type that must be refused) through ``encoder``, the field's general encoder."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"None if v is None else ({_leaf_expr(inner[0], encoder, env)})"
    if tp is str:
        return f"v if type(v) is str and '\\x00' not in v else {encoder}(v)"
    if tp in (int, float, bool):
        return f"v if type(v) is {tp.__name__} else {encoder}(v)"
    if isinstance(tp, type) and issubclass(tp, Enum):
        env[f"enum_{tp.__name__}"] = tp
        return f"v.value if type(v) is enum_{tp.__name__} else {encoder}(v)"
    return f"{encoder}(v)"


def _compile_encoder(cls: type, fields: Sequence[_FieldPlan], hints: Mapping[str, Any]) -> _Encoder:
    """One straight-line function encoding a ``cls`` instance, generated from its fields.

    Why: the events and orders of every append are encoded (for storage and the content
    hash), and a loop interpreting the field plans cost a third of an append. The
    generated code does what that loop did, field by field: skip a value equal to the
    default, encode the rest, and on a refusal name the field on the way out.
    """
    env: dict[str, object] = {"cls": cls, "_EncodeError": _EncodeError}
    body = ["if type(value) is not cls:",
            f"    raise _EncodeError({f'a {cls.__name__}'!r}, type(value).__name__)",
            "out = {}", "name = ''", "try:"]
    for i, fp in enumerate(fields):
        env[f"enc_{i}"] = fp.encode
        expr = _leaf_expr(hints[fp.name], f"enc_{i}", env)
        body += [f"    name = {fp.name!r}", f"    v = value.{fp.name}"]
        if fp.default is _MISSING:
            body.append(f"    out[{fp.name!r}] = {expr}")
        else:
            env[f"default_{i}"] = fp.default
            body += [f"    if not (v is default_{i} or v == default_{i}):", f"        out[{fp.name!r}] = {expr}"]
    body += ["except _EncodeError as e:", "    e.segments.append('.' + name)", "    raise", "return out"]
    code = f"def encode_{cls.__name__}(value):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(code, f"<encode_{cls.__name__}>", "exec"), env)  # generated from the schema's type hints only
    encode = env[f"encode_{cls.__name__}"]
    assert callable(encode)
    return encode


def _codec_for(tp: Any, plans: dict[type, _ClassPlan]) -> tuple[_Encoder, _Decoder]:
    """Build the encoder and decoder of one annotated type (recursing into dataclasses)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return _encode_json, _decode_any
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union in schema: {tp!r}")
        enc, dec = _codec_for(inner[0], plans)
        return _enc_optional(enc), _optional(dec)
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported tuple in schema: {tp!r}")
        enc, dec = _codec_for(args[0], plans)
        return _enc_tuple(enc), _tuple_of(dec)
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        return _encode_json_object, _json_object
    if isinstance(tp, type):
        if issubclass(tp, Enum):
            return _enc_enum(tp), _enum(tp)
        if tp is datetime:
            return _iso, _decode_datetime
        if tp is str:
            return _enc_str, _primitive(tp)
        if tp in (int, float, bool):
            return _enc_primitive(tp), _primitive(tp)
        if dataclasses.is_dataclass(tp):
            plan = _plan_for(tp, plans)
            return plan.encode, plan.decode
    raise TypeError(f"unsupported type in schema: {tp!r}")


def _plan_for(cls: type, plans: dict[type, _ClassPlan]) -> _ClassPlan:
    if cls in plans:
        return plans[cls]
    hints = typing.get_type_hints(cls)
    fields: list[_FieldPlan] = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        enc, dec = _codec_for(hints[f.name], plans)
        fields.append(_FieldPlan(f.name, default, enc, dec))
    plan = _ClassPlan(cls, tuple(fields), frozenset(f.name for f in fields), _compile_encoder(cls, fields, hints))
    plans[cls] = plan
    return plan


def _build_plans(*roots: type) -> Mapping[type, _ClassPlan]:
    plans: dict[type, _ClassPlan] = {}
    for root in roots:
        _plan_for(root, plans)
    return types.MappingProxyType(plans)


#: Read-only encode/decode plan of every schema dataclass reachable from the roots,
#: derived once from the type hints (pure, no I/O).
_PLANS: Mapping[type, _ClassPlan] = _build_plans(OrderEvent, Order)


def event_from_dict(data: Mapping[str, Any]) -> OrderEvent:
    """Decode what :func:`event_to_dict` produced (or the same JSON read back from storage).

    Raises:
        InvalidInputError: naming the offending field by its dotted path, e.g.
            ``event.details.lines[0].qty``.
    """
    event: OrderEvent = _PLANS[OrderEvent].decode(data, "event")
    return event


def order_from_dict(data: Mapping[str, Any]) -> Order:
    """Decode what :func:`order_to_dict` produced."""
    order: Order = _PLANS[Order].decode(data, "order")
    return order


# --------------------------------------------------------------------------- JSON text


def dumps_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON; orjson, falling back to the standard library for integers
    beyond 64 bits. Non-finite floats are refused by the fallback only (orjson writes
    ``null``), which is why ``raw`` is documented as plain JSON.

    >>> dumps_bytes({"b": 1, "a": "店"}, sort_keys=True).decode()
    '{"a":"店","b":1}'
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError as e:
        try:
            text = json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)
        except (TypeError, ValueError) as e2:
            raise InvalidInputError.must("payload", "JSON-serialisable", str(e2)) from e
        return text.encode()


def dumps(value: Any) -> str:
    """JSON text for database JSON columns (used as the engine's ``json_serializer``)."""
    return dumps_bytes(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON text (used as the engine's ``json_deserializer``).

    >>> loads('{"a": [1, 2.5, null]}')
    {'a': [1, 2.5, None]}
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # integers beyond 64 bits


def stored_json(value: Any) -> Any:
    """A JSON column read without its type's result processing: the value PostgreSQL's driver has already
    decoded (``jsonb``), or SQLite's text, parsed here.

    >>> stored_json('{"a": [1]}') == stored_json({"a": [1]}) == {"a": [1]}
    True
    """
    return value if isinstance(value, Mapping) else loads(value)


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an encoded event: sorted keys, no whitespace, UTF-8.

    >>> canonical_json({"b": [1], "a": None})
    b'{"a":null,"b":[1]}'
    """
    return dumps_bytes(data, sort_keys=True)


def content_hash_of(data: Mapping[str, Any]) -> str:
    """Content hash of an already encoded event (see :func:`content_hash`).

    Lets the order log encode each event once and derive both the stored payload and
    the hash from the same dict.

    >>> a = content_hash_of({"event_version": 1, "received_at": "x", "raw": {"k": 1}})
    >>> a == content_hash_of({"event_version": 1}) != content_hash_of({"event_version": 2})
    True
    >>> b = {"event_version": 1, "details": {"address": {"key": "k"}}}
    >>> content_hash_of(b) == content_hash_of({**b, "details": {"address": {"key": "k", "defects": ["no_street"]}}})
    True
    >>> content_hash_of(b) == content_hash_of({**b, "details": {**b["details"], "attributes": {}}})
    True
    >>> c = {"event_version": 1, "details": {"client": {"ip": "h"}}}
    >>> content_hash_of(c) == content_hash_of({**c, "details": {"client": {"ip": "h", "ip_prefix": "p"}}})
    True
    """
    content = {k: v for k, v in data.items() if k not in HASH_EXCLUDED_FIELDS}
    details = content.get("details")
    if isinstance(details, Mapping):
        kept = dict(details)
        address = details.get("address")
        if isinstance(address, Mapping) and "defects" in address:
            # derived at ingest from the clear address (which the hashed ``key`` already covers): an event stored
            # before ingest derived it must still be a duplicate of the same payload sent again
            kept["address"] = {k: v for k, v in address.items() if k != "defects"}
        client = details.get("client")
        if isinstance(client, Mapping) and "ip_prefix" in client:
            # derived at ingest from the clear IP (which the hashed ``ip`` already covers), for the same reason
            kept["client"] = {k: v for k, v in client.items() if k != "ip_prefix"}
        if not details.get("attributes", True):
            # no source attributes: hashed as an event stored before attributes existed, for the same reason
            del kept["attributes"]
        content["details"] = kept
    return hashlib.sha256(canonical_json(content)).hexdigest()


def content_hash(event: OrderEvent) -> str:
    """SHA-256 (hex) of the event's canonical JSON without ``received_at`` and ``raw``.

    Two deliveries of the same channel document carry the same hash even when they
    arrive at different times, so the order log can tell a harmless re-send (same key,
    same hash) from a conflicting one (same key, different content).
    """
    return content_hash_of(event_to_dict(event))
