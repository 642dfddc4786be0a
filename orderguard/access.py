"""Who may do what: roles, API keys for machines, users for people.

Every route and page of the service names the roles it serves (``Role``); a caller is a
:class:`Principal` holding some of them. Machines (the order system, a data pipeline)
send an API key; people sign in with a name and a password.

* **API keys** look like ``og_<prefix>_<secret>``: the prefix (8 hex digits) names the
  key in lists and logs, the secret (256 random bits) is shown once, at creation. Only
  SHA-256 of the whole key is stored: a slow password hash buys nothing against a
  256-bit random secret, and a fast one lets the service check a key in memory
  (:class:`KeyRing`), with no database round trip per request.
* **Passwords** are hashed with argon2 (``argon2-cffi``'s defaults), which is slow on
  purpose: people choose guessable passwords.

Both live in the order-log database (migration ``0005``), so every process of a
deployment sees one set and a revocation reaches all of them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from orderguard.errors import InvalidInputError, NotFoundError, OrderGuardError
from orderguard.ingest.orderlog import API_KEYS, USERS, connection_guard, redacted


class Role(StrEnum):
    """What a principal is for; a principal may hold several."""

    ORDER_SYSTEM = "order_system"  # ingest and score
    REVIEWER = "reviewer"  # the review queue, cases, labels
    OPERATIONS = "operations"  # order health
    DATA_SCIENTIST = "data_scientist"  # training, promotion, model reload, score records, features
    MARKETING = "marketing"  # segments only
    ADMIN = "admin"  # users, keys, rule packs, everything


class DuplicateUserError(OrderGuardError):
    """A user of that name exists already."""

    code = "duplicate_user"
    http_status = 409


def parse_roles(values: Iterable[str], *, field: str = "role") -> frozenset[Role]:
    """Role names → roles; an unknown or missing role is an error naming ``field``.

    >>> sorted(parse_roles(["reviewer", "admin"]))
    [<Role.ADMIN: 'admin'>, <Role.REVIEWER: 'reviewer'>]
    """
    roles = set()
    for value in values:
        try:
            roles.add(Role(value.strip().lower()))
        except ValueError as e:
            raise InvalidInputError.must(field, f"one of {', '.join(r.value for r in Role)}", value) from e
    if not roles:
        raise InvalidInputError.must(field, f"at least one of {', '.join(r.value for r in Role)}", "none")
    return frozenset(roles)


def _roles_text(roles: frozenset[Role]) -> str:
    return ",".join(sorted(r.value for r in roles))


def _roles_of(text: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split(",") if r)


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller: ``kind`` ``key`` (named by its prefix) or ``user`` (named by user name)."""

    kind: str
    name: str
    roles: frozenset[Role]

    @property
    def reviewer_id(self) -> str:
        """How labels this principal gives name their reviewer: a user by name, a key as ``key:<name> (<prefix>)``
        (so a tool's verdicts are never mistaken for a person's)."""
        return (self.name if self.kind == "user" else f"{self.kind}:{self.name}")[:128]

    def may(self, allowed: frozenset[Role]) -> bool:
        """Whether any of the principal's roles is in ``allowed`` (``admin`` may do everything)."""
        return Role.ADMIN in self.roles or not self.roles.isdisjoint(allowed)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as listed: never its secret."""

    prefix: str
    name: str
    roles: frozenset[Role]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in."""

    name: str
    roles: frozenset[Role]
    created_at: datetime
    disabled_at: datetime | None


KEY_PATTERN = re.compile(r"og_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")
_USER_NAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")
MIN_PASSWORD = 12


