"""The reference of every ``ORDERGUARD_*`` variable, generated from the settings model itself.

A setting documented by hand drifts from the code (a data scientist once found the
training settings only by reading it). This walks :class:`features.settings.Settings`:
every section, every field with its environment variable, type, default and description,
and renders one Markdown table per section. ``docs/settings.md`` is this output, and a
test fails when the two differ, so a new or changed setting cannot ship undocumented;
``orderguard settings`` prints it.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from features.settings import Settings

PREFIX = "ORDERGUARD_"
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: its name, type, default (as text) and meaning."""

    name: str
    type: str
    default: str
    meaning: str


def duration(value: timedelta) -> str:
    """A duration the way settings take it.

    >>> duration(timedelta(minutes=15)), duration(timedelta(days=14)), duration(timedelta(seconds=90))
    ('15m', '14d', '90s')
    """
    seconds = value.total_seconds()
    for unit, size in _UNITS:
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds}s"


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The settings sections an annotation names (one, or each member of a union of sections)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models(typing.get_args(annotation)[0])
    if origin in (typing.Union, UnionType):
        members = [m for a in typing.get_args(annotation) for m in _models(a)]
        return members if all(not _is_none(a) for a in typing.get_args(annotation)) else []
    return []


def _is_none(annotation: Any) -> bool:
    return annotation is type(None)


def type_name(annotation: Any) -> str:
    """A short readable type: ``int``, ``duration``, ``list[AlertReceiver]``, ``one of a | b`` …"""
    if annotation is timedelta:
        return "duration"
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return "one of " + " | ".join(str(m.value) for m in annotation)
        return {SecretStr: "secret", Path: "path"}.get(annotation, annotation.__name__)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + " | ".join(str(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, UnionType):
        named = [type_name(a) for a in args if not _is_none(a)]
        return " or ".join(named) + (" (optional)" if any(_is_none(a) for a in args) else "")
    if origin in (list, tuple, set, frozenset):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args if a is not Ellipsis)}] (JSON)"
    if origin is dict:
        return f"map of {type_name(args[1])} (JSON, or one variable per key)"
    return str(annotation).replace("typing.", "")


def default_text(field: FieldInfo) -> str:
    """The default as a person types it; secrets and machine-dependent paths are described, not shown."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, Path) and value.is_absolute():
        return "computed"
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, SecretStr):
        return "a development value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, dict) and any(isinstance(v, SecretStr) for v in value.values()):
        return "development values for " + ", ".join(str(k.value if isinstance(k, Enum) else k) for k in value)
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")) if value else "none"
    return str(value)


def attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a class docstring (Google style), as one line per attribute.

    >>> class S:
    ...     '''Options.
    ...
    ...     Attributes:
    ...         gap: delay between training and holdout,
    ...             so late labels cannot leak.
    ...         seed: the seed.
    ...     '''
    >>> attribute_docs(S)
    {'gap': 'delay between training and holdout, so late labels cannot leak.', 'seed': 'the seed.'}
    """
    lines = (cls.__doc__ or "").splitlines()
    out: dict[str, str] = {}
    inside, indent, current = False, 0, ""
    for line in lines:
        text = line.strip()
        if text == "Attributes:":
            inside, indent = True, len(line) - len(line.lstrip()) + 4
            continue
        if not inside:
            continue
        if not text:
            if current:
                break
            continue
        depth = len(line) - len(line.lstrip())
        if depth < indent:
            break
        name, sep, rest = text.partition(":")
        if depth == indent and sep and name.isidentifier():
            current = name
            out[current] = rest.strip()
        elif current:
            out[current] = f"{out[current]} {text}"
    return out


def variables(model: type[BaseModel] = Settings, prefix: str = PREFIX) -> Iterator[tuple[str, list[Variable]]]:
    """``(section title, its variables)`` for ``model`` and every nested section, in declaration order."""
    own: list[Variable] = []
    nested: list[tuple[str, list[Variable]]] = []
    documented = attribute_docs(model)
    for name, field in model.model_fields.items():
        env = f"{prefix}{name.upper()}"
        sections = _models(field.annotation)
        if sections:
            for section in sections:
                kind = section.model_fields.get("type")
                tag = f" (`type={kind.default}`)" if len(sections) > 1 and kind is not None else ""
                title = f"`{env}__*`{tag}: {(section.__doc__ or section.__name__).strip().splitlines()[0]}"
                for sub_title, sub_vars in variables(section, f"{env}__"):
                    nested.append((title if sub_title == "" else sub_title, sub_vars))
            continue
        own.append(Variable(env, type_name(field.annotation), default_text(field),
                            (field.description or documented.get(name, "—")).replace("|", "\\|")))
    yield "", own
    yield from ((t, vs) for t, vs in nested if vs)


def markdown() -> str:
    """``docs/settings.md``."""
    lines = ["# Settings reference", "",
             "Every setting is an environment variable with the prefix `ORDERGUARD_`; `__` nests a section "
             "(`ORDERGUARD_HEALTH__SWEEP_EVERY=30s`). Durations are written `30s`, `15m`, `12h`, `14d`; lists and "
             "maps are JSON. A bad value stops the start (or the command) with one line naming the variable. This "
             "file is generated from the settings model (`orderguard settings > docs/settings.md`); a test "
             "checks it is current.", ""]
    for title, found in variables():
        lines += [f"## {title or 'General'}", "", "| variable | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{v.name}` | {v.type} | {v.default} | {v.meaning} |" for v in found]
        lines.append("")
    return "\n".join(lines)
