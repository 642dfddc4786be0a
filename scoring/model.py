"""The served LightGBM model: probability and readable reasons for one order in tens of microseconds.

``LightGBMModel`` implements ``scoring.scorer.Model``. For one feature vector it builds
one row in the booster's feature order (a feature the vector lacks is missing, NaN, as
in training), makes **one** native prediction call, and derives from it both the
probability and each feature's contribution in log-odds, so the probability the scorer
blends and the reasons it shows always come from the same computation. The strongest
positive contributions become ``Reason(code="model:<feature>", weight=..., source="model")``
with the feature's value in words (``features.describe``).

**Which contributions.** Two attributions are offered (``Attribution``); both are
*locally exact*: the contributions plus a bias sum to the raw log-odds score.

* ``PATH`` (default): the decision-path attribution (Saabas; XGBoost's
  ``approx_contribs``). In each tree, every split on the way to the order's leaf moves
  the node value from parent to child; that move is credited to the split's feature.
  A leaf fixes its path, so the attribution of every leaf is computed once at load and
  a prediction only needs the leaf index of each tree: one call of the native single-row
  predictor for leaf indices (as cheap as a plain prediction), a gather and a sum. The
  raw score is the sum of those leaves' values, the probability its sigmoid.
* ``SHAP``: exact TreeSHAP (LightGBM's ``pred_contrib``). Consistent in theory, but its
  cost grows with leaves × depth² per tree: ~2-3 ms per order for 300 trees of 31 leaves
  (``bench/score.py`` measures it beside the rest), several times the whole scoring
  budget. Use it offline (audits, the review desk re-explaining a stored vector), or
  for small models.

Both give the same probability (from the leaves). They name the same strongest feature
on about three flagged orders in four (``bench/score.py`` prints the share): the path
attribution credits splits near the root more, TreeSHAP averages over split orders.

Either way, contributions are only computed when the model's evidence is worth at least
``min_weight`` points (below that no feature's share could become a reason): on the
bench's shop that is about one order in twenty, so the common path is the leaf call alone.

**Reason weights are rule points.** The policy's noisy-OR blend is additive in points::

    score = 100 * (1 - exp(-points / scale) * (1 - w * p))
          = 100 * (1 - exp(-(points + P) / scale)),   P = -scale * ln(1 - w * p)

so the model's evidence is worth exactly ``P`` rule points (``scale`` = policy
``points_scale``, ``w`` = ``model_weight``). ``P`` is shared among the features that
pushed the order toward fraud, in proportion to their positive log-odds contributions.
A model reason of weight 30 therefore moves the score as much as a 30-point rule, rule
and model reasons sort together by weight (``scoring.policy.order_reasons``), and the
shares of every pushing feature plus the points of the fired rules give the score back
(``100 * (1 - exp(-total / scale))``; the reasons shown are the largest shares).
Why not the score points the model adds over rules-only: that amount depends on which
rules fired (the blend's factor ``1 - r``), so the same model evidence would weigh less
next to a strong rule, and it is not in the rules' unit (points) but in score units.
Features that pulled the score down get no reason (a reason says why an order is
risky); contributions worth less than ``min_weight`` points are left out, so an approved
order does not list noise as reasons.

**Speed.** The native single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``)
is initialised once per model with ``num_threads=1`` and reused: no pandas, no shape
checks, no thread pool per call. It is reached through ``lightgbm.basic``'s library
handle; when that is unavailable the model falls back to ``Booster.predict`` (same
numbers, ~5x slower). The native predictor keeps per-call buffers, so calls are
serialised by a lock (uncontended on the event loop: ~0.1 µs).
"""

from __future__ import annotations

import ctypes
import math
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from features.describe import FeatureDescriber
from features.online import FeatureVector
from features.specs import FeatureSet
from orderguard.errors import IncompatibleModelError
from scoring.blend_weights import BlendWeights
from scoring.policy import Policy, Reason
from scoring.scorer import ModelOutput

if TYPE_CHECKING:
    import lightgbm as lgb

NAN = float("nan")
#: Native prediction types (``c_api.h``).
_PREDICT_LEAF_INDEX = 2
_PREDICT_CONTRIB = 3
_DTYPE_FLOAT64 = 1
#: The blend's model evidence is capped just below certainty, so its point value stays finite.
_MAX_EVIDENCE = 1.0 - 1e-9


