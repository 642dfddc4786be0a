"""The k most similar labelled past cases of an order, for the review desk.

A reviewer looking at a flagged order sees beside it the labelled orders most like it,
with their verdicts: "the last five orders like this one were confirmed fraud" (or
"were honest family gifts") is evidence a score alone does not give.

**What "similar" means.** Two orders are neighbours when they are *risky for the same
reasons*, not when their raw values are close.

* With a model (:func:`contribution_embedding`), an order is embedded as the model's
  per-feature contributions in log-odds (``LightGBMModel.explain``), and similarity is
  the cosine of two such vectors. Raw features mix units (fen, seconds, counts), are
  heavy-tailed and mostly irrelevant to risk; the contributions are in one unit
  (log-odds), are zero for the features the model ignores and large exactly for the
  features that drive the decision: an order flagged for a shared device sits next to
  other shared-device cases, and an honest family-gift order (risk pushed up by a shared
  address, pulled down by an old account) next to other orders with that same mix,
  whatever their amounts. Cosine keeps the *direction* (which reasons, in which
  proportion) and drops the magnitude, so a mild and a blatant case of the same
  pattern are still neighbours. The contributions are the model's own attribution:
  the decision-path one by default, the same split that produces the reasons the
  desk shows. Exact TreeSHAP (``pred_contrib``) was measured too: about 4 ms per order,
  in batch as well (30-50x the decision path's ~0.1 ms), i.e. minutes to embed 100,000
  cases, for about the same neighbours (``bench/desk.py`` prints both: within a few
  points of each other, neither ahead on every measure).
* Without a model (a rules-only service, :func:`standardised_embedding`), an order is
  its feature vector, each feature first compressed by a signed ``log1p`` (counts,
  amounts and durations are heavy-tailed: one bot burst of 40 orders must not outweigh
  every other feature), then standardised with the means and standard deviations of
  the cases themselves; a missing value (NaN) becomes 0, the mean, and one indicator
  per feature, standardised as well, says whether it was missing ("no earlier order"
  is information). Similarity is again the cosine.

Measured on the simulated shop (``bench/desk.py``: cases from four weeks, flagged orders
of the next two): among the 5 nearest cases of a flagged order, the share with the same
abuse pattern (or honest, beside an honest order) is 0.69 with contributions, 0.67 with
the model-free fallback, 0.62 with plain Euclidean neighbours on z-scores and 0.27 for
random cases; the share whose verdict agrees with the order's truth 0.87, 0.81, 0.79 and
0.42.

Either way similarity is a cosine in ``[-1, 1]``: 1 is the same direction (the same
reasons in the same proportions), 0 unrelated, negative opposite. A vector of zeros (an
order the model sees as exactly average) is similar to nothing (0).

**Index.** Exact k nearest neighbours by brute force: the cases' embeddings are
L2-normalised once into one float32 matrix, and a query is one matrix-vector product
(the cosines of every case), ``argpartition`` for the top ``k`` and a sort of those.
At 100,000 cases of 86 dimensions that is 33 MB read per query: ~1 ms for the product
and ~2 ms end to end (the query's contributions included) on two cores, far inside the
desk's 20 ms; exact, so no recall to tune, and rebuilt in seconds when labels arrive
(~10 s to embed 100,000 cases). scikit-learn's ``NearestNeighbors(algorithm="brute",
metric="cosine")`` computes the same product but in float64, through pairwise-distance
machinery and input checks on every call: 10-20x slower for one query
(``bench/desk.py``); trees (KD, ball) do not help at this dimension, and approximate
indexes only pay off far beyond 100,000 cases.

Where cases come from (score records of labelled orders, a dataset frame) is the
caller's business: this module is pure (no database, no clock).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from orderguard.errors import InvalidInputError
from orderguard.schema import OrderKey, Verdict
from scoring.model import LightGBMModel

#: A dimension counts in the reasons two cases share when it is at least this share of
#: both normalised vectors (a cosine-space weight; 0.15 ≈ 2% of a vector's squared length).
SHARED_FLOOR = 0.15


@dataclass(frozen=True, slots=True)
class Case:
    """A labelled past order, as the desk shows it beside a new one.

    Attributes:
        order_key: the labelled order.
        features: its feature vector as served or rebuilt (NaN or absent = missing).
        verdict: the newest reviewer verdict.
        reviewer_id: who gave it.
        labeled_at: when (UTC).
        score: the served score 0-100, if it was scored.
        decision: the served decision band, if it was scored.
    """

    order_key: OrderKey
    features: Mapping[str, float]
    verdict: Verdict
    reviewer_id: str
    labeled_at: datetime
    score: float | None = None
    decision: str | None = None


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One similar case.

    Attributes:
        case: the labelled case.
        similarity: cosine of the two embeddings, in ``[-1, 1]`` (1 = same reasons, same proportions).
        shared: the features that weigh on both orders in the same direction, strongest
            shared first (see :func:`shared_reasons`): "similar because ...".
    """

    case: Case
    similarity: float
    shared: tuple[str, ...] = ()


