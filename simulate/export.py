"""Simulate the shop and write it as the channels would send it: one call for CLI, bench and tests."""

from __future__ import annotations

import functools
from pathlib import Path

from simulate.channels import ENCODERS, encode
from simulate.config import SimConfig
from simulate.engine import simulate
from simulate.writer import SimFiles, write_simulation


def export_shop(config: SimConfig, out_dir: Path, *, secret: bytes) -> SimFiles:
    """Simulate ``config`` and write channel-native JSONL files plus ground truth to ``out_dir``, and the shop
    systems' fulfilment reports with their truth under ``out_dir / "fulfilment"``.

    Each channel only states the statuses its platform has (e.g. Douyin has no
    "delivered"), so the simulation is told what each encoder can express.
    """
    sim = simulate(config, can_state=lambda channel, kind: ENCODERS[channel].statuses(kind))
    return write_simulation(sim, out_dir, encode=functools.partial(encode, secret=secret))
