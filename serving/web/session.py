"""The session cookie of people signed in to the web pages: signed, http-only, with its CSRF token.

The cookie holds the user name, the sign-in time and a random CSRF token, signed with
``settings.session.secret`` (itsdangerous) and refused once older than
``settings.session.max_age``. It holds no roles: those are read from the user directory
(:meth:`orderguard.access.KeyRing.user`) on every request, so disabling a user or taking
a role away counts within seconds. Every form post and every state-changing API call made
with the cookie must carry the session's CSRF token (a form field ``csrf_token`` or the
header ``X-CSRF-Token``): another site can make the browser send the cookie, not read the token.

Before sign-in the same scheme guards the sign-in form itself (a *pre-session* cookie with
only a CSRF token), so another site cannot sign a victim in to an account it controls.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

SESSION_COOKIE = "og_session"
PRESESSION_COOKIE = "og_presession"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
#: How long a sign-in form stays valid.
PRESESSION_AGE = timedelta(hours=1)
#: How far ahead of this process's clock another process may have issued a cookie.
CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person's session as the cookie states it (``user`` is empty for a pre-session)."""

    user: str
    csrf: str
    signed_in_at: datetime

    def csrf_matches(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (constant-time)."""
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


class SessionCodec:
    """Signs and reads session cookies with one secret.

    Ages are measured with the service's clock (the time of issue is inside the signed
    value), so expiry behaves the same under a test clock as in service.
    """

    def __init__(self, secret: str, *, max_age: timedelta) -> None:
        self._sessions = URLSafeSerializer(secret, salt="orderguard.session")
        self._presessions = URLSafeSerializer(secret, salt="orderguard.presession")
        self.max_age = max_age

    def issue(self, user: str, *, now: datetime) -> tuple[Session, str]:
        """A new session for ``user`` (a fresh CSRF token) and its cookie value."""
        session = Session(user, secrets.token_urlsafe(24), now)
        return session, self._sessions.dumps({"u": user, "c": session.csrf, "t": now.timestamp()})

    def read(self, value: str | None, *, now: datetime) -> Session | None:
        """The session of a cookie value, or ``None`` when absent, forged, malformed or expired."""
        found = _load(self._sessions, value, self.max_age, now)
        if found is None:
            return None
        data, issued = found
        user = data.get("u")
        return Session(user, str(data["c"]), issued) if isinstance(user, str) and user else None

    def issue_presession(self, *, now: datetime) -> tuple[Session, str]:
        """A CSRF token for the sign-in form, and its cookie value."""
        session = Session("", secrets.token_urlsafe(24), now)
        return session, self._presessions.dumps({"c": session.csrf, "t": now.timestamp()})

    def read_presession(self, value: str | None, *, now: datetime) -> Session | None:
        """The pre-session of a cookie value, or ``None``."""
        found = _load(self._presessions, value, PRESESSION_AGE, now)
        return None if found is None else Session("", str(found[0]["c"]), found[1])


def _load(serializer: URLSafeSerializer, value: str | None, max_age: timedelta,
          now: datetime) -> tuple[dict[str, object], datetime] | None:
    """The signed data and its time of issue, or ``None`` when forged, malformed, expired or issued in the future."""
    if not value or len(value) > 4096:
        return None
    try:
        data = serializer.loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not data.get("c") or not isinstance(data.get("t"), int | float):
        return None
    try:
        issued = datetime.fromtimestamp(data["t"], tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    age = now - issued
    if age < -CLOCK_SKEW or age >= max_age:
        return None
    return data, issued
