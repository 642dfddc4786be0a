"""MLflow, behind one small interface: runs, the model registry and the ``champion`` alias.

This is the only module that imports ``mlflow``. Training logs runs and registers
candidates here; serving loads the champion here. It lives in the kernel because
``training`` and ``serving`` never import each other: they meet at the registered model,
and both need to reach it.

Everything goes through an explicit ``MlflowClient`` bound to the configured tracking
URI (a local SQLite file by default, any server URI by setting) instead of mlflow's
process-global "current run" and "current tracking URI", so two registries (tests,
a benchmark beside a service) never interfere and nothing depends on call order.

A model is logged as an MLflow LightGBM model (``mlflow.lightgbm`` flavour, with a
signature) under the run's ``model`` artifact path, then registered as a new version of
``settings.training.model_name``. Promotion moves the alias ``champion``; stages are
never used.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.settings import Settings
from orderguard.errors import NotFoundError, ServiceUnavailableError
from scoring.blend_weights import BLEND_FILE, BlendWeights

if TYPE_CHECKING:
    import lightgbm as lgb
    import pandas as pd
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

CHAMPION = "champion"
MODEL_PATH = "model"
#: Keys longer than MLflow's limit are cut; values too.
_PARAM_LIMIT = 6000


def git_sha() -> str:
    """The commit of the running code, for the ``git_sha`` run tag; ``unknown`` outside a git checkout."""
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One registered model version.

    Attributes:
        name: registered model name.
        version: its version number, as MLflow gives it ("1", "2", ...).
        run_id: the training run that produced it.
        source: where its artifacts live.
        tags: the version's tags (e.g. ``feature_set_hash``).
    """

    name: str
    version: str
    run_id: str
    source: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name/version``, the model version served responses report."""
        return f"{self.name}/{self.version}"


@dataclass(slots=True)
class RunLog:
    """Logging into one open run (see :meth:`Registry.start_run`)."""

    client: Any
    run_id: str

    def log_params(self, params: Mapping[str, object]) -> None:
        """Parameters, as strings (MLflow keeps parameters as text)."""
        from mlflow.entities import Param

        items = [Param(k, str(v)[:_PARAM_LIMIT]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Finite metrics (NaN and inf are skipped: MLflow stores them but nothing can compare them)."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, step) for k, v in metrics.items() if v == v and abs(v) != float("inf")]
        for i in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[i:i + 500])

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_figure(self, figure: Figure, path: str) -> None:
        self.client.log_figure(self.run_id, figure, path)

    def log_model(self, booster: lgb.Booster, *, input_example: pd.DataFrame,
                  blend: BlendWeights | None = None) -> str:
        """Log ``booster`` as this run's model, with a signature inferred from ``input_example`` and the
        blend weights learned with it beside it (``blend.json``); returns the artifact URI to register."""
        import mlflow.lightgbm
        from mlflow.models import infer_signature

        sample = input_example.head(5)
        signature = infer_signature(sample, booster.predict(sample.to_numpy(dtype="float64")))
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / MODEL_PATH
            mlflow.lightgbm.save_model(booster, str(local), signature=signature, input_example=sample)
            if blend is not None:
                (local / BLEND_FILE).write_text(blend.to_json(), encoding="utf-8")
            self.client.log_artifacts(self.run_id, str(local), MODEL_PATH)
        run = self.client.get_run(self.run_id)
        return f"{run.info.artifact_uri}/{MODEL_PATH}"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a finished run recorded: metrics, params and tags."""

    run_id: str
    status: str  # RUNNING / FINISHED / FAILED
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]


#: The run tag that tells a promotion record from a training run.
KIND_TAG = "orderguard.kind"


@dataclass(frozen=True, slots=True)
class PromotionAttempt:
    """One verdict of the gate on a candidate, as kept in the tracking store.

    Attributes:
        at: when the attempt was made (UTC); ``datetime.min`` before it is recorded.
        candidate_version: the registered version judged.
        baseline: what it was judged against (``champion 3``, ``rules-only``).
        passed: whether it became champion.
        cutoff: the holdout's cutoff (ISO).
        run_id: the candidate's training run.
        reasons: the gate's reasons, one per check.
    """

    candidate_version: str
    baseline: str
    passed: bool
    cutoff: str
    run_id: str
    reasons: tuple[str, ...]
    at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))


