"""Import one export file into the order log, in batches, with a progress bar.

Glue between :mod:`orderguard.ingest.files` (reading rows), the channel adapter and
:mod:`orderguard.ingest.service` (parse + store with per-row errors). With
``all_or_nothing`` every row is parsed first and nothing is stored if any is bad.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import Progress

from orderguard.errors import InvalidInputError
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.files import ColumnMapping, Record, count_records, read_records
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.service import IngestReport, parse_items, store
from orderguard.schema import Channel
from orderguard.settings import IngestLimits, PiiSettings


@dataclass(frozen=True, slots=True)
class FileImportResult:
    """What one file contributed; ``report.errors`` positions are file line numbers."""

    path: Path
    channel: str
    rows: int
    report: IngestReport

    def write_rejects(self, target: Path) -> None:
        """Append refused rows (file, line, code, field, message) as JSONL."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            for error in self.report.errors:
                row = {"file": str(self.path), "line": error.position, **error.error.to_dict()}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def channel_for(path: Path, channel: str | None) -> str:
    """The explicit channel, else the file's stem when it names a channel (``jd.jsonl``)."""
    if channel:
        return channel
    stem = path.name.split(".")[0].lower()
    if stem in {c.value for c in Channel}:
        return stem
    raise InvalidInputError(f"`--channel` is required for {path.name!r} (its name is not a channel)",
                            field="channel")


def _batches(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def import_file(
    path: Path, *, channel: str | None, mapping: Path | None, log: OrderLog, pii: PiiSettings,
    limits: IngestLimits | None = None, all_or_nothing: bool = False, batch_size: int = 1000,
    progress: Progress | None = None, part: int = 0, parts: int = 1,
) -> FileImportResult:
    """Read, parse and store one file; see the module docstring.

    ``part`` of ``parts``: only the batches whose index is ``part`` modulo ``parts`` are
    parsed and stored (``orderguard.ingest.parallel`` deals a file's batches to several
    processes); ``rows`` counts those batches' rows.
    """
    if not 0 <= part < parts:
        raise ValueError(f"part must be in [0, {parts}); got {part}")
    if all_or_nothing and parts > 1:
        raise ValueError("all_or_nothing needs the whole file in one process")
    name = channel_for(path, channel)
    adapter = get_adapter(name)
    column_mapping = ColumnMapping.load(mapping) if mapping is not None else None
    ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(pii.hash_key.get_secret_value().encode()),
                       limits=limits or IngestLimits())
    # only this part's batches are read (decoded) at all
    records = read_records(path, mapping=column_mapping, hasher=ctx.hasher,
                           wanted=None if parts == 1 else lambda i: i // batch_size % parts == part)
    task = progress.add_task(path.name, total=count_records(path)) if progress is not None else None
    report = IngestReport()
    pending = []
    rows = 0
    for batch in _batches(records, batch_size):
        rows += len(batch)
        events, errors = parse_items(adapter, batch, ctx=ctx)
        report.errors.extend(errors)
        if all_or_nothing:
            pending.extend(events)
        else:
            report.items.extend(store(log, events))
        if progress is not None and task is not None:
            progress.advance(task, len(batch))
    if all_or_nothing and not report.errors:
        for start in range(0, len(pending), batch_size):
            report.items.extend(store(log, pending[start:start + batch_size]))
    return FileImportResult(path=path, channel=adapter.channel.value, rows=rows, report=report)
