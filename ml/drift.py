"""Streaming drift detector for a trading model's confidences and outcomes.

Feed one closed trade at a time with :meth:`DriftDetector.update` (the confidence the model gave
the trade and whether it won); read :attr:`DriftDetector.drift_detected` and
:attr:`DriftDetector.drift`. Every test compares the stream with what a *calibrated* model would
produce, so a healthy model stays quiet whatever its confidences are:

* ``accuracy_drift``: a risk-adjusted Bernoulli CUSUM (Steiner et al. 2000) for "the odds of
  winning fell to ``odds_ratio`` times what the model claimed", evaluated after every trade.
* ``calibration_drift``: Spiegelhalter's z of the Brier score over the last ``window`` trades,
  and the plan's rule "trades with confidence > 0.80 win less than 60 %" over the last
  ``high_confidence_window`` such trades (at least ``high_confidence_min_count``), evaluated
  every ``check_every`` trades.
* ``distribution_shift``: the two-sample KS distance between the last ``window`` confidences and a
  frozen reference (the first ``reference_size`` trades after :meth:`reset`), every
  ``check_every`` trades.

Thresholds come from :mod:`ml.drift_thresholds` (simulated calibrated models, ``alpha`` per 5,000
trades). An outcome alarm (CUSUM or z) is *labelled* by where the shortfall sits: if trades above
``high_confidence`` fall short clearly more than the rest (:func:`ml.drift_stats.shape_z` below
``-shape_z``) or the high-confidence rule fired, it is ``calibration_drift``; otherwise
``accuracy_drift``. A change in confidences alone moves none of the outcome statistics (they are
conditional on each trade's confidence), so it is reported as ``distribution_shift`` only.

Unlike river's detectors, a detection *latches*: ``drift_detected`` stays true until :meth:`reset`
(called by the retrain worker once a new model is live). Each kind is reported at most once per
reset; :attr:`detections` lists them in order; :attr:`drift` is the most severe.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> det = DriftDetector()
>>> for i in range(3000):
...     c = rng.uniform(0.5, 1.0)
...     p = c if i < 1000 else c - 0.15   # the model loses its edge at trade 1000
...     _ = det.update(c, bool(rng.random() < p))
>>> det.drift.kind, det.drift.n_trades > 1000
('accuracy_drift', True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ml.drift_stats import P_CLIP, ks_statistic
from ml.drift_thresholds import DEFAULT_THRESHOLDS, DriftThresholds, ThresholdConfig, compute_thresholds

DriftKind = Literal["accuracy_drift", "calibration_drift", "distribution_shift"]
KINDS: tuple[DriftKind, ...] = ("accuracy_drift", "calibration_drift", "distribution_shift")
SEVERITY: dict[str, int] = {"accuracy_drift": 2, "calibration_drift": 2, "distribution_shift": 1}


@dataclass(frozen=True)
class DriftRecord:
    """One detection: what kind, which statistic crossed which threshold, and when."""

    kind: DriftKind
    statistic: str
    """Name of the statistic that crossed: ``cusum``, ``spiegelhalter_z``, ``high_conf_win_rate``, ``ks_d``."""
    value: float
    threshold: float
    message: str
    n_trades: int
    """Trades seen since the last reset when the detection happened (1-based index of the trade)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "statistic": self.statistic,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "n_trades": self.n_trades,
        }


@dataclass(frozen=True)
class CheckStats:
    """Every statistic and its threshold at one windowed check (for the ``drift`` artifact)."""

    n_trades: int
    cusum: float
    cusum_max: float
    """Largest CUSUM value since the previous check."""
    cusum_threshold: float
    spiegelhalter_z: float
    spiegelhalter_threshold: float
    high_conf_win_rate: float
    high_conf_count: int
    high_conf_threshold: float
    ks_d: float
    """NaN until the reference window is frozen."""
    ks_threshold: float
    shape_z: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


