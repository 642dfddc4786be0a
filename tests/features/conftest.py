"""Fixtures of the feature tests: a live Redis (the tests fail, never skip, without one)."""

from __future__ import annotations

import os

import pytest

from features.stores.redis import ping
from orderguard.errors import ServiceUnavailableError

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def feature_redis_url() -> str:
    """URL of the test Redis (``ORDERGUARD_TEST_REDIS_URL``); fails loudly when it does not answer."""
    url = os.environ.get("ORDERGUARD_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    try:
        ping(url)
    except ServiceUnavailableError as e:
        pytest.fail(f"Redis is required for the feature store tests and is down: {e}. Start it with "
                    "`redis-server --daemonize yes --bind 127.0.0.1 --save '' --appendonly no` "
                    "or set ORDERGUARD_TEST_REDIS_URL.", pytrace=False)
    return url
