"""Train → evaluate → gate → MLflow on a simulated shop: the first champion, a refused shuffled-label
candidate, ``orderguard promote`` and ``orderguard train`` from the command line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from orderguard.errors import InvalidInputError
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from orderguard.settings import GateSettings, TrainingSettings
from scoring.model import model_factory
from scoring.registry import Registry
from scoring.rules import load_rules
from tests.training.shop import Shop, build_shop
from training.cards import read_card
from training.fit import fit
from training.pipeline import Context, TrainResult, assess, gate, learn_blend, prepare, promote, train
from training.split_checks import InsufficientDataError, notes

CLI_ENV = {"ORDERGUARD_TRAINING__MATURITY": "7d", "ORDERGUARD_TRAINING__GATE__MIN_HOLDOUT_POSITIVES": "10"}


@dataclass(frozen=True)
class Trained:
    settings: Settings
    shop: Shop
    context: Context
    registry: Registry
    first: TrainResult
    shuffled: TrainResult


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("pipeline")
    shop = build_shop(root, days=35, orders_per_day=140, seed=5)
    settings = Settings(data_dir=root, training=TrainingSettings(
        maturity="7d", holdout_days=7, gap="2d", gate=GateSettings(min_holdout_positives=10),
        cards_dir=root / "models"))
    labels = [label for label in shop.fraud_labels(seed=2) if label.labeled_at <= shop.config.end_at]
    log = OrderLog.open(settings.database_url)
    try:
        LabelLog(log.engine).add(labels, source="test", recorded_at=shop.config.end_at)
    finally:
        log.close()
    context = prepare(settings, orders=shop.orders, labels=labels)
    registry = Registry.from_settings(settings)
    first = train(context, registry, git_sha="test-sha", promote=True)
    shuffled = train(context, registry, git_sha="test-sha", promote=True, shuffle_labels=True)
    return Trained(settings, shop, context, registry, first, shuffled)


def test_the_served_blend_beats_rules_only_and_model_only_on_the_holdout(trained: Trained) -> None:
    metrics = trained.first.evaluation.metrics()
    assert metrics["holdout_positives"] >= 10 and metrics["holdout_rows"] > metrics["holdout_positives"]
    assert metrics["blend_pr_auc"] > metrics["rules_pr_auc"]
    assert metrics["blend_pr_auc"] > metrics["model_pr_auc"]


def test_first_candidate_is_judged_against_rules_only_and_promoted(trained: Trained) -> None:
    first = trained.first
    assert first.decision.baseline == "rules-only" and first.decision.passed and first.promoted
    champion = trained.registry.champion()
    assert champion is not None and champion.version == first.candidate.version


def test_the_run_carries_params_metrics_tags_and_the_gate_reasons(trained: Trained) -> None:
    run = trained.registry.run(trained.first.run_id)
    assert run.tags["git_sha"] == "test-sha"
    assert run.tags["feature_set_hash"] == trained.context.feature_set.hash()
    assert run.tags["settings_hash"] == trained.settings.settings_hash()
    assert run.tags["data_window"].endswith(f"..{trained.context.cutoff.date()}")
    assert run.params["gap"] == "2d" and int(run.params["train_positives"]) > 0
    assert run.metrics["blend_pr_auc"] == pytest.approx(trained.first.evaluation.metrics()["blend_pr_auc"])
    assert run.metrics["gate_passed"] == 1.0
    artifacts = Path(trained.settings.artifact_location) / trained.first.run_id / "artifacts"
    assert (artifacts / "gate.txt").read_text(encoding="utf-8").startswith("pass pr_auc: candidate")
    for plot in ("pr_curve.png", "score_by_verdict.png", "feature_importance.png"):
        assert (artifacts / "plots" / plot).stat().st_size > 1000
    assert (artifacts / "model" / "MLmodel").is_file()


def test_the_promoted_champion_gets_a_model_card_readable_without_mlflow(trained: Trained) -> None:
    first = trained.first
    assert first.card is not None and first.card.parent == trained.settings.training.cards_dir
    markdown = first.card.read_text(encoding="utf-8")
    assert markdown.startswith(f"# {first.candidate.name} v{first.candidate.version}")
    assert trained.context.feature_set.hash() in markdown and "against **rules-only**" in markdown
    assert all(f"- {reason}" in markdown for reason in first.decision.reasons)
    card = read_card(first.card.with_suffix(".json"))
    assert card["version"] == first.candidate.version and card["run_id"] == first.run_id
    assert card["data_window"] == trained.context.data_window
    assert card["metrics"]["blend_pr_auc"] == pytest.approx(  # type: ignore[index]
        first.evaluation.metrics()["blend_pr_auc"])
    shares = [f["gain_share"] for f in card["top_features"]]  # type: ignore[attr-defined]
    assert 0 < len(shares) <= 10 and shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-9
    # a refused candidate gets no card
    assert trained.shuffled.card is None
    written = sorted(p.name for p in first.card.parent.iterdir())
    assert written == sorted([first.card.name, first.card.with_suffix(".json").name])


def test_a_shuffled_label_candidate_is_refused_with_readable_reasons(trained: Trained) -> None:
    shuffled = trained.shuffled
    assert not shuffled.decision.passed and not shuffled.promoted
    assert shuffled.decision.baseline == f"champion {trained.first.candidate.version}"
    assert shuffled.decision.reasons[0].startswith("FAIL pr_auc: candidate ")
    assert f"vs champion {trained.first.candidate.version} " in shuffled.decision.reasons[0]
    champion = trained.registry.champion()
    assert champion is not None and champion.version == trained.first.candidate.version
    assert trained.registry.run(shuffled.run_id).tags["gate_passed"] == "false"


def test_every_promotion_attempt_is_kept_passed_or_refused(trained: Trained) -> None:
    before = trained.registry.promotions()
    # train --promote kept both verdicts: the first model's pass and the shuffled one's refusal
    first, shuffled = trained.first.candidate.version, trained.shuffled.candidate.version
    assert [(a.candidate_version, a.passed) for a in before[:2]] == [(first, True), (shuffled, False)]
    for _ in range(2):
        result = promote(trained.context, trained.registry, version=shuffled)
        assert not result.promoted and result.champion is not None and result.champion.version == first
    after = trained.registry.promotions()
    assert len(after) == len(before) + 2  # a later attempt never overwrites an earlier one
    for attempt in after[-2:]:
        assert (attempt.candidate_version, attempt.passed, attempt.baseline) == (shuffled, False, f"champion {first}")
        assert attempt.reasons[0].startswith("FAIL pr_auc") and attempt.run_id == trained.shuffled.run_id
    assert after[-2].at <= after[-1].at


def test_cli_promote_exits_1_when_refused_and_2_on_bad_input(trained: Trained) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(trained.settings.data_dir)]
    env = {"ORDERGUARD_TRAINING__MATURITY": "7d", "ORDERGUARD_TRAINING__GATE__MIN_HOLDOUT_POSITIVES": "10",
           "ORDERGUARD_TRAINING__CARDS_DIR": str(trained.settings.training.cards_dir)}
    refused = runner.invoke(app, [*base, "promote", "--version", trained.shuffled.candidate.version], env=env)
    assert refused.exit_code == 1, refused.output
    assert "FAIL pr_auc" in refused.output and "champion unchanged" in refused.output
    scripted = runner.invoke(app, [*base, "promote", "--version", trained.shuffled.candidate.version, "--json"],
                             env=env)
    assert scripted.exit_code == 1
    verdict = json.loads(scripted.stdout)
    assert verdict["promoted"] is False and verdict["gate"]["passed"] is False
    assert verdict["gate"]["reasons"][0].startswith("FAIL pr_auc")
    history = runner.invoke(app, [*base, "model", "history", "--json"], env=env)
    assert history.exit_code == 0
    assert [json.loads(line)["passed"] for line in history.stdout.splitlines()][-2:] == [False, False]
    unknown = runner.invoke(app, [*base, "promote", "--version", "999"], env=env)
    assert unknown.exit_code == 2 and "version" in unknown.output
    bad = runner.invoke(app, [*base, "train", "--cutoff", "yesterday"], env=env)
    assert bad.exit_code == 2 and "--cutoff" in bad.output


def test_cli_train_prints_the_comparison_and_registers_a_version(trained: Trained) -> None:
    runner = CliRunner()
    env = {"ORDERGUARD_TRAINING__MATURITY": "7d", "ORDERGUARD_TRAINING__GATE__MIN_HOLDOUT_POSITIVES": "10",
           "ORDERGUARD_TRAINING__CARDS_DIR": str(trained.settings.training.cards_dir)}
    before = set(trained.registry.versions())
    result = runner.invoke(app, ["--data-dir", str(trained.settings.data_dir), "train"], env=env)
    assert result.exit_code == 0, result.output
    assert "blend (served)" in result.output and "champion blend" in result.output
    # the cutoff's why: the newest thing the log knows, so labels given after the last order count too
    assert re.search(r"the newest (order update|label) in the log \(--cutoff chooses another\)", result.output)
    assert re.search(r"[\d,]+ labels known by the cutoff", result.output) and "left out" not in result.output
    assert "gate vs champion" in result.output
    assert len(set(trained.registry.versions()) - before) == 1
    scripted = runner.invoke(app, ["--data-dir", str(trained.settings.data_dir), "train", "--json"], env=env)
    assert scripted.exit_code == 0, scripted.output
    body = json.loads(scripted.stdout)
    assert body["candidate"]["version"] in trained.registry.versions() and body["promoted"] is False
    assert body["holdout_rows"] == len(trained.context.split.holdout.frame)
    assert body["gate"]["baseline"] == f"champion {trained.first.candidate.version}"
    assert 0 < body["metrics"]["blend_pr_auc"] <= 1


def test_the_retrain_notebook_runs_end_to_end(trained: Trained) -> None:
    import nbclient
    import nbformat

    notebook = nbformat.read(  # type: ignore[no-untyped-call]
        Path(__file__).parents[2] / "notebooks" / "retrain.ipynb", as_version=4)
    env = {"ORDERGUARD_DATA_DIR": str(trained.settings.data_dir), "ORDERGUARD_TRAINING__MATURITY": "7d",
           "ORDERGUARD_TRAINING__GATE__MIN_HOLDOUT_POSITIVES": "10"}
    before = set(trained.registry.versions())
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(trained.settings.data_dir)}}).execute()
    outputs = "".join(str(o.get("text", "")) for cell in notebook.cells for o in cell.get("outputs", []))
    assert "gate vs champion" in outputs and "champion now:" in outputs
    assert len(set(trained.registry.versions()) - before) == 1


def test_a_holdout_without_enough_frauds_or_honest_orders_refuses_before_training(trained: Trained) -> None:
    """The trap: a few orders dated after the rest move the default cutoff, and the holdout is empty."""
    later = trained.shop.config.end_at + timedelta(days=60)
    with pytest.raises(InsufficientDataError) as refused:
        prepare(trained.settings, orders=trained.shop.orders, labels=[], cutoff=later)
    assert refused.value.field == "training.holdout"
    assert "0 confirmed frauds and 0 honest orders" in refused.value.message
    versions = trained.registry.versions()
    result = CliRunner().invoke(app, ["--data-dir", str(trained.settings.data_dir), "train", "--cutoff",
                                      later.isoformat()], env=CLI_ENV)
    assert result.exit_code == 2, result.output
    assert "holdout part" in result.output and "ORDERGUARD_TRAINING__HOLDOUT_DAYS" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert trained.registry.versions() == versions  # nothing registered


def test_a_thin_training_part_and_a_busy_holdout_day_are_called_out(trained: Trained) -> None:
    split = trained.context.split
    assert notes(split, maturity_days=7) == ()  # the usual split says nothing
    frame = split.holdout.frame
    full_day = frame["event_time"].dt.date.mode()[0]  # a whole day (the first and last may be partial)
    busy = pd.concat([frame, *[frame[frame["event_time"].dt.date == full_day]] * 5], ignore_index=True)
    thin = replace(split, train=split.train.with_frame(split.train.frame.head(10)),
                   holdout=split.holdout.with_frame(busy))
    found = notes(thin, maturity_days=7)
    assert len(found) == 2
    assert found[0].startswith("the training part (10 orders) is smaller than the holdout")
    assert found[1].startswith(f"holdout day {full_day} has ") and "a promotion?" in found[1]


def test_rules_report_answers_in_json_for_scripts(trained: Trained) -> None:
    truth = next(trained.settings.data_dir.rglob("ground_truth.csv"))
    result = CliRunner().invoke(app, ["--data-dir", str(trained.settings.data_dir), "rules-report", "--truth",
                                      str(truth), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["orders"] == len(trained.shop.orders) and body["flag_at"] == "review"
    assert 0 < body["recall"] <= 1 and 0 <= body["false_positive_rate"] < 1
    assert sum(p["orders"] for p in body["patterns"]) == body["orders"]


# -- learned blend weights, the blend-vs-own-model gate check, explicit holdout dates -------------------------

#: A rule written for another shop (where daytime orders were the risky ones): on this one it fires on
#: nearly every honest order and on fewer frauds.
NOISY_RULE = {"code": "DAYTIME", "points": 60,
              "when": {"feature": "order_night", "op": "eq", "value": 0},
              "reason": {"zh": "白天下单", "en": "a daytime order"}}


def _with_noisy_rule(context: Context) -> Context:
    data = {"version": 1, "rules": [NOISY_RULE, {
        "code": "DEVICE_BURST_5M", "points": 50,
        "when": {"feature": "count_orders_by_device_5m", "op": "ge", "value": 5},
        "reason": {"zh": "设备突发", "en": "device burst"}}]}
    return replace(context, rules=load_rules(data, known_features=context.feature_set.names))


def test_a_rule_firing_on_honest_orders_loses_its_weight_and_the_gate_sees_the_damage(trained: Trained) -> None:
    ctx = _with_noisy_rule(trained.context)
    fitted = fit(ctx.split.train, settings=ctx.settings.training, feature_names=list(ctx.feature_set.names),
                 monotone=ctx.feature_set.monotone)
    weights = learn_blend(ctx, ctx.split.train, fitted.booster)
    assert weights.rules["DAYTIME"] < 0.25 <= weights.rules.get("DEVICE_BURST_5M", 1.0)
    as_written = assess(ctx, fitted.booster)
    learned = assess(ctx, fitted.booster, weights)
    written_m, learned_m = as_written.metrics(), learned.metrics()
    noisy = next(r for r in learned.rules if r.code == "DAYTIME")
    assert noisy.honest_rate > 0.9 > noisy.fraud_rate and noisy.weight == weights.rules["DAYTIME"]
    # the rule as written drags the served blend below the model alone; learned, it does not
    assert written_m["blend_pr_auc"] < written_m["model_pr_auc"] - 0.02
    assert learned_m["blend_pr_auc"] >= learned_m["model_pr_auc"] - 0.01
    assert learned_m["blend_fpr_review"] < 0.1 < 0.5 < written_m["blend_fpr_review"]  # the review queue
    refused = gate(ctx, as_written, None)
    assert not refused.passed
    assert any(r.startswith("FAIL blend_vs_model_pr_auc: served blend") and "its own model alone" in r
               for r in refused.reasons)
    own = next(c for c in gate(ctx, learned, None).checks if c.metric == "blend_vs_model_pr_auc")
    assert own.passed


def test_the_learned_blend_is_stored_with_the_version_and_rule_rates_with_the_run(trained: Trained) -> None:
    first = trained.first
    assert first.blend is not None and first.blend.fitted_on > 0
    assert trained.registry.load_blend(first.candidate) == first.blend
    run = trained.registry.run(first.run_id)
    assert run.metrics["blend_model_weight"] == first.blend.model_weight
    assert any(name.startswith("rule_honest_rate_") for name in run.metrics)
    artifacts = Path(trained.settings.artifact_location) / first.run_id / "artifacts"
    table = (artifacts / "rules.txt").read_text(encoding="utf-8").splitlines()
    assert table[0].startswith("rule\thonest_fired") and len(table) == len(first.evaluation.rules) + 1
    model = model_factory(trained.context.feature_set)(trained.registry.load_booster(first.candidate), "v",
                                                       trained.registry.load_blend(first.candidate))
    assert model.blend == first.blend


def test_explicit_holdout_dates_set_the_split(trained: Trained) -> None:
    end = trained.context.split.holdout_end
    start = end - timedelta(days=5)
    ctx = prepare(trained.settings, orders=trained.shop.orders, labels=list(trained.context.split.holdout.labels),
                  cutoff=trained.context.cutoff, holdout_from=start, holdout_to=end)
    assert (ctx.split.holdout_start, ctx.split.holdout_end) == (start, end)
    assert ctx.split.train_end == start - timedelta(days=2)
    times = ctx.split.holdout.frame["event_time"]
    assert times.min() >= pd.Timestamp(start) and times.max() <= pd.Timestamp(end)
    with pytest.raises(InvalidInputError) as caught:
        prepare(trained.settings, orders=trained.shop.orders, labels=[], cutoff=trained.context.cutoff,
                holdout_from=end, holdout_to=start)
    assert caught.value.field == "holdout_from"
    with pytest.raises(InvalidInputError) as caught:
        prepare(trained.settings, orders=trained.shop.orders, labels=[], cutoff=trained.context.cutoff,
                holdout_to=trained.context.cutoff + timedelta(days=1))
    assert caught.value.field == "holdout_to"
