"""``orderguard train`` and ``orderguard promote``: dataset → fit → evaluate → gate → MLflow.

One training run:

1. rebuild every order's features point-in-time from the order log (``training.dataset``),
   with only the labels known by the cutoff;
2. split by time with a delay gap; fit LightGBM on the older part (``training.fit``), then
   the weights of rules and model in the served blend on its validation part
   (``training.blend_fit``);
3. score the holdout with the candidate and with the current champion (each with its own
   blend weights) through the served decision step, and evaluate rules-only, model-only
   and the blend, with every rule's firing rate on honest orders (``training.evaluate``);
4. apply the champion gate (``training.gate``);
5. log one MLflow run (params, metrics of both models, the gate's reasons, plots, the model
   with its signature, tags ``git_sha``/``data_window``/``feature_set_hash``/``settings_hash``)
   and register the candidate as a new model version.

Promotion (moving the ``champion`` alias) happens only when asked (``train --promote`` or
``orderguard promote``) and only when the gate passes; ``promote`` evaluates the chosen
version and the champion again on the current holdout, so a candidate trained last week is
judged on today's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.settings import Settings
from features.shop import feature_set_from
from features.specs import FeatureSet
from orderguard.durations import to_timedelta
from orderguard.enrich import Gazetteer
from orderguard.errors import InvalidInputError, NotFoundError
from orderguard.schema import Label, Order, Verdict
from scoring.blend_weights import BlendWeights
from scoring.judge import list_keys
from scoring.policy import Policy, policy_from
from scoring.registry import ModelRef, PromotionAttempt, Registry, RunLog
from scoring.rules import RulePack, rules_from
from training.blend_fit import fit_blend
from training.cards import ModelCard, blend_metrics, top_features, write_card
from training.dataset import Dataset, Split, assert_no_leakage, build_dataset, time_split
from training.evaluate import Evaluation, evaluate
from training.fit import FittedModel, fit, predict, validation_split
from training.gate import Gate, PromotionDecision
from training.plots import feature_importance_figure, pr_curve_figure, score_distribution_figure
from training.preflight import check_label_delays, label_delays
from training.split_checks import notes, refuse_unusable


@dataclass(frozen=True, slots=True)
class Context:
    """What every step shares: the feature set, the rules and policy that serve, the data."""

    settings: Settings
    feature_set: FeatureSet
    rules: RulePack
    policy: Policy
    split: Split
    cutoff: datetime
    #: why this cutoff (given, or chosen as the newest thing the log knows)
    cutoff_reason: str = "given"
    #: labels known by the cutoff (relabels counted), and those given after it (left out)
    labels_known: int = 0
    labels_later: int = 0
    #: what is legal but surprising about the split (``training.split_checks.notes``)
    notes: tuple[str, ...] = ()

    @property
    def data_window(self) -> str:
        """``<first order>..<cutoff>`` (UTC dates) of the data the run saw."""
        frame = self.split.train.frame
        first = frame["event_time"].min() if len(frame) else self.cutoff
        return f"{pd.Timestamp(first).date()}..{self.cutoff.date()}"


@dataclass(frozen=True, slots=True)
class TrainResult:
    """One training run: the registered candidate, both evaluations and the gate's verdict."""

    run_id: str
    candidate: ModelRef
    evaluation: Evaluation
    champion: ModelRef | None
    champion_evaluation: Evaluation | None
    decision: PromotionDecision
    promoted: bool
    train_rows: int
    holdout_rows: int
    card: Path | None = None
    blend: BlendWeights | None = None


def configured(settings: Settings) -> tuple[FeatureSet, RulePack]:
    """The feature set and the rule pack a run trains and serves with, each checked as it loads (the rules
    against the features, the feature set's ``monotone`` list against its features): call it before reading
    the order log, so a configuration that cannot work fails before anything slow starts."""
    feature_set = feature_set_from(settings)
    return feature_set, rules_from(settings, feature_set)


