"""Write the pool to a file marketing opens: CSV, XLSX or Parquet, the same bytes for the same pool.

CSV and Parquet are written by DuckDB straight from the pool's relation (no Python row).
XLSX goes through openpyxl in write-only mode, streamed from Arrow batches; its zip
entries and document properties are stamped with the as-of instead of the clock, so an
export of a past day is byte-for-byte reproducible in every format. A sheet holds at most
1,048,575 customers; a larger pool is refused with a pointer to CSV or Parquet.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import duckdb

from orderguard.errors import InvalidInputError

#: ``(done, total)`` rows written.
WriteProgress = Callable[[int, int], None]

#: Rows a sheet holds below its header row (Excel's limit is 1,048,576 rows).
XLSX_MAX_ROWS = 1_048_575


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


class Format(StrEnum):
    """The file formats an export takes."""

    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


#: The media type each format is served as.
MEDIA_TYPES = {Format.CSV: "text/csv; charset=utf-8",
               Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               Format.PARQUET: "application/vnd.apache.parquet"}


def parse_format(text: str, *, field: str = "format") -> Format:
    try:
        return Format(text.strip().lower())
    except ValueError:
        raise InvalidInputError.must(field, "one of csv, xlsx, parquet", text) from None


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def write(relation: duckdb.DuckDBPyRelation, path: Path, fmt: Format, *, as_of: datetime,
          progress: WriteProgress | None = None) -> int:
    """Write ``relation`` (ordered) to ``path`` atomically (a temp file beside it, then renamed); the row count."""
    total = int(relation.aggregate("count(*)").fetchall()[0][0])
    if fmt is Format.XLSX and total > XLSX_MAX_ROWS:
        raise InvalidInputError.must("format", f"csv or parquet for a pool of over {XLSX_MAX_ROWS:,} customers "
                                     "(a sheet holds no more)", f"xlsx ({total:,} customers)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{fmt.value}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt is Format.XLSX:
            _write_xlsx(relation, tmp, as_of=as_of, total=total, progress=progress)
        else:
            options = "FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%SZ'" if fmt is Format.CSV \
                else "FORMAT parquet, COMPRESSION zstd"
            relation.query("pool", f"COPY (SELECT * FROM pool) TO '{_sql_path(tmp)}' ({options})")
            if progress is not None:
                progress(total, total)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return total


def _write_xlsx(relation: duckdb.DuckDBPyRelation, path: Path, *, as_of: datetime, total: int,
                progress: WriteProgress | None) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    stamp = as_of.replace(tzinfo=None, microsecond=0)
    book.properties.created = stamp
    book.properties.modified = stamp
    book.properties.creator = "orderguard"
    sheet = book.create_sheet("trusted customers")
    sheet.append(relation.columns)
    done = 0
    reader = relation.to_arrow_reader(20_000)
    for batch in reader:
        for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
            sheet.append(row)
        done += batch.num_rows
        if progress is not None:
            progress(done, total)
    buffer = io.BytesIO()
    book.save(buffer)
    _restamp(buffer.getvalue(), path, stamp)


def _restamp(data: bytes, path: Path, stamp: datetime) -> None:
    """Copy the xlsx zip with every entry's time set to ``stamp`` (zip keeps local time to the 2 s)."""
    when = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second - stamp.second % 2)
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=when)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" with the clock at save
                content = _MODIFIED.sub(rb"\g<1>" + stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + rb"\g<2>", content)
            target.writestr(entry, content)
