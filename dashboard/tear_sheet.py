"""The Tear Sheet tab: key metrics, returns vs a benchmark, drawdowns, calendars, rolling statistics
and trade statistics from fills, split at every model promotion; downloadable as one HTML file.

Layout only: every number comes from :func:`execution.tear_sheet.build_tear_sheet` and every chart
from :func:`execution.tear_sheet_report.figures`. Both are cached on the trade and bar files' stamps
(path, mtime, size), the registry pointer's stamp and the filter values, so a rerun with unchanged
filters only unpickles the sheet and reuses the built figures. See ``docs/tear_sheet.md``.

Data: ``trades.parquet`` and ``bars.parquet`` under ``DATA_DIR`` and the model registry under
``LOGS_DIR/models`` (all written by ``python -m scripts.demo``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import loading
from dashboard.components import DEMO_COMMAND, baked, csv_download
from execution.tear_sheet import (
    Promotion,
    TearSheet,
    build_tear_sheet,
    pick_benchmark,
    promotions_from_events,
    rolling_metrics,
    select_trades,
)
from execution.tear_sheet_report import (
    FIGURES,
    metric_definitions,
    metrics_table,
    period_table,
    read_trades,
    report_html,
)
from execution.trade_stats import trade_stats

TRADES_FILE = "trades.parquet"
BARS_FILE = "bars.parquet"
WINDOWS = (7, 14, 30, 60, 90, 180, 365)
DEFAULT_WINDOW = 30
CAPTIONS = {
    "cumulative": "Compounded return of the book and of buying and holding the benchmark, from the first day.",
    "cumulative_log": "The same on a log scale: equal slopes are equal growth rates.",
    "underwater": "Drawdown of the book's compounded equity from its running peak (0 = at a new high).",
    "monthly": "Compounded return of each UTC calendar month (%).",
    "yearly": "Compounded return of each UTC calendar year, strategy beside the benchmark.",
    "distribution": "Histogram of daily returns (number of days per bin).",
    "quantiles": "Box plots of compounded daily, weekly, monthly and yearly returns (whiskers 1.5 IQR).",
    "rolling_volatility": "Standard deviation of daily returns over the trailing window, x sqrt(365).",
    "rolling_sharpe": "Annualised Sharpe ratio over the trailing window with its 95 % band (± 1.96 standard "
    "errors, Mertens). A band that straddles 0 is no evidence of skill.",
    "rolling_sortino": "Annualised Sortino ratio (target 0) over the trailing window.",
    "rolling_beta": "cov(book, benchmark) / var(benchmark) of daily returns over the trailing window.",
}


# --------------------------------------------------------------------------- cached data
def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)


@st.cache_data(show_spinner=False, max_entries=2)
def _trades(path: str, stamp: tuple[int, int]) -> pd.DataFrame:
    return read_trades(path)


@st.cache_data(show_spinner=False, max_entries=2)
def _catalog(path: str, stamp: tuple[int, int]) -> dict[str, Any]:
    trades = _trades(path, stamp)
    return {
        "symbols": sorted(trades["symbol"].astype(str).unique()),
        "routes": sorted(trades["route"].astype(str).unique()),
        "n_trades": len(trades),
    }


@st.cache_data(show_spinner=False, max_entries=2)
def _bar_symbols(path: str, stamp: tuple[int, int]) -> list[str]:
    if stamp[0] < 0:
        return []
    import pyarrow.parquet as pq

    return sorted(map(str, pq.read_table(path, columns=["symbol"]).column("symbol").unique().to_pylist()))


@st.cache_data(show_spinner=False, max_entries=8)
def _bars(path: str, stamp: tuple[int, int], symbol: str) -> pd.DataFrame | None:
    if stamp[0] < 0:
        return None
    return pd.read_parquet(path, columns=["symbol", "ts", "close"], filters=[("symbol", "==", symbol)])


def _registry_stamp(root: Path) -> tuple[tuple[str, int, int], ...]:
    if not root.is_dir():
        return ()
    return tuple((p.parent.name, *_stamp(p)) for p in sorted(root.glob("*/current.json")))


@st.cache_data(show_spinner=False, max_entries=4)
def _promotions(root: str, stamp: tuple[tuple[str, int, int], ...], model: str) -> list[Promotion]:
    from ml.model_registry import ModelRegistry  # JSON only: no model is unpickled

    return promotions_from_events(ModelRegistry(Path(root)).pointer(model).get("events", []))


@st.cache_data(show_spinner=False, max_entries=16)
def _base_sheet(
    trades_key: tuple[str, tuple[int, int]],
    bars_key: tuple[str, tuple[int, int], str | None],
    symbols: tuple[str, ...],
    routes: tuple[str, ...],
    equity: float | None,
    n_trials: int | None,
    promotions: tuple[Promotion, ...],
) -> TearSheet:
    """The sheet with the default rolling window (everything but the rolling statistics is window-free)."""
    trades = select_trades(_trades(*trades_key), symbols, routes)
    bars = None if bars_key[2] is None else _bars(*bars_key[:2], bars_key[2])
    return build_tear_sheet(
        trades,
        bars,
        benchmark=bars_key[2] or "BTC",
        initial_equity=equity,
        promotions=promotions,
        n_trials=n_trials,
        rolling_window=DEFAULT_WINDOW,
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _sheet(
    trades_key: tuple[str, tuple[int, int]],
    bars_key: tuple[str, tuple[int, int], str | None],
    symbols: tuple[str, ...],
    routes: tuple[str, ...],
    equity: float | None,
    n_trials: int | None,
    window: int,
    promotions: tuple[Promotion, ...],
) -> TearSheet:
    """The sheet for ``window``: a new window only recomputes the rolling statistics (daily points)."""
    base = _base_sheet(trades_key, bars_key, symbols, routes, equity, n_trials, promotions)
    if window == base.rolling_window:
        return base
    rolling = rolling_metrics(base.returns, base.benchmark, window)
    return dataclasses.replace(base, rolling=rolling, rolling_window=window)


@st.cache_resource(show_spinner=False, max_entries=8)
def _figures(sheet_args: tuple[Any, ...]) -> dict[str, go.Figure]:
    """Built figures, cached as objects (``st.plotly_chart`` only reads them)."""
    from execution.tear_sheet_report import figures

    return figures(_sheet(*sheet_args))


# --------------------------------------------------------------------------- the tab
def _filters(catalog: dict[str, Any], bar_symbols: list[str], models: list[str]) -> dict[str, Any]:
    c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
    symbols = c1.multiselect("Symbols", catalog["symbols"], key="ts_symbols", placeholder="Whole book",
                             help="Empty = every symbol.")  # fmt: skip
    routes = c2.multiselect("Routes", catalog["routes"], key="ts_routes", placeholder="All routes")
    default = pick_benchmark(bar_symbols, "BTC")
    bench = c3.selectbox(
        "Benchmark (buy and hold)", bar_symbols, index=bar_symbols.index(default) if default else 0,
        key="ts_benchmark", disabled=not bar_symbols,
    )  # fmt: skip
    window = c4.selectbox(
        "Rolling window (days)", WINDOWS, index=WINDOWS.index(DEFAULT_WINDOW), key="ts_window"
    )
    c5, c6, c7 = st.columns([2, 2, 3])
    equity = c5.number_input("Initial equity (USD, 0 = peak notional)", min_value=0.0, value=0.0, step=10_000.0,
                             key="ts_equity")  # fmt: skip
    trials = c6.number_input("DSR trials (0 = symbol × route streams)", min_value=0, value=0, step=1,
                             key="ts_trials")  # fmt: skip
    model = c7.selectbox("Split at promotions of", models or ["(no model registry)"], key="ts_model",
                         disabled=not models)  # fmt: skip
    return {
        "symbols": tuple(symbols),
        "routes": tuple(routes),
        "benchmark": bench if bar_symbols else None,
        "window": int(window),
        "equity": float(equity) if equity > 0 else None,
        "n_trials": int(trials) if trials > 0 else None,
        "model": model if models else None,
    }


def _cell(v: Any, *, missing: str = "n/a") -> Any:
    """A cell as a trader reads it: no None/nan/NaT/inf where a number belongs."""
    if v is None or v is pd.NaT:
        return missing
    if isinstance(v, float | np.floating):
        if v != v:
            return missing
        if np.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:,.4f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    return v


def _readable(df: pd.DataFrame, **missing: str) -> Any:
    """``df`` styled cell by cell with :func:`_cell`; ``missing`` names a per-column text for gaps."""
    styler = df.style
    for col in df.columns:
        gap = missing.get(str(col), "n/a")
        styler = styler.format(lambda v, m=gap: _cell(v, missing=m), subset=[col])
    return baked(styler)


def _drawable(fig: go.Figure) -> bool:
    """True when the figure shows something: any finite value (a histogram's x, a heatmap's z, a
    trace's y), and for line-only charts at least two distinct x (a one-point line draws nothing)."""
    points, xs, lines_only = 0, set(), True
    for tr in fig.data:
        kind = tr.type
        raw = tr.z if kind == "heatmap" else tr.x if kind == "histogram" else tr.y
        if raw is None:
            continue
        vals = pd.to_numeric(pd.Series(np.asarray(raw, dtype=object).ravel()), errors="coerce").to_numpy(
            float
        )
        ok = np.isfinite(vals)
        points += int(ok.sum())
        if kind != "scatter" or "markers" in str(tr.mode or ""):
            lines_only = False
        if kind == "scatter" and tr.x is not None:
            xs.update(str(x) for x, good in zip(list(tr.x), ok) if good)
    return points > 0 and (not lines_only or len(xs) >= 2)


def render() -> None:
    st.subheader("Tear Sheet")
    settings = loading.settings()
    path = settings.data_dir / TRADES_FILE
    if not path.exists():
        st.info(
            f"**No closed-trade log yet** (`{path}`). The demo writes one:\n\n```\n{DEMO_COMMAND}\n```",
            icon=":material/info:",
        )
        return
    stamp = _stamp(path)
    try:
        catalog = _catalog(str(path), stamp)
    except (ValueError, OSError) as exc:
        st.error(f"**`{path.name}` cannot be used.**", icon=":material/block:")
        st.text(str(exc))
        return
    if catalog["n_trades"] == 0:
        st.info(f"`{path.name}` has no trades yet.", icon=":material/info:")
        return
    bars_path = settings.data_dir / BARS_FILE
    bars_stamp = _stamp(bars_path)
    models_root = settings.logs_dir / "models"
    reg_stamp = _registry_stamp(models_root)
    f = _filters(catalog, _bar_symbols(str(bars_path), bars_stamp), [m for m, *_ in reg_stamp])
    promotions = () if f["model"] is None else tuple(_promotions(str(models_root), reg_stamp, f["model"]))
    sheet_args = (
        (str(path), stamp), (str(bars_path), bars_stamp, f["benchmark"]), f["symbols"], f["routes"],
        f["equity"], f["n_trials"], f["window"], promotions,
    )  # fmt: skip
    try:
        sheet = _sheet(*sheet_args)
    except ValueError as exc:
        st.warning("The tear sheet cannot be built for this selection:", icon=":material/filter_alt_off:")
        st.text(str(exc))
        return
    n = int(sheet.metrics.loc["n_trades", "strategy"])
    st.caption(
        f"{n:,} of {catalog['n_trades']:,} trades; {len(sheet.returns)} UTC days "
        f"{sheet.returns.index[0]:%Y-%m-%d} to {sheet.returns.index[-1]:%Y-%m-%d}. Daily returns = realised PnL over "
        f"realised equity, compounded per trade; initial equity {sheet.initial_equity:,.0f} USD"
        f"{' (peak notional)' if f['equity'] is None else ''}. Annualised with 365 days. DSR with {sheet.n_trials} "
        f"trials. {len(sheet.promotions)} model promotion(s)."
    )
    for note in sheet.notes:
        st.text(note)

    metrics = metrics_table(sheet)
    periods = period_table(sheet)
    main_cols = [c for c in ("strategy", "benchmark") if c in metrics.columns]
    st.markdown("**Key metrics**")
    full = 35 * (len(metrics) + 1) + 3  # every row visible, no inner scrollbar
    st.dataframe(_readable(metrics[main_cols]), key="ts_metrics", height=full)
    st.caption(
        "Ratios annualised (365 days); returns, volatility, drawdown, hit rate as fractions; days in days."
    )
    st.markdown(
        "**Key metrics per model version** (each trade counts in the span of the version live when it opened)"
    )
    span_cols = list(sheet.span_metrics.columns)
    st.dataframe(_readable(periods[span_cols]), key="ts_span_periods")
    st.dataframe(_readable(metrics[span_cols]), key="ts_spans", height=full)
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download report (HTML)",
        lambda: report_html(
            sheet, subtitle=f"{n:,} trades; exported {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC."
        ),
        file_name="tear_sheet.html",
        mime="text/html",
        key="ts_html",
        on_click="ignore",
    )
    with c2:
        table = pd.concat([periods, metrics.astype(object)])
        table.index.name = "metric"
        csv_download(table.reset_index(), label="Download key metrics (CSV)", file_name="tear_sheet_metrics.csv",
                     key="ts_csv")  # fmt: skip

    figs = _figures(sheet_args)
    titles = dict(FIGURES)
    for key, _ in FIGURES:
        st.markdown(f"**{titles[key]}**")
        if _drawable(figs[key]):
            st.plotly_chart(figs[key], key=f"ts_fig_{key}", theme=None)
        else:  # never a chart of nothing (e.g. a rolling window longer than the selected period)
            st.info(
                "Not enough data in the selection for this chart (it needs at least two values): widen the "
                "selection or shorten the rolling window.",
                icon=":material/info:",
            )
        st.caption(CAPTIONS[key])
        if key == "underwater":
            st.markdown("**Worst 10 drawdowns**")
            st.dataframe(_readable(sheet.drawdowns, recovery="not yet"), hide_index=True, key="ts_drawdowns")
            st.caption(
                "start = first day under water; recovery = first day back at the peak (empty: not yet)."
            )
        if key == "quantiles":
            st.dataframe(_readable(sheet.quantiles), key="ts_quantiles")
    st.markdown("**Trade statistics from fills** per symbol and route; `(all)` rows aggregate")
    st.dataframe(_readable(sheet.trade_stats), hide_index=True, key="ts_trade_stats")
    st.caption(
        "From the closed trades, not from returns: win rate over decisive trades, payoff = average win / average "
        "loss, Kelly = p - (1 - p) / b with b the payoff per unit of risk (PnL / size); ∞ = no losing trade."
    )
    with st.expander("Metric definitions"):
        st.dataframe(metric_definitions(), hide_index=True, key="ts_definitions")


