"""Domain errors and the one table that maps them to HTTP and CLI behaviour.

Every failure a user can cause (bad payload, unknown channel, bad config) is an
``OrderGuardError`` carrying a stable ``code``, the HTTP status it maps to and the
``field`` it is about, so the API, the CLI and batch ingest all report it the same
way: ``{"code", "message", "field"}`` over HTTP, one line and exit code 2 on the CLI.
"""

from __future__ import annotations

import re
from typing import Any, Self

#: Exit code of the CLI for any user-caused error (bad input, bad config).
CLI_EXIT_CODE = 2


class OrderGuardError(Exception):
    """Base of every domain error.

    Args:
        message: human-readable text; by convention
            "`<field>` must be <constraint>; got <value!r>".
        field: dotted path of the offending input field, when there is one.
    """

    code: str = "orderguard_error"
    http_status: int = 400

    def __init__(self, message: str | None = None, *, field: str | None = None, constraint: str | None = None,
                 value: object = None) -> None:
        if message is None:
            if field is None or constraint is None:
                raise TypeError("an error without a message needs a field and a constraint")
            message = must(field, constraint, value)
        super().__init__(message)
        self.message = message
        self.field = field
        self.constraint = constraint
        self.value = value

    @classmethod
    def must(cls, field: str, constraint: str, value: object) -> Self:
        """The conventional error, kept as structure so it can be re-rooted: ``field`` must be ``constraint``.

        >>> InvalidInputError.must("qty", "a positive integer", -1).message
        '`qty` must be a positive integer; got -1'
        """
        return cls(field=field, constraint=constraint, value=value)

    def at(self, field: str) -> Self:
        """The same error about ``field`` instead (its message re-rendered when it is structured).

        >>> ConfigError.must("attribute", "a flag", "x").at("attributes[2]").message
        "`attributes[2]` must be a flag; got 'x'"
        """
        if self.constraint is not None:
            return type(self)(field=field, constraint=self.constraint, value=self.value)
        return type(self)(f"`{field}`: {self.message}" if self.field != field else self.message, field=field)

    def under(self, prefix: str) -> Self:
        """The same error with its field nested under ``prefix`` (joined as a path, not by editing text).

        >>> ConfigError.must("window", "a duration", "5x").under("features[3]").field
        'features[3].window'
        >>> ConfigError.must("[0]", "a number", None).under("features").field
        'features[0]'
        """
        return self.at(join_path(prefix, self.field))

    def to_dict(self) -> dict[str, Any]:
        """The wire form rendered by the API error handler."""
        return {"code": self.code, "message": self.message, "field": self.field}

    def one_line(self) -> str:
        """The CLI form: one line, field first when known."""
        return f"error[{self.code}]: {self.message}"


class InvalidInputError(OrderGuardError):
    """A payload, file row or argument breaks a constraint."""

    code = "invalid_input"
    http_status = 422


class UnknownChannelError(OrderGuardError):
    """The channel name is not one orderguard has an adapter for."""

    code = "unknown_channel"
    http_status = 404


class UnknownStatusError(InvalidInputError):
    """A channel sent a status code its adapter does not map (mappings are total)."""

    code = "unknown_status"


class EventConflictError(OrderGuardError):
    """Same event key, different content: the first accepted version is kept."""

    code = "event_conflict"
    http_status = 409


class NotFoundError(OrderGuardError):
    """The referenced order, label or model does not exist."""

    code = "not_found"
    http_status = 404


class ConfigError(OrderGuardError):
    """Settings, rule packs or feature definitions are invalid; raised at load time."""

    code = "config_error"
    http_status = 500


class IncompatibleModelError(OrderGuardError):
    """A registered model cannot be served here, e.g. it needs features the service does not compute."""

    code = "incompatible_model"
    http_status = 409


class ServiceUnavailableError(OrderGuardError):
    """A backing service (database, Redis, model registry) cannot be reached."""

    code = "service_unavailable"
    http_status = 503


#: Longest excerpt of a refused value an error message quotes.
EXCERPT_CHARS = 60
_LONG_DIGITS = re.compile(r"\d{11,}")


def _mask_digits(match: re.Match[str]) -> str:
    digits = match.group(0)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def excerpt(value: object) -> str:
    """What an error message quotes of a refused value: its repr, short, with long digit runs masked.

    A message goes back to the caller and into logs, so it must neither echo a 50 MB
    body nor a whole phone or id-card number (runs of 11 or more digits keep their first
    three and last two).

    >>> excerpt(-1), excerpt("13800138000"), excerpt("x" * 100)
    ('-1', "'138******00'", "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… (102 characters)")
    """
    text = repr(value)
    if len(text) > EXCERPT_CHARS:
        text = f"{text[:EXCERPT_CHARS]}… ({len(text)} characters)"
    return _LONG_DIGITS.sub(_mask_digits, text)


def must(field: str, constraint: str, value: object) -> str:
    """Format the conventional error message (the value as a short, masked :func:`excerpt`).

    >>> must("qty", "a positive integer", -1)
    '`qty` must be a positive integer; got -1'
    """
    return f"`{field}` must be {constraint}; got {excerpt(value)}"


def join_path(prefix: str, field: str | None) -> str:
    """``prefix`` and a field path below it: ``a`` + ``b`` → ``a.b``, ``a`` + ``[0]`` → ``a[0]``."""
    if not field:
        return prefix
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"
