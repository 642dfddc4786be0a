"""The labelled past cases the desk compares a flagged order with, kept as one index per process.

Cases are the orders with a current verdict and a score record (the evidence the
decision was made on: its feature vector). The index (``scoring.similar``) embeds them
the way the served model sees them — its per-feature contributions, so neighbours are
orders risky *for the same reasons* — or, with no model, as standardised features.

Rebuilding reads every labelled order's record, so it is not done per page: the index is
rebuilt when the champion changes, or when labels were added and the index is older than
:data:`REFRESH`; a verdict given a moment ago shows up among the neighbours at the next
rebuild. Building happens off the event loop (the caller runs :meth:`SimilarCases.nearest`
in a thread); concurrent callers wait for one build instead of each building.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from orderguard.labels import LabelLog
from orderguard.schema import Label, OrderKey, Verdict
from scoring.model import LightGBMModel
from scoring.records import ScoreLog, ScoreRecord
from scoring.scorer import Scorer
from scoring.similar import Case, CaseIndex, contribution_embedding, standardised_embedding

#: Seconds an index may lag behind new labels.
REFRESH = 60.0


@dataclass(frozen=True, slots=True)
class Similar:
    """One neighbour as the case page shows it."""

    case: Case
    similarity: float
    label: Label
    shared: tuple[str, ...] = ()  # the features that make both risky, strongest first


class SimilarCases:
    """The process's index of labelled cases (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: CaseIndex | None = None
        self._labels: dict[OrderKey, Label] = {}
        self._stamp: tuple[int, str | None] = (-1, None)
        self._built = 0.0

    def _fresh(self, labels: LabelLog, scorer: Scorer, scores: ScoreLog) -> CaseIndex:
        model = scorer.model
        version = model.version if model is not None else None
        count = labels.count()
        with self._lock:
            stale = self._index is None or self._stamp[1] != version or (
                self._stamp[0] != count and time.monotonic() - self._built > REFRESH)
            if stale:
                current = labels.current()
                records = scores.latest_many(list(current))
                cases = [Case(order_key=key, features=records[key].features, verdict=label.verdict,
                              reviewer_id=label.reviewer_id, labeled_at=label.labeled_at,
                              score=records[key].score, decision=records[key].decision.value)
                         for key, label in current.items() if key in records]
                embedding = (contribution_embedding(model) if isinstance(model, LightGBMModel)
                             else standardised_embedding(scorer.online.names, cases))
                self._index = CaseIndex.build(cases, embedding)
                self._labels = current
                self._stamp, self._built = (count, version), time.monotonic()
            assert self._index is not None
            return self._index

    def install(self, index: CaseIndex, labels: dict[OrderKey, Label], *, label_count: int,
                model_version: str | None) -> None:
        """Serve ``index`` (built elsewhere, e.g. ahead of time) as if built now from ``label_count`` labels under
        ``model_version``: it is kept until either changes."""
        with self._lock:
            self._index, self._labels = index, labels
            self._stamp, self._built = (label_count, model_version), time.monotonic()

    def nearest(self, record: ScoreRecord, *, labels: LabelLog, scorer: Scorer, scores: ScoreLog,
                k: int = 5) -> list[Similar]:
        """The ``k`` labelled cases most like ``record``'s order (never the order itself)."""
        index = self._fresh(labels, scorer, scores)
        found = index.nearest(record.features, k=k, exclude=record.order_key)
        # a case at a non-positive cosine is risky for other reasons, or not at all: no neighbour worth showing
        return [Similar(n.case, n.similarity, self._labels[n.case.order_key], n.shared) for n in found
                if n.case.order_key in self._labels and n.similarity > 0]

    @property
    def labels(self) -> dict[OrderKey, Label]:
        """The current verdict of each labelled order, as of the index's last build."""
        return self._labels

    @property
    def size(self) -> int:
        """Cases in the current index (0 before the first build)."""
        return len(self._index) if self._index is not None else 0

    @property
    def verdicts(self) -> dict[Verdict, int]:
        """Cases per verdict in the current index."""
        counts: dict[Verdict, int] = {}
        for label in self._labels.values():
            counts[label.verdict] = counts.get(label.verdict, 0) + 1
        return counts

