"""The contract every channel adapter fulfils, and the pydantic-error translation.

An adapter is a pure module: a pydantic model of the channel's own payload (its real
field names and status codes), a ``parse`` that turns one payload into one
:class:`~orderguard.schema.OrderEvent`, and the platform's push-signing scheme. Adapters
never touch the network, the clock or the database, so the contract suite
(tests/contracts) can check them all alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from orderguard.errors import InvalidInputError
from orderguard.ingest.channels.signing import WebhookSigning
from orderguard.ingest.normalize import ParseContext
from orderguard.schema import Channel, OrderEvent, OrderStatus

M = TypeVar("M", bound=BaseModel)


class ChannelAdapter(Protocol):
    """What ``orderguard.ingest.channels.ADAPTERS`` holds for each channel.

    Attributes:
        channel: the channel this adapter parses.
        order_status_codes: every documented status code of the channel's order
            document mapped to the unified model (total: unknown codes are errors).
        after_sale_status_codes: the same for the channel's refund / after-sale document.
        signing: how the channel's platform signs the pushes it sends to ``POST /v1/orders/{channel}``
            (checked by ``orderguard.ingest.webhooks.verify_push``).
    """

    @property
    def channel(self) -> Channel: ...

    @property
    def order_status_codes(self) -> Mapping[str, OrderStatus]: ...

    @property
    def after_sale_status_codes(self) -> Mapping[str, OrderStatus]: ...

    @property
    def signing(self) -> WebhookSigning: ...

    def parse(self, payload: Mapping[str, Any], *, ctx: ParseContext) -> OrderEvent: ...


def validate(model: type[M], payload: object, *, prefix: str = "") -> M:
    """Validate ``payload`` against a channel model, turning the first pydantic error
    into an :class:`InvalidInputError` that names the field by its dotted path.
    """
    if not isinstance(payload, Mapping):
        name = prefix or "payload"
        raise InvalidInputError(f"`{name}` must be a JSON object; got {type(payload).__name__}", field=name)
    try:
        return model.model_validate(payload)
    except ValidationError as e:
        first = e.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        field = f"{prefix}{path}" if path else (prefix or "payload")
        if first["type"] == "missing":
            message = f"`{field}` is required"
        else:
            shown = repr(first.get("input"))
            shown = shown if len(shown) <= 60 else shown[:57] + "..."  # keep personal data out of logs
            message = f"`{field}` must be valid: {first['msg']}; got {shown}"
        raise InvalidInputError(message, field=field) from e


def unknown_fields(model: BaseModel) -> dict[str, Any]:
    """Fields the payload carried that the model does not declare (``extra="allow"``),
    recursively for nothing: only the top level is kept, verbatim, in ``OrderEvent.raw``.
    """
    return dict(model.model_extra or {})
