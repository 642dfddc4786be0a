"""What the shop-requested rules change: the rule pack at git HEAD against the working one, on simulated shops.

Three simulated shops (``--days`` each, default 28 around the 11.11 promotion) are written as
channel files and imported into an order log (``simulate.shop.ingest_shop``, the production
path). Each is replayed once the way ``orderguard rules-report`` replays (every order at its
creation and at its refund claim, point in time, rules only, ``scoring.judge``); both packs
judge the same feature vectors. Thresholds were chosen on the first two seeds; the third is
held out and marked.

Printed, per shop and over all three:

* per pattern (abuse and honest look-alikes): the share of orders at ``review`` or above with
  the OLD pack and the NEW one;
* overall recall, false-positive rate (normal and look-alike orders) and precision;
* per rule added or changed: how many abuse and how many honest orders it fired on (any moment).

Run: ``python -m bench.rules_effect [--days 28] [--seeds 21 22 23]`` (the last seed is the held-out
one). Results: ``bench/results/rules_effect.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import RESULTS_DIR, write_results
from features.online import OnlineFeatures
from features.settings import Settings
from features.shop import feature_set_from
from features.stores.memory import MemoryStore
from orderguard.enrich import Gazetteer
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import Order
from scoring.judge import judge
from scoring.policy import Decision, Policy, decision_rank, policy_from
from scoring.rules import RulePack, default_rules_path, load_rules_file, load_rules_text
from simulate.config import SimConfig
from simulate.shop import ingest_shop
from training.rules_report import PatternRow, Replayed, RulesReport, decision_moments, report

RESULTS = RESULTS_DIR / "rules_effect.json"
ROOT = Path(__file__).resolve().parent.parent
#: Rules this change adds or alters: their firing counts are reported.
NEW_RULES = ("ACCOUNT_BURST_10M", "RETURNS_7D", "RETURN_SPREE_7D", "DAMAGED_ON_DELIVERED_REPEAT",
             "ID_CARD_ACROSS_SHOPS_3D", "NEW_DEVICE_BIG_TICKET", "PHONE_FAR_FROM_WAREHOUSE_NEW_ACCOUNT",
             "DUPLICATE_CART_30M", "REPEATED_CART_30M", "URGENT_NOTE", "NEW_ADDRESS_FOR_ACCOUNT",
             "IP_RANGE_STOCK_HOLDING_24H")
_FLAG_AT = Decision.REVIEW
#: Periods end three days after 11.11, so the promotion's claims and returns fall inside them.
_PROMO_END = date(2024, 11, 14)


@dataclass(frozen=True, slots=True)
class ShopResult:
    """One shop's replay under both packs."""

    seed: int
    held_out: bool
    orders: int
    old: RulesReport
    new: RulesReport
    fired: dict[str, Counter[bool]]  # rule code -> {is_abnormal: orders it fired on}, NEW pack
    fired_old: dict[str, Counter[bool]]  # the same with the OLD pack (0 for rules it does not have)
    honest_by_pattern: dict[str, Counter[str]]  # rule code -> honest pattern -> orders it fired on, NEW pack


