"""Alembic environment of the order log.

Normally run by :meth:`orderguard.ingest.orderlog.OrderLog.migrate`, which passes an
open connection (already inside a transaction holding the migration lock) in
``config.attributes["connection"]``. Without one, the ``sqlalchemy.url`` option is used,
which is how the ``alembic`` command line reaches it.

Importing this module outside a migration run (doctest collection, packaging checks)
does nothing: the migration only starts when Alembic has installed its context.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from orderguard.ingest.migrations import VERSION_TABLE


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need table copies
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Upgrade (or downgrade) the database Alembic is pointed at."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_with(connection)
        return
    if not url:
        raise RuntimeError("no connection attribute and no sqlalchemy.url option for the order log migrations")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            _run_with(conn)
    finally:
        engine.dispose()


if getattr(context, "_proxy", None) is not None:
    run()
