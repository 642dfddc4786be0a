"""Who may push orders: the order system with its API key, or the channel's platform with its signature.

``POST /v1/orders/{channel}`` serves two kinds of sender. The shop's order system forwards
orders with an ``order_system`` API key (or an admin signs in), as every other route is
called. A platform (Tmall, JD, Douyin, Kuaishou, WeChat, the shop's own site) pushes
straight to it, signing each push with the shop's secret for that channel as the platform
publishes (``orderguard.ingest.channels.signing``): such a push is not anonymous, it is
authenticated by its signature (``orderguard.ingest.webhooks.verify_push``), and its
principal is ``webhook`` / ``<channel> push`` holding the ``order_system`` role for that
one request. A request with neither is 401, naming both ways in.

:func:`order_source` is built like ``serving.api.auth.require`` and carries ``.roles``, so
``route_roles`` (and the route-walking access test) see the ingest routes as protected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from orderguard.access import Principal, Role
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.webhooks import replay_key, verify_push
from orderguard.schema import Channel
from serving.api.auth import (
    UnauthenticatedError,
    bearer,
    check_roles,
    identify,
    no_credentials,
    session_cookie,
)
from serving.api.deps import services
from serving.services import Services
from serving.web.session import SESSION_COOKIE

#: The principal kind of a verified channel push.
WEBHOOK_KIND = "webhook"


def order_source(channel: Channel | None = None) -> Callable[..., AsyncIterator[Principal]]:
    """The dependency of an ingest route: the order system by API key (or session), else a signed push.

    Args:
        channel: the route's channel; ``None`` for the generic route, which takes it from the
            path (an unknown channel is a 404 there, as it is for the handler).
    """
    allowed = frozenset({Role.ORDER_SYSTEM})

    async def principal(request: Request, svc: Annotated[Services, Depends(services)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                        _session: Annotated[str | None, Depends(session_cookie)]) -> AsyncIterator[Principal]:
        if "authorization" in request.headers or SESSION_COOKIE in request.cookies:
            caller = identify(request, svc, credentials)
            if caller is None:
                raise no_credentials()
            yield check_roles(caller, allowed)
            return
        adapter = get_adapter(channel.value if channel is not None else str(request.path_params.get("channel", "")))
        signing = adapter.signing
        query = dict(request.query_params)
        if not signing.carries_signature(request.headers, query):
            raise UnauthenticatedError(
                f"`Authorization` must be `Bearer <API key>`, or the push must carry {adapter.channel.value}'s "
                f"signature ({', '.join(f.label for f in signing.fields)}); got neither", field="Authorization")
        verified = verify_push(adapter.channel, svc.settings.webhooks, headers=request.headers, query=query,
                               body=await request.body(), now=svc.clock.now(), replays=svc.replays)
        try:
            yield Principal(WEBHOOK_KIND, f"{adapter.channel.value} push", allowed)
        except Exception:  # not stored (bad payload, store down): the platform's retry of this push is no replay
            svc.replays.forget(replay_key(adapter.channel.value, verified.replay_id))
            raise

    principal.__name__ = f"order_source_{channel.value if channel is not None else 'any'}"
    principal.roles = allowed  # type: ignore[attr-defined]  # read by route_roles (and the route-walking test)
    return principal
