"""The registered model versions with the holdout metrics their training runs logged (the registry's own record)."""

from __future__ import annotations

from features.settings import Settings
from reports.content import ModelRow
from scoring.registry import Registry

#: Holdout metrics shown, as ``training.evaluate`` names them.
SHOWN = ("blend_pr_auc", "blend_precision_review", "blend_recall_review", "blend_fpr_review", "holdout_rows")


def model_rows(settings: Settings) -> tuple[ModelRow, ...]:
    """Every registered version, oldest first, with its run's holdout metrics; empty before the first training."""
    registry = Registry.from_settings(settings)
    versions = sorted(registry.versions(), key=int)
    if not versions:
        return ()
    champion = registry.champion()
    rows = []
    for number in versions:
        ref = registry.version(number)
        metrics = registry.run(ref.run_id).metrics
        rows.append(ModelRow(ref.label, ref.tags.get("data_window", ""),
                             champion is not None and champion.version == ref.version,
                             {k: float(metrics[k]) for k in SHOWN if k in metrics}))
    return tuple(rows)
