"""``orderguard rules publish | history | show | rollback | shadow`` and ``orderguard policy shadow-report``
(figures checked against ones computed by hand on a small fixture)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.schema import Label, OrderLine, Verdict
from scoring.pack_store import PackStore
from scoring.policy import Decision, RiskLevel
from scoring.records import ScoreLog, ScoreRecord, ShadowOutcome
from scoring.rules import default_rules_path
from tests.factories import BASE_TIME, EventFactory

DEFAULT = default_rules_path().read_text(encoding="utf-8")


def run(data: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data), *args])
    return result.exit_code, result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    OrderLog.open(f"sqlite:///{tmp_path}/orderguard.db").close()
    return tmp_path


def test_publish_show_rollback_shadow_and_history(data: Path) -> None:
    edited = data / "edited.yaml"
    edited.write_text(re.sub(r"(- code: IP_BURST_5M\n\s+points: )\d+", r"\g<1>35", DEFAULT), encoding="utf-8")
    code, out = run(data, "rules", "publish", str(edited), "--note", "ip bursts weigh more")
    assert code == 0 and re.match(r"v2:[0-9a-f]{8} published by cli", out), out
    code, out = run(data, "rules", "publish", str(edited))
    assert code == 0 and out.startswith("unchanged: v2:")
    code, out = run(data, "rules", "show", "2", "--diff")
    assert code == 0 and "-    points: 20\n+    points: 35" in out
    code, out = run(data, "rules", "show", "1")
    assert code == 0 and out.strip() == DEFAULT.strip()
    code, out = run(data, "rules", "rollback", "1")
    assert code == 0 and out.startswith("v3:") and "rollback to v1" in out
    code, out = run(data, "rules", "shadow", str(edited), "--bands", "30,50,70")
    assert code == 0 and out.startswith("v4:") and "shadow" in out
    code, out = run(data, "rules", "shadow", "--off")
    assert code == 0 and "ended (v5)" in out
    code, out = run(data, "rules", "history")
    assert code == 0
    for line in ("v5 ", "v4 ", "v3 ", "v2 ", "v1 ", "shadow_off", "rollback of v1", "ip bursts weigh more",
                 f"file:{default_rules_path()}"):
        assert line in out, line


def test_bad_input_is_one_line_and_exit_2(data: Path) -> None:
    bad = data / "bad.yaml"
    bad.write_text(DEFAULT.replace("feature: count_orders_by_ip_5m", "feature: no_such_feature", 1),
                   encoding="utf-8")
    for args, field in ((("rules", "publish", str(bad)), "rules[1].when.feature"),
                        (("rules", "shadow", str(bad)), "rules[1].when.feature"),
                        (("rules", "shadow", str(bad), "--bands", "80,50,30"), "bands"),
                        (("rules", "shadow"), "FILE"),
                        (("rules", "show", "42"), "version"),
                        (("rules", "publish", str(data / "missing.yaml")), "FILE")):
        code, out = run(data, *args)
        assert code == 2, (args, out)
        lines = out.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error[") and field in lines[0], (args, out)
    assert run(data, "policy", "shadow-report")[0] == 2  # no shadow has run yet


# -- shadow-report on a hand-made fixture ---------------------------------------------------------------------------

#: (live, shadow, verdict since the shadow started, paid yuan); None shadow = the candidate failed.
ROWS: list[tuple[Decision, Decision | None, Verdict | None, int]] = [
    (Decision.APPROVE, Decision.REVIEW, Verdict.CONFIRMED_FRAUD, 100),
    (Decision.REVIEW, Decision.REVIEW, Verdict.CONFIRMED_FRAUD, 200),
    (Decision.HOLD, Decision.HOLD, Verdict.CONFIRMED_FRAUD, 50),
    (Decision.REVIEW, Decision.APPROVE, Verdict.FALSE_POSITIVE, 80),
    (Decision.VERIFY, Decision.APPROVE, Verdict.FALSE_POSITIVE, 30),
    (Decision.APPROVE, Decision.APPROVE, None, 10),
    (Decision.APPROVE, Decision.VERIFY, Verdict.NEEDS_INVESTIGATION, 20),
    (Decision.HOLD, Decision.HOLD, None, 40),  # labelled, but before the shadow started: not counted
    (Decision.APPROVE, None, Verdict.CONFIRMED_FRAUD, 60),  # the candidate failed: counted apart
]


def _record(key: object, at: object, live: Decision, shadow: ShadowOutcome | None) -> ScoreRecord:
    return ScoreRecord(order_key=key, event_version=1, event_time=at, scored_at=at, score=50.0,  # type: ignore[arg-type]
                       risk_level=RiskLevel.LOW, decision=live, rules_only=True, model_version=None,
                       settings_hash="s", feature_set_hash="f", latency_ms=1.0, rules_version="v1:live",
                       shadow=shadow)


def test_shadow_report_figures_match_the_hand_computed_ones(data: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=data)
    events = EventFactory(prefix="SH")
    with OrderLog.open(settings.database_url) as log:
        store = PackStore(log.engine, known_features=("count_orders_by_device_5m", "count_orders_by_ip_5m"))
        store.publish(DEFAULT.split("rules:")[0] + "rules: []\n", author="t", now=BASE_TIME - timedelta(days=1))
        label = store.set_shadow("rules: []\n", author="t", now=BASE_TIME).pack.label
        made = [events(lines=(OrderLine("sku", 1, paid * 100),), event_time=BASE_TIME - timedelta(hours=1))
                for *_, paid in ROWS]
        other = events(event_time=BASE_TIME - timedelta(hours=1))
        log.append([*made, other])
        scores, labels = ScoreLog(log.engine), LabelLog(log.engine)
        for i, (event, (live, shadow, verdict, paid)) in enumerate(zip(made, ROWS, strict=True)):
            assert log.get(event.key).details.amounts.paid_fen == paid * 100  # type: ignore[union-attr]
            outcome = ShadowOutcome(label, 60.0 if shadow else None, shadow, ("X",) if shadow else (),
                                    None if shadow else "ValueError: bad")
            scores.put(_record(event.key, BASE_TIME + timedelta(hours=1 + i), live, outcome))
            if verdict is not None:
                labels.add([Label(event.key, verdict, BASE_TIME + timedelta(hours=20), "r1")], source="t",
                           recorded_at=BASE_TIME + timedelta(days=3))
        labels.add([Label(made[7].key, Verdict.CONFIRMED_FRAUD, BASE_TIME - timedelta(minutes=30), "r1")],
                   source="t", recorded_at=BASE_TIME)
        scores.put(_record(other.key, BASE_TIME + timedelta(hours=2),  # another shadow's record: not counted
                           Decision.HOLD, ShadowOutcome("v9:other", 1.0, Decision.APPROVE)))
    code, out = run(data, "policy", "shadow-report", "--from", BASE_TIME.isoformat(),
                    "--to", (BASE_TIME + timedelta(days=2)).isoformat(), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["shadow"], report["orders"], report["labelled"], report["errors"]) == (label, 8, 6, 1)
    assert report["live_versions"] == ["v1:live"]
    live, shadow = report["live"], report["candidate"]
    assert live["decisions"] == {"approve": 3, "verify": 1, "review": 2, "hold": 2}
    assert shadow["decisions"] == {"approve": 3, "verify": 1, "review": 2, "hold": 2}
    assert live["per_day"] == {"approve": 1.5, "verify": 0.5, "review": 1.0, "hold": 1.0}
    quality = {(side, q["threshold"]): (q["flagged"], q["precision"], q["recall"], q["false_positive_rate"])
               for side, figures in (("live", live), ("shadow", shadow)) for q in figures["quality"]}
    assert quality == {
        ("live", "verify"): (4, 2 / 4, 2 / 3, 2 / 2), ("live", "review"): (3, 2 / 3, 2 / 3, 1 / 2),
        ("live", "hold"): (1, 1.0, 1 / 3, 0.0),
        ("shadow", "verify"): (4, 1.0, 1.0, 0.0), ("shadow", "review"): (3, 1.0, 1.0, 0.0),
        ("shadow", "hold"): (1, 1.0, 1 / 3, 0.0)}
    assert (live["money_caught_fen"], shadow["money_caught_fen"]) == (25_000, 35_000)
    assert report["matrix"] == {"approve": {"approve": 1, "verify": 1, "review": 1, "hold": 0},
                                "verify": {"approve": 1, "verify": 0, "review": 0, "hold": 0},
                                "review": {"approve": 1, "verify": 0, "review": 1, "hold": 0},
                                "hold": {"approve": 0, "verify": 0, "review": 0, "hold": 2}}
    changed = {(c["order_key"], c["live"], c["shadow"], c["verdict"], c["paid_fen"]) for c in report["changed"]}
    assert changed == {(str(made[0].key), "approve", "review", "confirmed_fraud", 10_000),
                       (str(made[3].key), "review", "approve", "false_positive", 8_000),
                       (str(made[4].key), "verify", "approve", "false_positive", 3_000),
                       (str(made[6].key), "approve", "verify", "needs_investigation", 2_000)}
    code, table = run(data, "policy", "shadow-report", "--from", BASE_TIME.isoformat(),
                      "--to", (BASE_TIME + timedelta(days=2)).isoformat())
    assert code == 0 and "4 labelled orders would change (2 stricter, 2 looser)" in table
    assert "live 250.00 yuan, shadow 350.00 yuan" in table
