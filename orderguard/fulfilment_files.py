"""Fulfilment reports from files: the same reports the webhook takes, exported by an ERP, WMS or carrier.

``.jsonl`` (one report per line), ``.json`` (an array of reports) or ``.csv`` (a header row
naming the report's fields, ``orderguard.fulfilment.FIELDS``). The rules are the webhook's:
each bad row is refused with its line number, field and reason while the good rows are
stored (``all_or_nothing`` stores nothing from a file with a bad row), a repeat is a
duplicate, a changed repeat a conflict. Rows are stored in chunks, so a file of millions of
reports streams through in bounded memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orderguard.errors import InvalidInputError, NotFoundError, OrderGuardError
from orderguard.fulfilment import BATCH_MAX, FulfilmentEvent, FulfilmentLog, conflict_error, parse_event
from orderguard.ingest.orderlog import AppendOutcome

SUFFIXES = (".jsonl", ".json", ".csv")


@dataclass(slots=True)
class FileResult:
    """What became of one file's rows; ``errors`` are ``(line, error)``."""

    rows: int = 0
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    errors: list[tuple[int, OrderGuardError]] = field(default_factory=list)


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line, item)``; an item that is not even JSON is an ``InvalidInputError`` in place of the item."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    yield n, InvalidInputError(f"line {n} is not JSON: {e.msg}", field="body")
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{path.name} is not JSON: {e.msg} (line {e.lineno})", field="file") from e
        items = data if isinstance(data, list) else [data]
        yield from enumerate(items, start=1)
    elif suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                yield n, {k: v for k, v in row.items() if k is not None and v not in (None, "")}
    else:
        raise InvalidInputError.must("file", f"a {', '.join(SUFFIXES)} file", path.name)


def import_reports(path: Path, log: FulfilmentLog, *, received_at: datetime, all_or_nothing: bool = False,
                   chunk: int = BATCH_MAX) -> FileResult:
    """Parse and store one file's reports (see the module docstring)."""
    if not path.is_file():
        raise NotFoundError(f"`file` must be an existing file; no such file: {path}", field="file")
    result = FileResult()
    pending: list[tuple[int, FulfilmentEvent]] = []
    held: list[list[tuple[int, FulfilmentEvent]]] = []

    def store(batch: list[tuple[int, FulfilmentEvent]]) -> None:
        outcomes = log.append([e for _, e in batch]).outcomes
        for (line, event), outcome in zip(batch, outcomes, strict=True):
            if outcome is AppendOutcome.INSERTED:
                result.inserted += 1
            elif outcome is AppendOutcome.DUPLICATE:
                result.duplicates += 1
            else:
                result.conflicts += 1
                result.errors.append((line, conflict_error(event)))

    for line, item in _rows(path):
        result.rows += 1
        try:
            if isinstance(item, OrderGuardError):
                raise item
            pending.append((line, parse_event(item, received_at=received_at)))
        except OrderGuardError as e:
            result.errors.append((line, e))
        if len(pending) >= chunk:
            if all_or_nothing:
                held.append(pending)
            else:
                store(pending)
            pending = []
    if pending:
        held.append(pending)
    if all_or_nothing and result.errors:
        return result
    for batch in held:
        store(batch)
    return result
