"""``orderguard rules-report``, ``rules tune | apply`` (the rule pack replayed, measured and re-pointed) and
``rules publish | history | show | rollback | shadow`` (packs as versioned data, ``scoring.pack_store``).

The versioned commands write straight into the service's database; every running
process swaps within ``scoring.rules_poll_s``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import command_group, open_log, settings_of, user_errors, wide_console
from orderguard.errors import InvalidInputError

if TYPE_CHECKING:
    from features.settings import Settings
    from orderguard.ingest.orderlog import OrderLog
    from scoring.pack_store import PackStore, Published

#: ``orderguard rules-report`` (a top-level command).
report_app = command_group()

#: ``orderguard rules ...``.
app = command_group(no_args_is_help=True,
                  help="Rule packs: publish, history, show, rollback, shadow; tuning from reviewer labels.")


@report_app.command("rules-report")
@user_errors
def rules_report(
    ctx: typer.Context,
    truth: Annotated[Path | None, typer.Option(help="ground_truth.csv of a simulated shop (recall, FPR).")] = None,
    flag_at: Annotated[str, typer.Option(help="Decision that counts as flagged: verify, review or hold.")] = "review",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table (for scripts).")
                       ] = False,
) -> None:
    """Replay the order log through the rule pack (rules only) and report what it flags, by pattern."""
    from features.online import OnlineFeatures
    from features.shop import feature_set_from
    from features.stores.memory import MemoryStore
    from orderguard.enrich import Gazetteer
    from scoring.policy import Decision, decision_rank, policy_from
    from scoring.rules import rules_from
    from training.rules_report import read_truth, replay, report

    settings = settings_of(ctx)
    try:
        threshold = Decision(flag_at)
    except ValueError as e:
        raise InvalidInputError(f"`--flag-at` must be verify, review or hold; got {flag_at!r}", field="flag_at") from e
    specs = feature_set_from(settings)
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=Gazetteer.build(settings.reference),
                            retention_margin=settings.features.retention)
    with open_log(settings) as log:
        replayed = replay(log.iter_orders(), online=online, rules=rules_from(settings, specs),
                          policy=policy_from(settings.policy))
    console = wide_console()
    if truth is None:
        flagged = sum(1 for r in replayed if decision_rank(r.decision) >= decision_rank(threshold))
        if as_json:
            typer.echo(json.dumps({"orders": len(replayed), "flag_at": threshold.value, "flagged": flagged}))
            return
        console.print(f"{len(replayed)} orders replayed; {flagged} at or above {threshold.value}")
        return
    result = report(replayed, read_truth(truth), flag_at=threshold)
    if as_json:
        typer.echo(json.dumps({
            "orders": len(replayed), "flag_at": threshold.value, "recall": result.recall,
            "false_positive_rate": result.false_positive_rate, "precision": result.precision,
            "patterns": [{"pattern": r.pattern, "abnormal": r.abnormal, "orders": r.orders, "flagged": r.flagged,
                          "rate": r.rate, "groups": r.groups, "groups_caught": r.groups_caught}
                         for r in result.rows]}))
        return
    table = Table("pattern", "abnormal", "orders", f">= {threshold.value}", "rate", "groups caught")
    for row in result.rows:
        table.add_row(row.pattern, "yes" if row.abnormal else "no", str(row.orders), str(row.flagged),
                      f"{row.rate:.1%}", f"{row.groups_caught}/{row.groups}" if row.groups else "")
    console.print(table)
    console.print(f"recall {result.recall:.1%}  false-positive rate {result.false_positive_rate:.2%}  "
                  f"precision {result.precision:.1%}")


def _rules_path(settings: Settings, rules: Path | None) -> Path:
    from scoring.rules import default_rules_path

    return rules or settings.scoring.rules_path or default_rules_path()


@app.command("tune")
@user_errors
def rules_tune(
    ctx: typer.Context,
    labels: Annotated[Path, typer.Option(help="Generic label file (order_key, verdict, labeled_at, reviewer_id, "
                                              "note): .csv, .xlsx or .jsonl.")],
    rules: Annotated[Path | None, typer.Option(help="Rule pack to tune (default: the configured pack).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the suggestions to this YAML file (for `rules apply`).")
                   ] = None,
    min_labels: Annotated[int, typer.Option(
        min=1, help="Decided labels (fraud or false positive) a rule needs before its points move.")] = 10,
) -> None:
    """Replay the order log through the pack point-in-time and report, per rule, the current verdicts on the
    orders it fired on: precision, lift over the base rate and a suggested points change.

    The suggestion rule is documented in training/rule_tuning.py. Nothing is changed here:
    `rules apply` writes a new pack from the suggestions file.
    """
    from features.online import OnlineFeatures
    from features.shop import feature_set_from
    from features.stores.memory import MemoryStore
    from orderguard.enrich import Gazetteer
    from scoring.policy import policy_from
    from scoring.rules import load_rules_file
    from training.rule_tuning import TuningPolicy, read_current_labels, tune, write_suggestions
    from training.rules_report import replay

    settings = settings_of(ctx)
    policy = TuningPolicy(min_decided=min_labels)
    current = read_current_labels(labels)  # bad labels fail before the replay
    specs = feature_set_from(settings)
    pack_path = _rules_path(settings, rules)
    pack = load_rules_file(pack_path, known_features=specs.names)
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=Gazetteer.build(settings.reference),
                            retention_margin=settings.features.retention)
    with open_log(settings) as log:
        replayed = replay(log.iter_orders(), online=online, rules=pack, policy=policy_from(settings.policy))
    report = tune({r.order_key: r.codes for r in replayed}, {k: v.verdict for k, v in current.items()}, pack,
                  policy=policy)
    if report.labelled_orders == 0:
        raise InvalidInputError(f"`--labels` must name orders of the order log; none of {len(current)} does "
                                f"({labels.name})", field="labels")
    table = Table("rule", "points", "hits", "fraud", "false pos.", "investigate", "precision", "lift", "suggested",
                  "why")
    for row, s in zip(report.rows, report.suggestions, strict=True):
        lift = row.lift(report.base_rate)
        table.add_row(row.code, f"{row.points:g}", str(row.hits), str(row.confirmed_fraud), str(row.false_positive),
                      str(row.needs_investigation), "-" if row.decided == 0 else f"{row.precision:.2f}",
                      "-" if lift != lift else f"{lift:.1f}",
                      f"{s.suggested_points:g}" if s.action.value != "keep" else "=", s.reason)
    console = wide_console()
    console.print(table)
    console.print(f"{report.labelled_orders} labelled orders replayed ({len(current) - report.labelled_orders} labels "
                  f"name no order of the log); base rate {report.base_rate:.1%} fraud among "
                  f"{report.decided_orders} decided labels", markup=False, highlight=False)
    if out is not None:
        write_suggestions(report, out, rules=str(pack_path), labels=str(labels))
        console.print(f"{len(report.changes)} change(s) suggested -> {out}; review it, then: orderguard rules apply "
                      f"{out} --rules {pack_path} --out NEW_PACK.yaml", markup=False, highlight=False)


@app.command("apply")
@user_errors
def rules_apply(
    ctx: typer.Context,
    suggestions: Annotated[Path, typer.Argument(help="Suggestions YAML written by `rules tune --out`.")],
    out: Annotated[Path, typer.Option(help="The new rule pack to write.")],
    rules: Annotated[Path | None, typer.Option(
        help="Rule pack the suggestions were made for (default: the configured pack).")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Let --out replace an existing file, the input pack included.")] = False,
) -> None:
    """Write a new rule pack with the suggested points; only `points` change, comments and order are kept.

    The result is loaded and checked against the feature set before it is written. The
    input pack is never changed unless --out names it and --force is given.
    """
    from features.shop import feature_set_from
    from orderguard.errors import ConfigError
    from training.rule_tuning import apply_suggestions, read_suggestions, write_pack

    settings = settings_of(ctx)
    pack_path = _rules_path(settings, rules)
    if out.exists() and not force:
        what = "the input pack" if out.resolve() == pack_path.resolve() else "an existing file"
        raise InvalidInputError(f"`--out` must not be {what} unless --force is given; got {str(out)!r}", field="out")
    chosen = read_suggestions(suggestions)
    try:
        text = pack_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"`{pack_path}` must be a readable rule pack; {e}", field="rules") from e
    new_text, applied = apply_suggestions(text, chosen, source=str(pack_path))
    write_pack(new_text, out, known_features=feature_set_from(settings).names)
    table = Table("rule", "points", "new points", "why")
    for s in applied:
        table.add_row(s.code, f"{s.points:g}", f"{s.suggested_points:g}", s.reason)
    console = wide_console()
    console.print(table)
    console.print(f"{len(applied)} rule(s) changed -> {out}", markup=False, highlight=False)


# -- rule packs as versioned data (``scoring.pack_store``) ---------------------------------------------------------


def _pack_store(settings: Settings, log: OrderLog) -> PackStore:
    """The pack store on the configured database, after the service's start-up rule took in the configured file
    (so a first publish from here becomes the version after it, as it would through the service)."""
    from datetime import UTC, datetime

    from features.shop import feature_set_from
    from scoring.pack_store import PackStore

    store = PackStore(log.engine, known_features=feature_set_from(settings).names)
    store.adopt_file(_rules_path(settings, None), now=datetime.now(UTC))
    return store


def _author() -> str:
    """Who a CLI change is recorded as: ``cli:<login>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _read_pack(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"`FILE` must be a readable UTF-8 rule pack; {e}", field="file") from e


