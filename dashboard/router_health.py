"""The Router Health 2.0 tab: which symbols and routes make money, how reliably, and how healthy.

Layout only: every number comes from :func:`execution.router_health.router_health_view`, which
this module caches with ``st.cache_data`` keyed on the trade file's stamp (path, mtime, size),
the filter values and the doctor confidence. A rerun with unchanged filters therefore only
unpickles a few small frames and draws at most ``top_n`` symbols (daily points), never one trace
per symbol of a 500-symbol book.

Data: ``trades.parquet`` under ``DATA_DIR`` (written by ``python -m scripts.demo``) and the
``doctor`` artifact (``python -m scripts.doctor``) for the confidence weights; without the doctor
every weight is 1.0 and the tab says so. See ``docs/router_health.md``.

Why this file is long: one tab (its cached loaders, filters, figures and tables); the numbers
are computed in :mod:`execution.router_health` and its modules.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import chart_style, loading
from dashboard.components import DEMO_COMMAND, baked, csv_download, md_text, problem_panel, status_line
from execution import fill_store
from execution.router_health import (
    MIN_OBS,
    RATIO_COLUMNS,
    DoctorConfidence,
    RouterHealthView,
    band_window_days,
    router_health_view,
    statistics_table,
)
from infra.loaders import TRADE_COLUMNS, DataValidationError, validate_trades

DOCTOR_COMMAND = "python -m scripts.doctor"
TRADES_FILE = "trades.parquet"
# What the view reads (curves, returns, normalized_table); fewer columns = cheaper cache hits.
KEEP_COLUMNS = ("symbol", "route", "closed_at", "pnl_usd", "size_usd")
LOOKBACKS: tuple[int | None, ...] = (None, 7, 30, 90, 180, 365)
ROLLING_WINDOWS = (7, 14, 30, 60, 90)
MAX_LEGEND_KEYS = 8  # one legend entry per drawn symbol/route: more is unreadable on a small chart
MIN_BAND_POINTS = 5  # fewer rolling-Sharpe points than this is no curve: say so instead of drawing dots
HIT_RATE_TICKS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
)  # fmt: skip
TABLE_COLUMNS = (
    "symbol", "route", "n_obs", "few_obs", "n_trades", "start", "end", "lookback_days", "pnl_usd",
    "sharpe", "sharpe_ci_low", "sharpe_ci_high", "sharpe_se_ann", "sharpe_autocorr_adj", "sortino",
    "psr", "dsr", "min_trl_days", "hit_rate", "profit_factor", "max_drawdown", "ann_return", "ann_vol",
    "periods_per_year",
)  # fmt: skip
GREY = "color: #9e9e9e"


# --------------------------------------------------------------------------- cached data
def _stamp(path: Path) -> tuple[int, int]:
    if path.is_dir():  # a partitioned folder: every file's mtime and size
        return fill_store.source_stamp(path)
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size)


# --------------------------------------------------------------------------- DuckDB path (large logs)
def _duckdb(path: str) -> bool:
    """A folder or a large file is aggregated in DuckDB (``FILL_ENGINE`` forces either engine)."""
    return fill_store.use_duckdb(path, loading.settings().fill_engine)


@st.cache_data(show_spinner=False, max_entries=8)
def _daily(
    path: str,
    stamp: tuple[int, int],
    routes: tuple[str, ...] | None,
    start: dt.date | None,
    end: dt.date | None,
    lookback_days: int | None,
) -> fill_store.DailyAggregates:
    """Daily symbol x route sums from DuckDB, cached on the files' modification times and sizes."""
    return fill_store.daily_aggregates(
        path, routes=routes, start=None if start is None else pd.Timestamp(start, tz="UTC"),
        end=None if end is None else pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1),
        lookback_days=lookback_days, memory_limit=loading.settings().duckdb_memory_limit,
    )  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=2)
