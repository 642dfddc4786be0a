"""One meaning per operator: Condition.matches, the generated online code, the SQL and the rule evaluator agree.

The generated online code of the shop's feature set is kept as a snapshot
(``snapshots/online_code.py.txt``) so a change to the code generator shows up as a
reviewable diff. After an intended change, rewrite it with
``ORDERGUARD_UPDATE_SNAPSHOTS=1 pytest tests/features/test_operators.py``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from features.batch import condition_sql
from features.online import _filter_expr, _plan
from features.operators import MEANING, MEMBERSHIP_OPS, ORDERING_OPS, SCALAR_OPS, Op, compare, matches
from features.shop import default_shop_features
from features.specs import Condition

SNAPSHOT = Path(__file__).parent / "snapshots" / "online_code.py.txt"


def test_every_operator_has_one_meaning_and_the_groups_partition_them() -> None:
    assert set(MEANING) == set(Op)
    assert ORDERING_OPS.isdisjoint(MEMBERSHIP_OPS) and frozenset(Op) - MEMBERSHIP_OPS == SCALAR_OPS
    assert {Op.LT, Op.LE, Op.GT, Op.GE} == ORDERING_OPS and {Op.IN, Op.NOT_IN} == MEMBERSHIP_OPS


def in_sql(condition: Condition, sql_type: str, actual: object) -> bool:
    """The batch engine's SQL for ``condition`` on one row whose attribute is ``actual`` (NULL when None)."""
    column = condition_sql(condition).split(" ", 1)[0]
    query = f"SELECT coalesce(({condition_sql(condition)}), false) FROM (SELECT ?::{sql_type} AS {column})"
    row = duckdb.connect().execute(query, [actual]).fetchone()
    assert row is not None
    return bool(row[0])


values = st.one_of(st.none(), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False))


@settings(deadline=None)  # each example opens a DuckDB connection: slow on a loaded machine, never wrong
@given(st.sampled_from(sorted(ORDERING_OPS | {Op.EQ, Op.NE})), values, st.integers(-3, 3))
def test_generated_python_and_sql_mean_what_condition_matches_says(op: Op, actual: float | None, value: int) -> None:
    condition = Condition("paid_fen", op, value)
    expected = condition.matches(actual)
    env: dict[str, object] = {}
    expr = _filter_expr((condition,), prefix="c0_", env=env)
    fact = type("Fact", (), {"attrs": {} if actual is None else {"paid_fen": actual}})()
    assert eval(expr, {}, {**env, "f": fact}) is expected
    assert in_sql(condition, "DOUBLE", actual) is expected


@settings(deadline=None)
@given(st.sampled_from(sorted(MEMBERSHIP_OPS)), st.one_of(st.none(), st.sampled_from(["a", "b", "c"])))
def test_membership_agrees_online_and_in_sql(op: Op, actual: str | None) -> None:
    condition = Condition("reason", op, ("a", "b"))
    env: dict[str, object] = {}
    expr = _filter_expr((condition,), prefix="c0_", env=env)
    fact = type("Fact", (), {"attrs": {} if actual is None else {"reason": actual}})()
    assert eval(expr, {}, {**env, "f": fact}) is condition.matches(actual)
    assert in_sql(condition, "VARCHAR", actual) is condition.matches(actual)


@given(st.sampled_from(sorted(SCALAR_OPS)), st.floats(-3, 3), st.floats(-3, 3, allow_nan=False))
def test_rules_compare_as_filters_do_and_unknown_never_fires(op: Op, value: float, threshold: float) -> None:
    expected = False if math.isnan(value) else matches(op, value, threshold)
    assert compare(op, value, threshold) is expected


def test_generated_online_code_matches_the_snapshot() -> None:
    plan = _plan(default_shop_features().specs)
    code = "\n\n".join(source.code for entity in sorted(plan, key=str) for source in plan[entity])
    if os.environ.get("ORDERGUARD_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(code, encoding="utf-8")
    assert SNAPSHOT.is_file(), "no snapshot yet: run with ORDERGUARD_UPDATE_SNAPSHOTS=1"
    assert code == SNAPSHOT.read_text(encoding="utf-8"), (
        "the generated online code changed; review the diff, then rewrite the snapshot (ORDERGUARD_UPDATE_SNAPSHOTS=1)")
