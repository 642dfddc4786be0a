"""Model cards: what each promoted champion was trained on and why it went live, readable without MLflow.

MLflow stays the source of truth for artifacts (the booster, plots, full metrics); the
card is the one page a reviewer, an auditor or the next data scientist reads first. One
card per promoted version is written to ``settings.training.cards_dir`` (``models/`` at
the top of the checkout) as ``<model>-v<version>.md`` and a ``.json`` twin, each
replaced atomically so a reader never sees half a card.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import lightgbm as lgb

from orderguard.atomicfile import write_text_atomic
from training.fit import gain_ranking

CARD_METRICS = ("pr_auc", "roc_auc", "precision_at_capacity", "recall_at_capacity")
"""The holdout metrics a card shows for each scorer (``training.evaluate`` names)."""


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One promoted champion.

    Attributes:
        model_name / version / run_id: the registered model version and its MLflow run.
        promoted_at: when the alias moved (UTC).
        data_window: ``<first training order>..<cutoff>`` dates.
        feature_set_hash / settings_hash: what the features and the decision step were.
        train_rows / holdout_rows / holdout_positives: the data sizes.
        baseline: what the gate compared with (``champion 3`` or ``rules-only``).
        metrics: holdout metrics of the candidate, ``{scorer}_{metric}`` for rules / model / blend.
        baseline_metrics: the previous champion's blend metrics on the same holdout (empty for a first model).
        gate_reasons: one line per gate check.
        top_features: ``(feature, share of total gain)``, largest first.
    """

    model_name: str
    version: str
    run_id: str
    promoted_at: datetime
    data_window: str
    feature_set_hash: str
    settings_hash: str
    train_rows: int
    holdout_rows: int
    holdout_positives: int
    baseline: str
    metrics: Mapping[str, float]
    baseline_metrics: Mapping[str, float]
    gate_reasons: tuple[str, ...]
    top_features: tuple[tuple[str, float], ...]

    @property
    def stem(self) -> str:
        """File name without suffix: ``<model>-v<version>``."""
        return f"{self.model_name}-v{self.version}"

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (NaN becomes null, times ISO 8601)."""
        raw = asdict(self)
        raw["promoted_at"] = self.promoted_at.isoformat()
        raw["metrics"] = {k: _finite(v) for k, v in self.metrics.items()}
        raw["baseline_metrics"] = {k: _finite(v) for k, v in self.baseline_metrics.items()}
        raw["gate_reasons"] = list(self.gate_reasons)
        raw["top_features"] = [{"feature": name, "gain_share": share} for name, share in self.top_features]
        return raw

    def markdown(self) -> str:
        """The card as a page of Markdown."""
        lines = [f"# {self.model_name} v{self.version}", "",
                 f"Promoted {self.promoted_at:%Y-%m-%d %H:%M} UTC against **{self.baseline}**; "
                 f"MLflow run `{self.run_id}`.", "",
                 "| | |", "|---|---|",
                 f"| data window | {self.data_window} |",
                 f"| training orders | {self.train_rows:,} |",
                 f"| holdout orders (confirmed frauds) | {self.holdout_rows:,} ({self.holdout_positives:,}) |",
                 f"| feature set hash | `{self.feature_set_hash}` |",
                 f"| settings hash | `{self.settings_hash}` |", "",
                 "## Holdout metrics", "",
                 "| metric | rules only | model only | blend (served) | previous champion blend |",
                 "|---|---|---|---|---|"]
        for name in CARD_METRICS:
            cells = [_cell(self.metrics.get(f"{who}_{name}")) for who in ("rules", "model", "blend")]
            lines.append(f"| {name} | {' | '.join(cells)} | {_cell(self.baseline_metrics.get(name))} |")
        lines += ["", "## Gate", "", *(f"- {reason}" for reason in self.gate_reasons), "",
                  "## Top features (share of total gain)", "",
                  *(f"{i}. `{name}` {share:.1%}" for i, (name, share) in enumerate(self.top_features, 1)), ""]
        return "\n".join(lines)


def top_features(booster: lgb.Booster, *, top: int = 10) -> tuple[tuple[str, float], ...]:
    """The ``top`` features of :func:`training.fit.gain_ranking`, as shares of the total gain."""
    ranked = gain_ranking(booster)
    total = sum(gain for _, gain in ranked)
    return tuple((name, gain / total) for name, gain in ranked[:top])


def blend_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The served blend's card metrics, without the ``blend_`` prefix."""
    return {name: metrics[f"blend_{name}"] for name in CARD_METRICS if f"blend_{name}" in metrics}


def write_card(card: ModelCard, directory: Path) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` under ``directory`` (created), each replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    md = write_text_atomic(directory / f"{card.stem}.md", card.markdown())
    js = write_text_atomic(directory / f"{card.stem}.json",
                       json.dumps(card.to_json(), ensure_ascii=False, indent=2, allow_nan=False) + "\n")
    return md, js


def read_card(path: Path) -> dict[str, object]:
    """A card's JSON twin as written (for tools and tests)."""
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _cell(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"
