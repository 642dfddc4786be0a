"""Alembic environment of the order log, shipped inside the package.

``OrderLog.open`` runs it to head programmatically (no ``alembic.ini`` needed); the
``alembic`` command can use it too through :func:`orderguard.ingest.orderlog.migration_config`.
Revisions are frozen snapshots: they spell their DDL out and never import the live
table definitions from ``orderlog.py``.
"""

#: The log keeps its own version table so it can share a database with other
#: Alembic-managed schemas (e.g. an MLflow tracking store uses ``alembic_version``).
VERSION_TABLE = "orderlog_alembic_version"