def prepare(settings: Settings, *, orders: Sequence[Order], labels: Sequence[Label],
            cutoff: datetime | None = None, holdout_from: datetime | None = None,
            holdout_to: datetime | None = None) -> Context:
    """Dataset and time split as of ``cutoff`` (default: the newest order update or label in the log, so verdicts
    given on the review desk after the last order count in the next run).

    ``holdout_from`` / ``holdout_to`` fix the holdout's creation times explicitly (the
    period another system's report used, say); by default it is the newest
    ``training.holdout_days`` of matured orders. The training part still ends
    ``training.gap`` before the holdout starts.

    Raises ``InsufficientDataError`` (``training.split_checks``) when either side of the
    split has too few frauds or honest orders for a verdict: nothing is trained then.
    """
    # what needs no features first (training.preflight): a doomed run fails in seconds, not after the features
    feature_set, rules = configured(settings)
    if not orders:
        raise InvalidInputError("`orders` must not be empty: ingest orders before training", field="orders")
    training = settings.training
    needs_investigation = training.needs_investigation == "positive"
    delays = label_delays(orders, labels, maturity=to_timedelta(training.maturity),
                          positive=frozenset({Verdict.CONFIRMED_FRAUD}
                                             | ({Verdict.NEEDS_INVESTIGATION} if needs_investigation else set())))
    delay_note = check_label_delays(delays, warn_share=training.late_labels_warn_share,
                                    max_share=training.late_labels_max_share)
    newest_label = max((label.labeled_at for label in labels), default=None)
    at = cutoff or max(o.updated_at for o in orders)
    reason = "given" if cutoff else "the newest order update in the log (--cutoff chooses another)"
    if cutoff is None and newest_label is not None and newest_label > at:
        at, reason = newest_label, "the newest label in the log (--cutoff chooses another)"
    if holdout_to is not None and holdout_to > at:
        raise InvalidInputError.must("holdout_to", f"at or before the cutoff ({at.isoformat()})",
                                     holdout_to.isoformat())
    if holdout_from is not None and holdout_from >= (holdout_to or at):
        raise InvalidInputError.must("holdout_from", "before --holdout-to (or the cutoff)", holdout_from.isoformat())
    known = sum(1 for label in labels if label.labeled_at <= at)
    dataset = build_dataset(orders, labels, feature_set, cutoff=at, gazetteer=Gazetteer.build(settings.reference),
                            settings=settings.training)
    gap = to_timedelta(settings.training.gap)
    split = time_split(dataset, holdout_days=settings.training.holdout_days, gap=gap, holdout_end=holdout_to,
                       holdout_start=holdout_from)
    assert_no_leakage(split)
    refuse_unusable(split, min_positives=settings.training.gate.min_holdout_positives)
    maturity = to_timedelta(settings.training.maturity) / timedelta(days=1)
    return Context(settings=settings, feature_set=feature_set, rules=rules,
                   policy=policy_from(settings.policy), split=split, cutoff=at, cutoff_reason=reason,
                   labels_known=known, labels_later=len(labels) - known,
                   notes=(*notes(split, maturity_days=maturity), *([delay_note] if delay_note else [])))


def assess(ctx: Context, booster: lgb.Booster, weights: BlendWeights | None = None) -> Evaluation:
    """Evaluate ``booster`` (and the rules, and their blend with ``weights``) on the context's holdout."""
    holdout = ctx.split.holdout
    return evaluate(holdout, probability=predict(booster, holdout.frame), rules=ctx.rules, policy=ctx.policy,
                    capacity_per_day=ctx.settings.training.review_capacity_per_day, weights=weights)


def learn_blend(ctx: Context, train_set: Dataset, booster: lgb.Booster) -> BlendWeights:
    """The blend weights of ``booster`` fitted on the training part's validation rows (``training.blend_fit``)."""
    _, valid_frame = validation_split(train_set.frame, ctx.settings.training.validation_fraction)
    valid = train_set.with_frame(valid_frame.reset_index(drop=True))
    hits = [ctx.rules.evaluate(vector, list_keys(valid.orders[str(key)])).hits
            for key, vector in zip(valid.frame["order_key"], valid.vectors(), strict=True)]
    return fit_blend(hits, predict(booster, valid.frame), valid.target, policy=ctx.policy)


def gate(ctx: Context, candidate: Evaluation, champion: tuple[ModelRef, Evaluation] | None) -> PromotionDecision:
    """The configured gate on two evaluations of the same holdout."""
    return Gate(ctx.settings.training.gate).decide(
        candidate.metrics(), champion=champion[1].metrics() if champion else None,
        champion_version=champion[0].version if champion else None,
        holdout_positives=ctx.split.holdout.positives,
        holdout_negatives=len(ctx.split.holdout.frame) - ctx.split.holdout.positives)