def _prepared(path: str, stamp: tuple[int, int]) -> pd.DataFrame:
    """The validated trade log, trimmed to the columns the tab uses (cheap to unpickle)."""
    try:  # only the contract's columns: the extras of a 1M-row log cost hundreds of MB in the cache
        raw = loading.frame(Path(path), columns=TRADE_COLUMNS)
    except (ValueError, KeyError):  # a column is missing: read everything so validation names it
        raw = loading.frame(Path(path))
    if raw is None:
        raise FileNotFoundError(path)
    trades = validate_trades(raw, file=path, first_line=1)
    return trades[[c for c in KEEP_COLUMNS if c in trades.columns]].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=2)
def _catalog(path: str, stamp: tuple[int, int]) -> dict[str, Any]:
    """Filter options: symbols (largest absolute PnL first), routes, first and last UTC day."""
    if _duckdb(path):  # the unfiltered aggregates: the default view reuses them (one scan)
        return fill_store.catalog(_daily(path, stamp, None, None, None, None))
    trades = _prepared(path, stamp)
    totals = trades.groupby("symbol", sort=True)["pnl_usd"].sum()
    symbols = sorted(totals.index.astype(str), key=lambda s: (-abs(float(totals[s])), s))
    closed = trades["closed_at"]
    return {
        "symbols": symbols,
        "routes": sorted(trades["route"].astype(str).unique()),
        "span_days": (closed.max() - closed.min()).total_seconds() / 86400 if len(trades) else 0.0,
        "first_day": closed.min().date() if len(trades) else None,
        "last_day": closed.max().date() if len(trades) else None,
        "n_trades": len(trades),
    }


@st.cache_data(show_spinner=False, max_entries=32)
def _view(
    path: str,
    stamp: tuple[int, int],
    symbols: tuple[str, ...] | None,
    routes: tuple[str, ...] | None,
    start: dt.date | None,
    end: dt.date | None,
    lookback_days: int | None,
    confidence_key: tuple[Any, ...],
    top_n: int,
    rolling_window_days: int,
    table_by_route: bool,
) -> RouterHealthView:
    symbol_conf, route_conf, available = confidence_key
    confidence = DoctorConfidence(dict(symbol_conf), dict(route_conf), available)
    if _duckdb(path):
        return fill_store.view_from_daily(
            _daily(path, stamp, routes, start, end, lookback_days), symbols=symbols, confidence=confidence,
            top_n=top_n, rolling_window_days=rolling_window_days, table_by_route=table_by_route,
        )  # fmt: skip
    return router_health_view(
        _prepared(path, stamp),
        symbols=symbols,
        routes=routes,
        start=None if start is None else pd.Timestamp(start, tz="UTC"),
        end=None if end is None else pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1),
        lookback_days=lookback_days,
        confidence=confidence,
        top_n=top_n,
        rolling_window_days=rolling_window_days,
        table_by_route=table_by_route,
    )


@st.cache_resource(show_spinner=False, max_entries=32)
def _figure(kind: str, view_args: tuple[Any, ...], option: Any) -> go.Figure:
    """Built figures, cached as objects: building a 30-trace plotly figure costs ~0.3 s.

    ``st.plotly_chart`` only reads the figure (``to_dict``), so sharing one object is safe.
    """
    view = _view(*view_args)
    if kind == "symbols":
        return _pnl_figure(view.symbol_curves, view.plotted_symbols, hit_rate=bool(option))
    if kind == "routes":
        return _pnl_figure(view.route_curves, view.plotted_routes, hit_rate=bool(option))
    return _sharpe_figure(view.sharpe, str(option))


