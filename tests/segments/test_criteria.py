"""Criteria files: the presets load, a bad file is refused naming the field, reasons read like sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orderguard.errors import ConfigError
from segments.criteria import PRESETS, PRESETS_DIR, LinkVia, Op, load_criteria, load_criteria_text


def test_every_preset_loads_with_every_check() -> None:
    for name in PRESETS:
        criteria = load_criteria(name)
        assert criteria.name == name and len(criteria.checks) == 10 and criteria.tiers[-1].name == "bronze"
        assert set(criteria.link_via) <= set(LinkVia)
    strict, loose = load_criteria("strict").check("max_score"), load_criteria("loose").check("max_score")
    assert strict is not None and loose is not None and strict.threshold < loose.threshold


def _standard() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load((PRESETS_DIR / "standard.yaml").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("change", "field"), [
    ({"refund_rate": {"at_most": 1.5, "reason": {"zh": "x", "en": "x"}}}, "refund_rate.at_most"),
    ({"links": {"at_most": 0, "window_days": 30, "via": ["fax"], "reason": {"zh": "x", "en": "x"}}}, "links.via.0"),
    ({"tiers": [{"name": "gold", "tenure_days": 30}]}, "tiers"),
    ({"tenure_days": {"at_least": 3}}, "tenure_days.reason"),
    ({"surprise": 1}, "surprise"),
])
def test_a_bad_file_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    data = {**_standard(), **change}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_criteria_text(yaml.safe_dump(data, allow_unicode=True), source="shop.yaml")


def test_a_disabled_check_is_left_out_and_a_file_path_loads(tmp_path: Path) -> None:
    data = _standard()
    data["links"] = {**data["links"], "enabled": False}  # type: ignore[dict-item]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    criteria = load_criteria(path)
    assert criteria.check("links") is None and criteria.check("holds") is not None
    assert criteria.digest != load_criteria("standard").digest
    with pytest.raises(ConfigError, match="neither a preset"):
        load_criteria("no-such-preset")


def test_reasons_show_the_value_and_the_bar_as_people_write_them() -> None:
    check = load_criteria("standard").check("completed_orders")
    assert check is not None and check.op is Op.AT_LEAST and not check.passes(1) and check.passes(2)
    assert check.reason(1.0) == "1 completed orders (needs 2 delivered, not refunded, placed 14+ days ago)"
    assert "1" in check.reason(1.0, "zh") and "2" in check.reason(1.0, "zh")
