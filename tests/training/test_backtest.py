"""``orderguard policy backtest`` on a small served shop: it reproduces serving; a candidate changes what it should."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from features.shop import feature_set_from
from orderguard.ingest.orderlog import OrderLog
from scoring.judge import list_keys
from scoring.model import model_factory
from scoring.pack_store import parse_bands
from scoring.policy import Decision, blend, decide, decision_rank, policy_from
from scoring.rules import default_rules_path
from tests.reports.shop import BacktestShop, shared_backtest_shop
from training.backtest import Backtest, PolicyUnderTest, backtest_json
from training.backtest_chart import save_chart, sweep_figure
from training.backtest_served import check_served
from training.backtest_setup import backtest_log, live_policy


@dataclass(frozen=True)
class Served:
    shop: BacktestShop
    result: Backtest


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    shop = shared_backtest_shop(tmp_path_factory)
    with OrderLog.open(shop.settings.database_url) as log:
        result = backtest_log(shop.settings, log, period=shop.period)
    yield Served(shop, result)


def test_the_live_backtest_gives_every_served_order_the_decision_serving_recorded(served: Served) -> None:
    check = served.result.served
    history = served.result.history
    assert check is not None
    assert history.model is not None and history.model.version == served.shop.champion.label
    assert len(history) == len(served.shop.shop.orders)
    assert check.compared == len(history) and check.mismatches == 0, check.examples
    assert check.line() == f"served: {len(history)} compared, 0 mismatches"


def test_batch_probabilities_equal_the_served_single_row_predictor(served: Served) -> None:
    history = served.result.history
    assert history.model is not None and history.probability is not None
    model = model_factory(feature_set_from(served.shop.settings))(history.model.booster, history.model.version,
                                                                   history.model.weights)
    single = np.array([model.predict(v).probability for v in history.vectors()])
    assert np.allclose(history.probability, single, rtol=0, atol=1e-12)
    assert 0.0 < history.probability.min() < history.probability.max() < 1.0


def test_band_figures_agree_with_the_decisions_and_the_labels(served: Served) -> None:
    result, history = served.result, served.result.history
    rank = result.live.replay.rank
    frauds = history.outcome == 1
    assert 0 < frauds.sum() < len(history) and (history.outcome == 0).sum() > 0  # labelled honest orders exist
    for band in result.live.bands:
        flagged = rank >= decision_rank(band.decision)
        assert band.flagged == flagged.sum()
        assert band.frauds_caught == (flagged & frauds).sum()
        assert band.money_caught_fen == history.paid_fen[flagged & frauds].sum()
        assert band.per_day == pytest.approx((rank == decision_rank(band.decision)).sum() / history.period.days)
    recalls = [b.recall for b in result.live.bands]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > 0
    queue = [p.per_day for p in result.live.sweep]
    assert queue == sorted(queue, reverse=True) and queue[0] * history.period.days == len(history)


def _raised_pack(shop: BacktestShop, result: Backtest, folder: Path, *, extra: float) -> tuple[Path, str]:
    """The live pack with the points of its most-fired positive rule raised by ``extra``."""
    counts: dict[str, int] = {}
    for hits in result.live.replay.hits:
        for code in hits:
            counts[code] = counts.get(code, 0) + 1
    data = yaml.safe_load((shop.settings.scoring.rules_path or default_rules_path()).read_text(encoding="utf-8"))
    positive = {r["code"] for r in data["rules"] if r["points"] > 0 and r.get("enabled", True)}
    code = max((c for c in counts if c in positive), key=lambda c: (counts[c], c))
    for rule in data["rules"]:
        if rule["code"] == code:
            rule["points"] += extra
    path = folder / "raised.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path, code


def test_raising_one_rules_points_changes_exactly_the_orders_that_rule_pushes_over_a_band(
        served: Served, tmp_path: Path) -> None:
    shop, live = served.shop, served.result
    extra = 25.0
    pack, code = _raised_pack(shop, live, tmp_path, extra=extra)
    with OrderLog.open(shop.settings.database_url) as log:
        result = backtest_log(shop.settings, log, period=shop.period, pack=pack)
    history = result.history
    assert history.model is not None and history.probability is not None
    weights = history.model.weights
    assert weights is not None
    rules = live_policy(shop.settings, feature_set_from(shop.settings)).rules
    policy = policy_from(shop.settings.policy)
    blended = replace(policy, model_weight=policy.model_weight * weights.model_weight)
    expected = set()
    for i, (order, vector) in enumerate(zip(history.orders, history.vectors(), strict=True)):
        evaluation = rules.evaluate(vector, list_keys(order))
        hit = next((h for h in evaluation.hits if h.code == code), None)
        if hit is None:
            continue
        points = weights.points(evaluation.hits) + extra * weights.weight(hit)
        score = blend(points, float(history.probability[i]), policy=blended)
        after = decide(score, bands=policy.bands_at(order.details.created_at), never_hold=evaluation.allow_listed)
        if after is not live.live.replay.decision[i]:
            expected.add(str(order.key))
    changed = result.changed()
    assert expected and {c.order_key for c in changed} == expected
    assert all(decision_rank(c.candidate) > decision_rank(c.live) for c in changed)
    assert result.candidate is not None
    assert result.candidate.band(Decision.VERIFY).flagged >= result.live.band(Decision.VERIFY).flagged
    out = backtest_json(result)
    assert out["changed"]["count"] == len(expected)
    assert out["difference"][0]["flagged"] == (result.candidate.band(Decision.VERIFY).flagged
                                               - result.live.band(Decision.VERIFY).flagged)


def test_lower_candidate_bands_flag_at_least_as_much_and_the_chart_is_drawn(served: Served, tmp_path: Path) -> None:
    shop = served.shop
    with OrderLog.open(shop.settings.database_url) as log:
        result = backtest_log(shop.settings, log, period=shop.period, bands="25,45,70", check=False)
    assert result.candidate is not None and result.served is None
    for a, b in zip(result.live.bands, result.candidate.bands, strict=True):
        assert b.flagged >= a.flagged and b.recall >= a.recall
    assert any(b.flagged > a.flagged for a, b in zip(result.live.bands, result.candidate.bands, strict=True))
    assert np.array_equal(result.live.replay.score, result.candidate.replay.score)  # bands move, scores do not
    path = save_chart(sweep_figure(result.live, result.candidate), tmp_path / "sweep.svg")
    assert path.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    # served by other bands than the replay's: the check must see it, and blame the policy, not the features
    candidate = PolicyUnderTest("candidate", live_policy(shop.settings, feature_set_from(shop.settings)).rules,
                                replace(policy_from(shop.settings.policy), bands=parse_bands("25,45,70")))
    with OrderLog.open(shop.settings.database_url) as log:
        check = check_served(log.engine, result.history, result.candidate.replay,
                             feature_set_hash=feature_set_from(shop.settings).hash(), policy=candidate)
    assert check.mismatches == len(result.changed()) > 0 and check.policy_mismatches == check.mismatches
    assert all(m.cause == "policy" and not m.features for m in check.examples)
    assert "from the policy" in check.line()


def test_the_command_prints_the_served_check_and_json(served: Served, tmp_path: Path) -> None:
    shop = served.shop
    runner = CliRunner()
    chart = tmp_path / "sweep.png"
    done = runner.invoke(app, ["policy", "backtest", "--from", shop.period.first_day.isoformat(),
                               "--to", shop.period.last_day.isoformat(), "--json", "--chart", str(chart)],
                         env=shop.env)
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["served"]["compared"] == len(served.result.history) and out["served"]["mismatches"] == 0
    assert out["live"] == backtest_json(served.result)["live"]
    assert chart.read_bytes().startswith(b"\x89PNG")
    table = runner.invoke(app, ["policy", "backtest"], env=shop.env)  # default window: the newest 90 days
    assert table.exit_code == 0, table.output
    assert f"served: {len(served.result.history)} compared, 0 mismatches" in table.stdout


@pytest.mark.parametrize(("args", "field"), [
    (["--bands", "60,50,80"], "bands"),
    (["--bands", "35,55"], "bands"),
    (["--pack", "no-such-pack.yaml"], "pack"),
    (["--from", "2026-13-01"], "from"),
    (["--from", "2026-11-30", "--to", "2026-11-01"], "to"),
    (["--chart", "sweep.txt"], "chart"),
])
def test_bad_input_is_one_line_and_exit_2(served: Served, args: list[str], field: str) -> None:
    done = CliRunner().invoke(app, ["policy", "backtest", *args], env=served.shop.env)
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error[") and field in lines[0]
