"""The pages people use in a browser: sign-in, sign-out, and the home page that lists what their roles open.

People sign in with a user name and password (``orderguard users add``); the session
is a signed, http-only cookie (``serving.web.session``). Every page names its roles with
:func:`page_user` (the page twin of ``serving.api.auth.require``): an anonymous visitor is
sent to the sign-in page and back afterwards, a signed-in user without the page's roles
gets a 403 page. Every form post carries the session's CSRF token (:func:`form_user`).
Failed sign-ins are rate limited per user and address (``serving.web.throttle``).

Pages answer HTML, never the API's JSON errors, and are sent with headers that keep them
out of caches and frames (``PAGE_HEADERS``). Scripts and styles come from this service
(``/static``), never from a CDN: reviewers' networks are often closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from orderguard.access import Directory, Principal, Role
from serving.api.auth import session_caller
from serving.api.deps import services
from serving.services import Services, refresh_access
from serving.web.session import CSRF_FIELD, CSRF_HEADER, PRESESSION_COOKIE, SESSION_COOKIE, Session

HERE = Path(__file__).parent
STATIC_URL = "/static"
SIGN_IN = "/signin"
#: Headers of every page: never cached (a shared computer's back button shows nothing), never framed.
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                           "form-action 'self'; base-uri 'none'"}
MAX_NAME = 64
MAX_PASSWORD = 1024

templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True, slots=True)
class Place:
    """A page the home page links to, for the roles that open it."""

    url: str
    title: str
    what: str
    roles: frozenset[Role]


#: The pages of the service, in the order the home page lists them (a new page adds its entry here).
PLACES: tuple[Place, ...] = (
    Place("/desk", "审核队列 Review desk", "flagged orders, each beside its most similar past cases",
          frozenset({Role.REVIEWER})),
    Place("/segments", "优质客户池 Trusted customers", "customers marketing may reward, with downloads and why-not",
          frozenset({Role.MARKETING})),
    Place("/health", "订单健康 Order health", "the shop's order health now, the orders stuck longest, each order's "
          "timeline", frozenset({Role.OPERATIONS})),
    Place("/docs", "API reference", "every route, what it takes and who may call it", frozenset(Role)),
)


@dataclass(frozen=True, slots=True)
class PageCaller:
    """A signed-in person on a page: who, with which roles now, and their session (for its CSRF token)."""

    user: Principal
    session: Session


class SignInRequired(Exception):  # noqa: N818 - a redirect, not an error
    """Raised by :func:`page_user` for an anonymous visitor: answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):  # noqa: N818 - answered with a page
    """A signed-in user without the page's roles, or a form post without the session's CSRF token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this service only (no open redirect to another site).

    >>> safe_next("/desk?channel=jd"), safe_next("//evil.example/"), safe_next("https://evil.example/")
    ('/desk?channel=jd', '/', '/')
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 2000:
        return "/"
    return value


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> Response:
    """A page from ``templates`` with the page headers."""
    return templates.TemplateResponse(request, template, {"static_url": STATIC_URL, "user": None, **context},
                                      status_code=status_code, headers=PAGE_HEADERS)


def _caller(request: Request, svc: Services) -> PageCaller | None:
    found = session_caller(request, svc)
    return None if found is None else PageCaller(*found)


def page_user(*roles: Role) -> Callable[..., Awaitable[PageCaller]]:
    """The dependency of a page serving ``roles`` (or ``admin``); no roles = any signed-in person."""
    allowed = frozenset(roles or Role)

    async def signed_in(request: Request, svc: Annotated[Services, Depends(services)]) -> PageCaller:
        caller = _caller(request, svc)
        if caller is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        if not caller.user.may(allowed):
            raise PageForbidden(f"This page is for {', '.join(sorted(r.value for r in allowed))}; you hold "
                                f"{', '.join(sorted(r.value for r in caller.user.roles))}.")
        return caller

    signed_in.__name__ = f"page_{'_or_'.join(sorted(r.value for r in allowed))}"
    signed_in.roles = allowed  # type: ignore[attr-defined]  # read by serving.api.auth.route_roles
    return signed_in


def form_user(*roles: Role) -> Callable[..., Awaitable[PageCaller]]:
    """:func:`page_user` for a form post: the form must carry the session's CSRF token as ``csrf_token`` (or the
    request as the ``X-CSRF-Token`` header)."""
    page = page_user(*roles)

    # The dependency is a default, not an ``Annotated`` string: a closure's local cannot be resolved from one.
    async def posted(request: Request, caller: PageCaller = Depends(page)) -> PageCaller:  # noqa: B008
        form = await request.form()
        token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)  # a script may send it as a header
        if not caller.session.csrf_matches(token if isinstance(token, str) else None):
            raise PageForbidden("This form is out of date (its security token does not match your session). "
                                "Go back, reload the page and send it again.")
        return caller

    posted.__name__ = f"form_{page.__name__}"
    posted.roles = page.roles  # type: ignore[attr-defined]
    return posted


router = APIRouter(include_in_schema=False)
Svc = Annotated[Services, Depends(services)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signin_form(request: Request, svc: Services, *, next_url: str, username: str = "", error: str | None = None,
                 status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The sign-in page with a fresh pre-session (its CSRF token in a cookie scoped to the sign-in path)."""
    presession, cookie = svc.access.sessions.issue_presession(now=svc.clock.now())
    response = render(request, "signin.html", {"csrf_token": presession.csrf, "next": next_url, "username": username,
                                               "error": error}, status_code=status_code)
    response.set_cookie(PRESESSION_COOKIE, cookie, path=SIGN_IN, httponly=True, samesite="strict",
                        secure=svc.settings.session.secure_cookie)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@router.get(SIGN_IN)
