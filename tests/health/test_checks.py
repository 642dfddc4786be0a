"""The check file is data, validated when loaded: a mistake names the file and the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from health.checks import PRESETS_DIR, Kind, Tier, load_checks, load_checks_text
from orderguard.errors import ConfigError
from orderguard.schema import Channel


def _default() -> dict[str, object]:
    data = yaml.safe_load((PRESETS_DIR / "default.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_default_preset_has_the_shops_weights_and_every_stage() -> None:
    config = load_checks()
    assert dict(config.weights) == {"address": 20, "payment": 30, "inventory": 25, "price": 15, "logistics": 10}
    assert {c.stage for c in config.checks} == {"order", "payment", "sync", "inventory", "warehouse", "logistics",
                                                  "after_sale"}
    assert {c.kind for c in config.checks} == set(Kind)
    assert config.check("erp_sync").deadline(Channel.JD) == timedelta(minutes=15)
    assert all(c.text_zh and c.text_en for c in config.checks)


def test_tiers_follow_the_score() -> None:
    config = load_checks()
    assert [config.tier(s, flagged=True) for s in (100, 70, 69.9, 60, 59, 50, 49.9, 0)] == [
        Tier.WATCH, Tier.WATCH, Tier.YELLOW, Tier.YELLOW, Tier.ORANGE, Tier.ORANGE, Tier.RED, Tier.RED]
    assert config.tier(100, flagged=False) is Tier.OK
    assert config.score({"payment", "inventory"}) == 45 and config.score(set()) == 100


def test_a_channel_may_have_its_own_deadline(tmp_path: Path) -> None:
    data = _default()
    checks = data["checks"]
    assert isinstance(checks, list)
    next(c for c in checks if c["id"] == "ship_promise")["channels"] = {"jd": "24h"}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    check = load_checks(str(path)).check("ship_promise")
    assert check.deadline(Channel.JD) == timedelta(hours=24) and check.deadline(Channel.TMALL) == timedelta(hours=48)


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["weights"].update(price=50), "weights must be non-negative and sum to 100"),
    (lambda d: d["checks"][0].update(expect=["teleported"]), "checks.0.expect"),
    (lambda d: d["checks"][0].pop("within"), "needs `within`"),
    (lambda d: d["checks"][1].update(id=d["checks"][0]["id"]), "is used twice"),
    (lambda d: d["checks"][0].update(within="soon"), "checks.0.within"),
    (lambda d: d["checks"][0].update(stage="moon"), "checks.0.stage"),
    (lambda d: d["tiers"].update(yellow=40), "orange <= yellow <= action_below"),
    (lambda d: d["checks"][0].update(channels={"ebay": "1h"}), "checks.0.channels"),
])
def test_a_bad_file_names_the_file_and_the_field(change: object, where: str) -> None:
    data = _default()
    assert callable(change)
    change(data)
    with pytest.raises(ConfigError) as caught:
        load_checks_text(yaml.safe_dump(data, allow_unicode=True), source="shop.yaml")
    assert caught.value.message.startswith("shop.yaml: ") and where in caught.value.message


def test_an_unknown_preset_or_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a preset"):
        load_checks("nightly")
    (tmp_path / "bad.yaml").write_text("checks: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not YAML"):
        load_checks(str(tmp_path / "bad.yaml"))