def _say(published: Published, what: str) -> None:
    pack = published.pack
    if published.changed:
        typer.echo(f"{pack.label} {what} by {pack.author}; running services take it within their poll interval")
    else:
        typer.echo(f"unchanged: {pack.label} is {'live' if pack.role == 'live' else 'the shadow'} already")


@app.command("publish")
@user_errors
def rules_publish(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The rule pack (YAML) to make live.")],
    note: Annotated[str, typer.Option(help="Why: kept in the history.")] = "",
) -> None:
    """Validate a pack against the feature set and make it the live version (the same text again changes
    nothing)."""
    from datetime import UTC, datetime

    settings = settings_of(ctx)
    text = _read_pack(file)
    with open_log(settings) as log:
        published = _pack_store(settings, log).publish(text, author=_author(), now=datetime.now(UTC), note=note,
                                                        origin=str(file))
    _say(published, "published")


@app.command("history")
@user_errors
def rules_history(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per change (for scripts).")] = False,
    diffs: Annotated[bool, typer.Option("--diff", help="Print each change's diff under it.")] = False,
) -> None:
    """Every change of the live pack and the shadow candidate, newest first: version, hash, author, time, note."""
    settings = settings_of(ctx)
    with open_log(settings) as log:
        history = _pack_store(settings, log).history()
    if as_json:
        for p in history:
            typer.echo(json.dumps({
                "version": p.version, "label": p.label, "role": p.role, "content_hash": p.content_hash,
                "author": p.author, "source": p.source, "applied_at": p.applied_at.isoformat(), "note": p.note,
                "bands": [p.bands.verify, p.bands.review, p.bands.hold] if p.bands else None,
                "rollback_of": p.rollback_of, "diff": p.diff}, ensure_ascii=False))
        return
    console = wide_console()
    table = Table("version", "role", "hash", "author", "applied (UTC)", "source", "note", "changed lines")
    for p in history:
        changed = sum(1 for line in p.diff.splitlines()
                      if line[:1] in "+-" and not line.startswith(("+++", "---")))
        table.add_row(f"v{p.version}", p.role, p.content_hash[:8], p.author, f"{p.applied_at:%Y-%m-%d %H:%M:%S}",
                      p.source + (f" of v{p.rollback_of}" if p.rollback_of else ""), p.note, str(changed))
    console.print(table)
    if diffs:
        for p in history:
            if p.diff:
                console.print(f"--- v{p.version} ---", markup=False, highlight=False)
                console.print(p.diff.rstrip("\n"), markup=False, highlight=False)


