"""YAML files validated by a pydantic model: the one way a configuration file's mistake is reported.

Criteria presets, health-check files and the like are data a shop edits by hand. A
mistake must stop the load with one ``ConfigError`` naming the file and the field
(``shop.yaml: checks.0.within: ...``), never surface later as a wrong result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from orderguard.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def validated(text: str, model: type[M], *, source: str, shape: str) -> tuple[M, str]:
    """``text`` parsed as YAML and validated by ``model``, with the text's short digest (its version).

    Args:
        source: the file's name in messages.
        shape: what the file's top level is, for the message when it is not a mapping.

    Raises:
        ConfigError: ``<source>: <field path>: <what is wrong>``.
    """
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {shape}")
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ConfigError(f"{source}: {where}: {first['msg']}", field=where) from exc
    return parsed, hashlib.sha256(text.encode()).hexdigest()[:12]


def preset_or_file(preset_or_path: str | Path, *, presets_dir: Path, presets: Sequence[str], what: str,
                   field: str | None = None) -> tuple[str, str]:
    """The text and source name of a shipped preset (by name) or of a file (by path).

    Raises:
        ConfigError: ``<what>: … is neither a preset … nor a file``, or the file cannot be read.
    """
    path = Path(preset_or_path)
    if isinstance(preset_or_path, str) and preset_or_path in presets:
        path = presets_dir / f"{preset_or_path}.yaml"
    elif not path.is_file():
        raise ConfigError(f"{what}: {preset_or_path} is neither a preset ({', '.join(presets)}) nor a file",
                          field=field)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc}", field=field) from exc
