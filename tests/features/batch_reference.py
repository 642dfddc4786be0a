"""Test oracles of the batch engine: the per-entity SQL form and an in-memory frame.

:func:`frame_sql` is the plain way to write the point-in-time frame: every entity's facts
filtered and windowed on their own (``features.batch.entity_sql``), one CTE each, joined
on the order key. The engine runs a one-pass plan instead (``features.batch.frame_query``);
the tests hold the two to the same frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from features.batch import BatchFeatures, entity_sql
from features.declared import EntityRef
from features.facts import Entity
from features.specs import ZERO_WHEN_EMPTY, FeatureSet, FeatureSpec
from orderguard.schema import Label, Order


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def frame_sql(specs: FeatureSet | Sequence[FeatureSpec], *, table: str = "facts") -> str:
    """The whole point-in-time frame as one SQL statement, one CTE per entity, joined."""
    spec_list = list(specs)
    entities: list[EntityRef] = [e for e in Entity if any(s.entity is e for s in spec_list)]
    alias: dict[EntityRef, str] = {e: f"f{i}" for i, e in enumerate(entities)}
    columns = []
    for s in spec_list:
        value = f"CAST({alias[s.entity]}.{_quote(s.name)} AS DOUBLE)"
        if s.agg in ZERO_WHEN_EMPTY:
            value = f"COALESCE({value}, 0.0)"
        columns.append(f"{value} AS {_quote(s.name)}")
    joins = "".join(f"\nLEFT JOIN feat_{e.value} {alias[e]} ON {alias[e]}.order_key = o.e_order" for e in entities)
    selected = ",\n  ".join(["o.e_order AS order_key", "o.ts AS ts", *columns])
    body = f"SELECT\n  {selected}\nFROM {table} o{joins}\nWHERE o.kind = 'order'\nORDER BY o.ts, o.e_order"
    ctes = ",\n".join(f"feat_{e.value} AS (\n{entity_sql(spec_list, e, table=table)}\n)" for e in entities)
    return f"WITH {ctes}\n{body}" if ctes else body


def point_in_time_frame(orders: Iterable[Order], specs: FeatureSet | Sequence[FeatureSpec], *,
                        labels: Iterable[Label] = ()) -> pd.DataFrame:
    """Every feature as of every order, through an in-memory :class:`BatchFeatures`."""
    batch = BatchFeatures(specs)
    try:
        batch.load(orders, labels=labels)
        return batch.frame()
    finally:
        batch.close()
