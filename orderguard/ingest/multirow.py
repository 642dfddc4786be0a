"""Many rows in one SQLite ``INSERT ... VALUES (...), (...)``, bound as one flat tuple.

Why not SQLAlchemy's ``conn.execute(insert, rows)``: with ``RETURNING`` it renders the
same multi-row statement ("insertmanyvalues"), but it walks every row through
``construct_params`` and every value through its column type's bind processor, one
Python call at a time; for an append of a thousand events that was about 20 µs per event,
more than SQLite spent storing it. Here a caller converts its values once, with the very
processors the columns declare (:func:`bind_processors`, so the stored bytes are what the
SQLAlchemy statement stored), and :class:`MultiRowInsert` sends each chunk of rows as one
statement through the DBAPI cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: SQLite binds at most 32,766 variables per statement; rows per statement stay well inside that.
MAX_VARIABLES = 30_000

Processor = Callable[[Any], Any]


def bind_processors(table: sa.Table, names: Sequence[str], dialect: sa.Dialect) -> tuple[Processor | None, ...]:
    """The bind processor each named column applies on ``dialect`` (None where it binds the value as is).

    ``dialect_impl`` first: a type's own ``bind_processor`` is its generic one, and on SQLite a generic
    ``DateTime`` leaves out the microseconds of a whole second that SQLite's ``DATETIME`` writes.
    """
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)


def bound_rows(rows: Iterable[Mapping[str, Any]], columns: Sequence[str],
               processors: Sequence[Processor | None]) -> list[tuple[Any, ...]]:
    """Each row's values in ``columns`` order, passed through the column's processor where it has one.

    >>> bound_rows([{"a": 1, "b": "x"}], ("b", "a"), (str.upper, None))
    [('X', 1)]
    """
    converted = [(i, processor) for i, processor in enumerate(processors) if processor is not None]
    out: list[tuple[Any, ...]] = []
    for row in rows:
        values = [row[name] for name in columns]
        for i, processor in converted:
            values[i] = processor(values[i])
        out.append(tuple(values))
    return out


@dataclass(frozen=True, slots=True)
class MultiRowInsert:
    """``INSERT INTO table (columns) VALUES … <tail>`` for any number of rows.

    ``tail`` is the rest of the statement (``ON CONFLICT …``, ``RETURNING …``).

    >>> insert = MultiRowInsert("t", ("a", "b"), " RETURNING a")
    >>> insert.sql(2)
    'INSERT INTO t (a, b) VALUES (?,?),(?,?) RETURNING a'
    >>> [len(c) for c in insert.chunks([(1, 2)] * 15_001)]
    [15000, 1]
    """

    table: str
    columns: tuple[str, ...]
    tail: str = ""

    @property
    def rows_per_statement(self) -> int:
        return max(1, MAX_VARIABLES // len(self.columns))

    def sql(self, rows: int) -> str:
        row = "(" + ",".join("?" * len(self.columns)) + ")"
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES {','.join([row] * rows)}{self.tail}"

    def chunks(self, rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
        size = self.rows_per_statement
        for start in range(0, len(rows), size):
            yield rows[start:start + size]

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Insert ``rows`` (values already bound, each in ``columns`` order); the rows ``RETURNING`` gave."""
        returned: list[tuple[Any, ...]] = []
        for chunk in self.chunks(rows):
            flat = tuple(value for row in chunk for value in row)
            result = conn.exec_driver_sql(self.sql(len(chunk)), flat)
            if result.returns_rows:
                returned.extend(tuple(r) for r in result)
        return returned
