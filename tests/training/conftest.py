"""Fixtures of the training tests: handbook-format files generated once per session (``handbook_data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.handbook_data import write_published, write_transactions


@pytest.fixture(scope="session")
def handbook_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The planted handbook-format transactions as CSV: with ``TX_FRAUD_SCENARIO`` and without it."""
    folder = tmp_path_factory.mktemp("handbook")
    return (write_transactions(folder / "with_scenario.csv"),
            write_transactions(folder / "without_scenario.csv", scenario=False))


@pytest.fixture(scope="session")
def handbook_published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``published_results`` folder in the book's format with the tests' own figures."""
    return write_published(tmp_path_factory.mktemp("handbook") / "published_results")