# --------------------------------------------------------------------------- pieces
def _doctor_confidence() -> DoctorConfidence:
    """The doctor's weights, or 1.0 everywhere with a visible note saying why."""
    result = loading.artifact("doctor")
    fallback = "Until then every symbol and route is weighted **1.0**: weighted curves equal raw ones."
    if not result.usable:
        if result.status == "missing":
            st.info(
                f"**No doctor confidence yet** (`{result.path.name}` is missing). {fallback} "
                f"The doctor produces it:\n\n```\n{DOCTOR_COMMAND}\n```",
                icon=":material/info:",
            )
        else:
            problem_panel(result, command=DOCTOR_COMMAND)
            st.caption(fallback)
        return DoctorConfidence()
    status_line(result)
    try:
        return DoctorConfidence.from_data(result.data)
    except ValueError as exc:
        st.error(
            f"**`{result.path.name}` has unusable confidences.** {exc}\n\n{fallback}", icon=":material/block:"
        )
        return DoctorConfidence()


def _filters(catalog: dict[str, Any]) -> dict[str, Any]:
    c1, c2, c3, c4 = st.columns([3, 2, 1, 2])
    symbols = c1.multiselect(
        "Symbols", catalog["symbols"], key="rh_symbols", placeholder="All symbols",
        help="Empty = all symbols. Options are ordered by absolute PnL.",
    )  # fmt: skip
    routes = c2.multiselect("Routes", catalog["routes"], key="rh_routes", placeholder="All routes")
    lookback = c3.selectbox(
        "Lookback", LOOKBACKS, key="rh_lookback",
        format_func=lambda d: "All" if d is None else f"{d} days",
        help="Only the last N whole UTC days up to the end of the date range.",
    )  # fmt: skip
    first, last = catalog["first_day"], catalog["last_day"]
    picked = c4.date_input(
        "Date range (closed, UTC)", (first, last), min_value=first, max_value=last, key="rh_dates"
    )
    start, end = picked if isinstance(picked, tuple | list) and len(picked) == 2 else (first, last)
    c5, c6, c7 = st.columns([2, 2, 2])
    top_n = c5.slider(
        "Symbols drawn (largest |PnL|)", 1, MAX_LEGEND_KEYS, MAX_LEGEND_KEYS, key="rh_top_n",
        help="At most 8 symbols (and routes) are drawn so the legend stays readable; pick any others "
        "with the Symbols filter above.",
    )  # fmt: skip
    # 30 days of bars and a 30-day window give a single rolling-Sharpe point: offer a window that
    # leaves enough points for a curve.
    window = c6.select_slider(
        "Rolling window (days)", ROLLING_WINDOWS, value=band_window_days(catalog["span_days"], ROLLING_WINDOWS),
        key="rh_window",
    )  # fmt: skip
    by_route = c7.radio("Table rows", ("Symbol", "Symbol × route"), horizontal=True, key="rh_rows")
    return {
        "symbols": tuple(symbols) if symbols else None,
        "routes": tuple(routes) if routes else None,
        "start": None if start == first else start,
        "end": None if end == last else end,
        "lookback_days": lookback,
        "top_n": int(top_n),
        "rolling_window_days": int(window),
        "table_by_route": by_route != "Symbol",
    }


