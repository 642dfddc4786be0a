"""Import export files with several processes: a backfill on every core.

Parsing a row (channel adapter, shared bounds, PII hashing) costs more than writing it,
and one Python process parses on one core. Here each file's batches are dealt round-robin
to ``jobs`` worker processes; each parses its batches and appends them through its own
connection, as several service processes do. What makes that safe is the order log's own
contract, not this module: appends are idempotent by event key, an order's state is
derived from all its stored events whatever their arrival order, and concurrent appenders
to one order re-derive one after the other (SQLite has a single writer; PostgreSQL takes a
per-order advisory lock). The results are merged per file, rows in file order, so the
report reads as a one-process import's.

A file that must be all or nothing is imported by one process (``import_file``): only
the whole file can say whether any row is bad.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from orderguard.heap import settled_heap
from orderguard.ingest.importer import FileImportResult, import_file
from orderguard.ingest.orderlog import OrderLog
from orderguard.ingest.service import IngestReport
from orderguard.ingest.state_memo import IMPORT_CAPACITY
from orderguard.settings import IngestLimits, PiiSettings


def _import_part(url: str, pii: PiiSettings, limits: IngestLimits, path: Path, channel: str | None,
                 mapping: Path | None, batch_size: int, part: int, parts: int) -> FileImportResult:
    """Worker process: one part of one file, through a connection of its own."""
    log = OrderLog.open(url, remembered_states=IMPORT_CAPACITY)
    try:
        with settled_heap():
            return import_file(path, channel=channel, mapping=mapping, log=log, pii=pii, limits=limits,
                               batch_size=batch_size, part=part, parts=parts)
    finally:
        log.close()


def merge_parts(path: Path, parts: Sequence[FileImportResult]) -> FileImportResult:
    """One file's result from the results of its parts: counts added, rows and refusals in file order."""
    report = IngestReport()
    for result in parts:
        report.merge(result.report)
    report.items.sort(key=lambda item: item.position)
    report.errors.sort(key=lambda error: error.position)
    return FileImportResult(path=path, channel=parts[0].channel, rows=sum(r.rows for r in parts), report=report)


def import_files(paths: Sequence[Path], *, url: str, pii: PiiSettings, jobs: int, limits: IngestLimits | None = None,
                 channel: str | None = None, mapping: Path | None = None, batch_size: int = 1000,
                 on_part: Callable[[int, int], None] | None = None) -> list[FileImportResult]:
    """Import ``paths`` with ``jobs`` worker processes (see the module docstring); results in ``paths`` order.

    ``url`` is the order log's database; it must exist (open it once with ``OrderLog.open``
    first, so the workers do not race to create it). ``on_part(i, rows)`` is called in this process as each
    part of ``paths[i]`` finishes (a progress bar). A worker's error (say, an unreadable file) is raised
    here once every started part has finished, so nothing is left writing.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")
    done: list[list[FileImportResult]] = [[] for _ in paths]  # by position: a file named twice is imported twice
    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        pending: dict[Future[FileImportResult], int] = {
            pool.submit(_import_part, url, pii, limits or IngestLimits(), path, channel, mapping, batch_size, part,
                        jobs): i
            for i, path in enumerate(paths) for part in range(jobs)}
        failure: BaseException | None = None
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                i = pending.pop(future)
                if future.cancelled():  # after a failure: never started, nothing to report
                    continue
                error = future.exception()
                if error is not None:
                    failure = failure or error
                    for other in pending:
                        other.cancel()  # parts not started yet; the running ones finish
                    continue
                result = future.result()
                done[i].append(result)
                if on_part is not None:
                    on_part(i, result.rows)
        if failure is not None:
            raise failure
    return [merge_parts(path, parts) for path, parts in zip(paths, done, strict=True)]