def _assessed(ctx: Context, registry: Registry, ref: ModelRef | None) -> tuple[ModelRef, Evaluation] | None:
    """The champion ``ref`` (if any) with its evaluation on the context's holdout."""
    return None if ref is None else (ref, assess(ctx, registry.load_booster(ref), registry.load_blend(ref)))


def shuffled(train: Dataset, *, seed: int) -> Dataset:
    """The same training rows with their targets permuted: a deliberately useless candidate,
    to check that the gate refuses it (``orderguard train --shuffle-labels``)."""
    frame = train.frame.copy()
    frame["target"] = np.random.default_rng(seed).permutation(frame["target"].to_numpy())
    return train.with_frame(frame)


def train(ctx: Context, registry: Registry, *, git_sha: str, promote: bool = False,
          shuffle_labels: bool = False) -> TrainResult:
    """Fit, evaluate against the champion, log and register the candidate; promote it if asked and it passes."""
    settings = ctx.settings
    train_set = shuffled(ctx.split.train, seed=settings.training.seed) if shuffle_labels else ctx.split.train
    fitted = fit(train_set, settings=settings.training, feature_names=list(ctx.feature_set.names),
                 monotone=ctx.feature_set.monotone)
    weights = learn_blend(ctx, train_set, fitted.booster)
    evaluation = assess(ctx, fitted.booster, weights)
    champion = _assessed(ctx, registry, registry.champion())
    decision = gate(ctx, evaluation, champion)
    tags = {"git_sha": git_sha, "data_window": ctx.data_window, "feature_set_hash": ctx.feature_set.hash(),
            "settings_hash": settings.settings_hash(), "gate_passed": str(decision.passed).lower(),
            "shuffled_labels": str(shuffle_labels).lower()}
    with registry.start_run(run_name=f"train {ctx.cutoff:%Y-%m-%d}", tags=tags) as run:
        run.log_params(_params(ctx, fitted))
        run.log_metrics({**evaluation.metrics(), **fitted.metrics(), **decision.metrics()})
        if champion is not None:
            run.log_metrics({f"champion_{k}": v for k, v in champion[1].metrics().items()})
        run.log_text("\n".join(decision.reasons) + "\n", "gate.txt")
        run.log_text(rules_text(evaluation), "rules.txt")
        run.log_metrics({"blend_model_weight": weights.model_weight,
                         **{f"rule_honest_rate_{r.code}": r.honest_rate for r in evaluation.rules
                            if r.honest_rate == r.honest_rate}})
        if ctx.notes:
            run.log_text("\n".join(ctx.notes) + "\n", "notes.txt")
        _log_figures(run, ctx, evaluation, fitted)
        source = run.log_model(fitted.booster, input_example=ctx.split.holdout.frame[fitted.feature_names],
                               blend=weights)
    candidate = registry.register(run.run_id, source=source, tags={
        "feature_set_hash": tags["feature_set_hash"], "data_window": tags["data_window"],
        "gate_passed": tags["gate_passed"]})
    promoted = promote and decision.passed
    if promote:
        _record(registry, ctx, candidate, decision)
    card = None
    if promoted:
        registry.set_champion(candidate)
        card = _write_card(ctx, candidate, evaluation, champion, decision, fitted.booster,
                           train_rows=len(train_set.frame))
    return TrainResult(run_id=run.run_id, candidate=candidate, evaluation=evaluation,
                       champion=champion[0] if champion else None,
                       champion_evaluation=champion[1] if champion else None, decision=decision,
                       promoted=promoted, train_rows=len(train_set.frame), holdout_rows=len(ctx.split.holdout.frame),
                       card=card, blend=weights)


def rules_text(evaluation: Evaluation) -> str:
    """Every rule that fired on the holdout: firing rate on honest and on fraud orders, and its learned weight."""
    lines = ["rule\thonest_fired\thonest_rate\tfraud_fired\tfraud_rate\tweight"]
    lines += [f"{r.code}\t{r.honest}\t{r.honest_rate:.4f}\t{r.frauds}\t{r.fraud_rate:.4f}\t{r.weight:.3f}"
              for r in evaluation.rules]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class PromoteResult:
    """``orderguard promote``: the version judged, the champion it was judged against, the verdict."""

    candidate: ModelRef
    champion: ModelRef | None
    decision: PromotionDecision
    promoted: bool
    card: Path | None = None