def _by_key(frame: pd.DataFrame, columns: list[str]) -> dict[str, dict[str, Any]]:
    """``{key: {"x": naive-UTC datetime64 array, column: float array, ...}}`` in one pass.

    Plain arrays (not Series) keep plotly's validation cheap.
    """
    x = frame["ts"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    keys = frame["key"].to_numpy()
    values = {c: frame[c].to_numpy(dtype=float) for c in columns}
    out: dict[str, dict[str, Any]] = {}
    for key, idx in pd.Series(np.arange(len(frame))).groupby(keys, sort=False).groups.items():
        rows = np.asarray(idx)
        out[str(key)] = {"x": x[rows], **{c: v[rows] for c, v in values.items()}}
    return out


def _pnl_figure(curves: pd.DataFrame, keys: list[str], *, hit_rate: bool) -> go.Figure:
    """Cumulative raw (solid) and weighted (dashed) PnL per key; rolling hit rate (dotted) on y2.

    Built from plain dicts in one ``go.Figure`` call: ~4x faster than ``add_trace`` per line.
    """
    series = _by_key(curves, ["cum_pnl_usd", "cum_pnl_weighted_usd", "hit_rate"])
    data: list[dict[str, Any]] = []
    for i, key in enumerate(k for k in keys if k in series):
        c = series[key]
        color = PALETTE[i % len(PALETTE)]
        line = {"type": "scatter", "mode": "lines", "x": c["x"], "legendgroup": key}
        # one legend entry per key (its raw line); clicking it toggles the key's three lines
        data.append(
            {**line, "y": c["cum_pnl_usd"], "name": f"{key} raw", "line": {"color": color, "width": 2}}
        )
        data.append(
            {**line, "y": c["cum_pnl_weighted_usd"], "name": f"{key} weighted", "showlegend": False,
             "line": {"color": color, "width": 2, "dash": "dash"}}
        )  # fmt: skip
        if hit_rate:
            data.append(
                {**line, "y": c["hit_rate"], "name": f"{key} hit rate", "yaxis": "y2", "opacity": 0.6,
                 "showlegend": False, "line": {"color": color, "width": 1, "dash": "dot"}}
            )  # fmt: skip
    fig = go.Figure(data=data)
    return chart_style.style(
        fig, x_title="end of day (UTC)", y_title="cumulative PnL (USD)", height=chart_style.HEIGHT + 80,
        legend={**chart_style.LEGEND, "groupclick": "togglegroup"},
        yaxis2={"title": {"text": "rolling hit rate (%)"}, "range": [0, 1], "tickformat": ".0%",
                "tickmode": "array", "tickvals": HIT_RATE_TICKS, "overlaying": "y", "side": "right",
                "showgrid": False},
    )  # fmt: skip


def _sharpe_figure(band: pd.DataFrame, key: str) -> go.Figure:
    """Rolling Sharpe with its +- 1.96 SE band (filled between the upper and lower edges)."""
    b = _by_key(band[band["key"] == key], ["sharpe", "lo", "hi"]).get(key)
    if b is None:
        b = {"x": [], "sharpe": [], "lo": [], "hi": []}
    # a short history (e.g. 30 days of real bars, 30-day window) has a handful of points: show them
    line = {"type": "scatter", "mode": "lines+markers" if len(b["x"]) < 20 else "lines", "x": b["x"]}
    data = [
        {**line, "y": b["hi"], "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"},
        {**line, "y": b["lo"], "line": {"width": 0}, "fill": "tonexty", "fillcolor": "rgba(31,119,180,0.2)",
         "name": "± 1.96 SE (95 %)"},
        {**line, "y": b["sharpe"], "name": f"{key} Sharpe", "line": {"color": PALETTE[0], "width": 2}},
    ]  # fmt: skip
    return chart_style.style(
        go.Figure(data=data), x_title="window end, end of day (UTC)", y_title="Sharpe ratio (annualised)",
        shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0,
                 "line": {"color": "grey", "width": 1}}],
    )  # fmt: skip