@app.command("show")
@user_errors
def rules_show(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(min=1, help="The version to print.")],
    diff: Annotated[bool, typer.Option("--diff", help="The unified diff against the live pack before it, "
                                                      "instead of the text.")] = False,
) -> None:
    """Print a version's YAML text as applied (or its diff)."""
    settings = settings_of(ctx)
    with open_log(settings) as log:
        pack = _pack_store(settings, log).get(version)
    typer.echo((pack.diff if diff else pack.text).rstrip("\n"))


@app.command("rollback")
@user_errors
def rules_rollback(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(min=1, help="The version whose text serves again.")],
    note: Annotated[str, typer.Option(help="Why: kept in the history.")] = "",
) -> None:
    """Publish an earlier version's text again as a new version, recorded as a rollback to it."""
    from datetime import UTC, datetime

    settings = settings_of(ctx)
    with open_log(settings) as log:
        published = _pack_store(settings, log).rollback(version, author=_author(), now=datetime.now(UTC), note=note)
    _say(published, f"published (rollback to v{version})")


@app.command("shadow")
@user_errors
def rules_shadow(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="The candidate pack (YAML) to judge beside the live one.")
                    ] = None,
    bands: Annotated[str | None, typer.Option(help="The candidate's own bands: verify,review,hold (e.g. 35,55,80); "
                                                   "default the live bands.")] = None,
    off: Annotated[bool, typer.Option("--off", help="End the shadow run.")] = False,
    note: Annotated[str, typer.Option(help="Why: kept in the history.")] = "",
) -> None:
    """Judge every order also with a candidate pack (and bands), never changing an answer; compare the two with
    `orderguard policy shadow-report`."""
    from datetime import UTC, datetime

    from scoring.pack_store import parse_bands

    settings = settings_of(ctx)
    if off == (file is not None):
        raise InvalidInputError("`FILE` must be given, or --off, not both", field="file")
    chosen = parse_bands(bands, field="bands") if bands is not None else None
    with open_log(settings) as log:
        store = _pack_store(settings, log)
        if file is None:
            ended = store.clear_shadow(author=_author(), now=datetime.now(UTC), note=note)
            typer.echo(f"shadow run ended (v{ended.pack.version})" if ended else "no shadow run to end")
            return
        published = store.set_shadow(_read_pack(file), author=_author(), now=datetime.now(UTC), bands=chosen,
                                     note=note, origin=str(file))
    _say(published, "runs as the shadow")
