"""The served model: the registry's ``champion``, loaded at start-up and swapped on reload.

Serving never imports training; it meets it at the registered model (``scoring.registry``).
A champion is accepted only if every feature it was trained on is one the online engine
serves; otherwise the service keeps what it has (rules-only at start-up) and says why,
instead of scoring with silently missing inputs.

Reload without a failed request: the slow part (download + parse) runs off the event
loop, then the new model replaces the scorer's in one attribute assignment on the loop.
Score handlers run on the loop and read the model once per request, so each request is
scored wholly by the old or wholly by the new model, and none waits for the download.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from orderguard.clock import Clock
from orderguard.errors import IncompatibleModelError, OrderGuardError
from scoring.blend_weights import BlendWeights
from scoring.registry import ModelRef
from scoring.scorer import Model, Scorer

if TYPE_CHECKING:
    import lightgbm as lgb

class ModelFactory(Protocol):
    """Builds the served model from a loaded booster, its registry label ("name/version") and the blend
    weights learned with it (``scoring.blend_weights``; None for a model trained before they were)."""

    def __call__(self, booster: lgb.Booster, version: str, blend: BlendWeights | None = None) -> Model: ...


class ChampionSource(Protocol):
    """Where the champion comes from: the model registry (``scoring.registry.Registry``) in
    service; a fixed booster file in benchmarks, through the same slot."""

    def champion(self) -> ModelRef | None: ...

    def load_booster(self, ref: ModelRef) -> lgb.Booster: ...

    def load_blend(self, ref: ModelRef) -> BlendWeights | None: ...


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """What the service scores with, for responses, ``/v1/model`` and logs."""

    version: str | None
    rules_only: bool
    note: str
    loaded_at: datetime | None = None


def check_features(ref: ModelRef, needed: list[str], served: tuple[str, ...]) -> None:
    """Refuse a model that needs features the online engine does not compute.

    >>> check_features(ModelRef("m", "2", "r", "s"), ["a", "b"], ("a", "b", "c"))
    >>> check_features(ModelRef("m", "2", "r", "s"), ["a", "z"], ("a", "b"))
    Traceback (most recent call last):
    ...
    orderguard.errors.IncompatibleModelError: `champion` must use only served features; m/2 needs ['z']
    """
    missing = sorted(set(needed) - set(served))
    if missing:
        raise IncompatibleModelError(f"`champion` must use only served features; {ref.label} needs {missing[:10]}",
                          field="champion")


@dataclass(slots=True)
class ChampionSlot:
    """Holds the scorer's model and swaps it for the registry's champion on request.

    The only writer of ``Scorer.model`` in a running service: start-up and reload both go
    through :meth:`install`, so the status always names the model that serves.
    """

    registry: ChampionSource
    scorer: Scorer
    make_model: ModelFactory
    clock: Clock
    status: ModelStatus = ModelStatus(None, True, "no champion loaded yet")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fetch(self) -> tuple[ModelRef | None, Model | None]:
        """Load the current champion (blocking: registry query, download, parse)."""
        ref = self.registry.champion()
        if ref is None:
            return None, None
        if self.status.version == ref.label and self.scorer.model is not None:
            return ref, self.scorer.model
        booster = self.registry.load_booster(ref)
        check_features(ref, list(booster.feature_name()), self.scorer.online.names)
        return ref, self.make_model(booster, ref.label, self.registry.load_blend(ref))

    def install(self, ref: ModelRef | None, model: Model | None) -> ModelStatus:
        """Make ``model`` the served one (None: rules-only) and record the status."""
        if model is not None and model is self.scorer.model:
            return self.status  # the champion did not change: nothing was loaded
        self.scorer.model = model
        if ref is None or model is None:
            self.status = ModelStatus(None, True, "no champion registered yet: scoring with the rules only")
        else:
            self.status = ModelStatus(ref.label, False, f"champion {ref.label} (run {ref.run_id})",
                                      self.clock.now())
        return self.status

    def load_at_start(self) -> ModelStatus:
        """Start-up: the champion if one loads, else rules-only with the reason in the status."""
        try:
            return self.install(*self.fetch())
        except OrderGuardError as e:
            self.install(None, None)
            self.status = ModelStatus(None, True, f"champion not loaded, scoring with the rules only: {e.message}")
            return self.status

    async def reload(self) -> tuple[ModelStatus, ModelStatus]:
        """Fetch the champion off the event loop, then swap it in; returns (before, after).

        A champion that fails to load leaves the served model unchanged and raises.
        """
        async with self._lock:
            before = self.status
            ref, model = await asyncio.to_thread(self.fetch)
            return before, self.install(ref, model)
