"""Streaming drift detector for a trading model's confidences and outcomes.

Why this file is long: it is one detector; the CUSUM banks, the windowed tests and the alarm
bookkeeping share the per-trade buffers. The statistics are in :mod:`ml.drift_stats`, the
thresholds in :mod:`ml.drift_thresholds`.

Feed one closed trade at a time with :meth:`DriftDetector.update` (the confidence the model gave
the trade and whether it won); read :attr:`DriftDetector.drift_detected` and
:attr:`DriftDetector.drift`. Every test compares the stream with what a *calibrated* model would
produce, so a healthy model stays quiet whatever its confidences are:

* ``accuracy_drift`` / ``calibration_drift`` (outcome alarms), evaluated after every trade:

  - the **accuracy bank**: one CUSUM of log-likelihood ratios per alternative "the win
    probability fell by ``d``", ``d`` in ``accuracy_drops`` (the size of a drop is unknown); the
    bank alarms when its largest member crosses one threshold;
  - the **calibration bank**: the same over alternative calibration lines
    ``logit q = a + b logit p`` (``b < 1``: over-confidence);
  - the plan's rule "trades with confidence > 0.80 win less than 60 %" over the last
    ``high_confidence_window`` such trades, every ``check_every`` trades.

* ``distribution_shift``: the two-sample KS distance between the last ``window`` confidences and a
  frozen reference (the first ``reference_size`` trades after :meth:`reset`), every
  ``check_every`` trades.

Thresholds come from :mod:`ml.drift_thresholds` (simulated calibrated models; the three tests
share one false-alarm budget of 1 % per 5,000 trades). An outcome alarm is *labelled* by where
the shortfall sits: if trades above ``high_confidence`` fall short clearly more than the rest
(:func:`ml.drift_stats.shape_z` below ``-shape_z``) or the high-confidence rule fired, it is
``calibration_drift``; otherwise ``accuracy_drift``. A change in confidences alone moves none of
the outcome statistics (they are conditional on each trade's confidence), so it is reported as
``distribution_shift`` only.

Unlike river's detectors, a detection *latches*: ``drift_detected`` stays true until :meth:`reset`
(one detector per model version: the drift service starts a promoted version's from zero). Each
kind is reported at most once per reset; :attr:`detections` lists them in order; :attr:`drift` is
the most severe.

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

from infra.validate import check_int, check_real
from ml.drift_stats import P_CLIP, ks_statistic
from ml.drift_thresholds import DEFAULT_THRESHOLDS, DriftThresholds, ThresholdConfig, compute_thresholds

DriftKind = Literal["accuracy_drift", "calibration_drift", "distribution_shift"]
KINDS: tuple[DriftKind, ...] = ("accuracy_drift", "calibration_drift", "distribution_shift")
SEVERITY: dict[str, int] = {"accuracy_drift": 2, "calibration_drift": 2, "distribution_shift": 1}
LABEL_MIN_TRADES = 30
"""Fewest recent trades the label of an outcome alarm is judged on."""
STATISTICS: tuple[str, ...] = ("accuracy_cusum", "calibration_cusum", "high_conf_win_rate", "ks_d")
"""Names of the statistics that can raise a detection."""


@dataclass(frozen=True)
class DriftRecord:
    """One detection: what kind, which statistic crossed which threshold, and when."""

    kind: DriftKind
    statistic: str
    """Name of the statistic that crossed (one of :data:`STATISTICS`)."""
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
    accuracy_cusum: float
    """Largest member of the accuracy bank now."""
    accuracy_cusum_max: float
    """Largest value of the accuracy bank since the previous check."""
    accuracy_threshold: float
    calibration_cusum: float
    calibration_cusum_max: float
    calibration_threshold: float
    high_conf_win_rate: float
    high_conf_count: int
    high_conf_threshold: float
    ks_d: float
    """NaN until the reference window is frozen."""
    ks_threshold: float
    shape_z: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def _cusum_step(bank: list[float], zeros: list[int], llr: list[float], n: int) -> float:
    """One step of Page's (1954) CUSUM for every member of a bank; returns the largest member.

    ``bank[k] = max(0, bank[k] + llr[k])``; a member that falls to zero records ``n`` in
    ``zeros[k]``, its estimate of the change point (:meth:`DriftDetector._since_change`).

    >>> bank, zeros = [0.5, 0.2], [0, 0]
    >>> _cusum_step(bank, zeros, [0.25, -0.3], 7), bank, zeros
    (0.75, [0.75, 0.0], [0, 7])
    """
    top = 0.0
    for k, x in enumerate(llr):
        s = bank[k] + x
        if s > 0.0:
            bank[k] = s
            if s > top:
                top = s
        else:
            bank[k] = 0.0
            zeros[k] = n
    return top


class DriftDetector:
    """Accuracy, calibration and distribution drift of a model's confidences (see module docstring).

    Parameters
    ----------
    accuracy_drops
        Alternatives of the accuracy bank (win probability lower by each). Must match ``thresholds``.
    calibration_intercepts, calibration_slopes
        Alternatives of the calibration bank (``logit q = a + b logit p``). Must match ``thresholds``.
    window
        Trades in the recent KS sample and in the labelling window.
    check_every
        Trades between windowed checks (the CUSUM banks are checked on every trade).
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
        configuration is the default one, otherwise simulated at construction (minutes of CPU).

    Attributes
    ----------
    thresholds_ : DriftThresholds
        The thresholds in use.
    """

    def __init__(
        self,
        *,
        accuracy_drops: tuple[float, ...] = ThresholdConfig.accuracy_drops,
        calibration_intercepts: tuple[float, ...] = ThresholdConfig.calibration_intercepts,
        calibration_slopes: tuple[float, ...] = ThresholdConfig.calibration_slopes,
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
            check_int(value, param=name, func="DriftDetector", minimum=2)
        check_int(
            high_confidence_min_count,
            param="high_confidence_min_count",
            func="DriftDetector",
            minimum=1,
            maximum=high_confidence_window,  # at most the window it counts in
        )
        for name, fvalue in (
            ("high_confidence", high_confidence),
            ("high_confidence_min_win_rate", high_confidence_min_win_rate),
        ):
            check_real(
                fvalue, param=name, func="DriftDetector", positive=True, maximum=1.0, exclusive_max=True
            )
        check_real(shape_z, param="shape_z", func="DriftDetector", positive=True)
        self.accuracy_drops = tuple(float(d) for d in accuracy_drops)
        self.calibration_intercepts = tuple(float(a) for a in calibration_intercepts)
        self.calibration_slopes = tuple(float(b) for b in calibration_slopes)
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
        self._h_acc = self.thresholds_.accuracy_cusum
        self._h_cal = self.thresholds_.calibration_cusum
        # calibration members with slope 0 have a constant alternative: precompute log q, log(1 - q)
        self._drops = self.accuracy_drops
        self._cal_const = [
            (-math.log1p(math.exp(-a)), -math.log1p(math.exp(a))) if b == 0.0 else None
            for a, b in zip(self.calibration_intercepts, self.calibration_slopes)
        ]
        self._cal_params = list(zip(self._cal_const, self.calibration_intercepts, self.calibration_slopes))
        self.reset()

    def _resolve_thresholds(self, thresholds: DriftThresholds | None) -> DriftThresholds:
        keys = (
            "accuracy_drops",
            "calibration_intercepts",
            "calibration_slopes",
            "window",
            "check_every",
            "reference_size",
        )
        wanted = ThresholdConfig(**{k: getattr(self, k) for k in keys})
        if thresholds is None:
            if wanted == DEFAULT_THRESHOLDS.config:
                return DEFAULT_THRESHOLDS
            return compute_thresholds(wanted)
        cfg = thresholds.config
        mismatch = [
            f"{k}={getattr(cfg, k)!r} (detector: {getattr(wanted, k)!r})"
            for k in keys
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
        """Forget everything (a new model): statistics, reference window, detections."""
        self._n = 0
        self._acc = [0.0] * len(self.accuracy_drops)
        self._cal = [0.0] * len(self.calibration_slopes)
        self._acc_max = 0.0
        self._cal_max = 0.0
        self._acc_zero = [0] * len(self.accuracy_drops)
        self._cal_zero = [0] * len(self.calibration_slopes)
        """Trade count at which each member was last at zero: its estimate of the change point."""
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

        Returns ``self``. Costs one logarithm per accuracy alternative and one exponential and
        logarithm per calibration alternative with a slope; the windowed tests run every
        ``check_every`` trades.
        """
        if not (0.0 <= confidence <= 1.0):
            raise ValueError(
                f"The 'confidence' passed to DriftDetector.update must be in [0, 1]. Got {confidence!r} instead."
            )
        p = P_CLIP if confidence < P_CLIP else (1.0 - P_CLIP if confidence > 1.0 - P_CLIP else confidence)
        n = self._n
        i = n % self.window
        self._p_buf[i] = p
        self._y_buf[i] = 1.0 if won else 0.0
        if p > self.high_confidence:
            self._hc_buf[self._hc_n % self.high_confidence_window] = 1.0 if won else 0.0
            self._hc_n += 1
        if n < self.reference_size:
            self._reference.append(p)
        self._n = n = n + 1
        log, log1p, exp = math.log, math.log1p, math.exp
        # log-likelihood ratio of each alternative against the model, for this outcome
        if won:
            lp = log(p)
            logit = lp - log1p(-p)
            acc_llr = [log(q if (q := p - d) > P_CLIP else P_CLIP) - lp for d in self._drops]
            cal_llr = [
                (c[0] if c is not None else -log1p(exp(-a - b * logit))) - lp for c, a, b in self._cal_params
            ]
        else:
            l1p = log1p(-p)
            logit = log(p) - l1p
            acc_llr = [log1p(-(q if (q := p - d) > P_CLIP else P_CLIP)) - l1p for d in self._drops]
            cal_llr = [
                (c[1] if c is not None else -log1p(exp(a + b * logit))) - l1p for c, a, b in self._cal_params
            ]
        top_acc = _cusum_step(self._acc, self._acc_zero, acc_llr, n)
        top_cal = _cusum_step(self._cal, self._cal_zero, cal_llr, n)
        if top_acc > self._acc_max:
            self._acc_max = top_acc
        if top_cal > self._cal_max:
            self._cal_max = top_cal
        if (top_acc > self._h_acc or top_cal > self._h_cal) and not (
            "accuracy_drift" in self._kinds or "calibration_drift" in self._kinds
        ):
            if top_acc > self._h_acc:
                self._outcome_alarm("accuracy_cusum", top_acc, self._h_acc)
            else:
                self._outcome_alarm("calibration_cusum", top_cal, self._h_cal)
        if n % self.check_every == 0:
            self._check()
        return self

    # -- windowed checks -----------------------------------------------------------------------

    def _window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The last ``window`` (or fewer) confidences and outcomes, in buffer order (order is irrelevant)."""
        k = min(self._n, self.window)
        return np.array(self._p_buf[:k]), np.array(self._y_buf[:k])

    def _shape_z(self, p: np.ndarray, y: np.ndarray) -> float:
        """Shape z of the window (same value as :func:`ml.drift_stats.shape_z`; ``p`` is clipped)."""
        r = y - p
        v = p * (1.0 - p)
        hi = (p > self.high_confidence).astype(np.float64)
        n_hi = float(hi.sum())
        n_lo = p.size - n_hi
        if n_hi == 0.0 or n_lo == 0.0:
            return math.nan
        r_hi = float(np.dot(r, hi))
        v_hi = float(np.dot(v, hi))
        diff = r_hi / n_hi - (float(r.sum()) - r_hi) / n_lo
        se = math.sqrt(v_hi / n_hi**2 + (float(v.sum()) - v_hi) / n_lo**2)
        return diff / se if se > 0.0 else math.nan

    def _hc_rate(self) -> tuple[float, int]:
        count = min(self._hc_n, self.high_confidence_window)
        if count == 0:
            return math.nan, 0
        return sum(self._hc_buf[:count]) / count, count

    def _since_change(self, statistic: str) -> int:
        """Trades since the crossing bank's largest member last sat at zero (the CUSUM's own
        estimate of when the change happened, Page 1954), at least ``LABEL_MIN_TRADES``."""
        if statistic == "accuracy_cusum":
            values, zeros = self._acc, self._acc_zero
        elif statistic == "calibration_cusum":
            values, zeros = self._cal, self._cal_zero
        else:
            return self.window
        k = max(range(len(values)), key=values.__getitem__)
        return max(self._n - zeros[k], LABEL_MIN_TRADES)

    def _recent_arrays(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``min(m, window, n)`` confidences and outcomes."""
        m = min(m, self.window, self._n)
        idx = np.arange(self._n - m, self._n) % self.window
        return np.asarray(self._p_buf)[idx], np.asarray(self._y_buf)[idx]

    def _outcome_alarm(self, statistic: str, value: float, threshold: float) -> None:
        p, y = self._recent_arrays(self._since_change(statistic))
        sz = self._shape_z(p, y)
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
        sz = self._shape_z(p, y)
        rate, count = self._hc_rate()
        if self._reference_sorted is None and len(self._reference) >= self.reference_size:
            self._reference_sorted = np.sort(np.asarray(self._reference))
        ks_d = math.nan
        if self._reference_sorted is not None and self._n >= self.reference_size + self.window:
            ks_d = ks_statistic(self._reference_sorted, p)
        self._last_check = CheckStats(
            n_trades=self._n,
            accuracy_cusum=max(self._acc),
            accuracy_cusum_max=self._acc_max,
            accuracy_threshold=th.accuracy_cusum,
            calibration_cusum=max(self._cal),
            calibration_cusum_max=self._cal_max,
            calibration_threshold=th.calibration_cusum,
            high_conf_win_rate=rate,
            high_conf_count=count,
            high_conf_threshold=self.high_confidence_min_win_rate,
            ks_d=ks_d,
            ks_threshold=th.ks_d,
            shape_z=sz,
        )
        self._acc_max = max(self._acc)
        self._cal_max = max(self._cal)
        outcome_seen = "accuracy_drift" in self._kinds or "calibration_drift" in self._kinds
        if (
            not outcome_seen
            and count >= self.high_confidence_min_count
            and rate < self.high_confidence_min_win_rate
        ):
            self._outcome_alarm("high_conf_win_rate", rate, self.high_confidence_min_win_rate)
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
    def accuracy_cusum(self) -> float:
        """Current value of the accuracy bank (its largest member)."""
        return max(self._acc)

    @property
    def calibration_cusum(self) -> float:
        """Current value of the calibration bank (its largest member)."""
        return max(self._cal)

    def bank(self) -> dict[str, float]:
        """Every member of both banks by name (``accuracy d=0.15``, ``calibration a=0 b=0.25``)."""
        out = {f"accuracy d={d:g}": s for d, s in zip(self.accuracy_drops, self._acc)}
        for a, b, s in zip(self.calibration_intercepts, self.calibration_slopes, self._cal):
            out[f"calibration a={a:g} b={b:g}"] = s
        return out

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
            "accuracy_cusum": self.accuracy_cusum,
            "calibration_cusum": self.calibration_cusum,
            "high_conf_win_rate": math.nan if last is None else last.high_conf_win_rate,
            "ks_d": math.nan if last is None else last.ks_d,
        }

    def threshold_table(self) -> dict[str, float]:
        """Each alarm statistic's threshold, keyed as in :meth:`state`."""
        th = self.thresholds_
        return {
            "accuracy_cusum": th.accuracy_cusum,
            "calibration_cusum": th.calibration_cusum,
            "high_conf_win_rate": self.high_confidence_min_win_rate,
            "ks_d": th.ks_d,
        }

    def power(self) -> dict[str, dict[str, float]]:
        """Simulated delays of the outcome banks at these thresholds (see
        :func:`ml.drift_thresholds.simulate_power`); empty when not computed."""
        return {k: dict(v) for k, v in self.thresholds_.power.items()}
