"""A simulated shop as production would hold it: channel files imported into an order log.

Tests and benchmarks that need "a shop with history" want the orders exactly as the
order log gives them - encoded as each channel sends them, parsed by the adapters,
folded by the order log - not the simulator's clear-text events. :func:`ingest_shop`
is that one path: simulate, write the channel files (``export_shop``), import every file
(``orderguard.ingest.importer``, as ``orderguard ingest`` does) and read the ground truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orderguard.ingest.importer import import_file
from orderguard.ingest.orderlog import OrderLog
from orderguard.settings import PiiSettings
from simulate.config import SimConfig
from simulate.export import export_shop
from simulate.reviews import TruthEntry, read_ground_truth
from simulate.writer import SimFiles


@dataclass(frozen=True, slots=True)
class IngestedShop:
    """A simulated period, written as channel files and imported into an order log.

    Attributes:
        config: what was simulated (``config.end_at`` is the natural cut-off).
        files: the channel files and ``ground_truth.csv``.
        database_url: the order log holding every imported event.
        truth: order key (``"<channel>:<order_id>"``) → its ground-truth row.
    """

    config: SimConfig
    files: SimFiles
    database_url: str
    truth: Mapping[str, TruthEntry]


def ingest_shop(config: SimConfig, root: Path, *, secret: bytes, pii: PiiSettings | None = None,
                database_url: str | None = None) -> IngestedShop:
    """Simulate ``config`` into ``root / "files"`` and import it into ``database_url``.

    Args:
        secret: the channels' signing secret for the written payloads.
        pii: the PII hash key the import uses (default: the development key).
        database_url: the order log (default: SQLite ``root / "orderguard.db"``).

    Raises:
        ValueError: a written file did not import cleanly (the simulator and the adapters disagree).
    """
    files = export_shop(config, root / "files", secret=secret)
    url = database_url or f"sqlite:///{root / 'orderguard.db'}"
    log = OrderLog.open(url)
    try:
        for path in sorted(files.channels.values()):
            result = import_file(path, channel=None, mapping=None, log=log, pii=pii or PiiSettings())
            if result.report.errors:
                raise ValueError(f"{path.name} did not import cleanly: {result.report.errors[:3]}")
    finally:
        log.close()
    truth = {str(entry.key): entry for entry in read_ground_truth(files.ground_truth)}
    return IngestedShop(config, files, url, truth)
