"""docs/settings.md is the generated reference of every ORDERGUARD_* variable: current, complete, described."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from features.settings_reference import markdown, variables

DOC = Path(__file__).parents[2] / "docs" / "settings.md"


def test_the_reference_in_docs_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), "run: orderguard settings > docs/settings.md"
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0 and result.stdout == markdown()


def test_every_variable_is_listed_and_described() -> None:
    listed = {v.name: v for _, found in variables() for v in found}
    assert all(v.meaning != "—" for v in listed.values()), [n for n, v in listed.items() if v.meaning == "—"]
    for section in Settings.model_fields:
        assert any(name.startswith(f"ORDERGUARD_{section.upper()}") for name in listed), section
    assert {"ORDERGUARD_HEALTH__SWEEP_EVERY", "ORDERGUARD_TRAINING__HOLDOUT_DAYS", "ORDERGUARD_TRAINING__GAP",
            "ORDERGUARD_FEATURES__SPECS_PATH", "ORDERGUARD_FEATURES__STORE__URL"} <= set(listed)


def test_each_listed_variable_is_read_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = {v.name: v for _, found in variables() for v in found}
    monkeypatch.setenv("ORDERGUARD_HEALTH__SWEEP_EVERY", "30s")
    monkeypatch.setenv("ORDERGUARD_TRAINING__GAP", "3d")
    settings = Settings()
    assert settings.health.sweep_every.total_seconds() == 30 and settings.training.gap == "3d"
    assert listed["ORDERGUARD_HEALTH__SWEEP_EVERY"].default == "1m"