def promote(ctx: Context, registry: Registry, *, version: str) -> PromoteResult:
    """Judge a registered version against the champion on the current holdout; move the alias if it passes.

    The verdict and its reasons are kept as a promotion record of their own (every attempt,
    passed or refused: ``orderguard model history``); a promoted version gets its model card
    (``training.cards``).
    """
    candidate = registry.version(version)
    current = registry.champion()
    if current is not None and current.version == candidate.version:
        raise InvalidInputError(f"`version` must not be the current champion; got {version!r}", field="version")
    booster = registry.load_booster(candidate)
    evaluation = assess(ctx, booster, registry.load_blend(candidate))
    champion = _assessed(ctx, registry, current)
    decision = gate(ctx, evaluation, champion)
    card = None
    if decision.passed:
        registry.set_champion(candidate)
        card = _write_card(ctx, candidate, evaluation, champion, decision, booster,
                           train_rows=len(ctx.split.train.frame))
    registry.set_version_tags(candidate, {"gate_passed": str(decision.passed).lower()})
    _record(registry, ctx, candidate, decision)
    return PromoteResult(candidate=candidate, champion=champion[0] if champion else None, decision=decision,
                         promoted=decision.passed, card=card)


def _record(registry: Registry, ctx: Context, candidate: ModelRef, decision: PromotionDecision) -> None:
    attempt = PromotionAttempt(candidate_version=candidate.version, baseline=decision.baseline,
                               passed=decision.passed, cutoff=ctx.cutoff.isoformat(), run_id=candidate.run_id,
                               reasons=decision.reasons)
    registry.record_promotion(attempt, gains=decision.metrics())


def _write_card(ctx: Context, candidate: ModelRef, evaluation: Evaluation,
                champion: tuple[ModelRef, Evaluation] | None, decision: PromotionDecision,
                booster: lgb.Booster, *, train_rows: int) -> Path:
    """The new champion's model card, written beside the others; returns the Markdown file."""
    card = ModelCard(
        model_name=candidate.name, version=candidate.version, run_id=candidate.run_id,
        promoted_at=datetime.now(UTC), data_window=ctx.data_window, feature_set_hash=ctx.feature_set.hash(),
        settings_hash=ctx.settings.settings_hash(), train_rows=train_rows,
        holdout_rows=len(ctx.split.holdout.frame), holdout_positives=ctx.split.holdout.positives,
        baseline=decision.baseline, metrics=evaluation.metrics(),
        baseline_metrics=blend_metrics(champion[1].metrics()) if champion else {},
        gate_reasons=decision.reasons, top_features=top_features(booster))
    markdown, _ = write_card(card, ctx.settings.training.cards_dir)
    return markdown


def latest_version(registry: Registry) -> str:
    """The newest registered version (what ``orderguard promote`` judges by default)."""
    versions = registry.versions()
    if not versions:
        raise NotFoundError("`version` must name a registered model; none is registered yet (run `orderguard train`)",
                            field="version")
    return max(versions, key=int)


def _params(ctx: Context, fitted: FittedModel) -> dict[str, object]:
    training = ctx.settings.training
    return {**fitted.params, "best_iteration": fitted.best_iteration, "holdout_days": training.holdout_days,
            "gap": training.gap, "maturity": training.maturity, "needs_investigation": training.needs_investigation,
            "review_capacity_per_day": training.review_capacity_per_day, "cutoff": ctx.cutoff.isoformat(),
            "train_rows": len(ctx.split.train.frame), "holdout_rows": len(ctx.split.holdout.frame),
            "train_positives": ctx.split.train.positives, "holdout_positives": ctx.split.holdout.positives,
            "features": len(fitted.feature_names)}


def _log_figures(run: RunLog, ctx: Context, evaluation: Evaluation, fitted: FittedModel) -> None:
    import matplotlib.pyplot as plt

    figures = {"plots/pr_curve.png": pr_curve_figure(evaluation),
               "plots/score_by_verdict.png": score_distribution_figure(evaluation),
               "plots/feature_importance.png": feature_importance_figure(fitted.booster)}
    for path, figure in figures.items():
        run.log_figure(figure, path)
        plt.close(figure)
