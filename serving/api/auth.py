"""Who may call which route: every route names the roles it serves here, through one dependency per role set.

A machine sends an API key (``Authorization: Bearer og_…``, made by ``orderguard keys
create``); a person's browser sends the session cookie of the sign-in page
(``serving.web``). A key is checked against the service's in-memory :class:`KeyRing` (one
dict lookup and one SHA-256, no database round trip), which a lifespan task re-reads every
``settings.access.refresh_s`` seconds, so a revoked key (or a disabled user) is refused by
every process shortly after. A cookie-borne request that changes anything must carry the
session's CSRF token (``X-CSRF-Token``). No credentials or unknown ones are 401 (with
``WWW-Authenticate: Bearer``); a caller without a role the route serves is 403. ``admin``
may call everything. Only ``/healthz``, the sign-in page, ``/docs`` and ``/openapi.json``
are open; channel webhooks authenticate by the channel's signature (``serving.api.webhooks``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from orderguard.access import Principal, Role
from orderguard.errors import OrderGuardError
from serving.api.deps import services
from serving.api.schemas import ErrorBody
from serving.services import Services
from serving.web.session import CSRF_HEADER, SESSION_COOKIE, Session

#: Methods that change nothing: a cookie-borne request needs no CSRF token for them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key made by `orderguard keys create --role <role> --name <what for>`.")
#: Documents the other way in (the cookie itself is read by :func:`identify`).
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="Session",
                              description="The session of a person signed in at /signin; a request that changes "
                                          f"something must also send the session's CSRF token as `{CSRF_HEADER}`.")


class UnauthenticatedError(OrderGuardError):
    """No API key, or one the service does not know (never issued, revoked)."""

    code = "unauthenticated"
    http_status = 401


class ForbiddenError(OrderGuardError):
    """A known caller without a role the route serves."""

    code = "forbidden"
    http_status = 403


def session_caller(request: Request, svc: Services) -> tuple[Principal, Session] | None:
    """The signed-in user of a request (with the roles the directory gives them now) and their session, or
    ``None`` without a live session: none, forged, expired, signed out, or the user disabled."""
    session = svc.access.sessions.read(request.cookies.get(SESSION_COOKIE), now=svc.clock.now())
    if session is None:
        return None
    user = svc.access.ring.session_user(session.user, session.signed_in_at)
    return None if user is None else (user, session)


def identify(request: Request, svc: Services, credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
    """The caller of a request: the API key's principal, else the signed-in user's, else ``None`` (anonymous).

    Raises:
        UnauthenticatedError: an API key that is unknown or revoked, or a session whose user is disabled.
        ForbiddenError: a cookie-borne request that changes something without the session's CSRF token.
    """
    if credentials is not None:
        found = svc.access.ring.authenticate(credentials.credentials)
        if found is None:
            raise UnauthenticatedError("`Authorization` must carry a valid API key; this one is unknown or revoked",
                                       field="Authorization")
        return found
    signed_in = session_caller(request, svc)
    if signed_in is None:
        if SESSION_COOKIE in request.cookies:
            raise UnauthenticatedError("the session has ended (signed out, expired, or the user is disabled); "
                                       "sign in again at /signin", field=SESSION_COOKIE)
        return None
    user, session = signed_in
    if request.method not in SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
        raise ForbiddenError(f"`{CSRF_HEADER}` must be the session's CSRF token for a request made with the "
                             "session cookie", field=CSRF_HEADER)
    return user


def check_roles(caller: Principal, allowed: frozenset[Role]) -> Principal:
    """``caller`` when it holds one of ``allowed`` (or ``admin``).

    Raises:
        ForbiddenError: it holds none.
    """
    if not caller.may(allowed):
        needed = ", ".join(sorted(r.value for r in allowed))
        raise ForbiddenError(f"this route serves the roles {needed}; {caller.kind} {caller.name} holds "
                             f"{', '.join(sorted(r.value for r in caller.roles))}", field="Authorization")
    return caller


def no_credentials() -> UnauthenticatedError:
    """The 401 of an anonymous request."""
    return UnauthenticatedError("`Authorization` must be `Bearer <API key>` (or sign in at /signin); got none",
                                field="Authorization")


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """The dependency that lets through callers holding one of ``roles`` (or ``admin``) and returns them."""
    allowed = frozenset(roles)

    async def principal(request: Request, svc: Annotated[Services, Depends(services)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                        _session: Annotated[str | None, Depends(session_cookie)]) -> Principal:
        caller = identify(request, svc, credentials)
        if caller is None:
            raise no_credentials()
        return check_roles(caller, allowed)

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
    401: {"model": ErrorBody, "description": "no API key (or session), or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "the caller holds none of the roles this route serves (or a "
                                             "session's request lacks its CSRF token)"},
}

#: The role sets routes declare (``dependencies=[...]`` or a parameter when the route needs the caller).
ORDER_SYSTEM = Depends(require(Role.ORDER_SYSTEM))
REVIEWER = Depends(require(Role.REVIEWER))
REVIEW_READERS = Depends(require(Role.REVIEWER, Role.DATA_SCIENTIST))
ORDER_READERS = Depends(require(Role.REVIEWER, Role.OPERATIONS, Role.DATA_SCIENTIST))
MODEL_READERS = Depends(require(Role.DATA_SCIENTIST, Role.OPERATIONS))
DATA_SCIENTIST = Depends(require(Role.DATA_SCIENTIST))
OPERATIONS = Depends(require(Role.OPERATIONS))
#: Rule packs: everyone who works with decisions may read them; data scientists (and admins) change them.
RULE_READERS = Depends(require(Role.DATA_SCIENTIST, Role.OPERATIONS, Role.REVIEWER))
RULE_PUBLISHERS = Depends(require(Role.DATA_SCIENTIST))
