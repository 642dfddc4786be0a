"""``GET /v1/orders/{channel}/{order_id}``: one order as stored, its personal data shown by the caller's roles.

What a role sees of the buyer is decided in one place, ``orderguard.privacy``: the phone
always masked, the id card only as "on file", the street's first characters only for
reviewers and admins (``disclosure: case``), the district for everyone else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from orderguard.access import Principal, Role
from orderguard.errors import InvalidInputError, UnknownChannelError
from orderguard.privacy import address_view, buyer_view, disclosure_for
from orderguard.schema import Channel, Order, OrderKey
from serving.api.auth import AUTH_RESPONSES, ORDER_READERS
from serving.api.deps import services
from serving.api.schemas import AddressOut, BuyerOut, ErrorBody, LineOut, OrderOut, StatusChangeOut
from serving.services import Services, stored_order

router = APIRouter(tags=["orders"], responses=AUTH_RESPONSES)


def path_order_key(channel: str, order_id: str) -> OrderKey:
    """The order named by a route's ``{channel}/{order_id}``; an unknown channel is a 404 naming the channel."""
    try:
        return OrderKey(Channel(channel), order_id)
    except ValueError as e:
        raise UnknownChannelError.must("channel", f"one of {', '.join(c.value for c in Channel)}", channel) from e


def body_order_key(text: str) -> OrderKey:
    """The order named by a request body's ``order_key`` (``'<channel>:<order id>'``), or a 422 naming it."""
    try:
        return OrderKey.parse(text)
    except ValueError as e:
        raise InvalidInputError.must("order_key", "'<channel>:<order id>' with a known channel", text) from e


def order_out(order: Order, roles: frozenset[Role]) -> OrderOut:
    """The response body of ``order`` for a caller holding ``roles``."""
    disclosure = disclosure_for(roles)
    details = order.details
    address = address_view(details.address, disclosure)
    return OrderOut(
        order_key=str(order.key), status=order.status.value, shop_id=details.shop_id, created_at=details.created_at,
        paid_at=details.paid_at, updated_at=order.updated_at, paid_fen=details.amounts.paid_fen,
        goods_fen=details.amounts.goods_fen, discount_fen=details.amounts.discount_fen,
        coupon_fen=details.amounts.coupon_fen,
        lines=[LineOut(sku_id=line.sku_id, title=line.title, qty=line.qty, unit_price_fen=line.unit_price_fen,
                       list_price_fen=line.list_price_fen) for line in details.lines],
        buyer=BuyerOut(**buyer_view(details.buyer, disclosure)),
        address=AddressOut(**address) if address is not None else None,
        timeline=[StatusChangeOut(status=step.status.value, at=step.at, channel_status=step.channel_status)
                  for step in order.timeline],
        refund_reason=order.refund.reason.value if order.refund else None, disclosure=disclosure.value)


@router.get("/v1/orders/{channel}/{order_id}", response_model=OrderOut, summary="One order, as your roles may see it",
            responses={404: {"model": ErrorBody, "description": "unknown channel, or the order is not stored"}})
async def get_order(channel: str, order_id: str, svc: Annotated[Services, Depends(services)],
                    caller: Annotated[Principal, ORDER_READERS]) -> OrderOut:
    """The order's current state, lines, buyer, address and status timeline.

    The buyer's phone is masked for everyone and the id card never shown; reviewers and
    admins see the street's first characters, other roles the district only.
    """
    key = path_order_key(channel, order_id)
    order = stored_order(svc, key)
    return order_out(order, caller.roles)
