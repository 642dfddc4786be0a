"""Who may call which route: every route names the roles it serves here, through one dependency per role set.

A caller sends an API key (``Authorization: Bearer og_…``, made by ``orderguard keys
create``). The key is checked against the service's in-memory :class:`KeyRing` (one dict
lookup and one SHA-256, no database round trip), which a lifespan task re-reads every
``settings.access.refresh_s`` seconds, so a revoked key is refused by every process
shortly after. No key or an unknown or revoked one is 401 (with ``WWW-Authenticate:
Bearer``); a key without a role the route serves is 403. ``admin`` may call everything.
Only ``/healthz``, ``/docs`` and ``/openapi.json`` are open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orderguard.access import Principal, Role
from orderguard.errors import OrderGuardError
from serving.api.deps import services
from serving.api.schemas import ErrorBody
from serving.services import Services

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key made by `orderguard keys create --role <role> --name <what for>`.")


class UnauthenticatedError(OrderGuardError):
    """No API key, or one the service does not know (never issued, revoked)."""

    code = "unauthenticated"
    http_status = 401


class ForbiddenError(OrderGuardError):
    """A known caller without a role the route serves."""

    code = "forbidden"
    http_status = 403


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """The dependency that lets through callers holding one of ``roles`` (or ``admin``) and returns them."""
    allowed = frozenset(roles)
    needed = ", ".join(sorted(r.value for r in allowed))

    async def principal(svc: Annotated[Services, Depends(services)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        if credentials is None:
            raise UnauthenticatedError("`Authorization` must be `Bearer <API key>`; got none", field="Authorization")
        found = svc.access.ring.authenticate(credentials.credentials)
        if found is None:
            raise UnauthenticatedError("`Authorization` must carry a valid API key; this one is unknown or revoked",
                                       field="Authorization")
        if not found.may(allowed):
            raise ForbiddenError(f"this route serves the roles {needed}; the key {found.name} holds "
                                 f"{', '.join(sorted(r.value for r in found.roles))}", field="Authorization")
        return found

    principal.__name__ = f"require_{'_or_'.join(sorted(r.value for r in allowed))}"
    principal.roles = allowed  # type: ignore[attr-defined]  # read by route_roles (and the route-walking test)
    return principal


def route_roles(dependant: Any) -> frozenset[Role] | None:
    """The roles a route's dependency tree requires, or ``None`` for an open route."""
    for dependency in dependant.dependencies:
        roles = getattr(dependency.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        found = route_roles(dependency)
        if found is not None:
            return found
    return None


#: What every protected route may answer besides its own responses (documented in OpenAPI).
AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "no API key, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "the key holds none of the roles this route serves"},
}

#: The role sets routes declare (``dependencies=[...]`` or a parameter when the route needs the caller).
ORDER_SYSTEM = Depends(require(Role.ORDER_SYSTEM))
REVIEWER = Depends(require(Role.REVIEWER))
REVIEW_READERS = Depends(require(Role.REVIEWER, Role.DATA_SCIENTIST))
MODEL_READERS = Depends(require(Role.DATA_SCIENTIST, Role.OPERATIONS))
DATA_SCIENTIST = Depends(require(Role.DATA_SCIENTIST))
