"""Bar features and direction labels for the reference signal model.

Every feature at bar ``t`` of a symbol is computed from that symbol's bars at or before ``t``
only: log returns and rolling statistics are trailing windows (``rolling`` in pandas includes the
current row and looks back), never centred or forward. The label is the only forward-looking
column and lives in a separate function so it can never leak into the features.

Features (``h`` in bars; ``r_t = log(close_t / close_{t-1})``):

==================  =============================================================================
``ret_{h}``         ``log(close_t / close_{t-h})`` for ``h`` in ``horizons``
``zret_{h}``        ``ret_h / (rvol * sqrt(h))``: the return in units of its own volatility
``rvol``            std of ``r`` over the last ``vol_window`` bars (realized volatility per bar)
``range``           ``log(high_t / low_t)``: the bar's range
``range_z``         ``range`` divided by its mean over the last ``vol_window`` bars
``volume_z``        z-score of ``log(1 + volume_t)`` against the last ``volume_window`` bars
``regime_vol``      ``log(rvol / rvol_long)``: short against long volatility (``long_window``)
``regime_trend``    ``ret_{long_window} / (rvol_long * sqrt(long_window))``: trend strength
==================  =============================================================================

Rows inside a symbol's warm-up (fewer than ``long_window + 1`` bars of history) hold NaN.

Label (:func:`make_labels`): ``y_t = 1`` if ``log(close_{t+h} / close_t) > 0`` else ``0``
(``h = horizon``, default 1: the next bar's direction; a flat bar counts as "not up"); NaN in the
last ``h`` bars of each symbol, where the outcome is not known yet. A model trained at time
``T`` may use the row of bar ``t`` only when ``t + h <= T`` (see :func:`label_known_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BAR_COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    """Window lengths (in bars) of the bar features."""

    horizons: tuple[int, ...] = (1, 3, 6, 12, 24)
    """Look-backs of the return features ``ret_h``."""
    z_horizons: tuple[int, ...] = (1, 3)
    """Look-backs of the volatility-scaled returns ``zret_h``."""
    vol_window: int = 24
    """Bars in the realized-volatility and range windows."""
    volume_window: int = 48
    """Bars in the volume z-score window."""
    long_window: int = 168
    """Bars in the long volatility / trend window of the regime features (one week of 1h bars)."""
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("horizons", "z_horizons"):
            value = getattr(self, name)
            if not value or any((not isinstance(h, int)) or h < 1 for h in value):
                raise ValueError(
                    f"The '{name}' parameter of FeatureConfig must be a non-empty tuple of ints >= 1. "
                    f"Got {value!r} instead."
                )
        for name in ("vol_window", "volume_window", "long_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(
                    f"The '{name}' parameter of FeatureConfig must be an int >= 2. Got {value!r} instead."
                )
        names = (
            [f"ret_{h}" for h in self.horizons]
            + [f"zret_{h}" for h in self.z_horizons]
            + ["rvol", "range", "range_z", "volume_z", "regime_vol", "regime_trend"]
        )
        object.__setattr__(self, "names", tuple(names))

    @property
    def warmup(self) -> int:
        """Bars of history a row needs before every feature is defined."""
        return max(self.long_window, *self.horizons, self.volume_window, self.vol_window) + 1


def _check_bars(bars: pd.DataFrame, func: str) -> None:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(
            f"The 'bars' parameter of {func} must have columns {list(BAR_COLUMNS)}. Missing {missing}."
        )
    if not isinstance(bars["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"The 'bars' parameter of {func} must have timezone-aware UTC 'ts'. Got dtype {bars['ts'].dtype}."
        )


def sort_bars(bars: pd.DataFrame) -> pd.DataFrame:
    """Bars sorted by (symbol, ts) with a fresh index (a copy)."""
    return bars.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)


def compute_features(bars: pd.DataFrame, config: FeatureConfig | None = None) -> pd.DataFrame:
    """Feature frame aligned with ``sort_bars(bars)``: ``symbol``, ``ts`` and ``config.names``.

    Parameters
    ----------
    bars
        Canonical bars (``symbol, ts, open, high, low, close, volume``), any order.
    config
        Window lengths; default :class:`FeatureConfig`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> ts = pd.date_range("2025-01-01", periods=200, freq="1h", tz="UTC")
    >>> close = np.exp(np.cumsum(np.full(200, 0.01)))
    >>> bars = pd.DataFrame({"symbol": "X", "ts": ts, "open": close, "high": close * 1.01,
    ...                      "low": close * 0.99, "close": close, "volume": 1.0})
    >>> f = compute_features(bars)
    >>> round(float(f["ret_3"].iloc[-1]), 12), round(float(f["range"].iloc[-1]), 6)
    (0.03, 0.020001)
    """
    _check_bars(bars, "compute_features")
    cfg = config or FeatureConfig()
    b = sort_bars(bars)
    g_key = b["symbol"]
    logc = pd.Series(np.log(b["close"].to_numpy(dtype=np.float64)), index=b.index)
    grp = logc.groupby(g_key, sort=False)
    r1 = grp.diff()
    out = pd.DataFrame({"symbol": b["symbol"], "ts": b["ts"]})

    def roll(s: pd.Series, window: int, how: str) -> pd.Series:
        rolled = s.groupby(g_key, sort=False).rolling(window, min_periods=window)
        res: pd.Series = getattr(rolled, how)()
        return res.reset_index(level=0, drop=True).sort_index()

    rvol = roll(r1, cfg.vol_window, "std")
    rvol_long = roll(r1, cfg.long_window, "std")
    for h in cfg.horizons:
        out[f"ret_{h}"] = grp.diff(h)
    for h in cfg.z_horizons:
        out[f"zret_{h}"] = grp.diff(h) / (rvol * np.sqrt(h))
    out["rvol"] = rvol
    rng = pd.Series(
        np.log(b["high"].to_numpy(dtype=np.float64) / b["low"].to_numpy(dtype=np.float64)), index=b.index
    )
    out["range"] = rng
    out["range_z"] = rng / roll(rng, cfg.vol_window, "mean")
    lv = pd.Series(np.log1p(b["volume"].to_numpy(dtype=np.float64)), index=b.index)
    out["volume_z"] = (lv - roll(lv, cfg.volume_window, "mean")) / roll(lv, cfg.volume_window, "std")
    out["regime_vol"] = np.log(rvol / rvol_long)
    out["regime_trend"] = grp.diff(cfg.long_window) / (rvol_long * np.sqrt(cfg.long_window))
    feats = out[list(cfg.names)].replace([np.inf, -np.inf], np.nan)
    out[list(cfg.names)] = feats
    return out


def make_labels(bars: pd.DataFrame, *, horizon: int = 1) -> pd.DataFrame:
    """Forward return and direction label aligned with ``sort_bars(bars)``.

    Returns
    -------
    DataFrame
        ``symbol``, ``ts``, ``fwd_ret`` (``log(close_{t+h} / close_t)``) and ``y`` (1.0 up,
        0.0 flat or down, NaN where ``t + h`` is past the symbol's last bar).

    Examples
    --------
    >>> import pandas as pd
    >>> ts = pd.date_range("2025-01-01", periods=4, freq="1h", tz="UTC")
    >>> bars = pd.DataFrame({"symbol": "X", "ts": ts, "open": 1.0, "high": 3.0, "low": 0.5,
    ...                      "close": [1.0, 2.0, 2.0, 1.5], "volume": 1.0})
    >>> make_labels(bars)["y"].tolist()
    [1.0, 0.0, 0.0, nan]
    """
    _check_bars(bars, "make_labels")
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(
            f"The 'horizon' parameter of make_labels must be an int >= 1. Got {horizon!r} instead."
        )
    b = sort_bars(bars)
    logc = pd.Series(np.log(b["close"].to_numpy(dtype=np.float64)), index=b.index)
    fwd = logc.groupby(b["symbol"], sort=False).shift(-horizon) - logc
    y = np.where(fwd.isna(), np.nan, (fwd > 0).astype(np.float64))
    return pd.DataFrame({"symbol": b["symbol"], "ts": b["ts"], "fwd_ret": fwd, "y": y})


def label_known_at(ts: pd.Series, *, horizon: int, bar_freq: pd.Timedelta) -> pd.Series:
    """Time at which the label of each row is known: ``ts + horizon * bar_freq``."""
    return ts + horizon * bar_freq


def feature_matrix(features: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The model input: ``features[names]`` as float64 (a copy)."""
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise ValueError(f"The 'features' frame lacks feature columns {missing}.")
    return features[list(names)].astype(np.float64)