class Embedding(Protocol):
    """Turns feature vectors into the rows the index compares by cosine.

    ``embed`` returns one row per input, ``float64``; its first ``len(features)``
    columns belong to ``features`` in order (an embedding may add columns after them,
    e.g. missing-value indicators).
    """

    @property
    def name(self) -> str:
        """What the page and the bench call this similarity."""
        ...

    @property
    def features(self) -> tuple[str, ...]:
        """The features read, in column order."""
        ...

    def embed(self, rows: Sequence[Mapping[str, float]]) -> npt.NDArray[np.float64]:
        """One row per feature vector (missing features read as NaN)."""
        ...


@dataclass(frozen=True, slots=True)
class ContributionEmbedding:
    """An order as the model's per-feature contributions in log-odds (see the module docstring)."""

    model: LightGBMModel
    name: str
    features: tuple[str, ...]

    def embed(self, rows: Sequence[Mapping[str, float]]) -> npt.NDArray[np.float64]:
        """The contributions of each row, in model order (one ``explain`` per row, ~0.1 ms)."""
        out = np.zeros((len(rows), len(self.features)), dtype=np.float64)
        explain, width = self.model.explain, len(self.features)
        for i, row in enumerate(rows):
            out[i] = np.fromiter(explain(row).contributions.values(), dtype=np.float64, count=width)
        return out


def contribution_embedding(model: LightGBMModel) -> ContributionEmbedding:
    """Embed orders by ``model``'s contributions (its own attribution, decision path by default)."""
    return ContributionEmbedding(model, f"contributions:{model.version}", model.feature_names)