class Attribution(StrEnum):
    """How a prediction is split into per-feature contributions (see the module docstring)."""

    PATH = "path"
    SHAP = "shap"


@dataclass(frozen=True, slots=True)
class Explanation:
    """One prediction, split into contributions.

    Attributes:
        probability: P(abnormal).
        raw: the raw score in log-odds; ``bias + sum(contributions.values()) == raw``.
        bias: the part of ``raw`` no feature explains (the trees' root values for
            ``PATH``, the expected value for ``SHAP``).
        contributions: log-odds contribution of every model feature, in model order.
    """

    probability: float
    raw: float
    bias: float
    contributions: Mapping[str, float]


def model_points(probability: float, *, policy: Policy) -> float:
    """Rule points equivalent to the model's evidence in the policy's blend (see the module docstring).

    >>> round(model_points(0.5, policy=Policy()), 2), model_points(0.0, policy=Policy())
    (41.59, 0.0)
    >>> from scoring.policy import blend
    >>> p = Policy()
    >>> round(blend(30 + model_points(0.4, policy=p), None, policy=p), 9) == round(blend(30, 0.4, policy=p), 9)
    True
    """
    evidence = min(max(policy.model_weight * probability, 0.0), _MAX_EVIDENCE)
    return -policy.points_scale * math.log1p(-evidence)


def _sigmoid(raw: float, scale: float) -> float:
    """LightGBM's binary transform ``1 / (1 + exp(-sigmoid * raw))``, without overflow.

    >>> _sigmoid(0.0, 1.0), round(_sigmoid(-800.0, 1.0), 3)
    (0.5, 0.0)
    """
    z = scale * raw
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _sigmoid_scale(objective: str) -> float:
    """The ``sigmoid`` parameter of a binary objective as dumped (``"binary sigmoid:1"``).

    >>> _sigmoid_scale("binary sigmoid:1"), _sigmoid_scale("cross_entropy")
    (1.0, 1.0)
    """
    words = objective.split()
    for word in words[1:]:
        key, _, value = word.partition(":")
        if key == "sigmoid":
            return float(value)
    return 1.0


