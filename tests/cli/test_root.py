"""The composition root: a bad setting in the environment is a user error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app


def test_a_bad_environment_setting_is_one_line_naming_the_variable(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERGUARD_TRAINING__GATE__METRICS", '{"auc": {"min_gain": 0.01}}')
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "model"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error[settings]: ORDERGUARD_TRAINING__GATE__METRICS__AUC: Input should be 'pr_auc'")
    assert "Traceback" not in result.output


def test_the_development_pii_key_is_refused_beyond_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERGUARD_PII__HASH_KEY", raising=False)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "`ORDERGUARD_PII__HASH_KEY` must be a secret of your own to serve on 0.0.0.0" in result.stderr
    assert not (tmp_path / "orderguard.db").exists()  # refused before anything was opened