# --------------------------------------------------------------------------- the tab
def render() -> None:
    st.subheader("Router Health 2.0")
    confidence = _doctor_confidence()
    path = loading.data_path(TRADES_FILE)
    if not path.exists():
        st.info(
            f"**No closed-trade log yet** (`{path}`). The demo writes one:\n\n```\n{DEMO_COMMAND}\n```",
            icon=":material/info:",
        )
        return
    stamp = _stamp(path)
    try:
        catalog = _catalog(str(path), stamp)
    except (DataValidationError, ValueError, OSError) as exc:  # FillStoreError is a ValueError
        st.error(
            f"**`{path.name}` cannot be used.** {exc}\n\nRe-create it with:\n\n```\n{DEMO_COMMAND}\n```",
            icon=":material/block:",
        )
        return
    if catalog["n_trades"] == 0:
        st.info(f"`{path.name}` has no trades yet.", icon=":material/info:")
        return
    f = _filters(catalog)
    view_args = (
        str(path), stamp, f["symbols"], f["routes"], f["start"], f["end"], f["lookback_days"],
        confidence.as_key(), f["top_n"], f["rolling_window_days"], f["table_by_route"],
    )  # fmt: skip
    view = _view(*view_args)
    if view.n_trades == 0:
        st.warning("No trades match these filters.", icon=":material/filter_alt_off:")
        return
    st.caption(
        f"{view.n_trades:,} of {view.n_trades_total:,} trades, closed {view.start:%Y-%m-%d %H:%M} to "
        f"{view.end:%Y-%m-%d %H:%M} UTC."
    )
    if confidence.available and view.unweighted_symbols:
        shown = ", ".join(view.unweighted_symbols[:10]) + (" …" if len(view.unweighted_symbols) > 10 else "")
        st.caption(
            f"No doctor confidence for {len(view.unweighted_symbols)} symbol(s), weighted 1.0: {md_text(shown)}"
        )
    simulated = loading.simulated_pnl_note(path)
    if simulated:
        st.caption(simulated)
    sim = " (simulated)" if simulated else ""

    hit_rate = st.toggle("Show rolling hit rate", value=True, key="rh_hit")
    lines = (
        f"Daily points at the end of each UTC day; solid = raw cumulative PnL{sim} (USD), dashed = "
        "confidence-weighted PnL (USD): each trade's PnL - (1 - confidence) × |PnL| with the doctor's "
        "confidence, so a distrusted route's gains shrink and its losses grow (it never looks better than "
        f"raw); dotted = rolling {view.rolling_window_days}-day hit rate (share of winning trades, right "
        "axis). One legend entry per key toggles its three lines."
    )
    st.markdown(f"**PnL by symbol{sim}** (top {len(view.plotted_symbols)} by |PnL|)")
    st.plotly_chart(_figure("symbols", view_args, hit_rate), key="rh_fig_symbols", theme=None)
    st.caption(f"Cumulative PnL of each symbol over all its routes. {lines}")
    st.markdown(f"**PnL by route{sim}** over the selected symbols (top {len(view.plotted_routes)} by |PnL|)")
    st.plotly_chart(_figure("routes", view_args, hit_rate), key="rh_fig_routes", theme=None)
    st.caption(f"Cumulative PnL of each execution route over the selected symbols. {lines}")

    _sharpe_section(view, view_args)
    _statistics_section(view)

    # Trade statistics from fills for the same selection (the table lives in dashboard/tear_sheet.py).
    from dashboard.tear_sheet import render_trade_stats

    if _duckdb(str(path)):  # per-fill statistics (streaks, payoff) need every fill, not daily sums
        st.caption(
            "Trade statistics from fills are shown for logs read in pandas (up to "
            f"{fill_store.AUTO_ROWS:,} fills in one file); this log is aggregated in DuckDB."
        )
    else:
        render_trade_stats(path, f["symbols"], f["routes"], view.start, view.end, key="rh")


def _sharpe_section(view: RouterHealthView, view_args: tuple[Any, ...]) -> None:
    """The rolling Sharpe chart, or a message when the window leaves too few points for a curve."""
    window = view.rolling_window_days
    band_keys = view.sharpe_keys
    if not band_keys:
        st.info(
            f"Too few days for a rolling {window}-day Sharpe ratio: pick a shorter rolling window.",
            icon=":material/info:",
        )
        return
    key = st.selectbox("Rolling Sharpe of", band_keys, key="rh_sharpe_key")
    if key not in band_keys:  # a stale selection after the filters changed
        key = band_keys[0]
    n_points = int(view.sharpe["key"].eq(key).sum())
    st.markdown(f"**Rolling {window}-day annualised Sharpe ratio**, {md_text(key)}")
    if n_points < MIN_BAND_POINTS:
        st.info(
            f"Only {n_points} full {window}-day window(s) in this date range for {md_text(key)}: too few "
            f"for a curve (at least {MIN_BAND_POINTS}). Pick a shorter rolling window or a longer date range.",
            icon=":material/info:",
        )
        return
    st.plotly_chart(_figure("sharpe", view_args, key), key="rh_fig_sharpe", theme=None)
    st.caption(
        f"Sharpe ratio of daily PnL returns over the trailing {window} days, annualised "
        "(unitless), with its 95 % band (± 1.96 standard errors). A band that straddles 0 is no evidence "
        "of skill."
    )


