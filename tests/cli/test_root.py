"""The composition root: a bad setting in the environment is a user error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings


def test_a_bad_environment_setting_is_one_line_naming_the_variable(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERGUARD_TRAINING__GATE__METRICS", '{"auc": {"min_gain": 0.01}}')
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "model"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error[settings]: ORDERGUARD_TRAINING__GATE__METRICS__AUC: Input should be 'pr_auc'")
    assert "Traceback" not in result.output


SECRETS = {"ORDERGUARD_PII__HASH_KEY": "a-real-pii-key", "ORDERGUARD_SESSION__SECRET": "a-real-session-secret",
           "ORDERGUARD_WEBHOOKS__SECRETS": '{"jd": "a-real-jd-secret", "tmall": "a-real-tmall-secret"}'}


@pytest.mark.parametrize("left", sorted(SECRETS))
def test_a_development_secret_is_refused_beyond_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         left: str) -> None:
    for name, value in SECRETS.items():
        if name == left:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error[config_error]: refusing to serve on 0.0.0.0: ORDERGUARD_"), lines
    assert left in lines[0] and "the public development value; set a secret of your own" in lines[0]
    assert not (tmp_path / "orderguard.db").exists()  # refused before anything was opened


def test_real_secrets_serve_anywhere_and_development_ones_only_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.development_secrets() == [] and settings.check_serving_on("0.0.0.0") is None
    monkeypatch.setenv("ORDERGUARD_WEBHOOKS__SECRETS", '{"jd": "orderguard-development-webhook-jd"}')
    warning = Settings().check_serving_on("127.0.0.1")
    assert warning is not None and "ORDERGUARD_WEBHOOKS__SECRETS__JD" in warning