def key_hash(key: str) -> str:
    """SHA-256 (hex) of a whole API key: what is stored and compared."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The active API keys and users in memory: a request's key is checked with a dict lookup and one hash.

    Built by :meth:`Directory.key_ring`; a service rebuilds it every few seconds, so a
    revoked key is refused by every process shortly after (``settings.access.refresh_s``).
    """

    def __init__(self, entries: Mapping[str, tuple[str, Principal]],
                 users: Mapping[str, tuple[Principal, datetime | None]] | None = None) -> None:
        self._entries = MappingProxyType(dict(entries))
        self._users = MappingProxyType(dict(users or {}))
        self._used: set[str] = set()

    def session_user(self, name: str, signed_in_at: datetime) -> Principal | None:
        """The enabled user ``name`` with the roles the directory gives them now, or ``None`` when the user is
        disabled or gone or signed out (everywhere) after ``signed_in_at``.

        Sessions name only the user, so a disabled user, a removed role or a sign-out
        counts from the next refresh on.
        """
        found = self._users.get(name)
        if found is None:
            return None
        principal, sessions_after = found
        return principal if sessions_after is None or signed_in_at > sessions_after else None

    def drain_used(self) -> set[str]:
        """The prefixes of keys that authenticated since the last call (for ``Directory.touch_keys``)."""
        used, self._used = self._used, set()
        return used

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or ``None`` for a malformed, unknown or revoked key."""
        match = KEY_PATTERN.fullmatch(key)
        if match is None:
            return None
        entry = self._entries.get(match.group(1))
        if entry is None:
            return None
        stored, principal = entry
        if not hmac.compare_digest(stored, key_hash(key)):
            return None
        self._used.add(match.group(1))
        return principal


class Directory:
    """API keys and users in the order-log database (open the order log first: it migrates the schema)."""

    def __init__(self, engine: Engine, *, hasher: PasswordHasher | None = None) -> None:
        self._engine = engine
        self._passwords = hasher or PasswordHasher()
        self._where = redacted(engine.url)

    def _guard(self) -> AbstractContextManager[None]:
        return connection_guard("access", self._where)

    # ------------------------------------------------------------------ keys

    def create_key(self, name: str, roles: frozenset[Role], *, now: datetime) -> tuple[ApiKey, str]:
        """A new key for ``name`` with ``roles``; returns it with its secret (shown once, never stored)."""
        label = name.strip()
        if not label or len(label) > 200:
            raise InvalidInputError.must("name", "1 to 200 characters", name)
        prefix = secrets.token_hex(4)
        key = f"og_{prefix}_{secrets.token_urlsafe(32)}"
        with self._guard(), self._engine.begin() as conn:
            conn.execute(API_KEYS.insert().values(prefix=prefix, name=label, key_hash=key_hash(key),
                                                  roles=_roles_text(roles), created_at=now))
        return ApiKey(prefix, label, roles, now, None, None), key

    def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._guard(), self._engine.connect() as conn:
            rows = conn.execute(sa.select(API_KEYS).order_by(API_KEYS.c.created_at, API_KEYS.c.prefix)).all()
        return [ApiKey(r.prefix, r.name, _roles_of(r.roles), r.created_at,
                       r.last_used_at, r.revoked_at) for r in rows]

    def revoke_key(self, prefix: str, *, now: datetime) -> ApiKey:
        """Revoke the key named by ``prefix`` (idempotent: a revoked key keeps its first revocation time)."""
        with self._guard(), self._engine.begin() as conn:
            found = conn.execute(API_KEYS.update().where(API_KEYS.c.prefix == prefix, API_KEYS.c.revoked_at.is_(None))
                                 .values(revoked_at=now)).rowcount
            exists = found or conn.execute(sa.select(API_KEYS.c.prefix).where(API_KEYS.c.prefix == prefix)).first()
        if not exists:
            raise NotFoundError.must("prefix", "the prefix of an existing key (orderguard keys list)", prefix)
        return next(k for k in self.api_keys() if k.prefix == prefix)

    def key_ring(self) -> KeyRing:
        """The active (unrevoked) keys and enabled users, for checking requests in memory."""
        with self._guard(), self._engine.connect() as conn:
            rows = conn.execute(sa.select(API_KEYS.c.prefix, API_KEYS.c.name, API_KEYS.c.key_hash, API_KEYS.c.roles)
                                .where(API_KEYS.c.revoked_at.is_(None))).all()
            people = conn.execute(sa.select(USERS.c.name, USERS.c.roles, USERS.c.sessions_after)
                                  .where(USERS.c.disabled_at.is_(None))).all()
        return KeyRing({r.prefix: (r.key_hash, Principal("key", f"{r.name} ({r.prefix})", _roles_of(r.roles)))
                        for r in rows},
                       {u.name: (Principal("user", u.name, _roles_of(u.roles)), u.sessions_after) for u in people})

    def touch_keys(self, used: Mapping[str, datetime]) -> None:
        """Record when keys were last used (the service batches this; a lost update only delays a date)."""
        if not used:
            return
        with self._guard(), self._engine.begin() as conn:
            for prefix, at in used.items():
                conn.execute(API_KEYS.update().where(API_KEYS.c.prefix == prefix).values(last_used_at=at))

    # ------------------------------------------------------------------ users

    def add_user(self, name: str, password: str, roles: frozenset[Role], *, now: datetime) -> User:
        """A new user (lower-case name, 2 to 64 characters); the password is stored as its argon2 hash."""
        if not _USER_NAME.fullmatch(name):
            raise InvalidInputError.must("name", "2 to 64 lower-case letters, digits, '.', '_' or '-', starting "
                                                 "with a letter", name)
        if len(password) < MIN_PASSWORD:
            raise InvalidInputError(f"`password` must be at least {MIN_PASSWORD} characters", field="password")
        digest = self._passwords.hash(password)
        try:
            with self._guard(), self._engine.begin() as conn:
                conn.execute(USERS.insert().values(name=name, password_hash=digest, roles=_roles_text(roles),
                                                   created_at=now))
        except sa_exc.IntegrityError as e:
            raise DuplicateUserError(f"`name` must be a new user; {name!r} exists", field="name") from e
        return User(name, roles, now, None)

    def users(self) -> list[User]:
        """Every user, by name."""
        with self._guard(), self._engine.connect() as conn:
            rows = conn.execute(sa.select(USERS).order_by(USERS.c.name)).all()
        return [User(r.name, _roles_of(r.roles), r.created_at, r.disabled_at)
                for r in rows]

    def set_user(self, name: str, *, now: datetime, enabled: bool | None = None,
                 roles: frozenset[Role] | None = None, password: str | None = None) -> User:
        """Disable or re-enable a user, replace their roles or password (a running service sees it at its next
        key refresh: a disabled user's sessions are refused from then on)."""
        values: dict[str, object] = {}
        if enabled is not None:
            values["disabled_at"] = None if enabled else now
            if not enabled:
                values["sessions_after"] = now
        if roles is not None:
            values["roles"] = _roles_text(roles)
        if password is not None:
            if len(password) < MIN_PASSWORD:
                raise InvalidInputError(f"`password` must be at least {MIN_PASSWORD} characters", field="password")
            values["password_hash"] = self._passwords.hash(password)
            values["sessions_after"] = now  # a new password ends the sessions the old one opened
        with self._guard(), self._engine.begin() as conn:
            if values:
                conn.execute(USERS.update().where(USERS.c.name == name).values(**values))
            row = conn.execute(sa.select(USERS).where(USERS.c.name == name)).first()
        if row is None:
            raise NotFoundError.must("name", "an existing user (orderguard users list)", name)
        return User(row.name, _roles_of(row.roles), row.created_at, row.disabled_at)

    def end_sessions(self, name: str, *, now: datetime) -> None:
        """Refuse every session ``name`` signed in before ``now`` (sign-out ends copies of the cookie too)."""
        with self._guard(), self._engine.begin() as conn:
            conn.execute(USERS.update().where(USERS.c.name == name).values(sessions_after=now))

    def verify_password(self, name: str, password: str) -> Principal | None:
        """The user's principal when the password is right and the user enabled, else ``None``.

        An unknown user costs one argon2 verification too, so timing does not tell which
        user names exist.
        """
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(sa.select(USERS).where(USERS.c.name == name)).first()
        digest = row.password_hash if row is not None else _dummy_hash()
        try:
            self._passwords.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled_at is not None:
            return None
        return Principal("user", row.name, _roles_of(row.roles))


@functools.cache
def _dummy_hash() -> str:
    """A real argon2 hash of a random password: verifying against it costs what a real user's check costs."""
    return PasswordHasher().hash(secrets.token_urlsafe(16))