def signed_log(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``sign(x) * log1p(|x|)``: heavy tails compressed, order and sign kept, NaN stays NaN.

    >>> signed_log(np.array([0.0, 1.0, -1.0, np.nan])).round(3).tolist()
    [0.0, 0.693, -0.693, nan]
    """
    return np.asarray(np.sign(values) * np.log1p(np.abs(values)), dtype=np.float64)


def feature_matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> npt.NDArray[np.float64]:
    """The named features of each row as a float64 matrix, NaN for missing or absent values.

    >>> feature_matrix([{"a": 1.0, "b": 2.0}, {"b": 3.0}], ["b", "a"]).tolist()
    [[2.0, 1.0], [3.0, nan]]
    """
    out = np.full((len(rows), len(names)), math.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        out[i] = [row.get(name, math.nan) for name in names]
    return out


@dataclass(frozen=True, slots=True, eq=False)
class StandardisedEmbedding:
    """Signed-log feature values as z-scores, NaN → 0, plus standardised missing indicators.

    Attributes:
        features: the features read.
        center: mean of each signed-log feature over the cases (present values only).
        scale: its standard deviation (1 where it is 0 or undefined: a constant feature
            becomes a column of zeros).
        missing_center: share of cases missing each feature.
        missing_scale: standard deviation of that indicator (1 where 0).
    """

    features: tuple[str, ...]
    center: npt.NDArray[np.float64] = field(repr=False)
    scale: npt.NDArray[np.float64] = field(repr=False)
    missing_center: npt.NDArray[np.float64] = field(repr=False)
    missing_scale: npt.NDArray[np.float64] = field(repr=False)
    name: str = "standardised features"

    def embed(self, rows: Sequence[Mapping[str, float]]) -> npt.NDArray[np.float64]:
        """``[z-scores | missing indicators]``, ``2 * len(features)`` columns."""
        values = signed_log(feature_matrix(rows, self.features))
        missing = np.isnan(values)
        z = np.where(missing, 0.0, (values - self.center) / self.scale)
        indicators = (missing.astype(np.float64) - self.missing_center) / self.missing_scale
        return np.hstack([z, indicators])


def _spread(matrix: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Column means and standard deviations ignoring NaN; (0, 1) for an all-missing or constant column."""
    present = ~np.isnan(matrix)
    counts = present.sum(axis=0)
    filled = np.where(present, matrix, 0.0)
    center = np.divide(filled.sum(axis=0), counts, out=np.zeros(matrix.shape[1]), where=counts > 0)
    deviation = np.where(present, matrix - center, 0.0)
    variance = np.divide((deviation**2).sum(axis=0), counts, out=np.zeros(matrix.shape[1]), where=counts > 0)
    scale = np.sqrt(variance)
    return center, np.where(scale > 1e-12, scale, 1.0)


def standardised_embedding(feature_names: Sequence[str], cases: Sequence[Case]) -> StandardisedEmbedding:
    """The model-free embedding, with centres and scales taken from ``cases`` (see the module docstring).

    >>> from datetime import UTC
    >>> from orderguard.schema import Channel
    >>> at = datetime(2024, 11, 11, tzinfo=UTC)
    >>> cases = [Case(OrderKey(Channel.JD, str(i)), {"n": v}, Verdict.FALSE_POSITIVE, "r1", at)
    ...          for i, v in enumerate([0.0, 1.0, 3.0, float("nan")])]
    >>> emb = standardised_embedding(["n"], cases)
    >>> emb.embed([{"n": 1.0}, {}]).round(2).tolist()
    [[0.0, -0.58], [0.0, 1.73]]
    """
    names = tuple(feature_names)
    values = signed_log(feature_matrix([c.features for c in cases], names))
    center, scale = _spread(values)
    indicators = np.isnan(values).astype(np.float64)
    missing_center, missing_scale = _spread(indicators)
    return StandardisedEmbedding(names, center, scale, missing_center, missing_scale)


def shared_reasons(a: Sequence[float] | npt.NDArray[np.floating], b: Sequence[float] | npt.NDArray[np.floating],
                   names: Sequence[str], *, top: int = 3, floor: float = 0.0) -> list[str]:
    """The dimensions that push both vectors the same way (up), strongest shared push first.

    A dimension is shared when it exceeds ``floor`` in both ``a`` and ``b``; its shared
    weight is the smaller of the two, so a feature that drives only one order does not
    count. For contributions, "up" is towards fraud; for z-scores, above the cases'
    usual value. Only the first ``len(names)`` dimensions are considered.

    >>> shared_reasons([2.0, 0.5, -1.0, 0.9], [0.1, 0.7, -2.0, 1.5], ["burst", "new", "old", "pickup"])
    ['pickup', 'new', 'burst']
    >>> shared_reasons([2.0, 0.5], [0.1, 0.7], ["burst", "new"], top=1, floor=0.2)
    ['new']
    """
    width = len(names)
    first = np.asarray(a, dtype=np.float64)[:width]
    second = np.asarray(b, dtype=np.float64)[:width]
    both = np.minimum(first, second)
    chosen = np.flatnonzero((first > floor) & (second > floor))
    ordered = chosen[np.argsort(-both[chosen], kind="stable")]
    return [names[i] for i in ordered[:top].tolist()]


def _normalised(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero; non-finite values count as 0), as contiguous float32."""
    matrix = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return np.ascontiguousarray(unit, dtype=np.float32)


class CaseIndex:
    """Exact cosine k-NN over labelled cases (see the module docstring).

    Build with :meth:`build`; immutable afterwards (build a new index when labels change).
    Not tied to a thread: a lookup reads the matrix only. Memory: the float32 matrix
    (100,000 cases x 86 features: 33 MB) plus the cases as given; their feature mappings
    dominate (a dict of 86 floats is ~5 KB, ~0.5 GB for 100,000), so a caller that keeps
    many cases may pass lighter mappings (the index reads features only while building).
    """

    __slots__ = ("_by_key", "_cases", "_embedding", "_matrix")

    def __init__(self, cases: Sequence[Case], embedding: Embedding, matrix: npt.NDArray[np.float32]) -> None:
        if matrix.shape[0] != len(cases):
            raise InvalidInputError.must("matrix", f"one row per case ({len(cases)})", matrix.shape)
        self._cases = tuple(cases)
        self._embedding = embedding
        self._matrix = matrix
        self._matrix.flags.writeable = False
        by_key: dict[OrderKey, list[int]] = {}
        for i, case in enumerate(self._cases):
            by_key.setdefault(case.order_key, []).append(i)
        self._by_key = {key: np.asarray(rows, dtype=np.intp) for key, rows in by_key.items()}

    @classmethod
    def build(cls, cases: Sequence[Case], embedding: Embedding) -> CaseIndex:
        """Embed every case once and keep the normalised rows (one ``embed`` call)."""
        if cases:
            matrix = _normalised(np.asarray(embedding.embed([c.features for c in cases]), dtype=np.float64))
        else:
            matrix = np.zeros((0, 0), dtype=np.float32)
        return cls(cases, embedding, matrix)

    def __len__(self) -> int:
        return len(self._cases)

    @property
    def embedding(self) -> Embedding:
        """How orders are compared (``embedding.name`` for the page)."""
        return self._embedding

    @property
    def matrix(self) -> npt.NDArray[np.float32]:
        """The cases' normalised embeddings, one row each (read-only)."""
        return self._matrix

    @property
    def cases(self) -> tuple[Case, ...]:
        """The cases, in the order they were given."""
        return self._cases

    def embed(self, features: Mapping[str, float]) -> npt.NDArray[np.float32]:
        """The normalised embedding of one feature vector, as the index compares it."""
        row: npt.NDArray[np.float32] = _normalised(np.asarray(self._embedding.embed([features]), dtype=np.float64))[0]
        return row

    def nearest(self, features: Mapping[str, float], k: int = 5, *, exclude: OrderKey | None = None,
                ) -> list[Neighbour]:
        """The ``k`` cases most similar to ``features``, most similar first.

        Args:
            features: the order's feature vector (NaN or absent = missing).
            k: how many (fewer when the index holds fewer cases).
            exclude: leave this order's own cases out (the order itself may be a labelled case).

        Ties are broken by case position (earlier first), so the answer is deterministic.
        """
        if k < 1:
            raise InvalidInputError.must("k", "at least 1", k)
        if not self._cases:
            return []
        query = self.embed(features)
        similarity = self._matrix @ query
        skip = self._by_key.get(exclude) if exclude is not None else None
        if skip is not None:
            similarity[skip] = -np.inf
        available = len(self._cases) - (0 if skip is None else len(skip))
        take = min(k, available)
        if take <= 0:
            return []
        if take < len(similarity):
            kth = similarity[np.argpartition(similarity, len(similarity) - take)[len(similarity) - take]]
            above = np.flatnonzero(similarity > kth)
            # Cases tied at the boundary (piecewise-constant contributions tie often): the earliest ones.
            tied = np.flatnonzero(similarity == kth)[: take - len(above)]
            top = np.concatenate([above, tied])
        else:
            top = np.arange(len(similarity))
        top = top[np.lexsort((top, -similarity[top]))]
        names = self._embedding.features
        return [Neighbour(self._cases[i], float(np.clip(similarity[i], -1.0, 1.0)),
                          tuple(shared_reasons(query, self._matrix[i], names, floor=SHARED_FLOOR)))
                for i in top.tolist()]
