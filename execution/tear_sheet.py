"""Tear sheet computation: a book's daily returns from closed trades and everything a trader reads off them.

Why this file is long: it is one computation, the tear sheet. Its sections (model-version spans,
the daily book, the benchmark, key and rolling metrics) all read the same daily book and are
assembled by :func:`build_tear_sheet`; each is a few short pure functions. The drawdown and
calendar tables are :mod:`execution.return_tables`.

Pure computation (DataFrames in, DataFrames out; no files, no clock). The views are
``dashboard/tear_sheet.py`` (the Tear Sheet tab) and ``execution/tear_sheet_report.py`` (the
standalone HTML report and its CLI). Every statistic comes from the metrics library
(:mod:`execution.metrics_normalizer` re-exports it) or from :mod:`execution.trade_stats`; this
module only builds the return series they are applied to. See ``docs/tear_sheet.md``.

Daily returns of the book (the equity base, explicitly)
-------------------------------------------------------
The book starts with capital ``E0`` (``initial_equity``). Its equity moves only when a trade
CLOSES, by that trade's ``pnl_usd`` (after fees): realised equity, no marking to market of open
positions. Each trade's return is its PnL over the equity just before it closed,
``r_i = pnl_i / E_(i-1)``, and the day's return is these compounded in closing order:
``prod_i (1 + r_i) - 1 = E_end(d) / E_end(d-1) - 1 = pnl(d) / E_end(d-1)`` (the product
telescopes). So daily returns are compounded per-trade returns, never a sum of per-trade
returns on different bases (nautilus_trader PR #4141), and ``prod(1 + r_d) = E_final / E0``.

Default ``E0``: the peak gross notional open at any instant (``max_t sum size_usd`` over the
trades open at ``t``, a trade being open on ``[opened_at, closed_at)``): the cash that carries
every position of the selection unlevered. Pass ``initial_equity`` to use the account's capital.
If equity reaches zero the returns after it are undefined and a ``ValueError`` names the day.

Days are UTC calendar days ``[00:00, 24:00)`` labelled by their date (a trade closed at
2024-01-31 23:59 is January's), from the day the first trade opened to the day the last one
closed; days without a close return exactly 0.0. Annualisation uses
``periods_per_year('1D', calendar='crypto')`` = 365 (24/7 markets; quantstats #40).

Model versions (in-sample / out-of-sample)
------------------------------------------
Promotion and rollback events of the model registry (``ml.model_registry``) split time into
spans, each with the version that was live. A trade belongs to the span in which it OPENED
(``at <= opened_at`` of the last event; a trade opened exactly at a promotion belongs to the new
version). A span's return series is its trades' PnL over the whole book's equity of the previous
day, on every day from the span's start to its last trade's close, so the spans' contributions add
up to the book's daily return. Trades opened before the first event form the span
``"before <first version>"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from execution.metrics_normalizer import (
    annual_return,
    annual_volatility,
    deflated_sharpe_ratio,
    hit_rate,
    max_drawdown,
    min_track_record_length,
    periods_per_year,
    probabilistic_sharpe_ratio,
    rolling_annual_volatility,
    rolling_sharpe_ratio,
    rolling_sharpe_standard_error,
    rolling_sortino_ratio,
    sharpe_ratio,
    sharpe_standard_error,
    sortino_ratio,
    trade_returns,
)
from execution.return_tables import (
    drawdown_table,
    monthly_returns,
    return_quantiles,
    underwater,
    yearly_returns,
)
from execution.trade_stats import Fills, trade_stats_levels
from infra.validate import check_int, check_real

DAY_NS = 86_400 * 10**9
PERIODS_PER_YEAR = periods_per_year("1D", calendar="crypto")
"""365: daily bins of a 24/7 market."""
REQUIRED = ("symbol", "route", "opened_at", "closed_at", "pnl_usd", "size_usd")

KEY_METRICS: list[tuple[str, str]] = [
    ("start", "first day (UTC)"),
    ("end", "last day (UTC)"),
    ("days", "daily observations"),
    ("n_trades", "closed trades"),
    ("total_return", "compounded return over the period (fraction)"),
    ("cagr", "compound annual growth rate, (1 + total) ** (365 / days) - 1"),
    ("ann_return", "arithmetic mean daily return x 365"),
    ("ann_volatility", "std of daily returns x sqrt(365)"),
    ("sharpe", "annualised Sharpe ratio (rf = 0)"),
    ("sharpe_se", "standard error of the annualised Sharpe (Mertens 2002), same units"),
    ("psr", "probabilistic Sharpe ratio, P(true Sharpe > 0)"),
    ("dsr", "deflated Sharpe ratio given n_trials"),
    ("n_trials", "trials assumed by the DSR"),
    ("min_trl_days", "minimum track record length for 95 % confidence Sharpe > 0 (days)"),
    ("sortino", "annualised Sortino ratio (target 0)"),
    ("max_drawdown", "maximum drawdown of compounded equity (negative fraction)"),
    ("max_drawdown_days", "longest drawdown: days under water"),
    ("calmar", "CAGR / |max drawdown|"),
    ("daily_hit_rate", "share of positive days among non-zero days"),
    ("hit_rate", "win rate of trades (fills)"),
    ("payoff_ratio", "average win / average loss of trades (USD)"),
    ("profit_factor", "gross profit / gross loss of trades (USD)"),
    ("expectancy_usd", "mean PnL per trade (USD)"),
    ("expectancy_per_risk", "mean PnL / size per trade"),
    ("kelly", "Kelly fraction implied by the fills"),
]
"""Key metric names, in display order, with their definitions."""

_FUNC = "build_tear_sheet"


def _fail(message: str) -> ValueError:
    return ValueError(f"{_FUNC}: {message}")


# --------------------------------------------------------------------------- model versions
@dataclass(frozen=True)
class Promotion:
    """A change of the live model version: ``version`` is live from ``at`` (tz-aware UTC) on."""

    at: pd.Timestamp
    version: str
    action: str = "promote"


def promotions_from_events(events: Iterable[Mapping[str, Any]]) -> list[Promotion]:
    """Promotions from the registry pointer's ``events`` (``promote`` and ``rollback``), sorted by time.

    A rollback makes its ``version`` (the restored one) live, so it starts a span too.

    Examples
    --------
    >>> promotions_from_events([{"action": "promote", "version": "v1", "at": "2025-02-15T00:00:00Z"}])
    [Promotion(at=Timestamp('2025-02-15 00:00:00+0000', tz='UTC'), version='v1', action='promote')]
    """
    out = []
    for i, ev in enumerate(events):
        action = ev.get("action")
        if action not in ("promote", "rollback"):
            continue
        try:
            at = pd.Timestamp(ev["at"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"promotions_from_events: event {i} has no valid 'at' timestamp: {ev!r}"
            ) from exc
        if at.tzinfo is None:
            raise ValueError(f"promotions_from_events: event {i} has a timezone-naive 'at' ({ev['at']!r}).")
        out.append(Promotion(at.tz_convert("UTC"), str(ev.get("version")), str(action)))
    return sorted(out, key=lambda p: p.at)


def span_labels(promotions: Sequence[Promotion]) -> list[str]:
    """Display label of each span: ``before <v1>`` then ``<version> (from YYYY-MM-DD HH:MM)``."""
    if not promotions:
        return ["all"]
    first = [f"before {promotions[0].version}"]
    return first + [f"{p.version} (from {p.at:%Y-%m-%d %H:%M})" for p in promotions]


def assign_spans(opened_at: pd.Series | pd.DatetimeIndex, promotions: Sequence[Promotion]) -> np.ndarray:
    """Index into :func:`span_labels` of the span each trade OPENED in (0 = before the first event).

    Examples
    --------
    >>> p = [Promotion(pd.Timestamp("2025-01-02", tz="UTC"), "v1")]
    >>> assign_spans(pd.to_datetime(["2025-01-01 23:59", "2025-01-02 00:00"], utc=True), p).tolist()
    [0, 1]
    """
    times = np.asarray(pd.DatetimeIndex(opened_at).tz_convert("UTC").as_unit("ns").asi8)
    if not promotions:
        return np.zeros(len(times), dtype=np.int64)
    at = np.array([p.at.as_unit("ns").value for p in promotions], dtype=np.int64)
    return np.searchsorted(at, times, side="right").astype(np.int64)


# --------------------------------------------------------------------------- daily returns
def _check_trades(trades: pd.DataFrame) -> None:
    if not isinstance(trades, pd.DataFrame):
        raise _fail(f"'trades' must be a DataFrame. Got {type(trades).__name__}.")
    missing = [c for c in REQUIRED if c not in trades.columns]
    if missing:
        raise _fail(f"the trades frame lacks required column(s) {missing}; it has {list(trades.columns)}.")
    for name in ("opened_at", "closed_at"):
        if not isinstance(trades[name].dtype, pd.DatetimeTZDtype):
            raise _fail(
                f"field '{name}' must be timezone-aware UTC timestamps. Got dtype {trades[name].dtype}."
            )
    for name in ("pnl_usd", "size_usd"):
        values = trades[name].to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | ((values <= 0) if name == "size_usd" else False))
        if bad.size:
            raise _fail(f"field '{name}' has an invalid value at row {int(bad[0])}: {values[bad[0]]!r}.")


def _ns(col: pd.Series) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(col).tz_convert("UTC").as_unit("ns").asi8)


def peak_notional(trades: pd.DataFrame) -> float:
    """Largest total ``size_usd`` open at one instant (a trade is open on ``[opened_at, closed_at)``).

    Examples
    --------
    >>> t = pd.DataFrame({"opened_at": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00"], utc=True),
    ...                   "closed_at": pd.to_datetime(["2024-01-01 02:00", "2024-01-01 03:00"], utc=True),
    ...                   "size_usd": [100.0, 50.0]})
    >>> peak_notional(t)
    150.0
    """
    if len(trades) == 0:
        return 0.0
    times = np.concatenate([_ns(trades["closed_at"]), _ns(trades["opened_at"])])
    size = trades["size_usd"].to_numpy(dtype=float)
    delta = np.concatenate([-size, size])
    order = np.argsort(times, kind="stable")  # closes are listed first, so they go first on ties
    return float(np.cumsum(delta[order]).max())


@dataclass(frozen=True)
class DailyBook:
    """The book's daily series (index: UTC midnight of each day, tz-aware)."""

    returns: pd.Series
    """Daily compounded return of the book."""
    equity: pd.Series
    """Realised equity at the end of each day (USD)."""
    pnl: pd.Series
    """Realised PnL of each day (USD)."""
    initial_equity: float
    contributions: pd.DataFrame | None = None
    """Per-group return contributions (columns = group codes) when ``groups`` was given."""