class DriftDetector:
    """Accuracy, calibration and distribution drift of a model's confidences (see module docstring).

    Parameters
    ----------
    odds_ratio
        Alternative of the accuracy CUSUM: the odds of winning fall to this multiple of the claimed
        odds (0.5: a trade claimed at 0.75 wins at 0.60). Must match ``thresholds``.
    window
        Trades in the calibration window and in the recent KS sample.
    check_every
        Trades between windowed checks (the CUSUM is checked on every trade).
    reference_size
        Trades whose confidences form the frozen reference of the KS test.
    high_confidence, high_confidence_min_win_rate
        The plan's rule: trades with confidence above ``high_confidence`` must win at least
        ``high_confidence_min_win_rate`` of the time.
    high_confidence_window, high_confidence_min_count
        The rule looks at the last ``high_confidence_window`` high-confidence trades and needs at
        least ``high_confidence_min_count`` of them.
    shape_z
        Labelling cut: an outcome alarm is ``calibration_drift`` when the shortfall of trades above
        ``high_confidence`` exceeds the rest's by more than ``shape_z`` standard errors.
    thresholds
        :class:`~ml.drift_thresholds.DriftThresholds`; default: the precomputed table when the
        configuration is the default one, otherwise simulated at construction (about 40 s of CPU).

    Attributes
    ----------
    thresholds_ : DriftThresholds
        The thresholds in use.
    """

    def __init__(
        self,
        *,
        odds_ratio: float = 0.5,
        window: int = 100,
        check_every: int = 100,
        reference_size: int = 500,
        high_confidence: float = 0.8,
        high_confidence_min_win_rate: float = 0.6,
        high_confidence_window: int = 50,
        high_confidence_min_count: int = 30,
        shape_z: float = 2.0,
        thresholds: DriftThresholds | None = None,
    ) -> None:
        for name, value in (
            ("window", window),
            ("check_every", check_every),
            ("reference_size", reference_size),
            ("high_confidence_window", high_confidence_window),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(
                    f"The '{name}' parameter of DriftDetector must be an int >= 2. Got {value!r} instead."
                )
        if not isinstance(high_confidence_min_count, int) or not (
            1 <= high_confidence_min_count <= high_confidence_window
        ):
            raise ValueError(
                "The 'high_confidence_min_count' parameter of DriftDetector must be an int in "
                f"[1, high_confidence_window={high_confidence_window}]. Got {high_confidence_min_count!r} instead."
            )
        for name, fvalue in (
            ("odds_ratio", odds_ratio),
            ("high_confidence", high_confidence),
            ("high_confidence_min_win_rate", high_confidence_min_win_rate),
        ):
            if not (0.0 < fvalue < 1.0):
                raise ValueError(
                    f"The '{name}' parameter of DriftDetector must be in (0, 1). Got {fvalue!r} instead."
                )
        if not (shape_z > 0.0):
            raise ValueError(
                f"The 'shape_z' parameter of DriftDetector must be > 0. Got {shape_z!r} instead."
            )
        self.odds_ratio = odds_ratio
        self.window = window
        self.check_every = check_every
        self.reference_size = reference_size
        self.high_confidence = high_confidence
        self.high_confidence_min_win_rate = high_confidence_min_win_rate
        self.high_confidence_window = high_confidence_window
        self.high_confidence_min_count = high_confidence_min_count
        self.shape_z = shape_z
        self.thresholds = thresholds
        self.thresholds_ = self._resolve_thresholds(thresholds)
        self._log_r = math.log(odds_ratio)
        self._r_minus_1 = odds_ratio - 1.0
        self._h = self.thresholds_.cusum
        self.reset()

    def _resolve_thresholds(self, thresholds: DriftThresholds | None) -> DriftThresholds:
        wanted = ThresholdConfig(
            odds_ratio=self.odds_ratio,
            window=self.window,
            check_every=self.check_every,
            reference_size=self.reference_size,
        )
        if thresholds is None:
            if wanted == DEFAULT_THRESHOLDS.config:
                return DEFAULT_THRESHOLDS
            return compute_thresholds(wanted)
        cfg = thresholds.config
        mismatch = [
            f"{k}={getattr(cfg, k)!r} (detector: {getattr(wanted, k)!r})"
            for k in ("odds_ratio", "window", "check_every", "reference_size")
            if getattr(cfg, k) != getattr(wanted, k)
        ]
        if mismatch:
            raise ValueError(
                "The 'thresholds' parameter of DriftDetector was computed for another configuration: "
                + ", ".join(mismatch)
            )
        return thresholds

    # -- streaming -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (after a retrain): statistics, reference window, detections."""
        self._n = 0
        self._s = 0.0
        self._s_max = 0.0
        self._p_buf: list[float] = [0.0] * self.window
        self._y_buf: list[float] = [0.0] * self.window
        self._hc_buf: list[float] = [0.0] * self.high_confidence_window
        self._hc_n = 0
        self._reference: list[float] = []
        self._reference_sorted: np.ndarray | None = None
        self._detections: list[DriftRecord] = []
        self._kinds: set[str] = set()
        self._last_check: CheckStats | None = None

    def update(self, confidence: float, won: bool) -> DriftDetector:
        """Add one closed trade: the model's ``confidence`` (0..1) and whether it ``won``.

        Returns ``self``. Costs a handful of float operations; the windowed tests run every
        ``check_every`` trades.
        """
        if not (0.0 <= confidence <= 1.0):
            raise ValueError(
                f"The 'confidence' passed to DriftDetector.update must be in [0, 1]. Got {confidence!r} instead."
            )
        p = P_CLIP if confidence < P_CLIP else (1.0 - P_CLIP if confidence > 1.0 - P_CLIP else confidence)
        y = 1.0 if won else 0.0
        n = self._n
        i = n % self.window
        self._p_buf[i] = p
        self._y_buf[i] = y
        if p > self.high_confidence:
            self._hc_buf[self._hc_n % self.high_confidence_window] = y
            self._hc_n += 1
        if n < self.reference_size:
            self._reference.append(p)
        self._n = n = n + 1
        s = self._s + y * self._log_r - math.log1p(self._r_minus_1 * p)
        if s < 0.0:
            s = 0.0
        self._s = s
        if s > self._s_max:
            self._s_max = s
            if s > self._h and "accuracy_drift" not in self._kinds and "calibration_drift" not in self._kinds:
                self._outcome_alarm("cusum", s, self._h)
        if n % self.check_every == 0:
            self._check()
        return self

    # -- windowed checks -----------------------------------------------------------------------

    def _window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The last ``window`` (or fewer) confidences and outcomes, in buffer order (order is irrelevant)."""
        k = min(self._n, self.window)
        return np.array(self._p_buf[:k]), np.array(self._y_buf[:k])

    def _window_stats(self, p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Spiegelhalter's z and the shape z of the window in one pass (same values as
        :func:`ml.drift_stats.spiegelhalter_z` and :func:`ml.drift_stats.shape_z`; ``p`` is clipped)."""
        r = y - p
        a = 1.0 - 2.0 * p
        v = p * (1.0 - p)
        var = float(np.dot(a * a, v))
        z = float(np.dot(r, a)) / math.sqrt(var) if var > 0.0 else 0.0
        hi = (p > self.high_confidence).astype(np.float64)
        n_hi = float(hi.sum())
        n_lo = p.size - n_hi
        if n_hi == 0.0 or n_lo == 0.0:
            return z, math.nan
        r_hi = float(np.dot(r, hi))
        v_hi = float(np.dot(v, hi))
        diff = r_hi / n_hi - (float(r.sum()) - r_hi) / n_lo
        se = math.sqrt(v_hi / n_hi**2 + (float(v.sum()) - v_hi) / n_lo**2)
        return z, (diff / se if se > 0.0 else math.nan)

    def _hc_rate(self) -> tuple[float, int]:
        count = min(self._hc_n, self.high_confidence_window)
        if count == 0:
            return math.nan, 0
        return sum(self._hc_buf[:count]) / count, count

    def _outcome_alarm(self, statistic: str, value: float, threshold: float) -> None:
        p, y = self._window_arrays()
        sz = self._window_stats(p, y)[1]
        rate, count = self._hc_rate()
        hc_fired = count >= self.high_confidence_min_count and rate < self.high_confidence_min_win_rate
        calibration = (
            hc_fired or statistic == "high_conf_win_rate" or (not math.isnan(sz) and sz < -self.shape_z)
        )
        shortfall = float(np.mean(y - p)) if p.size else math.nan
        if calibration:
            kind: DriftKind = "calibration_drift"
            message = (
                f"{statistic} = {value:.3f} crossed {threshold:.3f}; the shortfall sits in trades with "
                f"confidence > {self.high_confidence:.2f} (shape z = {sz:.2f}; their win rate "
                f"{rate:.0%} over the last {count})"
            )
        else:
            kind = "accuracy_drift"
            message = (
                f"{statistic} = {value:.3f} crossed {threshold:.3f}; trades win {-shortfall:.1%} less "
                f"often than their confidences claim over the last {p.size} (shape z = {sz:.2f})"
            )
        self._record(DriftRecord(kind, statistic, float(value), float(threshold), message, self._n))

    def _record(self, record: DriftRecord) -> None:
        if record.kind in self._kinds:
            return
        self._kinds.add(record.kind)
        self._detections.append(record)

    def _check(self) -> None:
        th = self.thresholds_
        p, y = self._window_arrays()
        z, sz = self._window_stats(p, y)
        if self._n < self.window:
            z = math.nan
        rate, count = self._hc_rate()
        if self._reference_sorted is None and len(self._reference) >= self.reference_size:
            self._reference_sorted = np.sort(np.asarray(self._reference))
        ks_d = math.nan
        if self._reference_sorted is not None and self._n >= self.reference_size + self.window:
            ks_d = ks_statistic(self._reference_sorted, p)
        self._last_check = CheckStats(
            n_trades=self._n,
            cusum=self._s,
            cusum_max=self._s_max,
            cusum_threshold=th.cusum,
            spiegelhalter_z=z,
            spiegelhalter_threshold=th.spiegelhalter_z,
            high_conf_win_rate=rate,
            high_conf_count=count,
            high_conf_threshold=self.high_confidence_min_win_rate,
            ks_d=ks_d,
            ks_threshold=th.ks_d,
            shape_z=sz,
        )
        self._s_max = self._s
        outcome_seen = "accuracy_drift" in self._kinds or "calibration_drift" in self._kinds
        if not outcome_seen:
            if count >= self.high_confidence_min_count and rate < self.high_confidence_min_win_rate:
                self._outcome_alarm("high_conf_win_rate", rate, self.high_confidence_min_win_rate)
            elif z > th.spiegelhalter_z:
                self._outcome_alarm("spiegelhalter_z", z, th.spiegelhalter_z)
        if not math.isnan(ks_d) and ks_d > th.ks_d:
            self._record(
                DriftRecord(
                    "distribution_shift",
                    "ks_d",
                    ks_d,
                    th.ks_d,
                    f"KS distance {ks_d:.3f} of the last {self.window} confidences to the reference "
                    f"(trades 1-{self.reference_size}) crossed {th.ks_d:.3f}",
                    self._n,
                )
            )

    # -- state -------------------------------------------------------------------------------

    @property
    def n_trades(self) -> int:
        """Trades seen since the last reset."""
        return self._n

    @property
    def cusum(self) -> float:
        """Current value of the accuracy CUSUM."""
        return self._s

    @property
    def drift_detected(self) -> bool:
        """True once any drift was detected since the last reset."""
        return bool(self._detections)

    @property
    def drift(self) -> DriftRecord | None:
        """The most severe detection since the last reset (first of the most severe kind)."""
        if not self._detections:
            return None
        return max(self._detections, key=lambda r: (SEVERITY[r.kind], -r.n_trades))

    @property
    def detections(self) -> tuple[DriftRecord, ...]:
        """All detections since the last reset, in order (at most one per kind)."""
        return tuple(self._detections)

    @property
    def last_check(self) -> CheckStats | None:
        """Statistics of the latest windowed check (``None`` before the first)."""
        return self._last_check

    def state(self) -> dict[str, float | int]:
        """The current value of every statistic (zeros and NaN for a fresh detector)."""
        last = self._last_check
        return {
            "n_trades": self._n,
            "cusum": self._s,
            "spiegelhalter_z": math.nan if last is None else last.spiegelhalter_z,
            "high_conf_win_rate": math.nan if last is None else last.high_conf_win_rate,
            "ks_d": math.nan if last is None else last.ks_d,
        }

    def threshold_table(self) -> dict[str, float]:
        """Each alarm statistic's threshold, keyed as in :class:`CheckStats`."""
        th = self.thresholds_
        return {"cusum": th.cusum, "spiegelhalter_z": th.spiegelhalter_z, "ks_d": th.ks_d}