async def signin_page(request: Request, svc: Svc, next: str = "/") -> Response:
    """The sign-in form (a signed-in visitor goes straight on)."""
    if _caller(request, svc) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _signin_form(request, svc, next_url=safe_next(next))


@router.post(SIGN_IN)
async def signin(request: Request, svc: Svc, username: Annotated[str, Form()] = "",
                 password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/") -> Response:
    """Check the password; on success set the session cookie and go on to ``next``."""
    next_url, name = safe_next(next), username.strip().lower()[:MAX_NAME + 1]
    presession = svc.access.sessions.read_presession(request.cookies.get(PRESESSION_COOKIE), now=svc.clock.now())
    if presession is None or not presession.csrf_matches(csrf_token):
        return _signin_form(request, svc, next_url=next_url, username=name[:MAX_NAME], status_code=403,
                            error="This sign-in form expired or came from another site. Please sign in again.")
    address, now = _address(request), svc.clock.now()
    wait = svc.access.throttle.retry_after(name, address, now)
    if wait is not None:
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        return _signin_form(request, svc, next_url=next_url, username=name, status_code=429,
                            headers={"Retry-After": str(max(1, int(wait.total_seconds())))},
                            error=f"Too many failed sign-ins. Try again in {minutes} minute"
                                  f"{'s' if minutes > 1 else ''}.")
    directory = Directory(svc.order_log.engine)
    user = None
    if 0 < len(name) <= MAX_NAME and 0 < len(password) <= MAX_PASSWORD:
        user = await asyncio.to_thread(directory.verify_password, name, password)
    if user is None:
        svc.access.throttle.failed(name, address, now)
        return _signin_form(request, svc, next_url=next_url, username=name[:MAX_NAME], status_code=401,
                            error="The user name or the password is wrong (or the account is disabled).")
    svc.access.throttle.succeeded(name, address)
    if svc.access.ring.session_user(name, now) is None:  # added (or signed out) a moment ago: tell the ring now
        await refresh_access(svc, directory)
    _, cookie = svc.access.sessions.issue(name, now=now)
    response = RedirectResponse(next_url, status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(svc.settings.session.max_age.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=svc.settings.session.secure_cookie)
    response.delete_cookie(PRESESSION_COOKIE, path=SIGN_IN)
    return response


@router.post("/signout")
async def signout(svc: Svc, caller: Annotated[PageCaller, Depends(form_user())]) -> Response:
    """End the user's sessions (copies of the cookie included, in every process from its next key refresh; in
    this one at once), remove the cookie and show the sign-in page."""
    directory = Directory(svc.order_log.engine)
    await asyncio.to_thread(directory.end_sessions, caller.user.name, now=svc.clock.now())
    await refresh_access(svc, directory)
    response = RedirectResponse(SIGN_IN, status_code=303, headers=PAGE_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(request: Request, caller: Annotated[PageCaller, Depends(page_user())]) -> Response:
    """Who you are and the pages your roles open."""
    places = [p for p in PLACES if caller.user.may(p.roles)]
    return render(request, "home.html", {"user": caller.user, "csrf_token": caller.session.csrf, "places": places})


def install_pages(app: FastAPI) -> None:
    """Add the pages, their static files and the handlers that answer a page's refusals with pages."""
    from serving.web import desk, health, segments  # their routes use this module's guards: imported once they exist

    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.include_router(desk.router)
    app.include_router(segments.router)
    app.include_router(health.router)

    async def to_signin(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"{SIGN_IN}?next={quote(exc.next_url, safe='/')}", status_code=303,
                                headers=PAGE_HEADERS)

    async def forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageForbidden)
        return render(request, "message.html", {"heading": "Not for your roles", "message": exc.message},
                      status_code=403)

    app.add_exception_handler(SignInRequired, to_signin)
    app.add_exception_handler(PageForbidden, forbidden)
