"""Build the scoring engine from settings: store, feature set, rules, policy.

Separate from ``serving.app`` so benchmarks and tests can build the exact engine the
service runs without an HTTP server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from features.describe import FeatureDescriber
from features.online import OnlineFeatures
from features.settings import Settings
from features.shop import feature_set_from
from features.specs import FeatureSet
from features.stores.base import OnlineStore
from orderguard.clock import Clock
from orderguard.enrich import Gazetteer
from orderguard.errors import ServiceUnavailableError
from orderguard.schema import Order
from scoring.policy import policy_from
from scoring.rules import rules_from
from scoring.scorer import Model, Scorer


@dataclass(slots=True)
class Engine:
    """Everything scoring needs, opened once per process."""

    store: OnlineStore
    online: OnlineFeatures
    scorer: Scorer
    describer: FeatureDescriber  # the feature set's values in words (pages), built once

    def apply_orders(self, orders: Sequence[Order]) -> bool:
        """Bring the online features up to date with newly ingested order states.

        Returns ``False`` when the store is unavailable: the orders then wait in the
        engine's backlog (``OnlineFeatures.catch_up``) and count once it answers again.
        """
        applied = True
        for order in orders:
            try:
                self.online.apply(order)
            except ServiceUnavailableError:  # a failed store fails fast (its breaker) for the rest
                applied = False
        return applied

    def settle(self) -> bool:
        """Apply what waits in the backlog, if anything; ``True`` when nothing waits any more."""
        if self.online.pending:
            try:
                self.online.catch_up()
            except ServiceUnavailableError:
                return False
        return True

    def close(self) -> None:
        self.store.close()


def build_engine(settings: Settings, *, clock: Clock, model: Model | None = None) -> Engine:
    """Open the online store and wire the scorer (rules-only when ``model`` is None)."""
    specs = feature_set_from(settings)
    rules = rules_from(settings, specs)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = settings.features.store.open(settings.data_dir)
    online = OnlineFeatures(store, specs, gazetteer=Gazetteer.build(settings.reference),
                            retention_margin=settings.features.retention)
    scorer = Scorer(online=online, rules=rules, policy=policy_from(settings.policy), clock=clock,
                    settings_hash=settings.settings_hash(), model=model, max_reasons=settings.scoring.max_reasons)
    return Engine(store=store, online=online, scorer=scorer, describer=FeatureDescriber(specs))


def longest_window(specs: FeatureSet) -> timedelta:
    """How far back features look: the longest window plus its delay."""
    return max((timedelta(microseconds=s.window.us + (s.offset.us if s.offset else 0)) for s in specs.specs),
               default=timedelta(0))
