"""Fixtures of the feature tests: a simulated shop ingested once (Redis comes from the top-level ``redis_url``)."""

from __future__ import annotations

import pytest

from features.settings import Settings
from simulate import SimConfig
from simulate.shop import IngestedShop, ingest_shop


@pytest.fixture(scope="session")
def simulated_shop(tmp_path_factory: pytest.TempPathFactory) -> IngestedShop:
    """Eight days (one a promotion day) of the simulated shop, every abuse pattern present, ingested once."""
    root = tmp_path_factory.mktemp("simulated_shop")
    return ingest_shop(SimConfig.for_period(seed=5, days=8, orders_per_day=150), root, secret=b"feature-tests",
                       pii=Settings(data_dir=root).pii)