@dataclass(frozen=True, slots=True)
class _Paths:
    """Every leaf of every tree, flattened: its value and its decision-path attribution.

    Attributes:
        offsets: row of each tree's leaf 0 in the tables (``offsets[t] + leaf``).
        leaf_values: output of each leaf (log-odds, shrinkage included).
        used: the features some split uses (the columns of ``table``), in model order.
        table: for each leaf, the value moves on its path credited to each used
            feature, shape ``(leaves, len(used))``: leaves x used features x 8 bytes
            (~4 MB for 300 trees of 31 leaves over 60 features).
        bias: the sum of the trees' root values.
    """

    offsets: npt.NDArray[np.intp]
    leaf_values: npt.NDArray[np.float64]
    used: npt.NDArray[np.intp]
    table: npt.NDArray[np.float64]
    bias: float

    @classmethod
    def from_dump(cls, trees: Sequence[Mapping[str, Any]]) -> _Paths:
        """Walk every tree of ``Booster.dump_model()`` once."""
        offsets: list[int] = []
        values: list[float] = []
        paths: list[list[tuple[int, float]]] = []
        bias = 0.0
        for tree in trees:
            offsets.append(len(values))
            root = tree["tree_structure"]
            count = int(tree["num_leaves"])
            tree_values = [0.0] * count
            tree_paths: list[list[tuple[int, float]]] = [[] for _ in range(count)]
            root_value = _node_value(root)
            bias += root_value
            stack: list[tuple[Mapping[str, Any], float, list[tuple[int, float]]]] = [(root, root_value, [])]
            while stack:
                node, value, path = stack.pop()
                if "leaf_value" in node:
                    leaf = int(node.get("leaf_index", 0))
                    tree_values[leaf] = float(node["leaf_value"])
                    tree_paths[leaf] = path
                    continue
                feature = int(node["split_feature"])
                for side in ("left_child", "right_child"):
                    child = node[side]
                    child_value = _node_value(child)
                    stack.append((child, child_value, [*path, (feature, child_value - value)]))
            values.extend(tree_values)
            paths.extend(tree_paths)
        used = sorted({feature for path in paths for feature, _ in path})
        column = {feature: j for j, feature in enumerate(used)}
        table = np.zeros((len(paths), len(used)), dtype=np.float64)
        for i, path in enumerate(paths):
            for feature, delta in path:
                table[i, column[feature]] += delta
        return cls(np.asarray(offsets, dtype=np.intp), np.asarray(values, dtype=np.float64),
                   np.asarray(used, dtype=np.intp), table, bias)

    def rows(self, leaves: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Table rows of the leaf index of each tree (as the native predictor returns them)."""
        rows = leaves.astype(np.intp)
        rows += self.offsets
        return rows

    def raw(self, rows: npt.NDArray[np.intp]) -> float:
        """The raw score: the sum of the leaves' values."""
        return float(self.leaf_values.take(rows).sum())

    def contributions(self, rows: npt.NDArray[np.intp], n_features: int) -> npt.NDArray[np.float64]:
        """Every feature's path contribution (0 for features no split uses)."""
        out = np.zeros(n_features, dtype=np.float64)
        out[self.used] = np.add.reduce(self.table.take(rows, axis=0), axis=0)
        return out


def _node_value(node: Mapping[str, Any]) -> float:
    return float(node["leaf_value"] if "leaf_value" in node else node["internal_value"])


class _NativeRow:
    """LightGBM's single-row fast path for one prediction type, initialised once.

    ``predict(row)`` writes the row into a preallocated buffer, calls the native
    predictor and returns the (reused) output buffer: copy what must outlive the next call.
    """

    def __init__(self, booster: lgb.Booster, *, predict_type: int, iterations: int, width: int,
                 row: npt.NDArray[np.float64]) -> None:
        from lightgbm.basic import _LIB  # type: ignore[attr-defined]  # the library lightgbm loaded

        handle = getattr(booster, "_handle", None)
        if handle is None or not hasattr(_LIB, "LGBM_BoosterPredictForMatSingleRowFast"):
            raise RuntimeError("the native single-row fast path is not available")
        n = booster.num_feature()
        self._config = ctypes.c_void_p()
        status = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            handle, ctypes.c_int(predict_type), ctypes.c_int(0), ctypes.c_int(iterations),
            ctypes.c_int(_DTYPE_FLOAT64), ctypes.c_int32(n), ctypes.c_char_p(b"num_threads=1"),
            ctypes.byref(self._config))
        if status != 0:
            raise RuntimeError(_LIB.LGBM_GetLastError().decode("utf-8", "replace"))
        self._booster = booster  # the fast config points into the booster: keep it alive
        self._finalizer = weakref.finalize(self, _LIB.LGBM_FastConfigFree, self._config)
        if row.shape != (n,) or row.dtype != np.float64 or not row.flags.c_contiguous:
            raise RuntimeError(f"the row buffer must be {n} contiguous float64 values")
        self.row = row
        self.out = np.zeros(width, dtype=np.float64)
        self._out_len = ctypes.c_int64()
        call = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        config, row_ptr = self._config, ctypes.c_void_p(self.row.ctypes.data)
        out_len, out_ptr = ctypes.byref(self._out_len), ctypes.c_void_p(self.out.ctypes.data)
        self._call: Callable[[], int] = lambda: call(config, row_ptr, out_len, out_ptr)
        self._check = _LIB.LGBM_GetLastError

    def predict(self) -> npt.NDArray[np.float64]:
        """Predict ``self.row`` (fill it first); the result is ``self.out``."""
        if self._call() != 0:
            raise RuntimeError(self._check().decode("utf-8", "replace"))
        return self.out


class _PythonRow:
    """The same contract as ``_NativeRow`` through ``Booster.predict`` (when the fast path is unavailable)."""

    def __init__(self, booster: lgb.Booster, *, predict_type: int, iterations: int, width: int,
                 row: npt.NDArray[np.float64]) -> None:
        self._booster = booster
        self._kwargs: dict[str, Any] = {
            "num_iteration": iterations if iterations > 0 else None, "num_threads": 1,
            "predict_disable_shape_check": True, "validate_features": False,
            "pred_leaf": predict_type == _PREDICT_LEAF_INDEX, "pred_contrib": predict_type == _PREDICT_CONTRIB}
        self.row = row
        self.out = np.zeros(width, dtype=np.float64)

    def predict(self) -> npt.NDArray[np.float64]:
        result = self._booster.predict(self.row.reshape(1, -1), **self._kwargs)
        self.out[:] = np.asarray(result, dtype=np.float64).reshape(-1)
        return self.out


