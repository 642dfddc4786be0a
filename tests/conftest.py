"""Fixtures shared by the whole test suite.

* ``settings`` — a :class:`Settings` whose ``data_dir`` is the test's ``tmp_path``.
* ``clock`` — a :class:`FixedClock` at :data:`factories.BASE_TIME` (10:00 Beijing, 11.11).
* ``event_factory`` — an :class:`factories.EventFactory` (fresh order id per call).
* ``pg_url`` (session) — URL of a throwaway PostgreSQL database created for this test
  session (per xdist worker) and dropped at the end. The server comes from
  ``ORDERGUARD_TEST_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``).
  The database collates text with ICU ``en-US`` (``"B" > "a"``), like a typical
  production database and unlike SQLite: ordering by text must not depend on it.
* ``pg_schema_url`` — a URL into ``pg_url`` whose ``search_path`` is a fresh, empty schema,
  dropped after the test: an isolated PostgreSQL database for one test, cheaply.
* ``order_log`` — a fresh, empty, migrated :class:`OrderLog`, parametrised over SQLite
  and PostgreSQL.
* ``redis_url`` (session) — ``ORDERGUARD_TEST_REDIS_URL`` (default
  ``redis://127.0.0.1:6379/15``) after a successful ping. The database is shared:
  namespace your keys.
* ``online_store`` — an open online store, parametrised over every backend of
  ``features.stores.STORE_TYPES`` (``tests/stores.py``); ``online_store_recipe`` opens
  (and reopens) the same one, ``durable_store_recipe`` only the backends that persist.
* ``order_factory`` — an :class:`factories.OrderFactory` (a fresh order id per call).

PostgreSQL and Redis are real services. When one is down the tests that need it FAIL
with a message saying how to start it; they are never skipped (DESIGN.md §5).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from features.settings import Settings
from features.stores import STORE_TYPES, OnlineStore
from orderguard.ingest.orderlog import OrderLog, redacted
from tests.factories import BASE_TIME, EventFactory, FixedClock, OrderFactory
from tests.stores import DURABLE_TYPES, StoreRecipe, make_recipe

PG_URL_ENV = "ORDERGUARD_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL_ENV = "ORDERGUARD_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool,
                            connect_args={"connect_timeout": 5})


@pytest.fixture
def settings(tmp_path: os.PathLike[str]) -> Settings:
    """Default settings with every file under the test's temporary directory."""
    return Settings(data_dir=tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_settings(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Settings:
    """Default settings with the order log on each backend in turn (files under the test's directory)."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path)
    return Settings(data_dir=tmp_path, database={"url": request.getfixturevalue("pg_schema_url")})


@pytest.fixture
def clock() -> FixedClock:
    """A clock frozen at ``BASE_TIME``; move it with ``clock.advance(minutes=5)``."""
    return FixedClock(BASE_TIME)


@pytest.fixture
def event_factory() -> EventFactory:
    """``event_factory(**overrides)`` builds a valid OrderEvent with a fresh order id."""
    return EventFactory()


@pytest.fixture
def order_factory() -> OrderFactory:
    """``order_factory(**overrides)`` builds an Order (the feature engines' input) with a fresh order id."""
    return OrderFactory()


@pytest.fixture(params=sorted(STORE_TYPES))
def online_store_recipe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRecipe]:
    """Every registered online store backend in turn, isolated for this test."""
    yield from make_recipe(request.param, request, tmp_path)


@pytest.fixture(params=DURABLE_TYPES)
def durable_store_recipe(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreRecipe]:
    """The backends whose state outlives the process."""
    yield from make_recipe(request.param, request, tmp_path)


@pytest.fixture
def online_store(online_store_recipe: StoreRecipe) -> Iterator[OnlineStore]:
    """An open store of every registered backend in turn."""
    opened = online_store_recipe.open()
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this session; fails loudly when the server is down."""
    server = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    name = f"orderguard_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = _admin_engine(server)
    try:
        with engine.connect() as conn:
            # A natural-language collation, as production databases usually have, so
            # that code relying on the server's default string order fails here too.
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' '
                                 "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"))
    except sa.exc.OperationalError as e:
        engine.dispose()
        pytest.fail(f"PostgreSQL is not reachable at {redacted(server)} ({_first_line(e)}). Start it "
                    f"(pg_ctlcluster 15 main start, with trust auth for 127.0.0.1) or point {PG_URL_ENV} "
                    "at a server.", pytrace=False)
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL into the session database whose ``search_path`` is a fresh empty schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(pg_url)
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def order_log(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[OrderLog]:
    """A fresh, empty, migrated order log on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{os.fspath(tmp_path)}/orderlog.db"
    else:
        url = request.getfixturevalue("pg_schema_url")
    log = OrderLog.open(url)
    try:
        yield log
    finally:
        log.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL after a successful ping; fails loudly when Redis is down."""
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.fail(f"Redis is not reachable at {redacted_redis(url)} ({e}). Start it (apt-get install -y "
                    f"redis-server; redis-server --daemonize yes) or point {REDIS_URL_ENV} at a server.",
                    pytrace=False)
    finally:
        client.close()
    return url


def redacted_redis(url: str) -> str:
    """A Redis URL without its password.

    >>> redacted_redis("redis://:s3cret@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