def daily_book(
    trades: pd.DataFrame,
    *,
    initial_equity: float | None = None,
    groups: np.ndarray | None = None,
    n_groups: int = 0,
) -> DailyBook:
    """Daily returns of the book (see the module docstring for the equity base).

    ``groups`` (one non-negative int per trade, < ``n_groups``) also returns each group's
    contribution ``pnl_group(d) / E_end(d-1)``; the contributions of a day add up to its return.
    """
    _check_trades(trades)
    if len(trades) == 0:
        raise _fail("no trades to build daily returns from.")
    if initial_equity is None:
        base = peak_notional(trades)
        if not (np.isfinite(base) and base > 0):
            raise _fail(f"the trades' peak notional {base!r} is not a positive number.")
    else:
        base = check_real(initial_equity, param="initial_equity", func=_FUNC, positive=True)
    opened = _ns(trades["opened_at"])
    closed = _ns(trades["closed_at"])
    first = int(opened.min()) // DAY_NS * DAY_NS
    last = int(closed.max()) // DAY_NS * DAY_NS
    n_days = (last - first) // DAY_NS + 1
    day = (closed // DAY_NS * DAY_NS - first) // DAY_NS
    pnl = trades["pnl_usd"].to_numpy(dtype=float)
    pnl_day = np.bincount(day, weights=pnl, minlength=n_days)
    equity_end = base + np.cumsum(pnl_day)
    ruined = np.flatnonzero(equity_end <= 0)
    index = pd.DatetimeIndex(first + DAY_NS * np.arange(n_days, dtype=np.int64), tz="UTC", name="day")
    if ruined.size:
        raise ValueError(
            f"{_FUNC}: the book's equity falls to {equity_end[ruined[0]]:,.2f} USD on {index[ruined[0]]:%Y-%m-%d} "
            f"from an initial equity of {base:,.2f} USD; returns after ruin are undefined. Pass a larger "
            "'initial_equity'."
        )
    equity_start = np.concatenate([[base], equity_end[:-1]])
    returns = pnl_day / equity_start
    contributions = None
    if groups is not None:
        flat = day * n_groups + groups
        per = np.bincount(flat, weights=pnl, minlength=n_days * n_groups).reshape(n_days, n_groups)
        contributions = pd.DataFrame(per / equity_start[:, None], index=index)
    return DailyBook(
        returns=pd.Series(returns, index=index, name="returns"),
        equity=pd.Series(equity_end, index=index, name="equity"),
        pnl=pd.Series(pnl_day, index=index, name="pnl_usd"),
        initial_equity=base,
        contributions=contributions,
    )


# --------------------------------------------------------------------------- benchmark
def pick_benchmark(symbols: Iterable[str], wanted: str = "BTC") -> str | None:
    """``wanted`` if it is a symbol, else the first symbol (sorted) starting with it, else None."""
    names = sorted(set(map(str, symbols)))
    if wanted in names:
        return wanted
    return next((s for s in names if s.upper().startswith(wanted.upper())), None)


def benchmark_returns(bars: pd.DataFrame, symbol: str, index: pd.DatetimeIndex) -> pd.Series:
    """Daily returns of buying and holding ``symbol``, on the days of ``index``.

    A bar ``ts`` is its OPEN time; its close price is known at ``ts + bar length`` (the most
    common spacing), so it belongs to the UTC day containing ``ts + bar length - 1 ns``. The day's
    price is its last close; days without a bar carry the previous price (return 0); a day's
    return needs the previous day's price, so the first day needs a bar from the day before
    (NaN otherwise, and before the first bar).
    """
    sub = bars.loc[bars["symbol"].astype(str) == symbol, ["ts", "close"]]
    if sub.empty:
        raise _fail(f"the bars have no symbol {symbol!r} for the benchmark.")
    ts = _ns(sub["ts"])
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    close = sub["close"].to_numpy(dtype=float)[order]
    steps = np.diff(ts)
    steps = steps[steps > 0]
    if steps.size:  # the most common spacing (as infra.loaders.infer_bar_frequency), smallest on ties
        values, counts = np.unique(steps, return_counts=True)
        bar_len = int(values[np.argmax(counts)])
    else:
        bar_len = DAY_NS
    day = (ts + bar_len - 1) // DAY_NS * DAY_NS
    last_of_day = np.r_[day[1:] != day[:-1], True]
    daily = pd.Series(close[last_of_day], index=pd.DatetimeIndex(day[last_of_day], tz="UTC"))
    grid = pd.DatetimeIndex(
        np.concatenate([[index[0].value - DAY_NS], np.asarray(index.as_unit("ns").asi8)]), tz="UTC"
    )
    merged = daily.reindex(daily.index.union(grid)).ffill().reindex(grid)
    out = merged.pct_change(fill_method=None).iloc[1:]
    out.index = index
    return out.rename(symbol)


# --------------------------------------------------------------------------- metrics
def trials_sharpe_variance(trades: pd.DataFrame) -> tuple[int, float]:
    """Number of (symbol, route) streams and the variance (ddof=1) of their per-period daily Sharpes.

    Each stream's daily returns are :func:`execution.trade_returns.trade_returns` (return on
    notional, equal capital per trade); the variance is NaN with fewer than two finite Sharpes.
    """
    frame = trade_returns(trades, by=("symbol", "route"), freq="1D")
    sr = np.asarray(sharpe_ratio(frame.to_numpy(), periods_per_year=1.0), dtype=float)
    finite = sr[np.isfinite(sr)]
    var = float(np.var(finite, ddof=1)) if finite.size >= 2 else float("nan")
    return int(frame.shape[1]), var


def key_metrics(
    returns: pd.Series,
    fills: Mapping[Any, Any] | None,
    *,
    n_trials: int = 1,
    trials_variance: float = float("nan"),
) -> dict[str, Any]:
    """The key metrics (:data:`KEY_METRICS`) of a daily return series and the trades behind it.

    Ratios come from the metrics library with ``periods_per_year = 365``; ``sharpe_se`` is in the
    annualised Sharpe's units. ``dsr`` is PSR against the expected maximum Sharpe of ``n_trials``
    trials with per-period Sharpe variance ``trials_variance`` (equal to ``psr`` when
    ``n_trials == 1``; NaN when the variance is unknown). ``fills`` is one row of
    :func:`execution.trade_stats.trade_stats` for the trades behind the returns; ``None`` (a
    benchmark) leaves the trade statistics NaN.
    """
    r = returns.dropna()
    ppy = PERIODS_PER_YEAR
    x = r.to_numpy(dtype=float)
    n = len(x)
    total = float(np.prod(1.0 + x) - 1.0) if n else float("nan")
    cagr = float((1.0 + total) ** (ppy / n) - 1.0) if n and total > -1 else float("nan")
    mdd = float(max_drawdown(x)) if n else float("nan")
    dd = drawdown_table(r, top=1_000_000) if n else pd.DataFrame({"days": []})
    if n_trials == 1:
        dsr = float(probabilistic_sharpe_ratio(x)) if n else float("nan")
    elif np.isfinite(trials_variance) and n:
        dsr = float(deflated_sharpe_ratio(x, n_trials=n_trials, trials_sharpe_variance=trials_variance))
    else:
        dsr = float("nan")
    out: dict[str, Any] = {
        "start": r.index[0] if n else pd.NaT,
        "end": r.index[-1] if n else pd.NaT,
        "days": n,
        "n_trades": int(fills["n_trades"]) if fills is not None else float("nan"),
        "total_return": total,
        "cagr": cagr,
        "ann_return": float(annual_return(x, periods_per_year=ppy)) if n else float("nan"),
        "ann_volatility": float(annual_volatility(x, periods_per_year=ppy)) if n else float("nan"),
        "sharpe": float(sharpe_ratio(x, periods_per_year=ppy)) if n else float("nan"),
        "sharpe_se": float(sharpe_standard_error(x, periods_per_year=ppy)) if n else float("nan"),
        "psr": float(probabilistic_sharpe_ratio(x)) if n else float("nan"),
        "dsr": dsr,
        "n_trials": n_trials,
        "min_trl_days": float(min_track_record_length(x)) if n else float("nan"),
        "sortino": float(sortino_ratio(x, periods_per_year=ppy)) if n else float("nan"),
        "max_drawdown": mdd,
        "max_drawdown_days": int(dd["days"].max()) if len(dd) else 0,
        "calmar": cagr / abs(mdd) if n and mdd < 0 else float("nan"),
        "daily_hit_rate": float(hit_rate(x)) if n else float("nan"),
    }
    names = ("hit_rate", "payoff_ratio", "profit_factor", "expectancy_usd", "expectancy_per_risk", "kelly")
    if fills is not None:
        out.update({"hit_rate": float(fills["win_rate"]), **{k: float(fills[k]) for k in names[1:]}})
    else:
        out.update({k: float("nan") for k in names})
    return out


def rolling_metrics(returns: pd.Series, benchmark: pd.Series | None, window: int) -> pd.DataFrame:
    """Rolling annualised volatility, Sharpe with its 95 % band (+/- 1.96 SE), Sortino and beta.

    Beta is ``cov(r, b) / var(b)`` over the window (ddof=1 in both); NaN without a benchmark.
    """
    x = returns.to_numpy(dtype=float)
    ppy = PERIODS_PER_YEAR
    sharpe = np.asarray(rolling_sharpe_ratio(x, window=window, periods_per_year=ppy), dtype=float)
    se = np.asarray(rolling_sharpe_standard_error(x, window=window, periods_per_year=ppy), dtype=float)
    out = pd.DataFrame(
        {
            "volatility": np.asarray(rolling_annual_volatility(x, window=window, periods_per_year=ppy)),
            "sharpe": sharpe,
            "sharpe_lower": sharpe - 1.96 * se,
            "sharpe_upper": sharpe + 1.96 * se,
            "sortino": np.asarray(rolling_sortino_ratio(x, window=window, periods_per_year=ppy)),
        },
        index=returns.index,
    )
    if benchmark is not None:
        cov = returns.rolling(window).cov(benchmark)
        var = benchmark.rolling(window).var()
        out["beta"] = (cov / var).replace([np.inf, -np.inf], np.nan)
    else:
        out["beta"] = np.nan
    return out


# --------------------------------------------------------------------------- the whole sheet
@dataclass(frozen=True)
class TearSheet:
    """Everything the tab and the HTML report draw (see :func:`build_tear_sheet`)."""

    returns: pd.Series
    equity: pd.Series
    benchmark: pd.Series | None
    benchmark_symbol: str | None
    initial_equity: float
    metrics: pd.DataFrame
    """Key metrics: rows = :data:`KEY_METRICS` names, columns = ``strategy`` (+ ``benchmark``)."""
    span_metrics: pd.DataFrame
    """Key metrics per model-version span: rows = metric names, columns = span labels."""
    span_returns: pd.DataFrame
    """Each span's daily return contributions (NaN outside the span's days)."""
    promotions: list[Promotion]
    underwater: pd.Series
    drawdowns: pd.DataFrame
    monthly: pd.DataFrame
    yearly: pd.DataFrame
    quantiles: pd.DataFrame
    rolling: pd.DataFrame
    rolling_window: int
    trade_stats: pd.DataFrame
    n_trials: int
    trials_variance: float
    notes: list[str] = field(default_factory=list)


def select_trades(
    trades: pd.DataFrame, symbols: Sequence[str] | None = None, routes: Sequence[str] | None = None
) -> pd.DataFrame:
    """The trades of the chosen symbols and routes (``None`` or empty = all)."""
    keep = np.ones(len(trades), dtype=bool)
    if symbols:
        keep &= trades["symbol"].astype(str).isin(list(symbols)).to_numpy()
    if routes:
        keep &= trades["route"].astype(str).isin(list(routes)).to_numpy()
    return trades if keep.all() else trades.loc[keep].reset_index(drop=True)


def build_tear_sheet(
    trades: pd.DataFrame,
    bars: pd.DataFrame | None = None,
    *,
    benchmark: str = "BTC",
    initial_equity: float | None = None,
    promotions: Sequence[Promotion] = (),
    n_trials: int | None = None,
    rolling_window: int = 30,
) -> TearSheet:
    """Build every section of the tear sheet from closed trades (already selected) and bars.

    Parameters
    ----------
    trades : DataFrame
        Closed trades (DESIGN.md contract; needs :data:`REQUIRED`).
    bars : DataFrame, optional
        Bars (``symbol``, ``ts``, ``close``) for the benchmark; without them there is none.
    benchmark : str, default 'BTC'
        Benchmark symbol, or a prefix (``'BTC'`` picks ``BTCUSDT``), see :func:`pick_benchmark`.
    initial_equity : float, optional
        The book's starting capital in USD; default the peak gross notional (module docstring).
    promotions : sequence of Promotion
        Model-version changes (:func:`promotions_from_events`); they split the period into spans.
    n_trials : int, optional
        Trials for the DSR; default the number of (symbol, route) streams in ``trades``. The trials'
        Sharpe variance is always the cross-sectional variance of those streams' daily Sharpes.
    rolling_window : int, default 30
        Days per rolling window (>= 2).
    """
    _check_trades(trades)
    if len(trades) == 0:
        raise _fail("no trades in the selection.")
    check_int(rolling_window, param="rolling_window", func=_FUNC, minimum=2)
    if n_trials is not None:
        check_int(n_trials, param="n_trials", func=_FUNC, minimum=1)
    opened, closed = _ns(trades["opened_at"]), _ns(trades["closed_at"])
    if len(closed) > 1 and not (np.diff(closed) >= 0).all():  # closing order once, so no later step sorts
        trades = trades.iloc[np.lexsort((opened, closed))].reset_index(drop=True)
    promos = sorted(promotions, key=lambda p: p.at)
    labels = span_labels(promos)
    span = assign_spans(trades["opened_at"], promos)
    book = daily_book(trades, initial_equity=initial_equity, groups=span, n_groups=len(labels))
    r = book.returns
    notes: list[str] = []

    bench: pd.Series | None = None
    bench_symbol: str | None = None
    if bars is not None and len(bars):
        bench_symbol = pick_benchmark(bars["symbol"].astype(str).unique(), benchmark)
        if bench_symbol is None:
            notes.append(f"No bars for benchmark {benchmark!r}: no benchmark is drawn.")
        else:
            bench = benchmark_returns(bars, bench_symbol, pd.DatetimeIndex(r.index))
            if bench.isna().all():
                notes.append(f"The {bench_symbol} bars do not cover the trades' days: no benchmark is drawn.")
                bench = None
    else:
        notes.append("No bars: no benchmark is drawn.")

    streams, variance = trials_sharpe_variance(trades)
    trials = int(n_trials) if n_trials is not None else streams
    fills = Fills(trades, ("symbol", "route"))  # validated and ordered once for every grouping below
    levels = trade_stats_levels(fills)
    book_fills = levels.iloc[0].to_dict()  # the (all), (all) row
    strategy = key_metrics(r, book_fills, n_trials=trials, trials_variance=variance)
    columns = {"strategy": strategy}
    if bench is not None:
        columns["benchmark"] = key_metrics(bench, None, n_trials=1)
    names = [name for name, _ in KEY_METRICS]
    metrics = pd.DataFrame(columns, index=names, dtype=object)

    # spans: each span's contribution series over its own days (start of span .. last close)
    contrib = book.contributions if book.contributions is not None else pd.DataFrame(index=r.index)
    closed_day = pd.DatetimeIndex(trades["closed_at"]).tz_convert("UTC").floor("D")
    last_close = pd.Series(closed_day).groupby(span).max()
    span_fills = fills.stats_by_codes(span, pd.DataFrame({"span": np.arange(len(labels))}))
    span_cols: dict[str, pd.Series] = {}
    span_keys: dict[str, dict[str, Any]] = {}
    for k, label in enumerate(labels):  # one iteration per model version (a handful)
        if k not in last_close.index:
            continue
        begin = r.index[0] if k == 0 else max(r.index[0], promos[k - 1].at.floor("D"))
        series = contrib[k].where((r.index >= begin) & (r.index <= last_close[k]))
        span_cols[label] = series
        span_keys[label] = key_metrics(
            series.dropna(), span_fills.loc[k].to_dict(), n_trials=trials, trials_variance=variance
        )
    span_metrics = pd.DataFrame(span_keys, index=names, dtype=object)

    return TearSheet(
        returns=r,
        equity=book.equity,
        benchmark=bench,
        benchmark_symbol=bench_symbol if bench is not None else None,
        initial_equity=book.initial_equity,
        metrics=metrics,
        span_metrics=span_metrics,
        span_returns=pd.DataFrame(span_cols, index=r.index),
        promotions=list(promos),
        underwater=underwater(r),
        drawdowns=drawdown_table(r),
        monthly=monthly_returns(r),
        yearly=yearly_returns(r, bench),
        quantiles=return_quantiles(r),
        rolling=rolling_metrics(r, bench, rolling_window),
        rolling_window=int(rolling_window),
        trade_stats=levels,
        n_trials=trials,
        trials_variance=variance,
        notes=notes,
    )