def _row_predictor(booster: lgb.Booster, *, predict_type: int, iterations: int, width: int,
                   row: npt.NDArray[np.float64], native: bool) -> _NativeRow | _PythonRow:
    """The native fast path if asked for and available, else the public API (same numbers, slower)."""
    if native:
        try:
            return _NativeRow(booster, predict_type=predict_type, iterations=iterations, width=width, row=row)
        except (ImportError, AttributeError, RuntimeError):
            pass  # an older or different build of lightgbm
    return _PythonRow(booster, predict_type=predict_type, iterations=iterations, width=width, row=row)


class LightGBMModel:
    """A binary LightGBM booster serving probabilities with readable, point-weighted reasons.

    Args:
        booster: a trained binary booster (objective ``binary`` or ``cross_entropy``);
            its best iteration is used when it has one, as ``Booster.predict`` does.
        version: what score records and responses report (registry ``name/version``).
        describer: phrases for the booster's features (every one must be described).
        policy: the blend the scorer uses: reason weights are in its rule points.
        max_reasons: most model reasons per order.
        min_weight: model reasons worth fewer points are left out.
        attribution: ``PATH`` (fast, default) or ``SHAP`` (exact TreeSHAP, slow).
        native: use LightGBM's native single-row fast path when available.
        blend: the weights of rules and model learned with this booster (``scoring.blend_weights``);
            ``None`` for a model trained before weights were learned (rule points as written).

    Raises:
        IncompatibleModelError: not a binary model, or a feature the describer lacks.
    """

    def __init__(self, booster: lgb.Booster, *, version: str, describer: FeatureDescriber,
                 policy: Policy | None = None, max_reasons: int = 5, min_weight: float = 1.0,
                 attribution: Attribution = Attribution.PATH, native: bool = True,
                 blend: BlendWeights | None = None) -> None:
        dump = booster.dump_model(num_iteration=booster.best_iteration if booster.best_iteration > 0 else None)
        objective = str(dump.get("objective", ""))
        if objective.split(" ")[0] not in ("binary", "cross_entropy") or dump.get("num_class", 1) != 1:
            raise IncompatibleModelError(f"`model` must be a binary classifier; {version} has objective "
                                         f"{objective!r}", field="model")
        if dump.get("average_output"):
            raise IncompatibleModelError(f"`model` must be a boosted model, not a random forest; got {version}",
                                         field="model")
        names = tuple(booster.feature_name())
        undescribed = [n for n in names if n not in describer]
        if undescribed:
            raise IncompatibleModelError(f"`model` must use only described features; {version} needs "
                                         f"{undescribed[:10]}", field="model")
        if max_reasons < 0:
            raise ValueError(f"max_reasons must be >= 0; got {max_reasons}")
        self._booster = booster
        self._version = version
        self._blend = blend
        self._describer = describer
        self._policy = policy or Policy()
        self._max_reasons = max_reasons
        self._min_weight = min_weight
        self._attribution = attribution
        self._names = names
        self._pick = itemgetter(*names) if len(names) > 1 else (lambda d: (d[names[0]],))
        self._sigmoid = _sigmoid_scale(objective)
        trees = dump["tree_info"]
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        self._paths = _Paths.from_dump(trees)
        row = np.zeros(len(names), dtype=np.float64)  # shared by both predictors: filled once per call
        self._leaves = _row_predictor(booster, predict_type=_PREDICT_LEAF_INDEX, iterations=iterations,
                                      width=len(trees), row=row, native=native)
        self._shap = (_row_predictor(booster, predict_type=_PREDICT_CONTRIB, iterations=iterations,
                                     width=len(names) + 1, row=row, native=native)
                      if attribution is Attribution.SHAP else None)
        self._row = row
        self._lock = threading.Lock()

    @classmethod
    def from_booster(cls, booster: lgb.Booster, version: str, *, feature_set: FeatureSet,
                     policy: Policy | None = None, max_reasons: int = 5,
                     attribution: Attribution = Attribution.PATH) -> LightGBMModel:
        """The model with phrases built from ``feature_set`` (the one the online engine serves)."""
        return cls(booster, version=version, describer=FeatureDescriber(feature_set), policy=policy,
                   max_reasons=max_reasons, attribution=attribution)

    @property
    def blend(self) -> BlendWeights | None:
        """The learned weights of rules and model, served with this booster."""
        return self._blend

    @property
    def version(self) -> str:
        """Registry ``name/version`` (or any label given at load)."""
        return self._version

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The booster's features, in its column order."""
        return self._names

    @property
    def attribution(self) -> Attribution:
        """How contributions are computed."""
        return self._attribution

    @property
    def native(self) -> bool:
        """Whether predictions use LightGBM's native single-row fast path."""
        return isinstance(self._leaves, _NativeRow)

    def _fill(self, vector: Mapping[str, float]) -> Mapping[str, float]:
        """Write the vector into the row, in model order (missing → NaN); returns the values read."""
        values = vector.by_name if isinstance(vector, FeatureVector) else vector
        try:
            self._row[:] = self._pick(values)
        except KeyError:
            self._row[:] = [values.get(n, NAN) for n in self._names]
        return values

    def _attribute(self, rows: npt.NDArray[np.intp]) -> tuple[float, npt.NDArray[np.float64]]:
        """(bias, per-feature contributions) of the row just predicted (lock held)."""
        if self._shap is not None:
            out = self._shap.predict()
            return float(out[-1]), out[:-1].copy()
        return self._paths.bias, self._paths.contributions(rows, len(self._names))

    def explain(self, vector: Mapping[str, float]) -> Explanation:
        """Probability, raw score, bias and every feature's contribution for one vector."""
        with self._lock:
            self._fill(vector)
            rows = self._paths.rows(self._leaves.predict())
            raw = self._paths.raw(rows)
            bias, contributions = self._attribute(rows)
        return Explanation(_sigmoid(raw, self._sigmoid), raw, bias,
                           dict(zip(self._names, contributions.tolist(), strict=True)))

    def predict(self, vector: Mapping[str, float]) -> ModelOutput:
        """P(abnormal) and the strongest reasons, weighted in rule points (see the module docstring).

        The leaf index of each tree gives the raw score; contributions are computed only
        when the model's evidence is worth at least ``min_weight`` points, since below
        that no feature's share could become a reason (most honest orders stop there).
        """
        with self._lock:
            values = self._fill(vector)
            rows = self._paths.rows(self._leaves.predict())
            probability = _sigmoid(self._paths.raw(rows), self._sigmoid)
            points = model_points(probability, policy=self._policy)
            if points < self._min_weight or self._max_reasons == 0:
                return ModelOutput(probability)
            _, contributions = self._attribute(rows)
        return ModelOutput(probability, self._reasons(contributions, values, points))

    def _reasons(self, contributions: npt.NDArray[np.float64], values: Mapping[str, float],
                 points: float) -> tuple[Reason, ...]:
        """The strongest positive contributions as reasons, sharing ``points`` in proportion."""
        positive = np.flatnonzero(contributions > 0)
        if positive.size == 0:
            return ()
        pushes = contributions[positive]
        weights = pushes * (points / float(pushes.sum()))
        strongest = np.argsort(-weights, kind="stable")[: self._max_reasons]
        reasons: list[Reason] = []
        names, describe = self._names, self._describer.describe
        for weight, index in zip(weights[strongest].tolist(), positive[strongest].tolist(), strict=True):
            if weight < self._min_weight:
                break
            name = names[index]
            phrase = describe(name, values.get(name, NAN))
            reasons.append(Reason(code=f"model:{name}", weight=round(weight, 2), text_zh=phrase.zh,
                                  text_en=phrase.en, source="model"))
        return tuple(reasons)


class ModelMaker(Protocol):
    """Builds the served model of a booster, its version and its learned blend weights."""

    def __call__(self, booster: lgb.Booster, version: str, blend: BlendWeights | None = None) -> LightGBMModel: ...


def model_factory(feature_set: FeatureSet, *, policy: Policy | None = None, max_reasons: int = 5,
                  attribution: Attribution = Attribution.PATH) -> ModelMaker:
    """``(booster, version, blend) -> LightGBMModel`` for the champion slot (``serving.champion.ModelFactory``).

    The describer is built once here and shared by every model the factory makes.
    """
    describer = FeatureDescriber(feature_set)

    def make(booster: lgb.Booster, version: str, blend: BlendWeights | None = None) -> LightGBMModel:
        return LightGBMModel(booster, version=version, describer=describer, policy=policy, max_reasons=max_reasons,
                             attribution=attribution, blend=blend)

    return make
