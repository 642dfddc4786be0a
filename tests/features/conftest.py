"""Fixtures of the feature tests: a simulated shop ingested once (Redis comes from the top-level ``redis_url``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pytest

from features.settings import Settings
from orderguard.ingest.importer import import_file
from orderguard.ingest.orderlog import OrderLog
from simulate import SimConfig
from simulate.export import export_shop


@dataclass(frozen=True)
class SimulatedShop:
    """A small simulated shop, exported as channel files and ingested into a SQLite order log.

    Attributes:
        database_url: the order log.
        truth: order key → (pattern, is_abnormal, group id), from the simulator's ground truth.
        config: what was simulated.
    """

    database_url: str
    truth: dict[str, tuple[str, bool, str]]
    config: SimConfig


@pytest.fixture(scope="session")
def simulated_shop(tmp_path_factory: pytest.TempPathFactory) -> SimulatedShop:
    """Eight days (one a promotion day) of the simulated shop, every abuse pattern present, ingested once."""
    root = tmp_path_factory.mktemp("simulated_shop")
    config = SimConfig.for_period(seed=5, days=8, orders_per_day=150)
    files = export_shop(config, root / "files", secret=b"feature-tests")
    url = f"sqlite:///{root / 'orderguard.db'}"
    settings = Settings(data_dir=root)
    log = OrderLog.open(url)
    try:
        for path in sorted(files.channels.values()):
            result = import_file(path, channel=None, mapping=None, log=log, pii=settings.pii)
            assert not result.report.errors, result.report.errors[:3]
    finally:
        log.close()
    with files.ground_truth.open(encoding="utf-8", newline="") as fh:
        truth = {row["order_key"]: (row["pattern"], row["is_abnormal"] == "true", row["group_id"])
                 for row in csv.DictReader(fh)}
    return SimulatedShop(url, truth, config)