class Registry:
    """Runs and registered models of one tracking store."""

    def __init__(self, *, tracking_uri: str, artifact_location: Path, experiment: str, model_name: str) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.experiment = experiment
        self.model_name = model_name
        self._mlflow: MlflowClient | None = None

    @property
    def _client(self) -> MlflowClient:
        """The MLflow client, made on first use: making it creates a local SQLite store, which a question
        like "is there a champion?" must not do (see :meth:`_store_exists`)."""
        if self._mlflow is None:
            from mlflow import MlflowClient

            self._make_store_folder()
            self._mlflow = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._mlflow

    @classmethod
    def from_settings(cls, settings: Settings, *, experiment: str | None = None) -> Registry:
        """The registry ``settings.training`` points at; ``experiment`` overrides the experiment runs are logged
        to (e.g. benchmarks beside training). Nothing is created until something is written."""
        return cls(tracking_uri=settings.tracking_uri, artifact_location=settings.artifact_location,
                   experiment=experiment or settings.training.experiment, model_name=settings.training.model_name)

    def _experiment_id(self) -> str:
        found = self._client.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        self.artifact_location.mkdir(parents=True, exist_ok=True)
        return str(self._client.create_experiment(self.experiment,
                                                  artifact_location=self.artifact_location.as_uri()))

    @contextmanager
    def start_run(self, *, run_name: str, tags: Mapping[str, str] = {}) -> Iterator[RunLog]:
        """Open a run; it ends FINISHED, or FAILED if the block raises (the error propagates)."""
        run = self._client.create_run(self._experiment_id(), run_name=run_name, tags=dict(tags))
        log = RunLog(self._client, run.info.run_id)
        try:
            yield log
        except BaseException:
            self._client.set_terminated(log.run_id, status="FAILED")
            raise
        self._client.set_terminated(log.run_id, status="FINISHED")

    def run(self, run_id: str) -> RunInfo:
        """A run's metrics, params and tags."""
        run = self._client.get_run(run_id)
        data = run.data
        return RunInfo(run_id, str(run.info.status), dict(data.metrics), dict(data.params), dict(data.tags))

    def register(self, run_id: str, *, source: str, tags: Mapping[str, str] = {}) -> ModelRef:
        """Register the run's model as a new version of the model (not yet champion)."""
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(self.model_name)
        except MlflowException:
            self._client.create_registered_model(self.model_name)
        version = self._client.create_model_version(self.model_name, source, run_id=run_id, tags=dict(tags))
        return self._ref(version)

    def _ref(self, version: Any) -> ModelRef:
        return ModelRef(name=self.model_name, version=str(version.version), run_id=str(version.run_id),
                        source=str(version.source), tags=dict(version.tags or {}))

    def version(self, version: str) -> ModelRef:
        """One registered version; ``NotFoundError`` if it does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self._ref(self._client.get_model_version(self.model_name, version))
        except MlflowException as e:
            raise NotFoundError(f"`version` must be a registered version of {self.model_name}; got {version!r}",
                                field="version") from e

    def versions(self) -> list[str]:
        """Every registered version number of the model (empty before the first registration)."""
        if not self._store_exists():
            return []
        found = self._client.search_model_versions(f"name='{self.model_name}'")
        return [str(v.version) for v in found]

    def record_promotion(self, attempt: PromotionAttempt, *, gains: Mapping[str, float]) -> str:
        """Keep one promotion attempt, passed or refused, as a run of its own (tag ``orderguard.kind=promotion``)
        with the verdict, the gate's gains as metrics and its reasons as ``gate.txt``; returns the run id.

        One run per attempt: a later attempt on the same candidate never overwrites an earlier verdict.
        """
        tags = {KIND_TAG: "promotion", "candidate_version": attempt.candidate_version, "baseline": attempt.baseline,
                "passed": str(attempt.passed).lower(), "cutoff": attempt.cutoff, "candidate_run_id": attempt.run_id}
        with self.start_run(run_name=f"promote {attempt.candidate_version}", tags=tags) as run:
            run.log_metrics(dict(gains))
            run.log_text("\n".join(attempt.reasons) + "\n", "gate.txt")
        return run.run_id

    def promotions(self) -> list[PromotionAttempt]:
        """Every promotion attempt kept by :meth:`record_promotion`, oldest first (empty before any)."""
        if not self._store_exists():
            return []
        found = self._client.get_experiment_by_name(self.experiment)
        if found is None:
            return []
        runs = self._client.search_runs([found.experiment_id], filter_string=f"tags.`{KIND_TAG}` = 'promotion'",
                                        order_by=["attributes.start_time ASC"], max_results=10_000)
        attempts = []
        for run in runs:
            tags = run.data.tags
            reasons = self._client.download_artifacts(run.info.run_id, "gate.txt")
            attempts.append(PromotionAttempt(
                at=datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC),
                candidate_version=tags.get("candidate_version", "?"), baseline=tags.get("baseline", "?"),
                passed=tags.get("passed") == "true", cutoff=tags.get("cutoff", ""),
                run_id=tags.get("candidate_run_id", ""),
                reasons=tuple(Path(reasons).read_text(encoding="utf-8").splitlines())))
        return attempts

    def _make_store_folder(self) -> None:
        """The folder of a local SQLite tracking file, before the first write creates the file."""
        prefix = "sqlite:///"
        if self.tracking_uri.startswith(prefix):
            Path(self.tracking_uri[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)

    def _store_exists(self) -> bool:
        """False for a local SQLite tracking file not created yet (nothing trained): asking MLflow
        would create and migrate an empty store just to learn there is no champion."""
        prefix = "sqlite:///"
        return not self.tracking_uri.startswith(prefix) or Path(self.tracking_uri[len(prefix):]).exists()

    def champion(self) -> ModelRef | None:
        """The version carrying the ``champion`` alias, or None before the first promotion."""
        from mlflow.exceptions import MlflowException

        if not self._store_exists():
            return None
        try:
            return self._ref(self._client.get_model_version_by_alias(self.model_name, CHAMPION))
        except MlflowException as e:
            if "RESOURCE_DOES_NOT_EXIST" in str(e.error_code) or "not found" in str(e).lower():
                return None
            raise ServiceUnavailableError(f"model registry at {self.tracking_uri} failed: {e}",
                                          field="training.tracking_uri") from e

    def set_champion(self, ref: ModelRef) -> None:
        """Move the ``champion`` alias to ``ref``."""
        self._client.set_registered_model_alias(self.model_name, CHAMPION, ref.version)

    def set_version_tags(self, ref: ModelRef, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_model_version_tag(self.model_name, ref.version, key, str(value))

    def load_blend(self, ref: ModelRef) -> BlendWeights | None:
        """The blend weights stored with a version; None for a version trained before they were learned."""
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = download_artifacts(artifact_uri=f"{ref.source}/{BLEND_FILE}", dst_path=tmp,
                                           tracking_uri=self.tracking_uri)
                text = Path(local).read_text(encoding="utf-8")
        except (MlflowException, OSError):
            return None  # not stored: the version predates learned weights
        return BlendWeights.from_json(text)

    def load_booster(self, ref: ModelRef) -> lgb.Booster:
        """Download a version's artifacts and load its LightGBM booster."""
        import mlflow.lightgbm
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = download_artifacts(artifact_uri=ref.source, dst_path=tmp, tracking_uri=self.tracking_uri)
                booster: lgb.Booster = mlflow.lightgbm.load_model(local)
        except (MlflowException, OSError) as e:
            raise ServiceUnavailableError(f"model {ref.label} could not be loaded from {ref.source}: {e}",
                                          field="champion") from e
        return booster