def old_pack(known: Sequence[str]) -> RulePack:
    """The default pack as committed at git HEAD."""
    text = subprocess.run(["git", "show", "HEAD:scoring/default_rules.yaml"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    return load_rules_text(text, source="HEAD:scoring/default_rules.yaml", known_features=known)


def replay_both(orders: Sequence[Order], *, online: OnlineFeatures, packs: Sequence[RulePack],
                policy: Policy) -> tuple[list[list[Replayed]], list[dict[str, set[str]]]]:
    """``training.rules_report.replay`` for several packs over one feature pass: per pack the strongest
    moment of each order, and every rule code that fired at any moment."""
    moments = decision_moments(orders)
    best: list[dict[str, Replayed]] = [{} for _ in packs]
    fired: list[dict[str, set[str]]] = [{} for _ in packs]
    applied: set[str] = set()
    for at, key, _, order in moments:
        if key not in applied:
            online.apply(order)
            applied.add(key)
        vector = online.lookup(order, as_of=at)
        for i, pack in enumerate(packs):
            j = judge(order, vector, rules=pack, policy=policy, at=at)
            codes = tuple(h.code for h in j.evaluation.hits)
            fired[i].setdefault(key, set()).update(codes)
            previous = best[i].get(key)
            if previous is None or j.score > previous.score:
                best[i][key] = Replayed(key, j.score, j.decision, codes)
    return [sorted(b.values(), key=lambda r: r.order_key) for b in best], fired


def run_shop(seed: int, *, days: int, held_out: bool, settings: Settings, packs: tuple[RulePack, RulePack],
             gazetteer: Gazetteer, console: Console) -> ShopResult:
    """Simulate, import and replay one shop."""
    config = SimConfig.for_period(seed=seed, days=days, start=_PROMO_END - timedelta(days=days))
    with tempfile.TemporaryDirectory(prefix="rules-effect-") as tmp:
        started = time.perf_counter()
        shop = ingest_shop(config, Path(tmp), secret=b"bench-rules-effect")
        log = OrderLog.open(shop.database_url)
        try:
            orders = list(log.iter_orders())
        finally:
            log.close()
        console.print(f"seed {seed}: {len(orders)} orders imported in {time.perf_counter() - started:.0f} s")
    truth = {key: (entry.pattern, entry.is_abnormal, entry.group_id) for key, entry in shop.truth.items()}
    specs = feature_set_from(settings)
    online = OnlineFeatures(MemoryStore(), specs, gazetteer=gazetteer, retention_margin=settings.features.retention)
    started = time.perf_counter()
    (old, new), (fired_old_pack, fired_new) = replay_both(orders, online=online, packs=packs,
                                                          policy=policy_from(settings.policy))
    console.print(f"seed {seed}: replayed in {time.perf_counter() - started:.0f} s")

    def count(by_order: dict[str, set[str]]) -> dict[str, Counter[bool]]:
        fired: dict[str, Counter[bool]] = {code: Counter() for code in NEW_RULES}
        for key, codes in by_order.items():
            if key in truth:
                for code in codes & set(NEW_RULES):
                    fired[code][truth[key][1]] += 1
        return fired

    honest: dict[str, Counter[str]] = {code: Counter() for code in NEW_RULES}
    for key, codes in fired_new.items():
        if key in truth and not truth[key][1]:
            for code in codes & set(NEW_RULES):
                honest[code][truth[key][0]] += 1
    return ShopResult(seed, held_out, len(orders), report(old, truth, flag_at=_FLAG_AT),
                      report(new, truth, flag_at=_FLAG_AT), count(fired_new), count(fired_old_pack), honest)


def _merge(reports: Sequence[RulesReport]) -> RulesReport:
    rows: dict[str, list[int]] = {}
    abnormal: dict[str, bool] = {}
    for r in reports:
        for row in r.rows:
            acc = rows.setdefault(row.pattern, [0, 0, 0, 0])
            for i, v in enumerate((row.orders, row.flagged, row.groups, row.groups_caught)):
                acc[i] += v
            abnormal[row.pattern] = row.abnormal
    merged = tuple(PatternRow(p, abnormal[p], *v) for p, v in
                   sorted(rows.items(), key=lambda kv: (not abnormal[kv[0]], kv[0])))
    return RulesReport(flag_at=reports[0].flag_at, rows=merged)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _summary(r: RulesReport) -> dict[str, float]:
    return {"recall": round(r.recall, 4), "false_positive_rate": round(r.false_positive_rate, 5),
            "precision": round(r.precision, 4)}


def _pattern_table(title: str, old: RulesReport, new: RulesReport) -> Table:
    table = Table(title=title)
    for column in ("pattern", "kind", "orders", "old flagged", "new flagged"):
        table.add_column(column, justify="left" if column in ("pattern", "kind") else "right")
    before = {row.pattern: row for row in old.rows}
    for row in new.rows:
        prior = before.get(row.pattern)
        table.add_row(row.pattern, "abuse" if row.abnormal else "honest", str(row.orders),
                      _pct(prior.rate) if prior else "-", _pct(row.rate))
    for name, r_old, r_new in (("recall", old.recall, new.recall), ("false-positive rate",
                                old.false_positive_rate, new.false_positive_rate),
                               ("precision", old.precision, new.precision)):
        table.add_row(f"[b]{name}[/b]", "", "", _pct(r_old) if name != "false-positive rate" else f"{100 * r_old:.2f}%",
                      _pct(r_new) if name != "false-positive rate" else f"{100 * r_new:.2f}%")
    return table


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns what it writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23],
                        help="simulator seeds; the last one is held out")
    args = parser.parse_args(argv)
    console = Console()
    started = time.perf_counter()
    settings = Settings()
    specs = feature_set_from(settings)
    packs = (old_pack(specs.names), load_rules_file(default_rules_path(), known_features=specs.names))
    gazetteer = Gazetteer.build()
    shops = [run_shop(seed, days=args.days, held_out=i == len(args.seeds) - 1, settings=settings, packs=packs,
                      gazetteer=gazetteer, console=console) for i, seed in enumerate(args.seeds)]
    for shop in shops:
        label = f"seed {shop.seed} ({'HELD OUT' if shop.held_out else 'tuning'}), {shop.orders} orders"
        console.print(_pattern_table(f"flagged at >= review: {label}", shop.old, shop.new))
    tuning = [s for s in shops if not s.held_out]
    held = [s for s in shops if s.held_out]
    all_old, all_new = _merge([s.old for s in shops]), _merge([s.new for s in shops])
    console.print(_pattern_table("flagged at >= review: all shops", all_old, all_new))
    rules = Table(title="orders each added / changed rule fired on (any moment), per seed: abuse / honest "
                        "(OLD pack -> NEW pack)")
    rules.add_column("rule")
    for shop in shops:
        rules.add_column(f"seed {shop.seed}{' (held out)' if shop.held_out else ''}", justify="right")
    rules.add_column("honest firings by pattern (all seeds)")
    for code in NEW_RULES:
        by_pattern = sum((s.honest_by_pattern[code] for s in shops), Counter[str]())
        rules.add_row(code, *(f"{s.fired_old[code][True]}/{s.fired_old[code][False]} -> "
                              f"{s.fired[code][True]}/{s.fired[code][False]}" for s in shops),
                      ", ".join(f"{p} {n}" for p, n in by_pattern.most_common(4)))
    console.print(rules)
    result: dict[str, Any] = {
        "days": args.days,
        "flag_at": _FLAG_AT.value,
        "shops": [{
            "seed": s.seed, "held_out": s.held_out, "orders": s.orders,
            "old": _summary(s.old), "new": _summary(s.new),
            "patterns": [{"pattern": row.pattern, "abnormal": row.abnormal, "orders": row.orders,
                          "old_flagged": next((o.flagged for o in s.old.rows if o.pattern == row.pattern), 0),
                          "new_flagged": row.flagged} for row in s.new.rows],
            "rules_fired": {code: {"abuse": s.fired[code][True], "honest": s.fired[code][False],
                                   "old_abuse": s.fired_old[code][True], "old_honest": s.fired_old[code][False],
                                   "honest_by_pattern": dict(s.honest_by_pattern[code])}
                            for code in NEW_RULES},
        } for s in shops],
        "tuning": {"old": _summary(_merge([s.old for s in tuning])), "new": _summary(_merge([s.new for s in tuning]))}
        if tuning else None,
        "held_out": {"old": _summary(_merge([s.old for s in held])), "new": _summary(_merge([s.new for s in held]))}
        if held else None,
        "all": {"old": _summary(all_old), "new": _summary(all_new)},
        "flagged_rank": decision_rank(_FLAG_AT),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results(RESULTS, result, console)
    return result


if __name__ == "__main__":
    main()
