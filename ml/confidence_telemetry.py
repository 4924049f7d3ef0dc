"""Confidence telemetry for any classifier with ``predict_proba`` (the computation; pure).

:class:`ConfidenceTelemetry` follows the streaming style: feed scored rows with
:meth:`~ConfidenceTelemetry.update` (which returns ``self``), add outcomes when they are known
(with the batch, or later with :meth:`~ConfidenceTelemetry.record_outcomes`), read the state
through properties, and :meth:`~ConfidenceTelemetry.snapshot` it into the JSON the dashboard reads.

Definitions (binary direction model, ``p = P(up)`` from ``predict_proba``):

* action ``BUY`` if ``p >= 0.5`` else ``SELL``; **confidence** ``c = max(p, 1 - p)``;
* outcome ``y`` (1 up, 0 not up); the signal is **correct** when ``y == (p >= 0.5)``;
* calibration is top-label (Guo et al. 2017): reliability bins of ``c`` on [0.5, 1] against the
  hit rate, ECE over those bins, and calibration-in-the-large ``mean(correct) - mean(c)`` with its
  standard error under calibration (see :mod:`ml.calibration`). The Brier score of ``c`` against
  ``correct`` equals the Brier score of ``p`` against ``y``;
* feature attribution: permutation importance of the latest ``importance_window`` rows with known
  outcomes (:func:`ml.attribution.permutation_ranking`), recomputed only when the newest event
  time is ``importance_interval`` past the last computation and cached otherwise (the cache
  records the model version it describes; :meth:`~ConfidenceTelemetry.refresh_importance` forces
  a recomputation, e.g. after a retrain); per-signal attribution of the latest row per symbol from
  :func:`ml.attribution.local_attribution`.

All durations come from the rows' timestamps, never the wall clock, so a replay gives the same
artifact. The job that scores the reference model and writes the artifact is :mod:`ml.telemetry`
(``python -m ml.telemetry``).

Why this file is long: it is one accumulator, :class:`ConfidenceTelemetry`, whose properties are
the definitions above (calibration, reliability, histograms, attribution, the snapshot); the job
and its I/O already live in :mod:`ml.telemetry`.

This module is over 400 lines because it is one concept: the accumulator class, whose properties
are the telemetry's definitions above; splitting its methods across files would scatter them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from ml.attribution import local_attribution, permutation_ranking, predict_up, top_contributions
from ml.calibration import (
    brier_score,
    calibration_in_the_large,
    calibration_over_time,
    ece_null_distribution,
    expected_calibration_error,
    reliability_bins,
)

if TYPE_CHECKING:
    from infra.settings import Settings

log = logging.getLogger(__name__)

ARTIFACT = "ml_telemetry"
SCHEMA_VERSION = 1
HIGH_CONFIDENCE = 0.80
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
ALL = "ALL"
NORMAL_MIN_COUNT = 100
"""Bins with at least this many rows use the normal law in the ECE null simulation (cheap cycles)."""


@dataclass(frozen=True)
class ImportanceCache:
    """A cached permutation-importance result."""

    computed_at: pd.Timestamp
    """Event time (newest row ``ts``) when it was computed."""
    model_version: str
    n_rows: int
    table: pd.DataFrame


class ConfidenceTelemetry:
    """Streaming confidence, calibration and attribution statistics of a probabilistic classifier.

    Parameters
    ----------
    estimator
        Fitted binary classifier with ``predict_proba`` (class 1 = up).
    feature_names
        Column names when ``X`` is passed as an array (default ``x0, x1, ...``).
    model_version
        Label recorded with every scored row.
    high_confidence
        Threshold drawn on the dashboard and used for ``share_high``.
    n_bins
        Reliability bins over confidence [0.5, 1].
    bucket
        Pandas offset alias of the time buckets of the over-time tables.
    max_rows
        Scored rows retained (oldest dropped first).
    importance_window
        Latest rows with known outcomes used by permutation importance.
    importance_interval
        Minimum event-time gap between two permutation-importance computations.
    importance_repeats
        Shuffles per feature.
    min_importance_rows
        Fewer labelled rows than this: no importance yet.
    top_n
        Features reported.
    recent_points
        Latest points per symbol kept raw for the live confidence chart.
    ece_null_sims
        Simulations of a calibrated model behind the ECE alarm levels (``ece_null_q95``).
    random_state
        Seed of the permutations and the ECE null simulation.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 2)); y = (X[:, 0] + rng.normal(size=500) > 0).astype(int)
    >>> est = LogisticRegression().fit(X, y)
    >>> ts = pd.date_range("2025-01-01", periods=500, freq="1h", tz="UTC")
    >>> tel = ConfidenceTelemetry(est, model_version="lr-1").update(X, ts=ts, symbol="X", y=y)
    >>> tel.n_rows_, bool(0.0 <= tel.ece_ <= 1.0)
    (500, True)
    """

    def __init__(
        self,
        estimator: Any,
        *,
        feature_names: Sequence[str] | None = None,
        model_version: str = "unknown",
        high_confidence: float = HIGH_CONFIDENCE,
        n_bins: int = 10,
        bucket: str = "1D",
        max_rows: int = 200_000,
        importance_window: int = 2000,
        importance_interval: pd.Timedelta | str = "1D",
        importance_repeats: int = 5,
        min_importance_rows: int = 200,
        top_n: int = 10,
        recent_points: int = 168,
        ece_null_sims: int = 200,
        random_state: int = 0,
    ) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise ValueError(
                "The 'estimator' parameter of ConfidenceTelemetry must have predict_proba. "
                f"Got {type(estimator).__name__} instead."
            )
        if not 0.5 <= high_confidence < 1.0:
            raise ValueError(
                "The 'high_confidence' parameter of ConfidenceTelemetry must be in [0.5, 1). "
                f"Got {high_confidence!r} instead."
            )
        for name, value, lo in (
            ("n_bins", n_bins, 1),
            ("max_rows", max_rows, 1),
            ("importance_window", importance_window, 10),
            ("importance_repeats", importance_repeats, 1),
            ("min_importance_rows", min_importance_rows, 10),
            ("top_n", top_n, 1),
            ("recent_points", recent_points, 1),
            ("ece_null_sims", ece_null_sims, 10),
        ):
            if not isinstance(value, int) or value < lo:
                raise ValueError(
                    f"The '{name}' parameter of ConfidenceTelemetry must be an int >= {lo}. Got {value!r} instead."
                )
        self.estimator = estimator
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.model_version = model_version
        self.high_confidence = high_confidence
        self.n_bins = n_bins
        self.bucket = bucket
        self.max_rows = max_rows
        self.importance_window = importance_window
        self.importance_interval = pd.Timedelta(importance_interval)
        self.importance_repeats = importance_repeats
        self.min_importance_rows = min_importance_rows
        self.top_n = top_n
        self.recent_points = recent_points
        self.ece_null_sims = ece_null_sims
        self.random_state = random_state
        self._chunks: list[pd.DataFrame] = []
        self._frame: pd.DataFrame | None = None
        self._x_chunks: list[pd.DataFrame] = []  # features of the latest rows, with their row ids
        self._next_id = 0
        self._importance: ImportanceCache | None = None
        self.n_importance_computations_ = 0

    # ------------------------------------------------------------------ streaming input
    def set_model(self, estimator: Any, *, model_version: str) -> ConfidenceTelemetry:
        """Score later batches with ``estimator`` (e.g. after a retrain); returns ``self``."""
        if not hasattr(estimator, "predict_proba"):
            raise ValueError(
                f"The 'estimator' parameter of set_model must have predict_proba. Got {estimator!r}."
            )
        self.estimator = estimator
        self.model_version = model_version
        return self

    def _as_frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            if self.feature_names is None:
                self.feature_names = [str(c) for c in X.columns]
            return X[self.feature_names].reset_index(drop=True)
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(
                f"The 'X' parameter of ConfidenceTelemetry.update must be 2-d. Got shape {arr.shape}."
            )
        if self.feature_names is None:
            self.feature_names = [f"x{i}" for i in range(arr.shape[1])]
        if arr.shape[1] != len(self.feature_names):
            raise ValueError(
                f"The 'X' parameter of ConfidenceTelemetry.update must have {len(self.feature_names)} columns. "
                f"Got {arr.shape[1]} instead."
            )
        return pd.DataFrame(arr, columns=self.feature_names)

    def _feed(self, X: pd.DataFrame) -> Any:
        wants_frame = getattr(self.estimator, "feature_names_in_", None) is not None or getattr(
            self.estimator, "wants_frame", False
        )
        return X if wants_frame else X.to_numpy(dtype=np.float64)

    def update(
        self,
        X: Any,
        *,
        ts: Any,
        symbol: str | Sequence[str] | npt.ArrayLike = "ALL",
        y: npt.ArrayLike | None = None,
    ) -> ConfidenceTelemetry:
        """Score a batch and record it; returns ``self``.

        Parameters
        ----------
        X
            Feature rows (DataFrame, or array in ``feature_names`` order).
        ts
            Event time of each row (timezone-aware UTC), or one time for the whole batch.
        symbol
            Symbol of each row, or one symbol for the batch.
        y
            Outcomes (1 up, 0 not up; NaN unknown) when already known.
        """
        frame = self._as_frame(X)
        n = len(frame)
        if n == 0:
            return self
        if isinstance(ts, pd.Series | pd.Index | np.ndarray) and np.ndim(ts) == 1:
            t = pd.DatetimeIndex(ts)
        else:  # one time for the whole batch, or a list
            t = pd.DatetimeIndex(pd.to_datetime(np.broadcast_to(np.asarray(ts, dtype=object), (n,))))
        if len(t) != n:
            raise ValueError(
                f"The 'ts' parameter of ConfidenceTelemetry.update must have {n} values. Got {len(t)}."
            )
        if t.tz is None:
            raise ValueError("The 'ts' parameter of ConfidenceTelemetry.update must be timezone-aware UTC.")
        t = t.tz_convert("UTC")
        sym = np.broadcast_to(np.asarray(symbol, dtype=object), (n,))
        yy = np.full(n, np.nan) if y is None else np.asarray(y, dtype=np.float64).ravel()
        if yy.shape != (n,):
            raise ValueError(
                f"The 'y' parameter of ConfidenceTelemetry.update must have {n} values. Got {yy.shape}."
            )
        if np.any(np.isfinite(yy) & ~np.isin(yy, (0.0, 1.0))):
            raise ValueError("The 'y' parameter of ConfidenceTelemetry.update must hold 0, 1 or NaN.")
        p = predict_up(self.estimator, self._feed(frame))
        ids = np.arange(self._next_id, self._next_id + n)
        self._next_id += n
        chunk = pd.DataFrame(
            {
                "row_id": ids,
                "ts": t,
                "symbol": sym,
                "p_up": p,
                "confidence": np.maximum(p, 1.0 - p),
                "y": yy,
                "model_version": self.model_version,
            }
        )
        self._chunks.append(chunk)
        self._frame = None
        keep = 2 * self.importance_window
        self._x_chunks.append(frame.iloc[-keep:].assign(_row_id=ids[-keep:], _symbol=sym[-keep:]))
        total = sum(len(c) for c in self._x_chunks)
        while total - len(self._x_chunks[0]) >= keep:
            total -= len(self._x_chunks.pop(0))
        if sum(len(c) for c in self._chunks) > self.max_rows:
            self._frame = self.records.iloc[-self.max_rows :].reset_index(drop=True)
            self._chunks = [self._frame]
        return self

    def record_outcomes(self, *, symbol: npt.ArrayLike, ts: Any, y: npt.ArrayLike) -> ConfidenceTelemetry:
        """Attach outcomes that became known later, matched on (``symbol``, ``ts``); returns ``self``."""
        out = pd.DataFrame(
            {
                "symbol": np.asarray(symbol, dtype=object),
                "ts": pd.to_datetime(np.asarray(ts), utc=True),
                "y_new": np.asarray(y, dtype=np.float64),
            }
        ).drop_duplicates(["symbol", "ts"], keep="last")
        rec = self.records.merge(out, on=["symbol", "ts"], how="left")
        rec["y"] = rec["y_new"].where(rec["y_new"].notna(), rec["y"])
        self._frame = rec.drop(columns="y_new")
        self._chunks = [self._frame]
        return self

    # ------------------------------------------------------------------ state
    @property
    def records(self) -> pd.DataFrame:
        """Every retained scored row: ``row_id, ts, symbol, p_up, confidence, y, model_version``."""
        if self._frame is None:
            if not self._chunks:
                self._frame = pd.DataFrame(
                    {
                        "row_id": pd.Series(dtype=np.int64),
                        "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                        "symbol": pd.Series(dtype=object),
                        "p_up": pd.Series(dtype=np.float64),
                        "confidence": pd.Series(dtype=np.float64),
                        "y": pd.Series(dtype=np.float64),
                        "model_version": pd.Series(dtype=object),
                    }
                )
            else:
                self._frame = (
                    pd.concat(self._chunks, ignore_index=True) if len(self._chunks) > 1 else self._chunks[0]
                )
            self._chunks = [self._frame] if len(self._frame) else []
        return self._frame

    @property
    def n_rows_(self) -> int:
        """Rows retained."""
        return len(self.records)

    @property
    def latest_ts_(self) -> pd.Timestamp | None:
        """Newest event time seen."""
        rec = self.records
        return None if rec.empty else pd.Timestamp(rec["ts"].max())

    def _resolved(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], pd.Series]:
        rec = self.records
        known = rec["y"].notna().to_numpy()
        r = rec.loc[known]
        correct = (r["y"].to_numpy() == (r["p_up"].to_numpy() >= 0.5)).astype(np.float64)
        return correct, r["confidence"].to_numpy(), r["ts"]

    @property
    def n_resolved_(self) -> int:
        """Rows with a known outcome."""
        return int(self.records["y"].notna().sum())

    @property
    def brier_(self) -> float:
        """Brier score of the resolved rows (NaN when none)."""
        correct, conf, _ = self._resolved()
        return brier_score(correct, conf)

    @property
    def ece_(self) -> float:
        """Top-label expected calibration error of the resolved rows."""
        correct, conf, _ = self._resolved()
        return expected_calibration_error(correct, conf, n_bins=self.n_bins, value_range=(0.5, 1.0))

    @property
    def reliability_(self) -> pd.DataFrame:
        """Reliability bins of confidence against hit rate (see :func:`ml.calibration.reliability_bins`)."""
        correct, conf, _ = self._resolved()
        return reliability_bins(correct, conf, n_bins=self.n_bins, value_range=(0.5, 1.0))

    @property
    def calibration_in_the_large_(self) -> Any:
        """Hit rate minus mean confidence, with SE and z (negative: over-confident)."""
        correct, conf, _ = self._resolved()
        return calibration_in_the_large(correct, conf)

    @property
    def calibration_over_time_(self) -> pd.DataFrame:
        """Brier, ECE, mean confidence, hit rate and ECE's calibrated-model 95% level per time bucket."""
        correct, conf, ts = self._resolved()
        out = calibration_over_time(
            ts, correct, conf, freq=self.bucket, n_bins=self.n_bins, value_range=(0.5, 1.0)
        )
        out = out.rename(columns={"mean_prob": "mean_confidence", "mean_outcome": "hit_rate"})
        # what a calibrated model with the same confidences would show in each bucket (95th pct)
        if len(out):
            codes, uniques = pd.factorize(pd.DatetimeIndex(ts).floor(self.bucket), sort=True)
            null = ece_null_distribution(
                conf,
                n_bins=self.n_bins,
                value_range=(0.5, 1.0),
                n_sim=self.ece_null_sims,
                random_state=self.random_state,
                groups=codes,
                normal_min_count=NORMAL_MIN_COUNT,
            )
            q95 = pd.Series(np.quantile(null, 0.95, axis=1), index=uniques)
            out["ece_null_q95"] = q95.reindex(pd.DatetimeIndex(out["bucket_start"])).to_numpy()
        else:
            out["ece_null_q95"] = pd.Series(dtype=np.float64)
        return out

    @property
    def confidence_over_time_(self) -> pd.DataFrame:
        """Confidence quantiles, mean and share above ``high_confidence`` per bucket and symbol (and ``ALL``)."""
        rec = self.records
        cols = ["bucket_start", "symbol", "n", "mean", *[f"q{int(q * 100)}" for q in QUANTILES], "share_high"]
        if rec.empty:
            return pd.DataFrame(columns=cols)
        df = pd.DataFrame(
            {
                "bucket_start": rec["ts"].dt.floor(self.bucket),
                "symbol": rec["symbol"],
                "c": rec["confidence"],
                "high": (rec["confidence"] >= self.high_confidence).astype(np.float64),
            }
        )
        both = pd.concat([df, df.assign(symbol=ALL)], ignore_index=True)
        b_codes, b_uni = pd.factorize(both["bucket_start"], sort=True)
        s_codes, s_uni = pd.factorize(both["symbol"], sort=True)
        pair, codes = np.unique(b_codes * len(s_uni) + s_codes, return_inverse=True)
        stats = group_quantiles(both["c"].to_numpy(), codes, QUANTILES)
        out = pd.DataFrame(
            {
                "bucket_start": pd.DatetimeIndex(b_uni)[pair // len(s_uni)],
                "symbol": np.asarray(s_uni)[pair % len(s_uni)],
            }
        )
        uniques = pair
        n = np.bincount(codes, minlength=len(uniques))
        out["n"] = n
        out["mean"] = np.bincount(codes, weights=both["c"].to_numpy(), minlength=len(uniques)) / n
        for q, col in zip(QUANTILES, stats.T):
            out[f"q{int(q * 100)}"] = col
        out["share_high"] = np.bincount(codes, weights=both["high"].to_numpy(), minlength=len(uniques)) / n
        return out[cols]

    @property
    def feature_importance_(self) -> pd.DataFrame | None:
        """Permutation importance (best first), recomputed only when due (see the class docs)."""
        if self._importance_due():
            self.refresh_importance()
        return None if self._importance is None else self._importance.table

    def _importance_due(self) -> bool:
        latest = self.latest_ts_
        if latest is None:
            return False
        cache = self._importance
        if cache is None:
            return True
        return latest - cache.computed_at >= self.importance_interval

    def refresh_importance(self) -> pd.DataFrame | None:
        """Recompute permutation importance now on the latest labelled window (``None`` if too few rows)."""
        if not self._x_chunks:
            return None
        xf = pd.concat(self._x_chunks, ignore_index=True)
        rec = self.records
        y_by_id = pd.Series(rec["y"].to_numpy(), index=rec["row_id"].to_numpy())
        yx = y_by_id.reindex(xf["_row_id"].to_numpy()).to_numpy()
        ok = np.isfinite(yx)
        if ok.sum() < self.min_importance_rows:
            return None
        sel = np.flatnonzero(ok)[-self.importance_window :]
        X = xf.iloc[sel].drop(columns=["_row_id", "_symbol"]).reset_index(drop=True)
        y = yx[sel].astype(np.int64)
        if len(np.unique(y)) < 2:
            return None
        table = permutation_ranking(
            self.estimator, X, y, n_repeats=self.importance_repeats, random_state=self.random_state
        )
        latest = self.latest_ts_
        if latest is None:  # the chunks above set it; a raise (not assert) survives python -O
            raise RuntimeError("telemetry has no latest timestamp after scoring a window")
        self._importance = ImportanceCache(latest, self.model_version, len(sel), table)
        self.n_importance_computations_ += 1
        return table

    @property
    def latest_signals_(self) -> pd.DataFrame:
        """Latest row per symbol scored by the current model, with its top contributing features.

        Only symbols among the latest ``2 * importance_window`` rows fed are listed (the feature
        buffer); the attribution baseline is the median of that buffer.
        """
        if not self._x_chunks:
            return pd.DataFrame(
                columns=["symbol", "ts", "action", "confidence", "model_version", "top_features"]
            )
        xf = pd.concat(self._x_chunks, ignore_index=True)
        last = xf.groupby("_symbol", sort=True).tail(1)
        X = last.drop(columns=["_row_id", "_symbol"]).reset_index(drop=True)
        rec = self.records.set_index("row_id")
        ts = rec["ts"].reindex(last["_row_id"].to_numpy()).to_numpy()
        p = predict_up(self.estimator, self._feed(X))
        baseline = xf.drop(columns=["_row_id", "_symbol"]).median().to_numpy()
        contrib, method = local_attribution(self.estimator, X, baseline)
        sign = np.where(p >= 0.5, 1.0, -1.0)
        top = top_contributions(contrib, k=3, sign=sign)
        out = pd.DataFrame(
            {
                "symbol": last["_symbol"].to_numpy(),
                "ts": ts,
                "action": np.where(sign > 0, "BUY", "SELL"),
                "confidence": np.maximum(p, 1.0 - p),
                "model_version": self.model_version,
                "top_features": top,
            }
        )
        out.attrs["attribution_method"] = method
        return out

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """Everything the ML Confidence tab draws, as plain JSON-able data (see docs/ml_telemetry.md)."""
        rec = self.records
        correct, conf, _ = self._resolved()
        citl = calibration_in_the_large(correct, conf)
        ece = expected_calibration_error(correct, conf, n_bins=self.n_bins, value_range=(0.5, 1.0))
        null_q95 = float("nan")
        if conf.size:
            null = ece_null_distribution(
                conf,
                n_bins=self.n_bins,
                value_range=(0.5, 1.0),
                n_sim=self.ece_null_sims,
                random_state=self.random_state,
                normal_min_count=NORMAL_MIN_COUNT,
            )
            null_q95 = float(np.quantile(null, 0.95))
        imp = self.feature_importance_
        latest = self.latest_signals_
        edges = np.linspace(0.5, 1.0, self.n_bins + 1)
        hist = {
            str(sym): np.histogram(g["confidence"].to_numpy(), bins=edges)[0].tolist()
            for sym, g in rec.groupby("symbol", sort=True)
        }
        hist[ALL] = np.histogram(rec["confidence"].to_numpy(), bins=edges)[0].tolist()
        recent = rec.groupby("symbol", sort=True).tail(self.recent_points).sort_values(["symbol", "ts"])
        versions = (
            rec.groupby("model_version", sort=False)["ts"]
            .agg(first_ts="min", last_ts="max", n="count")
            .reset_index()
            .sort_values("first_ts", kind="stable")
        )
        return {
            "high_confidence_threshold": self.high_confidence,
            "model_version": self.model_version,
            "model_versions": _records(versions),
            "data_window": {
                "start": rec["ts"].min() if len(rec) else None,
                "end": rec["ts"].max() if len(rec) else None,
                "n_rows": len(rec),
                "n_resolved": int(conf.size),
                "symbols": sorted(map(str, rec["symbol"].unique())),
            },
            "bucket": self.bucket,
            "confidence_over_time": _records(self.confidence_over_time_),
            "confidence_recent": _records(recent[["symbol", "ts", "confidence", "p_up"]]),
            "confidence_histogram": {"edges": edges.tolist(), "counts": hist},
            "calibration": {  # None, not NaN, until an outcome is known (the contract's promise)
                "n": int(conf.size),
                "brier": _finite_or_none(brier_score(correct, conf)),
                "ece": _finite_or_none(ece),
                "ece_null_q95": _finite_or_none(null_q95),
                "hit_rate": _finite_or_none(citl.mean_outcome),
                "mean_confidence": _finite_or_none(citl.mean_prob),
                "citl": {"gap": citl.gap, "se": citl.se, "z": citl.z},
                "n_bins": self.n_bins,
                "reliability": _records(
                    reliability_bins(correct, conf, n_bins=self.n_bins, value_range=(0.5, 1.0)).rename(
                        columns={"mean_prob": "mean_confidence", "observed": "hit_rate"}
                    )
                ),
            },
            "calibration_over_time": _records(self.calibration_over_time_),
            "feature_importance": {
                "method": "permutation (log loss)",
                "computed_at": None if self._importance is None else self._importance.computed_at,
                "model_version": None if self._importance is None else self._importance.model_version,
                "n_rows": None if self._importance is None else self._importance.n_rows,
                "n_repeats": self.importance_repeats,
                "top": [] if imp is None else _records(imp.head(self.top_n)),
            },
            "latest_signals": {
                "attribution_method": latest.attrs.get("attribution_method"),
                "signals": _records(latest),
            },
        }

    def write(self, settings: Settings | None = None, *, source: str = "ml.telemetry") -> dict[str, Any]:
        """Write :meth:`snapshot` as the ``ml_telemetry`` artifact; returns the envelope."""
        from infra.store import open_store

        return open_store(settings).write(
            ARTIFACT, self.snapshot(), source=source, schema_version=SCHEMA_VERSION
        )


def group_quantiles(
    values: npt.NDArray[np.float64], codes: npt.NDArray[np.intp], quantiles: Sequence[float]
) -> npt.NDArray[np.float64]:
    """Quantiles of ``values`` per group code ``0..G-1``, shape ``(G, len(quantiles))``.

    Linear interpolation between order statistics (NumPy's and pandas' default): position
    ``q * (n_g - 1)`` within the sorted group. One sort for all groups.
    """
    n_groups = int(codes.max()) + 1 if codes.size else 0
    order = np.lexsort((values, codes))
    v = values[order]
    count = np.bincount(codes, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    out = np.full((n_groups, len(quantiles)), np.nan)
    has = count > 0
    for j, q in enumerate(quantiles):
        pos = start[has] + q * (count[has] - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.ceil(pos).astype(np.intp)
        out[has, j] = v[lo] + (pos - lo) * (v[hi] - v[lo])
    return out


def _finite_or_none(x: float) -> float | None:
    """``x`` as a float, or ``None`` when it is NaN or infinite (undefined: nothing resolved yet)."""
    v = float(x)
    return v if np.isfinite(v) else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Row records with timestamps as ISO 8601 UTC strings (vectorised, JSON-ready)."""
    cols: list[list[Any]] = []
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            iso = s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[s]").astype(str)
            cols.append([f"{t}Z" if t != "NaT" else None for t in iso])
        else:
            cols.append(s.tolist())
    names = [str(c) for c in df.columns]
    return [dict(zip(names, row)) for row in zip(*cols)]
