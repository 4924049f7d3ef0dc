"""Trade sources for the sizing pilot: a synthetic regime source and two signals on bars.

Why this file is long: the three trade sources share :class:`TradeSet` and the trade construction
(entry, barrier exit, regime); each source itself is short.

Every source produces a :class:`TradeSet`: one row per proposed trade, sorted by entry time,
holding what the sizer may see at entry (``confidence``, ``volatility``, ``regime``) and what only
the account learns later (``outcome_r``, the result in R-multiples, and ``mae_pct``).

Trades from momentum on bars (:func:`trades_from_bars`, ``signal='momentum'``)
    A deliberately plain reference signal: at the close of bar ``t`` the momentum z-score
    ``z = sum(r[t-L+1..t]) / (sigma_t * sqrt(L))`` (log returns ``r``, EWMA volatility ``sigma_t``
    of returns up to ``t``) proposes a trade in the direction of ``z`` when ``|z| >= z_threshold``.
    Its claimed confidence is ``0.5 + 0.15 * tanh(|z| / 2)`` -- a claim, not a calibrated
    probability, which is exactly what a sizer has to cope with. The regime is 1 when the
    24-bar volatility exceeds the 168-bar volatility (both of past returns), else 0.
    The outcome is a triple barrier (Lopez de Prado, *Advances in Financial Machine Learning*,
    3.4): entry at ``close[t]``, profit and stop barriers at ``+-d`` with
    ``d = barrier_k * sigma_t * sqrt(horizon_bars)``, time barrier ``horizon_bars`` bars later.
    Only bars ``t+1 .. t+horizon`` are read; a bar touching both barriers counts as a loss
    (conservative). ``outcome_r = +1`` (profit barrier), ``-1`` (stop) or the signed close-to-close
    move over ``d`` at the time barrier. Trades whose time barrier lies beyond the data are dropped.

Trades from the reference model (:func:`trades_from_model`, the default ``signal='model'``)
    The platform's reference :class:`~ml.signal_model.SignalModel` (calibrated gradient-boosted
    trees on bar features, ``docs/ml_telemetry.md``), walked forward: refitted every
    ``model_retrain_bars`` bars on rows whose label is known at the refit time, each block of
    bars scored by the model fitted at its start. At the close of bar ``t`` it gives
    ``p = P(up)``; the trade takes the side of ``p`` with the calibrated
    ``confidence = max(p, 1 - p)`` (as in ``trade.signal.v5``) when that reaches
    ``model_min_confidence``. Volatility, regime, barriers and outcome are computed exactly as
    for the momentum source, so the two sources differ only in which trades they propose and
    what confidence they claim. :func:`trades_for` picks the source named by ``config.signal``.

Synthetic trades (:func:`synthetic_trades`)
    A Markov regime (persistence 0.98 per trade) decides how reliable the claimed confidence is:
    the true win probability is ``q = 0.5 + c_g (p - 0.5)`` with ``c = (1.0, 0.4, 1.6)`` for
    regimes 0 (calibrated), 1 (over-confident) and 2 (under-confident). Outcomes are +-1 R.
    Kelly on the claim is log-optimal only in regime 0; the log-optimal multipliers are about
    0.4 (clipped to 0.5) and 1.6 elsewhere -- the case where learned sizing can beat Kelly,
    because the regime is observable and Kelly ignores it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from infra.validate import check_int, check_real
from research.rl_sizer.config import PilotConfig

HOUR_NS = 3_600_000_000_000
SYNTH_EDGE_SCALE = (1.0, 0.4, 1.6)
SYNTH_VOL = (0.5, 0.9, 0.35)  # annualized volatility per regime
REGIME_SHORT_BARS = 24
REGIME_LONG_BARS = 168
EWMA_HALFLIFE_BARS = 24


@dataclass(frozen=True)
class TradeSet:
    """Proposed trades, sorted by entry time; all arrays have one entry per trade.

    Attributes
    ----------
    symbol : str array
    entry_ns, exit_ns : int64 arrays
        Entry and exit times, nanoseconds since the epoch (UTC).
    confidence : float64 array
        The signal's claimed probability of a win, in (0.5, 1).
    volatility : float64 array
        Annualized volatility known at entry.
    regime : int64 array
        Regime label known at entry (0 .. n_regimes - 1).
    outcome_r : float64 array
        Result in R-multiples (+1 at the profit barrier, -1 at the stop). Known only at exit.
    barrier : float64 array
        Stop distance ``d`` as a fraction of the entry price; a stake ``s`` of equity at risk is a
        notional of ``s / d``.
    mae_pct : float64 array
        Maximum adverse excursion of the price during the trade, percent (>= 0). Known at exit.
    true_prob : float64 array
        True win probability where the source knows it (synthetic), else NaN.
    """

    symbol: np.ndarray
    entry_ns: np.ndarray
    exit_ns: np.ndarray
    confidence: np.ndarray
    volatility: np.ndarray
    regime: np.ndarray
    outcome_r: np.ndarray
    barrier: np.ndarray
    mae_pct: np.ndarray
    true_prob: np.ndarray
    n_regimes: int = 2
    periods_per_year: float = 8760.0
    """Trades per year, for annualizing per-trade Sharpe ratios."""

    def __post_init__(self) -> None:
        n = len(self.entry_ns)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and len(value) != n:
                raise ValueError(f"TradeSet field '{f.name}' has {len(value)} rows, expected {n}.")
        if n and np.any(np.diff(self.entry_ns) < 0):
            raise ValueError("TradeSet 'entry_ns' must be sorted ascending.")
        if n and np.any(self.exit_ns <= self.entry_ns):
            raise ValueError("TradeSet 'exit_ns' must be after 'entry_ns' for every trade.")
        if n and not np.all(self.barrier > 0):
            raise ValueError("TradeSet 'barrier' must be > 0 for every trade.")

    def __len__(self) -> int:
        return len(self.entry_ns)

    def take(self, idx: slice | np.ndarray) -> TradeSet:
        """The trades selected by ``idx`` (a slice or an index/boolean array)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in kw.items():
            if isinstance(value, np.ndarray):
                kw[name] = value[idx]
        return TradeSet(**kw)

    def split(self, train_frac: float) -> tuple[TradeSet, TradeSet]:
        """Split by time into a training and a later test period, purging overlap.

        The split time is the entry time of trade ``floor(train_frac * n)``; training trades are
        those that *exit* before it (a training trade never sees test-period prices) and test
        trades those that enter at or after it.
        """
        check_real(
            train_frac,
            param="train_frac",
            func="TradeSet.split",
            positive=True,
            maximum=1.0,
            exclusive_max=True,
        )
        n = len(self)
        if n < 4:
            raise ValueError(f"TradeSet.split needs at least 4 trades. Got {n} instead.")
        cut = int(self.entry_ns[int(train_frac * n)])
        return self.take(self.exit_ns <= cut), self.take(self.entry_ns >= cut)

    def window(self) -> dict[str, str | int]:
        """First entry and last exit as ISO UTC strings, and the number of trades."""
        if not len(self):
            return {"start": "", "end": "", "trades": 0}
        return {
            "start": pd.Timestamp(int(self.entry_ns[0]), tz="UTC").isoformat(),
            "end": pd.Timestamp(int(self.exit_ns.max()), tz="UTC").isoformat(),
            "trades": len(self),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per trade, times as UTC timestamps."""
        df = pd.DataFrame(
            {
                f.name: getattr(self, f.name)
                for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)
            }
        )
        df["entry_ts"] = pd.to_datetime(df.pop("entry_ns"), utc=True)
        df["exit_ts"] = pd.to_datetime(df.pop("exit_ns"), utc=True)
        return df


# --------------------------------------------------------------------------- synthetic
def synthetic_trades(
    n: int,
    *,
    rng: np.random.Generator,
    start_ns: int = 1_704_067_200 * 10**9,  # 2024-01-01 UTC
) -> TradeSet:
    """``n`` synthetic trades with a regime-dependent reliability (see the module docstring).

    Entries are 1 to 4 hours apart, holding times 1 to 6 hours, so some positions overlap.

    Examples
    --------
    >>> ts = synthetic_trades(100, rng=np.random.default_rng(0))
    >>> len(ts), ts.n_regimes, bool((ts.confidence > 0.5).all())
    (100, 3, True)
    """
    n = check_int(n, param="n", func="synthetic_trades", minimum=1)
    persist = 0.98
    switch = rng.random(n) > persist
    jumps = rng.integers(1, 3, size=n)  # a switch moves to one of the two other regimes
    regime = ((int(rng.integers(0, 3)) + np.cumsum(np.where(switch, jumps, 0))) % 3).astype(np.int64)
    confidence = rng.uniform(0.51, 0.65, size=n)
    scale = np.asarray(SYNTH_EDGE_SCALE)[regime]
    q = 0.5 + scale * (confidence - 0.5)
    win = rng.random(n) < q
    outcome = np.where(win, 1.0, -1.0)
    vol = np.asarray(SYNTH_VOL)[regime] * np.exp(0.2 * rng.standard_normal(n))
    hold_h = rng.integers(1, 7, size=n)
    sigma_h = vol / np.sqrt(8760.0)
    barrier = 2.0 * sigma_h * np.sqrt(hold_h)
    mae = np.where(win, rng.uniform(0.0, 1.0, size=n) * barrier, barrier) * 100.0
    entry = start_ns + np.cumsum(rng.integers(1, 5, size=n)) * HOUR_NS
    return TradeSet(
        symbol=np.full(n, "SYNTH", dtype=object),
        entry_ns=entry.astype(np.int64),
        exit_ns=(entry + hold_h * HOUR_NS).astype(np.int64),
        confidence=confidence,
        volatility=vol,
        regime=regime,
        outcome_r=outcome,
        barrier=barrier,
        mae_pct=mae,
        true_prob=q,
        n_regimes=3,
        periods_per_year=8760.0 / 2.5,
    )


# --------------------------------------------------------------------------- bars
def _ewma_sigma(r: np.ndarray, halflife: int) -> np.ndarray:
    """EWMA standard deviation of ``r`` up to and including each index (zero mean)."""
    return np.sqrt(pd.Series(r * r).ewm(halflife=halflife, min_periods=halflife).mean().to_numpy())


@dataclass(frozen=True)
class _BarContext:
    """Per-bar quantities of one symbol known at the close of each bar (no forward data)."""

    close: np.ndarray
    high: np.ndarray
    low: np.ndarray
    ts: np.ndarray
    r: np.ndarray
    sigma: np.ndarray
    long_vol: np.ndarray
    regime: np.ndarray


def _bars_per_year(ts_ns: np.ndarray) -> float:
    """Bars per year at the median spacing of ``ts_ns`` (int64 nanoseconds); hourly for one bar."""
    step = float(np.median(np.diff(ts_ns))) if len(ts_ns) > 1 else float(HOUR_NS)
    return 365.0 * 24 * HOUR_NS / step


def _bar_context(df: pd.DataFrame) -> _BarContext:
    close = df["close"].to_numpy(dtype=float)
    r = np.zeros(len(close))
    r[1:] = np.diff(np.log(close))
    short = pd.Series(r).rolling(REGIME_SHORT_BARS).std().to_numpy()
    long = pd.Series(r).rolling(REGIME_LONG_BARS).std().to_numpy()
    return _BarContext(
        close=close,
        high=df["high"].to_numpy(dtype=float),
        low=df["low"].to_numpy(dtype=float),
        ts=df["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
        r=r,
        sigma=_ewma_sigma(r, EWMA_HALFLIFE_BARS),
        long_vol=long,
        regime=(short > long).astype(np.int64),
    )


def bar_states(bars: pd.DataFrame) -> pd.DataFrame:
    """The sizer's view of the market at the close of every bar: ``symbol, ts, volatility, regime``.

    Exactly what the trade sources put in a :class:`TradeSet` at entry (module docstring):
    ``volatility`` is the EWMA standard deviation of log returns (half-life 24 bars, zero mean)
    annualized by ``sqrt(bars per year)`` (the symbol's median bar spacing), NaN for the first 23
    bars; ``regime`` is 1 when the 24-bar standard deviation of returns exceeds the 168-bar one,
    else 0 (0 while the 168-bar one is undefined). Only bars up to each close are read. A live
    governor (e.g. :mod:`sim.paper`) sizes from the same state the sizer was trained on.
    """
    missing = [c for c in ("symbol", "ts", "close") if c not in bars.columns]
    if missing:
        raise ValueError(
            f"The 'bars' parameter of bar_states is missing columns {missing}; got {list(bars.columns)}."
        )
    parts = []
    for sym, df in bars.sort_values(["symbol", "ts"], kind="stable").groupby("symbol", sort=True):
        ts = df["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        ctx = _bar_context(df.assign(high=df["close"], low=df["close"]))
        parts.append(
            pd.DataFrame(
                {
                    "symbol": sym,
                    "ts": df["ts"].reset_index(drop=True),
                    "volatility": ctx.sigma * np.sqrt(_bars_per_year(ts)),
                    "regime": ctx.regime,
                }
            )
        )
    if not parts:
        return pd.DataFrame({"symbol": [], "ts": [], "volatility": [], "regime": []})
    return pd.concat(parts, ignore_index=True)


def _space_out(ok: np.ndarray, min_gap: int) -> np.ndarray:
    """Indices of ``ok`` kept greedily so that two kept indices are ``min_gap`` or more apart."""
    chosen: list[int] = []
    last = -(10**9)
    for t in np.flatnonzero(ok):
        if t - last >= min_gap:
            chosen.append(int(t))
            last = int(t)
    return np.asarray(chosen, dtype=np.int64)


def _label_trades(
    ctx: _BarContext,
    idx: np.ndarray,
    side: np.ndarray,
    confidence: np.ndarray,
    cfg: PilotConfig,
    bars_per_year: float,
) -> dict[str, np.ndarray]:
    """Triple-barrier outcomes of trades entered at the close of bars ``idx`` (module docstring).

    Only bars ``t+1 .. t+horizon`` of a trade entered at bar ``t`` are read.
    """
    close, high, low, sigma = ctx.close, ctx.high, ctx.low, ctx.sigma
    h = cfg.horizon_bars
    m = len(idx)
    out_r = np.empty(m)
    exit_i = np.empty(m, dtype=np.int64)
    mae = np.empty(m)
    d = cfg.barrier_k * sigma[idx] * np.sqrt(h) if m else np.empty(0)
    for j, t in enumerate(idx):  # only bars t+1 .. t+h: no look-ahead
        entry = close[t]
        hi = high[t + 1 : t + h + 1] / entry - 1.0
        lo = low[t + 1 : t + h + 1] / entry - 1.0
        fav, adv = (hi, -lo) if side[j] > 0 else (-lo, hi)
        hit_stop = adv >= d[j]
        hit_take = fav >= d[j] * cfg.payoff_ratio
        first_stop = int(np.argmax(hit_stop)) if hit_stop.any() else h
        first_take = int(np.argmax(hit_take)) if hit_take.any() else h
        if first_stop <= first_take and first_stop < h:
            out_r[j], k = -1.0, first_stop
        elif first_take < h:
            out_r[j], k = cfg.payoff_ratio, first_take
        else:
            k = h - 1
            out_r[j] = side[j] * (close[t + h] / entry - 1.0) / d[j]
        exit_i[j] = t + 1 + k
        mae[j] = max(0.0, float(adv[: k + 1].max())) * 100.0
    ts = ctx.ts
    return {
        "entry_ns": ts[idx] if m else np.empty(0, np.int64),
        # a bar's ts is its open time: the trade exits at the close of bar exit_i
        "exit_ns": ts[exit_i] + int(np.median(np.diff(ts))) if m else np.empty(0, np.int64),
        "confidence": np.asarray(confidence, dtype=np.float64),
        "volatility": sigma[idx] * np.sqrt(bars_per_year),
        "regime": ctx.regime[idx],
        "outcome_r": out_r,
        "barrier": d,
        "mae_pct": mae,
    }


def _symbol_trades(df: pd.DataFrame, cfg: PilotConfig, bars_per_year: float) -> dict[str, np.ndarray]:
    ctx = _bar_context(df)
    n = len(ctx.close)
    h, lb = cfg.horizon_bars, cfg.momentum_bars
    mom = pd.Series(ctx.r).rolling(lb).sum().to_numpy()
    z = mom / (ctx.sigma * np.sqrt(lb))
    ok = np.isfinite(z) & np.isfinite(ctx.long_vol) & (ctx.sigma > 0) & (np.abs(z) >= cfg.z_threshold)
    ok[n - h :] = False  # the time barrier must lie inside the data
    idx = _space_out(ok, cfg.min_gap_bars)
    side = np.sign(z[idx]) if len(idx) else np.empty(0)
    conf = 0.5 + 0.15 * np.tanh(np.abs(z[idx]) / 2.0)
    return _label_trades(ctx, idx, side, conf, cfg, bars_per_year)


SymbolTrades = Callable[[str, pd.DataFrame, PilotConfig, float], dict[str, np.ndarray]]


def _trades_per_symbol(bars: pd.DataFrame, cfg: PilotConfig, func: str, make: SymbolTrades) -> TradeSet:
    """Apply ``make(symbol, bars_of_symbol, cfg, bars_per_year)`` per symbol and merge by entry time."""
    missing = [c for c in ("symbol", "ts", "high", "low", "close") if c not in bars.columns]
    if missing:
        raise ValueError(
            f"The 'bars' parameter of {func} is missing columns {missing}; got {list(bars.columns)}."
        )
    parts: list[dict[str, np.ndarray]] = []
    syms: list[np.ndarray] = []
    spans: list[float] = []
    for sym, df in bars.sort_values(["symbol", "ts"]).groupby("symbol", sort=True):
        if len(df) < REGIME_LONG_BARS + cfg.horizon_bars + 2:
            continue
        ts = df["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        part = make(str(sym), df.reset_index(drop=True), cfg, _bars_per_year(ts))
        parts.append(part)
        syms.append(np.full(len(part["entry_ns"]), str(sym), dtype=object))
        spans.append((ts[-1] - ts[0]) / (365.0 * 24 * HOUR_NS))
    if not parts:
        raise ValueError(
            f"The 'bars' parameter of {func} needs at least "
            f"{REGIME_LONG_BARS + cfg.horizon_bars + 2} bars of one symbol. Got {len(bars)} rows instead."
        )
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    symbol = np.concatenate(syms)
    order = np.lexsort((symbol.astype(str), cat["entry_ns"]))
    n = len(order)
    years = max(spans) if spans else 1.0
    return TradeSet(
        symbol=symbol[order],
        entry_ns=cat["entry_ns"][order].astype(np.int64),
        exit_ns=cat["exit_ns"][order].astype(np.int64),
        confidence=cat["confidence"][order],
        volatility=cat["volatility"][order],
        regime=cat["regime"][order].astype(np.int64),
        outcome_r=cat["outcome_r"][order],
        barrier=cat["barrier"][order],
        mae_pct=cat["mae_pct"][order],
        true_prob=np.full(n, np.nan),
        n_regimes=2,
        periods_per_year=max(n / years, 1.0) if years > 0 else 8760.0,
    )


def trades_from_bars(bars: pd.DataFrame, config: PilotConfig | None = None) -> TradeSet:
    """Run the reference momentum signal over ``bars`` and label its trades (module docstring).

    Parameters
    ----------
    bars
        ``symbol, ts, open, high, low, close, volume`` as returned by :func:`infra.loaders.load_bars`
        (one or several symbols; ``ts`` is the bar open time, UTC).
    config
        Signal and barrier parameters (``momentum_bars``, ``z_threshold``, ``barrier_k``,
        ``horizon_bars``, ``min_gap_bars``, ``payoff_ratio``).

    Returns
    -------
    TradeSet
        Trades of all symbols merged and sorted by entry time (ties by symbol).
    """
    cfg = config or PilotConfig()
    return _trades_per_symbol(
        bars, cfg, "trades_from_bars", lambda _sym, df, c, bpy: _symbol_trades(df, c, bpy)
    )


# --------------------------------------------------------------------------- reference model
WALK_FORWARD_COLUMNS = ["symbol", "ts", "p_up", "model_version", "trained_until"]


def model_walk_forward(bars: pd.DataFrame, config: PilotConfig | None = None) -> pd.DataFrame:
    """Out-of-sample ``P(up)`` of the reference :class:`~ml.signal_model.SignalModel` for every bar.

    Training times ``T_k = first bar + model_min_train_bars + k * model_retrain_bars`` bars; the
    model fitted at ``T_k`` (on rows whose label is known at ``T_k``, see
    :meth:`~ml.signal_model.SignalModel.fit`) scores the bars with ``T_k <= ts < T_{k+1}``.
    A block whose training window has too few labelled rows (short histories) is skipped, so it
    proposes no trades.

    Returns
    -------
    DataFrame
        :data:`WALK_FORWARD_COLUMNS`: one row per scored bar with valid features.
    """
    from ml.attribution import predict_up
    from ml.signal_model import FeatureSet, ModelConfig, SignalModel

    cfg = config or PilotConfig()
    mcfg = ModelConfig(horizon=cfg.model_horizon)
    fs = FeatureSet.from_bars(bars, mcfg)
    ts = fs.features["ts"]
    valid = fs.valid
    start = ts.min() + cfg.model_min_train_bars * fs.bar_freq
    parts = []
    while start <= ts.max():
        end = start + cfg.model_retrain_bars * fs.bar_freq
        sel = valid & ((ts >= start) & (ts < end)).to_numpy()
        if sel.any():
            try:
                model = SignalModel(mcfg).fit_features(fs, until=start)
            except ValueError as exc:  # too few labelled rows yet: no model, no trades in this block
                if "needs at least" not in str(exc) and "both up and down" not in str(exc):
                    raise
            else:
                rows = fs.features.loc[sel]
                parts.append(
                    pd.DataFrame(
                        {
                            "symbol": rows["symbol"].to_numpy(),
                            "ts": rows["ts"].to_numpy(),
                            "p_up": predict_up(model, rows[model.feature_names_].astype(np.float64)),
                            "model_version": model.model_version_,
                            "trained_until": start,
                        }
                    )
                )
        start = end
    if not parts:
        return pd.DataFrame(columns=WALK_FORWARD_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def trades_from_model(bars: pd.DataFrame, config: PilotConfig | None = None) -> TradeSet:
    """Trades proposed by the walk-forward reference model, labelled by the triple barrier.

    At the close of bar ``t`` the model fitted at the latest training time ``T_k <= t``
    (:func:`model_walk_forward`; it used only rows whose label was known at ``T_k``) gives
    ``p = P(up)``. The trade goes long when ``p >= 0.5``, else short, with the calibrated
    ``confidence = max(p, 1 - p)`` as in ``trade.signal.v5``; it is proposed when the confidence
    reaches ``model_min_confidence`` (at most one trade per ``min_gap_bars`` bars and symbol).
    Volatility, regime, barriers and the outcome are those of the momentum source: the outcome
    reads only bars ``t+1 .. t+horizon_bars``.

    Parameters
    ----------
    bars
        Canonical bars of one or several symbols (``ts`` is the bar open time, UTC).
    config
        ``model_*`` fields for the model, barrier fields for the outcome.

    Returns
    -------
    TradeSet
        Trades of all symbols merged and sorted by entry time.
    """
    cfg = config or PilotConfig()
    missing = [c for c in ("symbol", "ts", "open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise ValueError(
            f"The 'bars' parameter of trades_from_model is missing columns {missing}; got {list(bars.columns)}."
        )
    wf = model_walk_forward(bars, cfg)
    by_symbol = {str(k): g for k, g in wf.groupby("symbol", sort=False)}

    def make(sym: str, df: pd.DataFrame, c: PilotConfig, bpy: float) -> dict[str, np.ndarray]:
        ctx = _bar_context(df)
        n = len(ctx.close)
        p = np.full(n, np.nan)
        g = by_symbol.get(sym)
        if g is not None and len(g):
            pos = pd.Index(df["ts"]).get_indexer(pd.DatetimeIndex(g["ts"]))
            keep = pos >= 0
            p[pos[keep]] = g["p_up"].to_numpy(dtype=np.float64)[keep]
        conf = np.maximum(p, 1.0 - p)
        ok = np.isfinite(p) & np.isfinite(ctx.long_vol) & (ctx.sigma > 0) & (conf >= c.model_min_confidence)
        ok &= conf > 0.5  # a coin flip proposes nothing (Kelly would stake zero)
        ok[n - c.horizon_bars :] = False  # the time barrier must lie inside the data
        idx = _space_out(ok, c.min_gap_bars)
        side = np.where(p[idx] >= 0.5, 1.0, -1.0)
        return _label_trades(ctx, idx, side, conf[idx], c, bpy)

    return _trades_per_symbol(bars, cfg, "trades_from_model", make)


def trades_for(bars: pd.DataFrame, config: PilotConfig | None = None) -> TradeSet:
    """Trades of the bar source named by ``config.signal``: ``'model'`` or ``'momentum'``."""
    cfg = config or PilotConfig()
    if cfg.signal == "model":
        return trades_from_model(bars, cfg)
    return trades_from_bars(bars, cfg)
