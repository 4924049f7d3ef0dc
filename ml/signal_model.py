"""The reference direction classifier: gradient-boosted trees on bar features, calibrated.

Why this file is long: it is one model (fit, calibrate, predict, persist and walk forward); the
features and labels are in :mod:`ml.features`.

:class:`SignalModel` predicts ``P(up)`` for the next ``horizon`` bars (see :mod:`ml.features`
for the features and the label) with scikit-learn's ``HistGradientBoostingClassifier``, then
calibrates it with a sigmoid (Platt 1999) or isotonic map fitted on the *latest* slice of the
training window (``CalibratedClassifierCV`` on a ``FrozenEstimator``): the trees are fitted on
the earlier part, the calibrator on the later part, so the calibration set is never used to fit
the trees and never lies before them in time.

Training at time ``T`` uses only rows whose label is known at ``T`` (``ts + horizon * bar <= T``),
optionally within the last ``train_window_bars`` bars; :func:`iter_walk_forward` retrains every
``retrain_every_bars`` and scores the next block with the model of its past, giving honest
out-of-sample forecasts.

Signals follow ``trade.signal.v5``: ``symbol``, ``ts``, ``action`` (``BUY`` when ``P(up) >= 0.5``,
else ``SELL``), ``confidence = max(p, 1 - p)``, ``model_version`` and ``top_features`` (per-signal
attribution from :func:`ml.attribution.local_attribution`, signed as support for the action).

Jobs should call :func:`single_threaded` around fitting and scoring: on small shared machines the
default BLAS/OpenMP thread pools made predictions about 100x slower.

Model files are pickles: load only files this platform wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from infra.artifacts import atomic_write_bytes
from infra.bus import TOPIC_SIGNAL, new_event
from infra.loaders import infer_bar_frequency
from infra.validate import check_choice, check_int, check_real
from ml.attribution import local_attribution, predict_up, top_contributions
from ml.fast_predict import CompiledCalibratedTrees
from ml.features import FeatureConfig, compute_features, make_labels

FILE_FORMAT = "ml.signal_model/1"
SIGNAL_COLUMNS = ["symbol", "ts", "action", "confidence", "p_up", "model_version", "top_features"]
FAST_PATH_MAX_ROWS = 256
"""Batches up to this many rows are scored by :class:`~ml.fast_predict.CompiledCalibratedTrees`;
larger ones by scikit-learn, whose compiled loop wins once the per-call overhead is amortised."""


_CONTROLLER: Any = None


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Limit BLAS and OpenMP pools to one thread inside the block (``threadpoolctl``).

    threadpoolctl only limits libraries already loaded, so scikit-learn's OpenMP-using modules
    are imported first. The library scan runs once per process (a cached
    ``ThreadpoolController``): entering the block then costs well under a millisecond.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime so the limit reaches it)
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1):
        yield


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Hyperparameters of :class:`SignalModel`."""

    horizon: int = 1
    """Bars ahead whose direction is the label."""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    """Feature windows."""
    max_iter: int = 100
    """Boosting rounds."""
    learning_rate: float = 0.03
    """Shrinkage of each tree."""
    max_leaf_nodes: int = 4
    """Leaves per tree (small: next-bar direction is mostly noise, deep trees fit it)."""
    min_samples_leaf: int = 200
    """Minimum rows per leaf (regularises the noisy direction target)."""
    l2_regularization: float = 5.0
    """L2 penalty on leaf values."""
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    """Probability calibration method."""
    calibration_fraction: float = 0.25
    """Latest share of the training window used to fit the calibrator."""
    train_window_bars: int | None = 720
    """Bars (per symbol, i.e. time span) in the training window; ``None`` for expanding."""
    random_state: int = 0
    """Seed of the trees."""
    single_thread: bool = True
    """Fit (and score large batches) with BLAS/OpenMP limited to one thread; see :func:`single_threaded`."""

    def __post_init__(self) -> None:
        func = "ModelConfig"
        check_int(self.horizon, param="horizon", func=func, minimum=1)
        check_choice(self.calibration, param="calibration", func=func, choices=("sigmoid", "isotonic"))
        check_real(
            self.calibration_fraction, param="calibration_fraction", func=func, minimum=0.05, maximum=0.5
        )
        if self.train_window_bars is not None:
            check_int(self.train_window_bars, param="train_window_bars", func=func, minimum=48)


