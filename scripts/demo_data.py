"""Deterministic demo data: bars with regimes and volatility clustering, signals, orders, closed trades.

Pure generation (no files): :func:`generate` returns frames; ``scripts.demo`` writes them.

What is planted, so every part of the platform has something real to find:

* **Bars** (synthetic): a 3-state Markov regime per symbol (calm, trending, volatile) scales a
  GARCH(1,1) volatility; returns carry a short-horizon momentum term
  ``b_t * tanh(m_{t-1}) * sigma_t`` where ``m`` is the z-score of the last three returns, with
  ``b = +0.25`` before the change point and ``-0.25`` after it (a learnable edge that flips, for
  the signal model and the retrain loop). High/low extend beyond open/close by half-normal moves.
* **Signals** (synthetic bars): one per trade, from a *simulated* production model whose
  confidence ``c`` in [0.5, 0.98] is calibrated for the trade's *direction* before the change
  point (P(direction right) = c) and degrades after it (P = 0.5 + 0.3 (c - 0.5): over-confident),
  so drift exists to be found. This signal is drawn knowing the bar's outcome: its hit rate is
  its confidence by construction, so its PnL is far better than any real model's.
  ``won`` in the signal log means the direction was right (gross of costs); ``pnl_usd`` in the
  trade log is net of fees and slippage.
* **Signals** (real bars, ``model_signals`` given): the reference model's out-of-sample
  ``P(up)`` (:func:`ml.signal_model.walk_forward_predict`, computed by ``scripts.demo``) at the
  close of the bar before entry; side ``BUY`` when ``P(up) >= 0.5``, confidence
  ``max(p, 1 - p)``, the model's version. Trades before the first walk-forward model (or with
  ``P(up) = 0.5``) are not taken. Nothing in it knows the outcome.
* **Routes**: ``binance_direct`` and ``okx_smart`` are healthy; ``bybit_legacy`` slips far more than
  expected, rejects and errors often, and is slow.
* **Trades**: non-overlapping per symbol; entry at the open of the bar after the signal, exit at
  the close of the last holding bar, both moved by slippage and clipped into the bar's range;
  ``max_adverse_pct`` from the bars' lows (long) or highs (short) over the holding period.

Why this file is long: one deterministic generator; bars, signals, orders and trades are drawn
from one random stream and must stay in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Scale = Literal["default", "large"]

DEFAULT_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "AVAXUSDT"]
START = pd.Timestamp("2025-01-01T00:00:00Z")
EQUITY_USD = 100_000.0
FEE_BPS = 2.5  # per side


@dataclass(frozen=True)
class RouteProfile:
    """Execution quality of one route (slippage in basis points, rates per order attempt)."""

    name: str
    weight: float
    slippage_bps: float
    expected_slippage_bps: float
    reject_rate: float
    error_rate: float
    latency_ms: float


ROUTES = (
    RouteProfile("binance_direct", 0.45, 1.5, 1.5, 0.005, 0.002, 35.0),
    RouteProfile("okx_smart", 0.35, 2.5, 2.5, 0.010, 0.004, 60.0),
    RouteProfile("bybit_legacy", 0.20, 14.0, 3.0, 0.080, 0.030, 420.0),
)


@dataclass(frozen=True)
class DemoConfig:
    """Size and shape of the generated data."""

    seed: int = 7
    scale: Scale = "default"
    n_symbols: int = 8
    n_bars: int = 2160
    """Bars per symbol (1h): 90 days by default."""
    hold_bars: tuple[int, int] = (2, 12)
    gap_bars: tuple[int, int] = (1, 8)
    change_at: float = 0.6
    """Fraction of the timeline after which the signal degrades and the momentum edge flips."""
    freq: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))

    @classmethod
    def for_scale(cls, scale: Scale, seed: int) -> DemoConfig:
        if scale == "large":  # about 1,000,000 trades over 500 symbols
            return cls(seed=seed, scale=scale, n_symbols=500, n_bars=9000, hold_bars=(1, 6), gap_bars=(0, 2))
        return cls(seed=seed, scale=scale)


@dataclass(frozen=True)
class DemoData:
    bars: pd.DataFrame
    signals: pd.DataFrame
    orders: pd.DataFrame
    trades: pd.DataFrame
    change_ts: pd.Timestamp
    config: DemoConfig


def symbol_names(n: int) -> list[str]:
    if n <= len(DEFAULT_SYMBOLS):
        return DEFAULT_SYMBOLS[:n]
    return DEFAULT_SYMBOLS + [f"SYN{i:03d}USDT" for i in range(n - len(DEFAULT_SYMBOLS))]


# --------------------------------------------------------------------------- bars
def synthetic_bars(cfg: DemoConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Bars for ``cfg.n_symbols`` symbols, vectorised across symbols."""
    n_sym, n = cfg.n_symbols, cfg.n_bars
    change = int(cfg.change_at * n)
    base_vol = rng.uniform(0.004, 0.009, n_sym)  # hourly
    stay = np.array([0.995, 0.990, 0.980])
    vol_mult = np.array([0.8, 1.1, 2.0])
    omega, alpha, beta = 0.05, 0.08, 0.87  # GARCH on the unit-variance scale
    regime = np.zeros((n, n_sym), dtype=np.int8)
    sigma = np.empty((n, n_sym))
    ret = np.empty((n, n_sym))
    h = np.ones(n_sym)
    reg = rng.integers(0, 3, n_sym)
    trend_sign = rng.choice([-1.0, 1.0], n_sym)
    u_switch = rng.random((n, n_sym))
    u_next = rng.integers(0, 3, (n, n_sym))
    z = rng.standard_normal((n, n_sym))
    prev = np.zeros((3, n_sym))  # last three standardised returns
    for t in range(n):
        switch = u_switch[t] > stay[reg]
        new_reg = np.where(switch, u_next[t], reg)
        trend_sign = np.where(switch & (new_reg == 1), np.where(z[t] > 0, 1.0, -1.0), trend_sign)
        reg = new_reg
        s = base_vol * vol_mult[reg] * np.sqrt(h)
        m = prev.sum(axis=0) / np.sqrt(3.0)
        b = 0.25 if t < change else -0.25
        mu = np.where(reg == 1, 0.15 * trend_sign, 0.0)
        e = z[t]
        r = s * (b * np.tanh(m) + mu + np.sqrt(1.0 - b * b) * e)
        regime[t], sigma[t], ret[t] = reg, s, r
        h = omega + alpha * e * e + beta * h
        prev = np.roll(prev, 1, axis=0)
        prev[0] = r / s
    start_price = np.exp(rng.uniform(np.log(0.1), np.log(60_000.0), n_sym))
    start_price[:2] = [42_000.0, 2_300.0][: min(2, n_sym)]
    close = start_price * np.exp(np.cumsum(ret, axis=0))
    open_ = np.vstack([start_price[None, :], close[:-1]])
    wick_hi = np.abs(rng.standard_normal((n, n_sym))) * sigma * 0.5
    wick_lo = np.abs(rng.standard_normal((n, n_sym))) * sigma * 0.5
    high = np.maximum(open_, close) * np.exp(wick_hi)
    low = np.minimum(open_, close) * np.exp(-wick_lo)
    volume = np.exp(rng.normal(6.0, 0.4, (n, n_sym))) * (1.0 + np.abs(ret) / sigma) * vol_mult[regime]
    ts = pd.date_range(START, periods=n, freq=cfg.freq)
    names = symbol_names(n_sym)
    frame = pd.DataFrame(
        {
            "symbol": np.repeat(np.array(names, dtype=object), n),
            "ts": np.tile(ts.to_numpy(), n_sym),
            "open": open_.T.ravel(),
            "high": high.T.ravel(),
            "low": low.T.ravel(),
            "close": close.T.ravel(),
            "volume": volume.T.ravel(),
        }
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame.attrs["regime"] = regime.T.ravel()
    frame.attrs["sigma"] = sigma.T.ravel()
    return frame


def real_bar_state(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar volatility (EWMA of log returns, 24-bar half-life) and a 3-level vol regime."""
    logret = np.log(bars["close"]).groupby(bars["symbol"]).diff().fillna(0.0)
    var = (logret**2).groupby(bars["symbol"]).transform(lambda s: s.ewm(halflife=24, min_periods=1).mean())
    sigma = np.sqrt(var.to_numpy()).clip(1e-5)
    q1, q2 = np.quantile(sigma, [0.33, 0.8])
    regime = np.where(sigma < q1, 0, np.where(sigma < q2, 1, 2)).astype(np.int8)
    return sigma, regime


# --------------------------------------------------------------------------- trades
def _draw_trades(
    n_bars_per_symbol: np.ndarray, cfg: DemoConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping (symbol index, entry bar, exit bar) triples, vectorised across symbols."""
    n_sym = len(n_bars_per_symbol)
    mean_cycle = (sum(cfg.hold_bars) + sum(cfg.gap_bars)) / 2.0 + 1.0
    k_max = int(n_bars_per_symbol.max() / max(mean_cycle, 1.0) * 1.5) + 8
    hold = rng.integers(cfg.hold_bars[0], cfg.hold_bars[1] + 1, (n_sym, k_max))
    gap = rng.integers(cfg.gap_bars[0], cfg.gap_bars[1] + 1, (n_sym, k_max))
    signal_bar = np.cumsum(gap + np.roll(hold, 1, axis=1) * (np.arange(k_max) > 0), axis=1) + 24
    entry = signal_bar + 1
    exit_ = entry + hold - 1
    ok = exit_ < n_bars_per_symbol[:, None]
    sym_idx = np.broadcast_to(np.arange(n_sym)[:, None], ok.shape)[ok]
    return sym_idx, entry[ok], exit_[ok]


def generate(
    cfg: DemoConfig, bars: pd.DataFrame | None = None, model_signals: pd.DataFrame | None = None
) -> DemoData:
    """Generate every demo frame. With ``bars`` (real bars), only signals/orders/trades are simulated.

    ``model_signals`` (columns ``symbol, ts, p_up, model_version``; ``ts`` the bar whose close
    the forecast is made at) replaces the simulated signal: each trade takes the model's side and
    confidence at the bar before its entry (module docstring).
    """
    rng = np.random.default_rng(cfg.seed)
    if bars is None:
        bars = synthetic_bars(cfg, rng)
        sigma = np.asarray(bars.attrs["sigma"])
        regime = np.asarray(bars.attrs["regime"])
        bars = bars.copy()
        bars.attrs = {}
    else:
        bars = bars.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
        bars.attrs = {}
        sigma, regime = real_bar_state(bars)
    symbols = bars["symbol"].to_numpy()
    names, starts, counts = np.unique(symbols, return_index=True, return_counts=True)
    order = np.argsort(starts)
    names, starts, counts = names[order], starts[order], counts[order]
    ts_ns = bars["ts"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    t_min, t_max = int(ts_ns.min()), int(ts_ns.max())
    change_ns = t_min + int(cfg.change_at * (t_max - t_min))
    freq_ns = (
        int(np.median(np.diff(ts_ns[starts[0] : starts[0] + counts[0]])))
        if counts[0] > 1
        else 3_600_000_000_000
    )

    sym_i, entry_l, exit_l = _draw_trades(counts, cfg, rng)
    e = starts[sym_i] + entry_l  # global row of the entry bar
    x = starts[sym_i] + exit_l
    o, hi, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))

    if model_signals is None:  # the simulated production model (knows the outcome: see the docstring)
        n_tr = len(e)
        conf = np.round(0.5 + 0.48 * rng.beta(2.0, 2.5, n_tr), 4)
        signal_ns = ts_ns[e]
        degraded = signal_ns >= change_ns
        p_right = np.where(degraded, 0.5 + 0.3 * (conf - 0.5), conf)
        gross = np.log(c[x] / o[e])
        true_dir = np.where(gross > 0, 1.0, -1.0)
        right = rng.random(n_tr) < p_right
        side = np.where(right, true_dir, -true_dir)
        model_version: np.ndarray | str = "demo-signal-v1"
    else:  # the reference model's walk-forward forecast at the close of the bar before entry
        p_up = _model_p_up(bars, model_signals, e - 1)
        keep = np.isfinite(p_up) & (p_up != 0.5)
        sym_i, e, x, p_up = sym_i[keep], e[keep], x[keep], p_up[keep]
        model_version = _model_versions(bars, model_signals, e - 1)
        n_tr = len(e)
        conf = np.round(np.maximum(p_up, 1.0 - p_up), 4)
        side = np.where(p_up > 0.5, 1.0, -1.0)
        signal_ns = ts_ns[e]
        gross = np.log(c[x] / o[e])
    won = (side * gross) > 0

    # routes and execution
    weights = np.array([r.weight for r in ROUTES])
    route_i = rng.choice(len(ROUTES), n_tr, p=weights / weights.sum())
    slip_mean = np.array([r.slippage_bps for r in ROUTES])[route_i]
    slip_in = np.abs(rng.normal(slip_mean, slip_mean * 0.6))
    slip_out = np.abs(rng.normal(slip_mean, slip_mean * 0.6))
    entry_px = np.clip(o[e] * (1.0 + side * slip_in / 1e4), lo[e], hi[e])
    exit_px = np.clip(c[x] * (1.0 - side * slip_out / 1e4), lo[x], hi[x])
    kelly = np.maximum(0.5 * (2.0 * conf - 1.0), 0.01)
    size = np.round(EQUITY_USD * kelly, 2)
    fees = np.round(size * 2.0 * FEE_BPS / 1e4, 4)
    pnl = np.round(size * side * (exit_px / entry_px - 1.0) - fees, 4)
    # worst excursion over the holding bars (segments [e, x] never overlap within a symbol)
    pad_lo = np.append(lo, lo[-1])
    pad_hi = np.append(hi, hi[-1])
    order_seg = np.argsort(e, kind="stable")
    idx = np.empty(2 * n_tr, dtype=np.int64)
    idx[0::2], idx[1::2] = e[order_seg], x[order_seg] + 1
    min_lo = np.empty(n_tr)
    max_hi = np.empty(n_tr)
    min_lo[order_seg] = np.minimum.reduceat(pad_lo, idx)[0::2]
    max_hi[order_seg] = np.maximum.reduceat(pad_hi, idx)[0::2]
    adverse = np.where(side > 0, (entry_px - min_lo) / entry_px, (max_hi - entry_px) / entry_px)
    adverse = np.round(np.maximum(adverse, 0.0) * 100.0, 4)

    opened_ns = ts_ns[e] + rng.integers(1, 60, n_tr) * 1_000_000_000
    closed_ns = ts_ns[x] + freq_ns - rng.integers(1, 60, n_tr) * 1_000_000_000
    k_in_symbol = _rank_within(sym_i)
    order_id = pd.Series(names[sym_i]).str.cat(pd.Series(k_in_symbol).astype(str).str.zfill(6), sep="-")
    signal_id = "sig-" + order_id
    utc = lambda a: pd.to_datetime(a, utc=True)  # noqa: E731
    trades = pd.DataFrame(
        {
            "order_id": order_id,
            "symbol": names[sym_i],
            "route": np.array([r.name for r in ROUTES], dtype=object)[route_i],
            "side": np.where(side > 0, "LONG", "SHORT"),
            "opened_at": utc(opened_ns),
            "closed_at": utc(closed_ns),
            "entry_price": entry_px,
            "exit_price": exit_px,
            "size_usd": size,
            "fees_usd": fees,
            "pnl_usd": pnl,
            "confidence": conf,
            "multiplier": 1.0,
            "max_adverse_pct": adverse,
            "signal_id": signal_id,
            "model_version": model_version,
            "regime": regime[e].astype(np.int64),
            "volatility": np.round(sigma[e], 6),
            "entry_slippage_bps": np.round(slip_in, 3),
            "exit_slippage_bps": np.round(slip_out, 3),
        }
    )
    trades = trades.sort_values(["closed_at", "order_id"], kind="stable").reset_index(drop=True)
    signals = (
        pd.DataFrame(
            {
                "signal_id": signal_id,
                "order_id": order_id,
                "ts": utc(signal_ns),
                "symbol": names[sym_i],
                "action": np.where(side > 0, "BUY", "SELL"),
                "confidence": conf,
                "model_version": model_version,
                "won": won,
            }
        )
        .sort_values(["ts", "signal_id"], kind="stable")
        .reset_index(drop=True)
    )
    orders = _orders(trades, rng)
    return DemoData(bars, signals, orders, trades, pd.Timestamp(change_ns, tz="UTC"), cfg)


def _signal_lookup(
    bars: pd.DataFrame, model_signals: pd.DataFrame, rows: np.ndarray, column: str
) -> np.ndarray:
    """``model_signals[column]`` at the bars ``rows`` (matched on symbol and ts), NaN/None where absent."""
    missing = [c for c in ("symbol", "ts", "p_up", "model_version") if c not in model_signals.columns]
    if missing:
        raise ValueError(
            f"The 'model_signals' parameter of generate is missing column(s) {missing}; "
            f"it has {list(model_signals.columns)}."
        )
    key = pd.MultiIndex.from_arrays(
        [model_signals["symbol"].astype(str), pd.to_datetime(model_signals["ts"], utc=True)]
    )
    values = pd.Series(model_signals[column].to_numpy(), index=key)
    values = values[~values.index.duplicated(keep="last")]
    want = pd.MultiIndex.from_arrays(
        [bars["symbol"].astype(str).to_numpy()[rows], bars["ts"].to_numpy()[rows]]
    )
    return values.reindex(want).to_numpy()


def _model_p_up(bars: pd.DataFrame, model_signals: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    return np.asarray(_signal_lookup(bars, model_signals, rows, "p_up"), dtype=float)


def _model_versions(bars: pd.DataFrame, model_signals: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    return np.asarray(_signal_lookup(bars, model_signals, rows, "model_version"), dtype=object)


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each group, in array order."""
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    counts = np.diff(np.r_[first, len(g)])
    ranks_sorted = np.arange(len(g)) - np.repeat(first, counts)
    out = np.empty(len(g), dtype=np.int64)
    out[order] = ranks_sorted
    return out + 1


def _orders(trades: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Order attempts: one FILLED order per trade plus REJECTED/ERROR attempts before it."""
    # trades were re-sorted; recover per-trade route profile from the route column
    names = [r.name for r in ROUTES]
    ri = pd.Categorical(trades["route"], categories=names).codes
    exp_slip = np.array([r.expected_slippage_bps for r in ROUTES])[ri]
    lat = np.array([r.latency_ms for r in ROUTES])[ri]
    n = len(trades)
    filled = pd.DataFrame(
        {
            "order_id": trades["order_id"],
            "ts": trades["opened_at"],
            "symbol": trades["symbol"],
            "route": trades["route"],
            "status": "FILLED",
            "expected_price": np.round(
                trades["entry_price"]
                / (1 + np.where(trades["side"] == "LONG", 1, -1) * trades["entry_slippage_bps"] / 1e4),
                8,
            ),
            "fill_price": trades["entry_price"],
            "slippage_bps": trades["entry_slippage_bps"],
            "expected_slippage_bps": exp_slip,
            "latency_ms": np.round(rng.gamma(2.0, lat / 2.0, n), 1),
        }
    )
    fail_p = np.array([r.reject_rate + r.error_rate for r in ROUTES])[ri]
    rej_share = np.array([r.reject_rate / (r.reject_rate + r.error_rate) for r in ROUTES])[ri]
    failed = rng.random(n) < fail_p / (1 - fail_p)
    f = np.flatnonzero(failed)
    status = np.where(rng.random(len(f)) < rej_share[f], "REJECTED", "ERROR")
    attempts = pd.DataFrame(
        {
            "order_id": trades["order_id"].to_numpy()[f] + "-a1",
            "ts": trades["opened_at"].iloc[f].to_numpy() - pd.Timedelta(seconds=2),
            "symbol": trades["symbol"].to_numpy()[f],
            "route": trades["route"].to_numpy()[f],
            "status": status,
            "expected_price": filled["expected_price"].to_numpy()[f],
            "fill_price": np.nan,
            "slippage_bps": np.nan,
            "expected_slippage_bps": exp_slip[f],
            "latency_ms": np.round(rng.gamma(2.0, lat[f], len(f)), 1),
        }
    )
    attempts["ts"] = pd.to_datetime(attempts["ts"], utc=True)
    out = pd.concat([filled, attempts], ignore_index=True)
    return out.sort_values(["ts", "order_id"], kind="stable").reset_index(drop=True)
