"""Synthetic multi-channel shop with labelled abuse patterns (demo, tests, benchmarks).

``simulate(config)`` builds clear-text events and the ground truth, plus the shop systems'
fulfilment reports with planted faults and their truth (``simulate.fulfilment``);
``write_simulation`` renders them as channel-native payload files plus ``ground_truth.csv``
and ``fulfilment/``.
"""

from simulate.config import SimConfig
from simulate.engine import Simulation, simulate
from simulate.writer import SimFiles, write_simulation

__all__ = ["SimConfig", "SimFiles", "Simulation", "simulate", "write_simulation"]