@dataclass
class FeatureSet:
    """Features and labels of a bar frame, computed once and sliced by time."""

    features: pd.DataFrame
    labels: pd.DataFrame
    bar_freq: pd.Timedelta
    names: tuple[str, ...]

    @classmethod
    def from_bars(cls, bars: pd.DataFrame, config: ModelConfig) -> FeatureSet:
        freq = bars.attrs.get("bar_freq") or infer_bar_frequency(bars)
        feats = compute_features(bars, config.features)
        labels = make_labels(bars, horizon=config.horizon)
        return cls(feats, labels, pd.Timedelta(freq), config.features.names)

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        """Rows whose every feature is finite."""
        return np.asarray(np.isfinite(self.features[list(self.names)].to_numpy()).all(axis=1))


def _version(end: pd.Timestamp, payload: bytes) -> str:
    return f"sig-{end.strftime('%Y%m%d%H%M')}-{hashlib.sha256(payload).hexdigest()[:8]}"


class SignalModel:
    """Calibrated gradient-boosting direction classifier on bar features.

    Parameters
    ----------
    config
        Hyperparameters; default :class:`ModelConfig`.

    Attributes
    ----------
    estimator_
        The fitted ``CalibratedClassifierCV``.
    feature_names_
        Input columns, in order.
    baseline_
        Median training row (reference for per-signal attribution).
    train_start_, train_end_
        First and last ``ts`` of the training rows (UTC).
    trained_until_
        The time ``T`` the model was trained at: no row with a label unknown at ``T`` was used.
    n_train_, n_calibration_
        Rows used to fit the trees and the calibrator.
    model_version_
        ``sig-<yyyymmddHHMM of T>-<8 hex of a hash of config and training data>``.

    Examples
    --------
    >>> from infra.loaders import load_bars_many
    >>> bars = load_bars_many([f"data/sample/binance_usdm/{s}_USDT_USDT-1h-futures.csv" for s in ("BTC", "ETH")])
    >>> model = SignalModel().fit(bars)
    >>> sig = model.signals(bars)
    >>> list(sig.columns) == SIGNAL_COLUMNS, len(sig), model.model_version_.startswith("sig-")
    (True, 2, True)
    """

    wants_frame = True
    classes_ = np.array([0, 1])

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()

    # ------------------------------------------------------------------ fitting
    def fit(self, bars: pd.DataFrame, *, until: pd.Timestamp | None = None) -> SignalModel:
        """Compute features from ``bars`` and fit on rows whose label is known at ``until``."""
        return self.fit_features(FeatureSet.from_bars(bars, self.config), until=until)

    def fit_features(self, fs: FeatureSet, *, until: pd.Timestamp | None = None) -> SignalModel:
        """Fit on a precomputed :class:`FeatureSet` (see :meth:`fit`)."""
        with single_threaded() if self.config.single_thread else contextlib.nullcontext():
            return self._fit_features(fs, until=until)

    def _fit_features(self, fs: FeatureSet, *, until: pd.Timestamp | None) -> SignalModel:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.frozen import FrozenEstimator

        cfg = self.config
        ts = fs.features["ts"]
        end = ts.max() if until is None else pd.Timestamp(until)
        if end.tzinfo is None:
            raise ValueError(
                f"The 'until' parameter of SignalModel.fit must be timezone-aware UTC. Got {until!r}."
            )
        known = (ts + cfg.horizon * fs.bar_freq <= end).to_numpy()
        mask = fs.valid & known & fs.labels["y"].notna().to_numpy()
        if cfg.train_window_bars is not None:
            mask &= (ts > end - cfg.train_window_bars * fs.bar_freq).to_numpy()
        rows = np.flatnonzero(mask)
        rows = rows[np.argsort(ts.to_numpy()[rows], kind="stable")]  # time order across symbols
        names = list(fs.names)
        X = fs.features[names].iloc[rows].astype(np.float64)
        y = fs.labels["y"].to_numpy()[rows].astype(np.int64)
        n_cal = round(len(rows) * cfg.calibration_fraction)
        n_fit = len(rows) - n_cal
        if n_fit < 200 or n_cal < 50:
            raise ValueError(
                f"SignalModel.fit needs at least 200 training and 50 calibration rows with known labels "
                f"before {end.isoformat()}; got {n_fit} and {n_cal}. Give it more bars."
            )
        y_fit, y_cal = y[:n_fit], y[n_fit:]
        if len(np.unique(y_fit)) < 2 or len(np.unique(y_cal)) < 2:
            raise ValueError(
                "SignalModel.fit needs both up and down labels in the fit and calibration slices."
            )
        hgb = HistGradientBoostingClassifier(
            max_iter=cfg.max_iter,
            learning_rate=cfg.learning_rate,
            max_leaf_nodes=cfg.max_leaf_nodes,
            min_samples_leaf=cfg.min_samples_leaf,
            l2_regularization=cfg.l2_regularization,
            early_stopping=False,
            random_state=cfg.random_state,
        ).fit(X.iloc[:n_fit], y_fit)
        cal = CalibratedClassifierCV(FrozenEstimator(hgb), method=cfg.calibration)
        cal.fit(X.iloc[n_fit:], y_cal)
        self.estimator_ = cal
        self.compiled_ = CompiledCalibratedTrees(cal)
        self.feature_names_ = names
        self.baseline_ = X.median().to_numpy()
        train_ts = ts.iloc[rows]
        self.train_start_ = pd.Timestamp(train_ts.min())
        self.train_end_ = pd.Timestamp(train_ts.max())
        self.trained_until_ = end
        self.n_train_, self.n_calibration_ = n_fit, n_cal
        digest = hashlib.sha256(repr(asdict(cfg)).encode())
        digest.update(np.ascontiguousarray(X.to_numpy()).tobytes())
        digest.update(y.tobytes())
        self.model_version_ = _version(end, digest.digest())
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise RuntimeError("This SignalModel is not fitted yet; call fit(bars) first.")

    # ------------------------------------------------------------------ scoring
    def predict_proba(self, X: pd.DataFrame | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``[[P(down), P(up)], ...]`` for feature rows (columns ``feature_names_``).

        A DataFrame is matched by column name; an array must hold the columns in
        ``feature_names_`` order. Up to :data:`FAST_PATH_MAX_ROWS` rows go through the compiled
        trees (the same numbers as ``estimator_.predict_proba`` to 1e-12, pinned by tests, without
        scikit-learn's per-call overhead), larger batches through scikit-learn.
        """
        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            same = X.shape[1] == len(self.feature_names_) and all(
                a == b for a, b in zip(X.columns, self.feature_names_)
            )
            arr = (X if same else X[self.feature_names_]).to_numpy(dtype=np.float64)
        else:
            arr = np.asarray(X, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != len(self.feature_names_):
                raise ValueError(
                    f"The 'X' parameter of SignalModel.predict_proba must have {len(self.feature_names_)} "
                    f"columns. Got shape {arr.shape} instead."
                )
        if arr.shape[0] <= FAST_PATH_MAX_ROWS:
            return self.compiled_.predict_proba(arr)
        frame = pd.DataFrame(arr, columns=self.feature_names_)
        with single_threaded() if self.config.single_thread else contextlib.nullcontext():
            return np.asarray(self.estimator_.predict_proba(frame), dtype=np.float64)

    def signals(self, bars: pd.DataFrame, *, latest_only: bool = True, top_k: int = 3) -> pd.DataFrame:
        """``trade.signal.v5``-shaped signals (columns :data:`SIGNAL_COLUMNS`).

        With ``latest_only`` one row per symbol (its latest bar with valid features); otherwise
        every valid row (attribution is then skipped: ``top_features`` is an empty list).
        """
        self._check_fitted()
        fs = FeatureSet.from_bars(bars, self.config)
        return self.signals_from_features(fs.features[fs.valid], latest_only=latest_only, top_k=top_k)

    def signals_from_features(
        self, features: pd.DataFrame, *, latest_only: bool = True, top_k: int = 3
    ) -> pd.DataFrame:
        """:meth:`signals` on a precomputed feature frame (``symbol``, ``ts`` and the features)."""
        self._check_fitted()
        rows = features
        if latest_only:
            rows = features.sort_values("ts", kind="stable").groupby("symbol", sort=True).tail(1)
        X = rows[self.feature_names_].astype(np.float64)
        if len(X) == 0:
            return pd.DataFrame(columns=SIGNAL_COLUMNS)
        p = predict_up(self, X)
        sign = np.where(p >= 0.5, 1.0, -1.0)
        if latest_only:
            contrib, _ = local_attribution(self, X, self.baseline_)
            top = top_contributions(contrib, k=top_k, sign=sign)
        else:
            top = [[] for _ in range(len(X))]
        return pd.DataFrame(
            {
                "symbol": rows["symbol"].to_numpy(),
                "ts": rows["ts"].to_numpy(),
                "action": np.where(sign > 0, "BUY", "SELL"),
                "confidence": np.maximum(p, 1.0 - p),
                "p_up": p,
                "model_version": self.model_version_,
                "top_features": top,
            }
        ).reset_index(drop=True)

    # ------------------------------------------------------------------ persistence
    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-able description: version, training window, features, config."""
        self._check_fitted()
        return {
            "model_version": self.model_version_,
            "train_start": self.train_start_.isoformat(),
            "train_end": self.train_end_.isoformat(),
            "trained_until": self.trained_until_.isoformat(),
            "n_train": self.n_train_,
            "n_calibration": self.n_calibration_,
            "feature_names": list(self.feature_names_),
            "config": {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in _flat_config(self.config).items()
            },
        }

    def save(self, path: str | Path) -> Path:
        """Pickle the model with its metadata to ``path`` atomically; returns the path."""
        self._check_fitted()
        p = Path(path)
        buf = io.BytesIO()
        pickle.dump({"format": FILE_FORMAT, "metadata": self.metadata, "model": self}, buf, protocol=5)
        atomic_write_bytes(p, buf.getvalue())
        return p

    @classmethod
    def load(cls, path: str | Path) -> SignalModel:
        """Load a model written by :meth:`save` (trusted files only: this unpickles)."""
        p = Path(path)
        with p.open("rb") as fh:
            payload = pickle.load(fh)
        if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
            raise ValueError(f"{p} is not a SignalModel file (expected format {FILE_FORMAT!r}).")
        model = payload["model"]
        if not isinstance(model, cls):
            raise ValueError(f"{p} holds a {type(model).__name__}, not a SignalModel.")
        return model


def _flat_config(cfg: ModelConfig) -> dict[str, Any]:
    d = asdict(cfg)
    feats = d.pop("features")
    d.update({f"features.{k}": v for k, v in feats.items()})
    return d


def signal_events(signals: pd.DataFrame) -> list[dict[str, Any]]:
    """``trade.signal.v5`` events (see :mod:`infra.bus`) for a signal frame."""
    events = []
    for rec in signals.to_dict(orient="records"):
        ts = pd.Timestamp(rec["ts"])
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        payload = {
            "symbol": str(rec["symbol"]),
            "action": str(rec["action"]),
            "confidence": float(rec["confidence"]),
            "model_version": str(rec["model_version"]),
            "top_features": list(rec["top_features"]),
        }
        events.append(new_event(TOPIC_SIGNAL, payload, ts=ts.to_pydatetime()))
    return events


# --------------------------------------------------------------------------- walk-forward
@dataclass
class Fold:
    """One walk-forward step: the model trained at ``start`` and the rows it scores."""

    index: int
    start: pd.Timestamp
    end: pd.Timestamp
    model: SignalModel
    rows: pd.DataFrame
    """``symbol``, ``ts``, ``y`` and the features of the rows with ``start <= ts < end``."""


def iter_walk_forward(
    bars: pd.DataFrame,
    *,
    config: ModelConfig | None = None,
    min_train_bars: int = 360,
    retrain_every_bars: int = 168,
    features: FeatureSet | None = None,
) -> Iterator[Fold]:
    """Walk forward through ``bars``: train at ``T_k``, score ``[T_k, T_{k+1})``, repeat.

    ``T_0`` is the first timestamp plus ``min_train_bars`` bars; ``T_{k+1} = T_k +
    retrain_every_bars`` bars. The model of fold ``k`` sees only rows whose label is known at
    ``T_k`` (every bar it uses is at or before ``T_k``); the rows it scores are at or after
    ``T_k``. Rows without a known label are scored too (``y`` is NaN there).
    """
    cfg = config or ModelConfig()
    for name, value in (("min_train_bars", min_train_bars), ("retrain_every_bars", retrain_every_bars)):
        check_int(value, param=name, func="iter_walk_forward", minimum=1)
    fs = features or FeatureSet.from_bars(bars, cfg)
    ts = fs.features["ts"]
    t_first, t_last = ts.min(), ts.max()
    start = t_first + min_train_bars * fs.bar_freq
    valid = fs.valid
    k = 0
    while start <= t_last:
        end = start + retrain_every_bars * fs.bar_freq
        sel = valid & ((ts >= start) & (ts < end)).to_numpy()
        if sel.any():
            model = SignalModel(cfg).fit_features(fs, until=start)
            rows = fs.features.loc[sel].copy()
            rows.insert(2, "y", fs.labels["y"].to_numpy()[sel])
            yield Fold(k, start, end, model, rows.sort_values(["ts", "symbol"], kind="stable"))
            k += 1
        start = end


def walk_forward_predict(
    bars: pd.DataFrame, *, on_fold: Callable[[SignalModel], None] | None = None, **kwargs: Any
) -> pd.DataFrame:
    """Out-of-sample ``P(up)`` for every scored row: ``symbol, ts, y, p_up, model_version, fold``.

    ``on_fold`` is called with each refit's model (e.g. to register it).
    """
    parts = []
    for fold in iter_walk_forward(bars, **kwargs):
        if on_fold is not None:
            on_fold(fold.model)
        p = predict_up(fold.model, fold.rows[fold.model.feature_names_])
        parts.append(
            fold.rows[["symbol", "ts", "y"]].assign(
                p_up=p, model_version=fold.model.model_version_, fold=fold.index
            )
        )
    if not parts:
        return pd.DataFrame(columns=["symbol", "ts", "y", "p_up", "model_version", "fold"])
    return pd.concat(parts, ignore_index=True)