@st.cache_data(show_spinner=False, max_entries=16)
def _fill_stats(
    path: str,
    stamp: tuple[int, int],
    symbols: tuple[str, ...] | None,
    routes: tuple[str, ...] | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    trades = select_trades(_trades(path, stamp), symbols, routes)
    closed = trades["closed_at"]
    sub = trades.loc[(closed >= start) & (closed <= end)]
    return trade_stats(sub, by=("symbol", "route"))


def render_trade_stats(
    path: Path,
    symbols: tuple[str, ...] | None,
    routes: tuple[str, ...] | None,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    key: str,
) -> None:
    """A table of trade statistics from fills per symbol and route, for trades closed in ``[start, end]``.

    Cached on the trade file's stamp and the arguments (a rerun only unpickles the table).
    """
    table = _fill_stats(str(path), _stamp(path), symbols, routes, start, end)
    if len(table) == 0:
        return
    st.markdown("**Trade statistics from fills** (per symbol × route)")
    st.dataframe(_readable(table), hide_index=True, key=f"{key}_trade_stats")
    st.caption(
        "Win rate, payoff, profit factor, expectancy, Kelly and streaks from the closed trades themselves "
        "(see the Tear Sheet tab and docs/tear_sheet.md); ∞ = no losing trade."
    )
