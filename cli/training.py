"""``orderguard train | promote | model``: the retraining loop and the champion (``training``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import command_group, open_log, parse_moment, settings_of, user_errors, wide_console
from orderguard.clock import NAIVE_IS_SHOP_TIME

if TYPE_CHECKING:
    from features.settings import Settings
    from training.evaluate import Evaluation
    from training.gate import PromotionDecision
    from training.pipeline import Context as TrainingContext

app = command_group()


def _training_context(settings: Settings, cutoff: str | None, holdout_from: str | None = None,
                      holdout_to: str | None = None) -> TrainingContext:
    from orderguard.labels import LabelLog
    from training.pipeline import configured, prepare

    configured(settings)  # a feature set or rule pack that cannot work fails before the log is read
    at = parse_moment(cutoff, "cutoff")
    start, end = parse_moment(holdout_from, "holdout-from"), parse_moment(holdout_to, "holdout-to")
    with open_log(settings) as log:
        orders = list(log.iter_orders())
        labels = list(LabelLog(log.engine).iter_labels())
    return prepare(settings, orders=orders, labels=labels, cutoff=at, holdout_from=start, holdout_to=end)


HoldoutFrom = Annotated[str | None, typer.Option(
    "--holdout-from", help=f"First creation time of the holdout, ISO ({NAIVE_IS_SHOP_TIME}); "
                           "default: training.holdout_days before --holdout-to.")]
HoldoutTo = Annotated[str | None, typer.Option(
    "--holdout-to", help=f"Last creation time of the holdout, ISO ({NAIVE_IS_SHOP_TIME}); "
                         "default: the cutoff minus training.maturity.")]


def _rules_json(evaluation: Evaluation) -> list[dict[str, object]]:
    return [{"code": r.code, "honest_fired": r.honest, "honest_rate": _finite({"x": r.honest_rate})["x"],
             "fraud_fired": r.frauds, "fraud_rate": _finite({"x": r.fraud_rate})["x"], "weight": r.weight}
            for r in evaluation.rules]


def _print_rules(console: Console, evaluation: Evaluation, *, limit: int = 12) -> None:
    """The rules by how many honest holdout orders they fired on, with their learned weight."""
    if not evaluation.rules:
        return
    table = Table("rule", "fires on honest", "fires on fraud", "weight in blend", title="rules on the holdout")
    for r in evaluation.rules[:limit]:
        table.add_row(r.code, f"{r.honest:,} ({r.honest_rate:.1%})", f"{r.frauds:,} ({r.fraud_rate:.1%})",
                      f"{r.weight:.2f}")
    console.print(table)


def _finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    """Metrics for JSON: NaN (a metric without a value) becomes null."""
    return {name: None if math.isnan(value) else value for name, value in metrics.items()}


def _gate_json(decision: PromotionDecision) -> dict[str, object]:
    return {"passed": decision.passed, "baseline": decision.baseline, "reasons": list(decision.reasons)}


def _print_gate(console: Console, reasons: tuple[str, ...], *, passed: bool, baseline: str) -> None:
    console.print(f"[bold]gate vs {baseline}: {'PASSED' if passed else 'REFUSED'}[/bold]")
    for reason in reasons:
        console.print(f"  {reason}")


@app.command()
@user_errors
def train(
    ctx: typer.Context,
    cutoff: Annotated[str | None, typer.Option(
        help=f"Train as of this ISO date or time ({NAIVE_IS_SHOP_TIME}); default: newest order.")] = None,
    promote: Annotated[bool, typer.Option("--promote/--no-promote",
                                          help="Make the candidate champion if the gate passes.")] = False,
    shuffle_labels: Annotated[bool, typer.Option(
        "--shuffle-labels", help="Drill: train on permuted labels; the gate must refuse the result.")] = False,
    holdout_from: HoldoutFrom = None,
    holdout_to: HoldoutTo = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables (for scripts).")
                       ] = False,
) -> None:
    """Train a candidate on reviewer labels, compare it with the champion, log it to MLflow and register it."""
    from scoring.registry import Registry, git_sha
    from training.cards import CARD_METRICS
    from training.pipeline import train as run_training

    settings = settings_of(ctx)
    console = wide_console()
    context = _training_context(settings, cutoff, holdout_from, holdout_to)
    result = run_training(context, Registry.from_settings(settings), git_sha=git_sha(), promote=promote,
                          shuffle_labels=shuffle_labels)
    if as_json:
        typer.echo(json.dumps({
            "cutoff": context.cutoff.isoformat(), "cutoff_reason": context.cutoff_reason,
            "labels_known": context.labels_known, "labels_after_cutoff": context.labels_later,
            "data_window": context.data_window, "train_rows": result.train_rows, "holdout_rows": result.holdout_rows,
            "notes": list(context.notes), "metrics": _finite(result.evaluation.metrics()),
            "champion_metrics": _finite(result.champion_evaluation.metrics()) if result.champion_evaluation else None,
            "gate": _gate_json(result.decision), "candidate": {"version": result.candidate.version,
                                                               "run_id": result.run_id},
            "holdout": {"from": context.split.holdout_start.isoformat(), "to": context.split.holdout_end.isoformat()},
            "blend": {"model_weight": result.blend.model_weight, "rules": dict(result.blend.rules)}
            if result.blend else None,
            "rules": _rules_json(result.evaluation),
            "promoted": result.promoted, "card": str(result.card) if result.card else None}, ensure_ascii=False))
        return
    console.print(f"cutoff {context.cutoff:%Y-%m-%d %H:%M} UTC: {context.cutoff_reason}")
    console.print(f"dataset: {result.train_rows:,} training orders, {result.holdout_rows:,} holdout orders "
                  f"({context.data_window}); {context.labels_known:,} labels known by the cutoff"
                  + (f", {context.labels_later:,} given after it left out" if context.labels_later else ""))
    for note in context.notes:
        console.print(f"note: {note}", markup=False)
    metrics = result.evaluation.metrics()
    champion = result.champion_evaluation.metrics() if result.champion_evaluation else {}
    table = Table("holdout metric", "rules only", "model only", "blend (served)", "champion blend")
    for name in CARD_METRICS:
        table.add_row(name, *(f"{metrics.get(f'{who}_{name}', float('nan')):.4f}"
                              for who in ("rules", "model", "blend")),
                      f"{champion[f'blend_{name}']:.4f}" if f"blend_{name}" in champion else "-")
    console.print(table)
    _print_rules(console, result.evaluation)
    _print_gate(console, result.decision.reasons, passed=result.decision.passed, baseline=result.decision.baseline)
    console.print(f"registered {result.candidate.label} (run {result.run_id}); "
                  + ("promoted to champion" if result.promoted else "champion unchanged"))
    if result.card is not None:
        console.print(f"model card: {result.card}")


@app.command()
@user_errors
def promote(
    ctx: typer.Context,
    version: Annotated[str | None, typer.Option(help="Registered version to judge; default: the newest.")] = None,
    cutoff: Annotated[str | None, typer.Option(
        help=f"Holdout as of this ISO date or time ({NAIVE_IS_SHOP_TIME}); default: newest order.")] = None,
    holdout_from: HoldoutFrom = None,
    holdout_to: HoldoutTo = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of sentences (for scripts).")
                       ] = False,
) -> None:
    """Judge a registered model against the champion on the current holdout; promote it only if the gate passes.

    Exits 0 when promoted, 1 when the gate refuses (the reasons are printed and stored with the run).
    """
    from scoring.registry import Registry
    from training.pipeline import latest_version
    from training.pipeline import promote as run_promotion

    settings = settings_of(ctx)
    registry = Registry.from_settings(settings)
    chosen = version or latest_version(registry)
    result = run_promotion(_training_context(settings, cutoff, holdout_from, holdout_to), registry, version=chosen)
    if as_json:
        typer.echo(json.dumps({"candidate": result.candidate.version,
                               "champion": result.champion.version if result.champion else None,
                               "gate": _gate_json(result.decision), "promoted": result.promoted,
                               "card": str(result.card) if result.card else None}, ensure_ascii=False))
        if not result.promoted:
            raise typer.Exit(1)
        return
    console = wide_console()
    _print_gate(console, result.decision.reasons, passed=result.decision.passed, baseline=result.decision.baseline)
    if not result.promoted:
        console.print(f"{result.candidate.label} refused; champion unchanged")
        raise typer.Exit(1)
    console.print(f"{result.candidate.label} is now champion; running services pick it up with "
                  "POST /v1/admin/reload-model")
    if result.card is not None:
        console.print(f"model card: {result.card}")


model_app = command_group(invoke_without_command=True, no_args_is_help=False,
                        help="The champion model (the one services load), and every promotion decision.")
app.add_typer(model_app, name="model")


@model_app.callback()
@user_errors
def model(ctx: typer.Context, as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object instead of a sentence (for scripts).")] = False) -> None:
    """Show the champion model (the one services load). Exits 1 when there is none (rules only)."""
    if ctx.invoked_subcommand is not None:
        return
    from scoring.registry import Registry

    settings = settings_of(ctx)
    registry = Registry.from_settings(settings)
    champion = registry.champion()
    if champion is None:
        if as_json:
            typer.echo(json.dumps({"champion": None, "tracking_uri": settings.tracking_uri}))
        else:
            typer.echo(f"no champion in {settings.tracking_uri}: services score with the rules only")
        raise typer.Exit(1)
    run = registry.run(champion.run_id)
    pr_auc = run.metrics.get("blend_pr_auc", float("nan"))
    if as_json:
        typer.echo(json.dumps({"champion": {"name": champion.name, "version": champion.version,
                                            "run_id": champion.run_id,
                                            "data_window": run.tags.get("data_window"),
                                            "holdout_blend_pr_auc": pr_auc}}))
        return
    typer.echo(f"champion {champion.label} (run {champion.run_id}, data {run.tags.get('data_window', '?')}, "
               f"holdout blend PR AUC {pr_auc:.4f})")


@model_app.command("history")
@user_errors
def model_history(ctx: typer.Context, as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per line instead of a table (for scripts).")] = False) -> None:
    """Every promotion decision, oldest first: passed or refused, against what, and why."""
    from scoring.registry import Registry

    attempts = Registry.from_settings(settings_of(ctx)).promotions()
    if as_json:
        for a in attempts:
            typer.echo(json.dumps({"at": a.at.isoformat(), "candidate_version": a.candidate_version,
                                   "baseline": a.baseline, "passed": a.passed, "cutoff": a.cutoff,
                                   "run_id": a.run_id, "reasons": list(a.reasons)}, ensure_ascii=False))
        return
    if not attempts:
        typer.echo("no promotion decision yet (orderguard train --promote, orderguard promote)")
        return
    table = Table("when (UTC)", "candidate", "against", "verdict", "first reason")
    for a in attempts:
        table.add_row(f"{a.at:%Y-%m-%d %H:%M:%S}", a.candidate_version, a.baseline,
                      "promoted" if a.passed else "refused", a.reasons[0] if a.reasons else "")
    wide_console().print(table)
