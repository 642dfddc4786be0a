"""The served model: the registry's champion at start-up, hot reload without failed requests, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from features.shop import feature_set_from
from scoring.blend_weights import BlendWeights
from scoring.registry import ModelRef, Registry
from tests.factories import api_client
from tests.serving.test_score_api import site_order

DEVICE_5M = "count_orders_by_device_5m"


def _booster(names: list[str], *, seed: int) -> tuple[lgb.Booster, pd.DataFrame]:
    """A small model on the served feature names that learns "more orders from one device is riskier"."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((400, len(names))), columns=names)
    frame[DEVICE_5M] = rng.integers(1, 9, 400).astype(float)
    target = (frame[DEVICE_5M] + rng.random(400) * 2 > 6).astype(int)
    params = {"objective": "binary", "verbose": -1, "seed": seed, "num_threads": 1, "min_data_in_leaf": 5}
    return lgb.train(params, lgb.Dataset(frame, target), 20), frame


def _register(registry: Registry, names: list[str], *, seed: int, champion: bool = True) -> ModelRef:
    booster, frame = _booster(names, seed=seed)
    with registry.start_run(run_name=f"test {seed}") as run:
        source = run.log_model(booster, input_example=frame)
    ref = registry.register(run.run_id, source=source)
    if champion:
        registry.set_champion(ref)
    return ref


@pytest.fixture
def served(settings: Settings) -> list[str]:
    return list(feature_set_from(settings).names)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as c:
        yield c


def test_champion_is_loaded_at_start_and_scores_with_model_reasons(settings: Settings, served: list[str]) -> None:
    ref = _register(Registry.from_settings(settings), served, seed=1)
    with api_client(settings) as client:
        assert client.get("/v1/model").json()["model_version"] == ref.label
        health = client.get("/healthz").json()
        assert health["rules_only"] is False and health["model_version"] == ref.label
        bodies = [client.post("/v1/score", json=site_order(str(i), minutes=i)).json() for i in range(6)]
    last = bodies[-1]
    assert last["rules_only"] is False and last["model_version"] == ref.label
    assert any(r["source"] == "model" for r in last["reasons"])
    assert last["score"] > bodies[0]["score"]


def test_reload_picks_up_a_new_champion_without_a_failed_request(settings: Settings, client: TestClient,
                                                                  served: list[str]) -> None:
    assert client.get("/v1/model").json()["rules_only"] is True
    registry = Registry.from_settings(settings)
    ref = _register(registry, served, seed=2)

    def score(i: int) -> int:
        status: int = client.post("/v1/score", json=site_order(f"r{i}", minutes=i / 10, device=f"d{i % 7}")).status_code
        return status

    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = [pool.submit(score, i) for i in range(40)]
        reload = pool.submit(client.post, "/v1/admin/reload-model")
        statuses = [f.result() for f in scores]
        reloaded = reload.result()
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["changed"] is True and reloaded.json()["current"]["model_version"] == ref.label
    assert statuses == [200] * 40
    after = client.post("/v1/score", json=site_order("after", minutes=5)).json()
    assert after["model_version"] == ref.label and after["rules_only"] is False
    again = client.post("/v1/admin/reload-model").json()
    assert again["changed"] is False
    assert again["current"]["loaded_at"] == reloaded.json()["current"]["loaded_at"]


def test_a_champion_needing_unserved_features_is_refused_and_the_old_model_stays(
        settings: Settings, client: TestClient, served: list[str]) -> None:
    registry = Registry.from_settings(settings)
    good = _register(registry, served, seed=3)
    assert client.post("/v1/admin/reload-model").status_code == 200
    _register(registry, [*served[:5], "count_orders_by_moon_phase_7d"], seed=4)
    refused = client.post("/v1/admin/reload-model")
    assert refused.status_code == 409
    assert refused.json()["field"] == "champion" and "count_orders_by_moon_phase_7d" in refused.json()["message"]
    assert client.get("/v1/model").json()["model_version"] == good.label


class _FixedSource:
    """A champion source without a registry: one booster, named like a registered version."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self.loads = 0

    def champion(self) -> ModelRef | None:
        return ModelRef("fixed", "7", run_id="none", source="memory")

    def load_booster(self, ref: ModelRef) -> lgb.Booster:
        self.loads += 1
        return self.booster

    def load_blend(self, ref: ModelRef) -> BlendWeights | None:
        return None


def test_a_champion_source_passed_to_create_app_is_installed_by_the_slot(settings: Settings,
                                                                         served: list[str]) -> None:
    source = _FixedSource(_booster(served, seed=3)[0])
    with api_client(settings, champion_source=source) as client:
        status = client.get("/v1/model").json()
        body = client.post("/v1/score", json=site_order("fixed-1", minutes=1)).json()
        again = client.post("/v1/admin/reload-model").json()
    assert status["model_version"] == "fixed/7" and status["rules_only"] is False
    assert body["model_version"] == "fixed/7"
    assert again["changed"] is False and source.loads == 1  # an unchanged champion is not loaded twice
