"""Throwaway PostgreSQL databases for benchmarks: one per run, so runs never see each other's rows."""

from __future__ import annotations

import secrets

import sqlalchemy as sa


def fresh_database(admin_url: str) -> tuple[str, str]:
    """Create an empty database on the server of ``admin_url``; return its URL (password kept) and its name."""
    name = f"og_bench_{secrets.token_hex(4)}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def drop_database(admin_url: str, name: str) -> None:
    """Drop a database :func:`fresh_database` made, closing the connections still open to it."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    engine.dispose()
