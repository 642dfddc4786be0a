"""The served rule pack: taken from the pack store at start-up, swapped whenever a new version appears.

Like the champion model (``serving.champion``), the pack is swapped without a failed
request: the slow part (reading the store, parsing and validating the YAML) runs off the
event loop, then the scorer's :class:`~scoring.scorer.ServedRules` is replaced in one
attribute assignment. A request reads it once, so it is judged wholly by the old or
wholly by the new version, and its score record names which.

Two ways a new version arrives: the process that received the publish (``POST
/v1/rules``) installs it at once; every process (several workers may share one
database, and the CLI publishes straight into it) polls the store's newest version
number every ``scoring.rules_poll_s`` seconds, one indexed ``max()`` query, and
reloads only when it moved. Versions only go forward: a slow poll never re-installs an
older state over a newer one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from orderguard.clock import Clock
from orderguard.errors import OrderGuardError, ServiceUnavailableError
from scoring.pack_store import PackState, PackStore, StoredPack
from scoring.scorer import Scorer, ServedRules, ShadowCandidate

logger = logging.getLogger("orderguard.serving")


@dataclass(frozen=True, slots=True)
class RulesStatus:
    """What this process judges with: the live pack, the shadow candidate, the newest version it has seen,
    when it last swapped, and why the newest could not be served if so."""

    live: StoredPack
    shadow: StoredPack | None
    seen: int
    loaded_at: datetime
    problem: str | None = None


@dataclass(slots=True)
class RuleSlot:
    """Holds the scorer's rule pack and swaps it for the store's newest; the only writer of ``Scorer.served``."""

    store: PackStore
    scorer: Scorer
    clock: Clock
    shadows: bool = True  # back-scoring judges with the live pack alone
    status: RulesStatus | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def served(self, state: PackState) -> ServedRules:
        """Compile the state's live pack and shadow candidate (blocking: YAML parse and validation)."""
        if state.live is None:
            raise ServiceUnavailableError("the rule pack store holds no live pack", field="rules")
        rules = self.store.compile(state.live.text, source=f"rule pack {state.live.label}")
        candidate = None
        if self.shadows and state.shadow is not None:
            shadow = state.shadow
            policy = self.scorer.policy if shadow.bands is None else replace(self.scorer.policy, bands=shadow.bands)
            candidate = ShadowCandidate(self.store.compile(shadow.text, source=f"rule pack {shadow.label}"),
                                        shadow.label, policy)
        return ServedRules(rules, state.live.label, candidate)

    def install(self, state: PackState, served: ServedRules) -> RulesStatus:
        """Make ``served`` the scorer's pack unless this process has seen a newer state already."""
        if self.status is not None and state.latest <= self.status.seen:
            return self.status
        assert state.live is not None  # served() refused a state without one
        self.scorer.served = served  # the one assignment requests observe
        self.scorer.rules = served.rules  # for readers of the pack's rules (the desk's patterns)
        self.status = RulesStatus(state.live, state.shadow if self.shadows else None, state.latest, self.clock.now())
        return self.status

    def load_at_start(self, path: Path) -> RulesStatus:
        """Start-up (blocking): take in the configured file by the store's rule (``PackStore.adopt_file``),
        then serve the store's live pack and shadow. A stored pack that no longer loads stops the start."""
        self.store.adopt_file(path, now=self.clock.now())
        state = self.store.state()
        return self.install(state, self.served(state))

    async def refresh(self) -> RulesStatus | None:
        """Install the store's newest state if its version moved past the one served (off the loop, then one
        assignment on it). A version that does not load is logged and skipped; the served pack stays."""
        latest = await asyncio.to_thread(self.store.latest_version)
        if self.status is not None and latest <= self.status.seen:
            return self.status
        async with self._lock:
            state = await asyncio.to_thread(self.store.state)
            try:
                served = await asyncio.to_thread(self.served, state)
            except OrderGuardError as e:
                logger.error("rule pack v%d not served, keeping %s: %s", state.latest,
                             self.status.live.label if self.status else "none", e.message)
                if self.status is not None:
                    self.status = replace(self.status, seen=state.latest, problem=e.message)
                return self.status
            before = self.status
            after = self.install(state, served)
            if before is None or before.live.label != after.live.label:
                logger.info("rule pack %s now serves", after.live.label)
            return after


async def watch_rules(slot: RuleSlot, every_s: float) -> None:
    """Poll the store every ``every_s`` seconds for the service's lifetime (a task of the lifespan); a database
    that does not answer is skipped until it does."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await slot.refresh()
        except ServiceUnavailableError as e:
            logger.error("rule packs not checked, the order-log database is unavailable: %s", e.message)
        except Exception:  # the watcher outlives any one failed look; the next one retries
            logger.exception("rule packs not checked")
