"""Synthetic multi-channel shop with labelled abuse patterns (demo, tests, benchmarks).

``simulate(config)`` builds clear-text events and the ground truth; ``write_simulation``
renders them as channel-native payload files plus ``ground_truth.csv``.
"""

from orderguard.simulate.config import SimConfig
from orderguard.simulate.engine import Simulation, simulate
from orderguard.simulate.writer import SimFiles, write_simulation

__all__ = ["SimConfig", "SimFiles", "Simulation", "simulate", "write_simulation"]