def _styled(table: pd.DataFrame) -> Any:
    """The statistics with readable cells: few-observation rows greyed with their ratios hidden,
    a minimum track record that never ends shown as "never", a missing value as "n/a"."""
    few = table["few_obs"].to_numpy(dtype=bool) if "few_obs" in table.columns else np.zeros(len(table), bool)
    ratios = [c for c in RATIO_COLUMNS if c in table.columns]
    floats = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
    styler = table.style.format("{:,.3f}", subset=floats, na_rep="n/a")
    if "pnl_usd" in table.columns:
        styler = styler.format("{:,.2f}", subset=["pnl_usd"], na_rep="n/a")
    for col in ("n_trades", "n_obs", "lookback_days", "periods_per_year"):
        if col in floats:
            styler = styler.format("{:,.0f}", subset=[col], na_rep="n/a")
    if "min_trl_days" in table.columns:
        never = table["min_trl_days"].isna() & (table["sharpe"] <= 0)
        styler = styler.format("{:,.0f}", subset=["min_trl_days"], na_rep="n/a")
        if never.any():
            styler = styler.format(
                lambda _v: "never", subset=pd.IndexSlice[table.index[never], ["min_trl_days"]]
            )
    if "few_obs" in table.columns:
        styler = styler.format(lambda v: "yes" if v else "", subset=["few_obs"])
    if few.any():
        rows = table.index[few]
        styler = styler.format(lambda _v: f"n<{MIN_OBS}", subset=pd.IndexSlice[rows, ratios])
        styler = styler.apply(lambda r: [GREY] * len(r) if few[r.name] else [""] * len(r), axis=1)
    return baked(styler)


def _statistics_section(view: RouterHealthView) -> None:
    stats = statistics_table(view.table)
    table = stats[[c for c in TABLE_COLUMNS if c in stats.columns]]
    st.markdown("**Normalized statistics** (click a column header to sort)")
    st.dataframe(_styled(table), hide_index=True, key="rh_table")
    n_few = int(table["few_obs"].sum()) if "few_obs" in table.columns else 0
    if n_few:
        st.caption(
            f"{n_few} row(s) have fewer than {MIN_OBS} daily observations (few_obs = yes): greyed, their ratios "
            f"shown as n<{MIN_OBS}. A Sharpe from a handful of days is noise, not a measurement."
        )
    st.caption(
        "One row per symbol (or symbol × route) over the filtered days: PnL in USD. sharpe, its 95 % interval "
        "(sharpe_ci_low, sharpe_ci_high = sharpe ∓ 1.96 × sharpe_se_ann) and its standard error sharpe_se_ann "
        "are all annualised, in the same units. sharpe_autocorr_adj is Lo's (2002) autocorrelation-adjusted "
        "annual Sharpe: another estimate of the Sharpe, not a bound (it is higher when daily returns are "
        "negatively autocorrelated). psr/dsr are probabilities (0-1) that the true Sharpe is above 0 "
        "(dsr deflated for the number of symbols tried); min_trl_days = days of track record needed for "
        '95 % confidence that the Sharpe is above 0, "never" when the Sharpe is not positive. hit rate, '
        "max drawdown, annual return and volatility are fractions; start/end in UTC; n/a = not defined for "
        "this row (e.g. no losing day for the profit factor)."
    )
    csv_download(table, label="Download statistics (CSV)", file_name="router_health.csv", key="rh_csv")
