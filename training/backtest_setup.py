"""The backtest wired from settings: the live policy and model, a candidate from a pack file and/or bands.

What the command line and the report share, so the report's figures are the backtest's
by construction: the live policy is exactly what the service builds (``rules_from``,
``policy_from``, the registry's champion with its blend weights), the candidate differs
only in what was given.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from features.settings import Settings
from features.shop import feature_set_from
from features.specs import FeatureSet
from orderguard.enrich import Gazetteer
from orderguard.errors import InvalidInputError
from orderguard.ingest.orderlog import OrderLog
from orderguard.labels import LabelLog
from scoring.pack_store import parse_bands
from scoring.policy import policy_from
from scoring.registry import Registry
from scoring.rules import RulePack, load_rules_file, rules_from
from training.backtest import Backtest, PolicyUnderTest, run_backtest
from training.backtest_data import LiveModel, Period, default_period, load_history, newest_order_time
from training.backtest_served import check_served


def live_policy(settings: Settings, feature_set: FeatureSet, engine: Engine | None = None) -> PolicyUnderTest:
    """What serves: the pack store's live version when the order log holds one (a pack published through the
    API or the CLI outlives the configured file), else the configured pack; the configured bands and campaigns."""
    policy = policy_from(settings.policy)
    stored = _stored_live(engine, feature_set) if engine is not None else None
    if stored is not None:
        return PolicyUnderTest("live", stored[0], policy, rules_version=stored[1])
    return PolicyUnderTest("live", rules_from(settings, feature_set), policy)


def _stored_live(engine: Engine, feature_set: FeatureSet) -> tuple[RulePack, str] | None:
    """The live pack of the order log's pack store and its label, if it holds one."""
    try:
        from scoring.pack_store import PackStore
    except ImportError:  # an installation without versioned packs: the file is what serves
        return None
    store = PackStore(engine, known_features=feature_set.names)
    try:
        live = store.state().live
    except SQLAlchemyError:  # an order log not migrated to versioned packs yet
        return None
    if live is None:
        return None
    return store.compile(live.text, source=f"rule pack {live.label}"), live.label


def candidate_policy(live: PolicyUnderTest, feature_set: FeatureSet, *, pack: Path | None = None,
                     bands: str | None = None) -> PolicyUnderTest | None:
    """The live policy with another pack and/or other bands (campaign shifts and blend kept); None if neither."""
    if pack is None and bands is None:
        return None
    if pack is not None and not pack.is_file():
        raise InvalidInputError.must("pack", "a readable YAML rule pack", str(pack))
    rules = load_rules_file(pack, known_features=feature_set.names) if pack is not None else live.rules
    policy = replace(live.policy, bands=parse_bands(bands)) if bands is not None else live.policy
    return PolicyUnderTest("candidate", rules, policy)


def live_model(settings: Settings) -> LiveModel | None:
    """The registry's champion with its blend weights, as serving loads it; None before the first promotion."""
    registry = Registry.from_settings(settings)
    ref = registry.champion()
    if ref is None:
        return None
    return LiveModel(ref.label, registry.load_booster(ref), registry.load_blend(ref))


def period_for(log: OrderLog, *, first: date | None, last: date | None) -> Period:
    """The period asked for, by default the newest 90 days of the order log."""
    if first is not None and last is not None:
        return Period.of_days(first, last)
    newest = newest_order_time(log)
    if newest is None:
        raise InvalidInputError("`orders` must not be empty: ingest orders before a backtest", field="orders")
    return default_period(newest, first=first, last=last)


def backtest_log(settings: Settings, log: OrderLog, *, period: Period, pack: Path | None = None,
                 bands: str | None = None, check: bool = True) -> Backtest:
    """Backtest the live policy (and a candidate) on the log's orders of ``period``, checked against serving."""
    feature_set = feature_set_from(settings)
    live = live_policy(settings, feature_set, log.engine)
    candidate = candidate_policy(live, feature_set, pack=pack, bands=bands)  # bad input fails before the slow part
    history = load_history(log, LabelLog(log.engine), feature_set, period=period, model=live_model(settings),
                           memory_limit=settings.training.features_memory_limit,
                           gazetteer=Gazetteer.build(settings.reference))
    result = run_backtest(history, live, candidate)
    if not check:
        return result
    served = check_served(log.engine, history, result.live.replay, feature_set_hash=feature_set.hash(),
                          rules_version=live.rules_version, policy=live)
    return replace(result, served=served)
