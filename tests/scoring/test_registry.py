"""The MLflow registry wrapper on a real local tracking store (SQLite file + artifact folder)."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.settings import Settings
from orderguard.errors import NotFoundError
from scoring.registry import Registry


def _booster(seed: int) -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((300, 3)), columns=["count_a", "count_b", "ratio_c"])
    y = (x["count_a"] + 0.2 * rng.random(300) > 0.6).astype(int)
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": seed}, lgb.Dataset(x, y), 15)
    return booster, x


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("mlflow")
    return Registry.from_settings(Settings(data_dir=root))


def test_default_store_is_a_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.tracking_uri == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"


def test_log_register_promote_and_load_round_trip(registry: Registry) -> None:
    assert registry.champion() is None
    booster, x = _booster(1)
    with registry.start_run(run_name="candidate", tags={"git_sha": "abc"}) as run:
        run.log_params({"num_leaves": 31})
        run.log_metrics({"blend_pr_auc": 0.7, "undefined": float("nan")})
        source = run.log_model(booster, input_example=x)
    ref = registry.register(run.run_id, source=source, tags={"feature_set_hash": "f00"})
    info = registry.run(run.run_id)
    assert info.metrics == {"blend_pr_auc": 0.7} and info.status == "FINISHED"
    assert info.params["num_leaves"] == "31" and info.tags["git_sha"] == "abc"
    assert registry.champion() is None  # registered is not promoted
    registry.set_champion(ref)
    champion = registry.champion()
    assert champion is not None and champion.version == ref.version and champion.tags["feature_set_hash"] == "f00"
    loaded = registry.load_booster(champion)
    assert loaded.feature_name() == ["count_a", "count_b", "ratio_c"]
    np.testing.assert_allclose(loaded.predict(x.to_numpy()), booster.predict(x.to_numpy()))


def test_alias_moves_to_the_newer_version(registry: Registry) -> None:
    refs = []
    for seed in (2, 3):
        booster, x = _booster(seed)
        with registry.start_run(run_name=f"seed{seed}") as run:
            source = run.log_model(booster, input_example=x)
        refs.append(registry.register(run.run_id, source=source))
    registry.set_champion(refs[0])
    registry.set_champion(refs[1])
    champion = registry.champion()
    assert champion is not None and champion.version == refs[1].version
    assert int(refs[1].version) > int(refs[0].version)


def test_a_run_that_raises_is_marked_failed(registry: Registry) -> None:
    with pytest.raises(RuntimeError), registry.start_run(run_name="broken") as run:
        raise RuntimeError("boom")
    assert registry.run(run.run_id).status == "FAILED"


def test_unknown_version_names_the_field(registry: Registry) -> None:
    with pytest.raises(NotFoundError) as info:
        registry.version("999")
    assert info.value.field == "version"
