"""Low-latency scoring of a calibrated ``HistGradientBoostingClassifier`` for a few rows.

scikit-learn's ``predict_proba`` spends most of a one-row call on input validation, the
``CalibratedClassifierCV`` wrapper and starting an OpenMP region (milliseconds on a loaded
2-core box). :class:`CompiledCalibratedTrees` copies the fitted trees into padded NumPy arrays
once and walks all trees at the same time, one vectorised step per tree level, which is
exactly the rule of scikit-learn's ``_predict_one_from_raw_data`` for numeric splits:

* a NaN goes to the side ``missing_go_to_left`` says;
* otherwise ``x <= num_threshold`` goes left, else right;

``raw = baseline + sum of leaf values``, then the calibrator: sigmoid ``expit(-(a * raw + b))``
(Platt) or the isotonic step function (``np.interp`` with clipping, as ``IsotonicRegression``
with ``out_of_bounds="clip"``). Tests pin it to scikit-learn's output. Categorical splits are
not supported (the reference model has none) and are refused at compile time.

Why a speed trick is kept here: it reads fitted scikit-learn attributes (``_predictors``,
``_baseline_prediction``) that are not public API, so it is pinned to scikit-learn's own output
by tests and refuses models it does not understand. ``python -m bench.bench_telemetry`` shows a
target needs it: scoring one row (a signal as its bar closes) must take under 1 ms;
scikit-learn's ``predict_proba`` takes 1.5 ms single-threaded (1.7 ms with default thread
pools), the compiled trees 30 us (2026-12-04, 2 cores).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


class CompiledCalibratedTrees:
    """Array form of ``CalibratedClassifierCV(FrozenEstimator(HistGradientBoostingClassifier))``.

    Parameters
    ----------
    calibrated
        A fitted binary ``CalibratedClassifierCV`` with one calibrated classifier (a frozen
        estimator, ``ensemble=False``), method ``sigmoid`` or ``isotonic``.
    """

    def __init__(self, calibrated: Any) -> None:
        ccs = calibrated.calibrated_classifiers_
        if len(ccs) != 1 or len(calibrated.classes_) != 2:
            raise ValueError(
                "CompiledCalibratedTrees needs one binary calibrated classifier (a frozen estimator)."
            )
        cc = ccs[0]
        hgb = getattr(cc.estimator, "estimator", cc.estimator)  # unwrap FrozenEstimator
        if getattr(hgb, "n_trees_per_iteration_", None) != 1:
            raise ValueError("CompiledCalibratedTrees supports binary HistGradientBoostingClassifier only.")
        if getattr(hgb, "is_categorical_", None) is not None:
            raise ValueError("CompiledCalibratedTrees does not support categorical features.")
        trees = [it[0].nodes for it in hgb._predictors]
        n_trees = len(trees)
        width = max(len(t) for t in trees)
        self.feature = np.zeros((n_trees, width), dtype=np.intp)
        self.threshold = np.zeros((n_trees, width))
        self.left = np.zeros((n_trees, width), dtype=np.intp)
        self.right = np.zeros((n_trees, width), dtype=np.intp)
        self.leaf = np.ones((n_trees, width), dtype=bool)
        self.value = np.zeros((n_trees, width))
        self.nan_left = np.zeros((n_trees, width), dtype=bool)
        for i, nodes in enumerate(trees):
            n = len(nodes)
            self.feature[i, :n] = nodes["feature_idx"]
            self.threshold[i, :n] = nodes["num_threshold"]
            self.left[i, :n] = nodes["left"]
            self.right[i, :n] = nodes["right"]
            self.leaf[i, :n] = nodes["is_leaf"].astype(bool)
            self.value[i, :n] = nodes["value"]
            self.nan_left[i, :n] = nodes["missing_go_to_left"].astype(bool)
        self.depth = max(int(t["depth"].max()) for t in trees)
        self.baseline = float(np.asarray(hgb._baseline_prediction).ravel()[0])
        self.n_features = int(hgb.n_features_in_)
        calibrator = cc.calibrators[0]
        self.method = calibrated.method
        if self.method == "sigmoid":
            self.a, self.b = float(calibrator.a_), float(calibrator.b_)
        elif self.method == "isotonic":
            self.iso_x = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
            self.iso_y = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
        else:
            raise ValueError(
                f"CompiledCalibratedTrees supports sigmoid and isotonic calibration, not {self.method!r}."
            )
        # flat node tables; a leaf points to itself, so walking past it is a no-op
        offset = (np.arange(n_trees) * width)[:, None]
        self._root = offset[:, 0].copy()
        self._feat = self.feature.ravel()
        self._thr = self.threshold.ravel()
        self._nan_left = self.nan_left.ravel()
        self._left = np.where(self.leaf, np.arange(width)[None, :], self.left).ravel() + np.repeat(
            offset[:, 0], width
        )
        self._right = np.where(self.leaf, np.arange(width)[None, :], self.right).ravel() + np.repeat(
            offset[:, 0], width
        )
        self._value = self.value.ravel()

    def decision_function(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Raw boosted score (log-odds before calibration) per row of ``X`` (n, n_features)."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"The 'X' parameter of CompiledCalibratedTrees must have shape (n, {self.n_features}). "
                f"Got {x.shape} instead."
            )
        n = x.shape[0]
        node = np.broadcast_to(self._root, (n, self._root.size))  # flat node index per (row, tree)
        xs = x.ravel()
        row_off = (np.arange(n) * self.n_features)[:, None]
        has_nan = bool(np.isnan(xs).any())
        for _ in range(self.depth):
            xv = xs[row_off + self._feat[node]]
            go_left = xv <= self._thr[node]
            if has_nan:
                go_left = np.where(np.isnan(xv), self._nan_left[node], go_left)
            node = np.where(go_left, self._left[node], self._right[node])
        return np.asarray(self.baseline + self._value[node].sum(axis=1))

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``[[P(class 0), P(class 1)], ...]`` as ``CalibratedClassifierCV.predict_proba``."""
        raw = self.decision_function(X)
        if self.method == "sigmoid":
            p1 = 1.0 / (1.0 + np.exp(self.a * raw + self.b))
        else:
            p1 = np.interp(raw, self.iso_x, self.iso_y)
        p1 = np.where((p1 > 1.0) & (p1 <= 1.0 + 1e-5), 1.0, p1)
        return np.column_stack([1.0 - p1, p1])
