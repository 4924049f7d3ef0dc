"""Tear sheet figures and the standalone HTML report: ``python -m execution.tear_sheet_report``.

Why this file is long: one figure builder per chart, shared by the Tear Sheet tab and the HTML
report; the report's command line is a few lines on top.

One self-contained HTML file with interactive plotly charts that opens offline (plotly.js is
embedded once, no CDN), plus the key-metrics table as CSV. The Tear Sheet tab
(``dashboard/tear_sheet.py``) draws the same figures from :func:`figures`.

Every chart is drawn from daily points (a year is 365 points whatever the number of trades), so
the file stays small for a 1M-trade book: plotly.js (~4.7 MB) plus tables. The trade statistics
table is per symbol and route.

Examples
--------
``python -m execution.tear_sheet_report --trades logs/data/trades.parquet --bars logs/data/bars.parquet
--out report.html`` writes ``report.html`` and ``report_metrics.csv``; the model versions come from
the registry under ``LOGS_DIR/models`` (``--models DIR`` to point elsewhere, ``--no-models`` to skip).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from execution.return_tables import period_returns
from execution.tear_sheet import (
    KEY_METRICS,
    REQUIRED,
    Promotion,
    TearSheet,
    build_tear_sheet,
    pick_benchmark,
    promotions_from_events,
    select_trades,
)
from infra.cli import run_cli

TEMPLATE = "plotly_white"
HEIGHT = 340
MARGIN = {"l": 60, "r": 20, "t": 30, "b": 50}
LEGEND = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}
STRATEGY_COLOR = "#1f77b4"
BENCHMARK_COLOR = "#7f7f7f"
PROMOTION_COLOR = "#d62728"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

FIGURES: list[tuple[str, str]] = [
    ("cumulative", "Cumulative returns vs benchmark"),
    ("cumulative_log", "Cumulative returns vs benchmark (log scale)"),
    ("underwater", "Underwater curve"),
    ("monthly", "Monthly returns heatmap"),
    ("yearly", "Yearly returns vs benchmark"),
    ("distribution", "Distribution of daily returns"),
    ("quantiles", "Return quantiles"),
    ("rolling_volatility", "Rolling volatility"),
    ("rolling_sharpe", "Rolling Sharpe ratio"),
    ("rolling_sortino", "Rolling Sortino ratio"),
    ("rolling_beta", "Rolling beta"),
]
"""Figure keys and their section titles, in report order."""
TIME_FIGURES = (
    "cumulative",
    "cumulative_log",
    "underwater",
    "rolling_volatility",
    "rolling_sharpe",
    "rolling_sortino",
    "rolling_beta",
)
"""Figures with a time axis: they carry one vertical line per model promotion."""
TABLES: list[tuple[str, str]] = [
    ("metrics", "Key metrics"),
    ("spans", "Key metrics per model version (in-sample / out-of-sample)"),
    ("drawdowns", "Worst 10 drawdowns"),
    ("quantile_table", "Return quantiles table"),
    ("trade_stats", "Trade statistics from fills"),
]
"""Table keys and their section titles."""


# --------------------------------------------------------------------------- tables
def metrics_table(sheet: TearSheet) -> pd.DataFrame:
    """Key metrics as numbers: rows = metric names (without start/end), columns = strategy, benchmark, spans."""
    frame = pd.concat([sheet.metrics, sheet.span_metrics], axis=1)
    frame = frame.drop(index=["start", "end"])
    return frame.astype(float)


def period_table(sheet: TearSheet) -> pd.DataFrame:
    """First and last day (UTC) of the strategy, the benchmark and every span."""
    frame = pd.concat([sheet.metrics, sheet.span_metrics], axis=1).loc[["start", "end"]]
    return frame.map(lambda v: "" if pd.isna(v) else f"{pd.Timestamp(v):%Y-%m-%d}")


def metric_definitions() -> pd.DataFrame:
    """Name and definition of every key metric."""
    return pd.DataFrame(KEY_METRICS, columns=["metric", "definition"])


# --------------------------------------------------------------------------- figures
def _naive(index: pd.Index) -> np.ndarray:
    """Timestamps as naive UTC values: plotly.js draws a timestamp's wall time and ignores offsets."""
    return np.asarray(pd.DatetimeIndex(index).tz_convert("UTC").tz_localize(None))


def _style(fig: go.Figure, x_title: str, y_title: str, **layout: Any) -> go.Figure:
    base: dict[str, Any] = {
        "template": TEMPLATE,
        "height": HEIGHT,
        "margin": MARGIN,
        "legend": LEGEND,
        "xaxis_title": x_title,
        "yaxis_title": y_title,
        "hovermode": "x unified",
    }
    fig.update_layout(**{**base, **layout})
    return fig


def _promotion_lines(fig: go.Figure, promotions: Sequence[Promotion], start: Any, end: Any) -> None:
    """One dashed vertical line per promotion inside the plotted period, labelled with the version."""
    for p in promotions:
        at = p.at.tz_convert("UTC").tz_localize(None)
        if not (start <= at <= end):
            continue
        fig.add_shape(
            type="line",
            x0=at,
            x1=at,
            y0=0,
            y1=1,
            yref="paper",
            line={"color": PROMOTION_COLOR, "width": 1, "dash": "dash"},
        )
        fig.add_annotation(
            x=at,
            y=1,
            yref="paper",
            text=html.escape(f"{p.action} {p.version}"),
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"size": 10, "color": PROMOTION_COLOR},
        )


def figures(sheet: TearSheet) -> dict[str, go.Figure]:
    """Every chart of the tear sheet (keys of :data:`FIGURES`), from daily points only."""
    x = _naive(sheet.returns.index)
    wealth = (1.0 + sheet.returns).cumprod()
    bench_wealth = None if sheet.benchmark is None else (1.0 + sheet.benchmark.fillna(0.0)).cumprod()
    bench_name = html.escape(sheet.benchmark_symbol or "benchmark")  # plotly renders tags in labels
    figs: dict[str, go.Figure] = {}

    for key, log in (("cumulative", False), ("cumulative_log", True)):
        fig = go.Figure()
        y = wealth if log else wealth - 1.0
        fig.add_trace(go.Scatter(x=x, y=y.to_numpy(), name="strategy", line={"color": STRATEGY_COLOR}))
        if bench_wealth is not None:
            yb = bench_wealth if log else bench_wealth - 1.0
            fig.add_trace(
                go.Scatter(
                    x=x, y=yb.to_numpy(), name=f"buy & hold {bench_name}", line={"color": BENCHMARK_COLOR}
                )
            )
        if log:
            _style(fig, "day (UTC)", "growth of 1 (log scale)", yaxis_type="log")
        else:
            _style(fig, "day (UTC)", "cumulative return", yaxis_tickformat=".0%")
        figs[key] = fig

    fig = go.Figure(
        go.Scatter(
            x=x, y=sheet.underwater.to_numpy(), fill="tozeroy", name="drawdown", line={"color": "#d62728"}
        )
    )
    figs["underwater"] = _style(fig, "day (UTC)", "drawdown from peak", yaxis_tickformat=".0%")

    m = sheet.monthly
    z = m.to_numpy(dtype=float)
    text = np.where(np.isnan(z), "", np.char.mod("%.1f%%", np.nan_to_num(z) * 100.0))
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z * 100.0,
            x=MONTHS,
            y=[str(y) for y in m.index],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0.0,
            zmin=-bound * 100,
            zmax=bound * 100,
            colorbar={"title": {"text": "return (%)"}},
            hovertemplate="%{y} %{x}: %{text}<extra></extra>",
        )
    )
    figs["monthly"] = _style(fig, "month", "year", height=max(200, 60 + 40 * len(m)), yaxis_type="category")

    yr = sheet.yearly
    fig = go.Figure(
        go.Bar(
            x=[str(y) for y in yr.index],
            y=yr["strategy"].to_numpy(),
            name="strategy",
            marker_color=STRATEGY_COLOR,
        )
    )
    if "benchmark" in yr:
        fig.add_trace(
            go.Bar(
                x=[str(y) for y in yr.index],
                y=yr["benchmark"].to_numpy(),
                name=f"buy & hold {bench_name}",
                marker_color=BENCHMARK_COLOR,
            )
        )
    figs["yearly"] = _style(
        fig, "year", "return", barmode="group", yaxis_tickformat=".0%", xaxis_type="category"
    )

    fig = go.Figure(
        go.Histogram(
            x=sheet.returns.to_numpy(), nbinsx=60, name="strategy", marker_color=STRATEGY_COLOR, opacity=0.8
        )
    )
    if sheet.benchmark is not None:
        fig.add_trace(
            go.Histogram(
                x=sheet.benchmark.dropna().to_numpy(),
                nbinsx=60,
                name=bench_name,
                marker_color=BENCHMARK_COLOR,
                opacity=0.5,
            )
        )
    figs["distribution"] = _style(
        fig, "daily return", "days", barmode="overlay", xaxis_tickformat=".1%", hovermode="closest"
    )

    fig = go.Figure()
    for label, freq in (("daily", None), ("weekly", "W"), ("monthly", "ME"), ("yearly", "YE")):
        values = sheet.returns if freq is None else period_returns(sheet.returns, freq)
        fig.add_trace(go.Box(y=values.to_numpy(), name=label, marker_color=STRATEGY_COLOR, boxpoints=False))
    figs["quantiles"] = _style(
        fig, "period", "compounded return", yaxis_tickformat=".1%", showlegend=False, hovermode="closest"
    )

    roll = sheet.rolling
    w = sheet.rolling_window
    fig = go.Figure(
        go.Scatter(
            x=x, y=roll["volatility"].to_numpy(), name="annualised volatility", line={"color": STRATEGY_COLOR}
        )
    )
    figs["rolling_volatility"] = _style(
        fig, "day (UTC)", f"{w}-day volatility (annualised)", yaxis_tickformat=".0%"
    )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=roll["sharpe_upper"].to_numpy(),
            line={"width": 0},
            showlegend=False,
            hoverinfo="skip",
            name="upper",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=roll["sharpe_lower"].to_numpy(),
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(31,119,180,0.2)",
            name="95 % band (± 1.96 SE)",
        )
    )
    fig.add_trace(go.Scatter(x=x, y=roll["sharpe"].to_numpy(), name="Sharpe", line={"color": STRATEGY_COLOR}))
    figs["rolling_sharpe"] = _style(fig, "day (UTC)", f"{w}-day Sharpe (annualised)")
    fig = go.Figure(
        go.Scatter(x=x, y=roll["sortino"].to_numpy(), name="Sortino", line={"color": STRATEGY_COLOR})
    )
    figs["rolling_sortino"] = _style(fig, "day (UTC)", f"{w}-day Sortino (annualised)")
    fig = go.Figure(
        go.Scatter(
            x=x, y=roll["beta"].to_numpy(), name=f"beta to {bench_name}", line={"color": STRATEGY_COLOR}
        )
    )
    figs["rolling_beta"] = _style(fig, "day (UTC)", f"{w}-day beta to {bench_name}")

    if len(x):
        for key in TIME_FIGURES:
            _promotion_lines(figs[key], sheet.promotions, x[0], x[-1])
    return figs


# --------------------------------------------------------------------------- HTML
_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1200px;
       color: #222; }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f5f5f5; }
td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 13px; }
.scroll { max-height: 480px; overflow: auto; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        v = float(value)
        if np.isnan(v):
            return ""
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.6g}"
    if isinstance(value, pd.Timestamp):
        return "" if pd.isna(value) else f"{value:%Y-%m-%d}"
    if value is None or value is pd.NaT:
        return ""
    return str(value)


def _table_html(frame: pd.DataFrame, *, index: bool = True, scroll: bool = False) -> str:
    """An escaped HTML table (user-supplied names are text, never markup)."""
    shown = frame.map(_fmt) if len(frame) else frame
    body = shown.to_html(index=index, escape=True, border=0, na_rep="")
    return f'<div class="scroll">{body}</div>' if scroll else body


def report_html(sheet: TearSheet, *, title: str = "Tear sheet", subtitle: str = "") -> str:
    """The whole report as one HTML document (plotly.js embedded once, no network needed)."""
    figs = figures(sheet)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<p class="note">{html.escape(subtitle)}</p>')
    parts.append(
        f'<p class="note">Daily returns of the book: realised PnL over realised equity, compounded per trade '
        f"into UTC days; initial equity {sheet.initial_equity:,.2f} USD. Annualised with 365 days a year. "
        f"DSR with {sheet.n_trials} trials.</p>"
    )
    for note in sheet.notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    titles = dict(TABLES)
    parts.append(f'<h2 id="metrics">{titles["metrics"]}</h2>')
    table = pd.concat([period_table(sheet), metrics_table(sheet).astype(object)])
    parts.append(_table_html(table[[c for c in ("strategy", "benchmark") if c in table.columns]]))
    parts.append(f'<h2 id="spans">{titles["spans"]}</h2>')
    if sheet.promotions:
        parts.append(_table_html(table[list(sheet.span_metrics.columns)]))
        parts.append(
            '<p class="note">Each trade counts in the span of the model version live when it opened.</p>'
        )
    else:
        parts.append('<p class="note">No model promotion in the registry: one span.</p>')
    plotly_js: bool | str = True
    for key, label in FIGURES:
        parts.append(f'<h2 id="{key}">{html.escape(label)}</h2>')
        parts.append(
            figs[key].to_html(
                full_html=False,
                include_plotlyjs=plotly_js,
                config={"displaylogo": False},
                div_id=f"fig-{key}",
            )
        )
        plotly_js = False  # embedded once, with the first figure
        if key == "underwater":
            parts.append(f'<h2 id="drawdowns">{titles["drawdowns"]}</h2>')
            parts.append(_table_html(sheet.drawdowns, index=False))
        if key == "quantiles":
            parts.append(f'<h2 id="quantile_table">{titles["quantile_table"]}</h2>')
            parts.append(_table_html(sheet.quantiles))
    parts.append(f'<h2 id="trade_stats">{titles["trade_stats"]}</h2>')
    parts.append(
        '<p class="note">Per symbol and route from the closed trades; "(all)" rows aggregate. Kelly = p - (1 - p) / b '
        "with b the payoff ratio per unit of risk (PnL / size).</p>"
    )
    parts.append(_table_html(sheet.trade_stats, index=False, scroll=True))
    parts.append(f'<h2 id="definitions">Definitions</h2>{_table_html(metric_definitions(), index=False)}')
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- CLI
def load_promotions(models_root: Path, model: str | None = None) -> list[Promotion]:
    """Promotions of ``model`` (default: the only model, or the first by name) in a model registry."""
    from ml.model_registry import ModelRegistry  # reads JSON only; no model is unpickled

    registry = ModelRegistry(models_root)
    names = registry.models()
    if not names:
        return []
    name = model if model is not None else names[0]
    return promotions_from_events(registry.pointer(name).get("events", []))


def write_report(sheet: TearSheet, out: Path, csv: Path, *, subtitle: str = "") -> tuple[int, int]:
    """Write the HTML report and the key-metrics CSV; return their sizes in bytes."""
    page = report_html(sheet, subtitle=subtitle)
    out.write_text(page, encoding="utf-8")
    table = pd.concat([period_table(sheet), metrics_table(sheet).astype(object)])
    table.index.name = "metric"
    table.to_csv(csv)
    return out.stat().st_size, csv.stat().st_size


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m execution.tear_sheet_report", description=__doc__.split("\n")[0]
    )
    p.add_argument("--trades", required=True, help="closed-trade log (Parquet or CSV)")
    p.add_argument("--bars", nargs="*", default=[], help="bar files (Parquet or CSV) for the benchmark")
    p.add_argument("--out", default="tear_sheet.html", help="HTML file to write (default tear_sheet.html)")
    p.add_argument("--csv", help="key-metrics CSV (default: <out stem>_metrics.csv)")
    p.add_argument("--symbols", nargs="*", help="only these symbols (default: all)")
    p.add_argument("--routes", nargs="*", help="only these routes (default: all)")
    p.add_argument("--benchmark", default="BTC", help="benchmark symbol or prefix (default BTC)")
    p.add_argument("--equity", type=float, help="initial equity in USD (default: peak gross notional)")
    p.add_argument(
        "--n-trials", type=int, help="trials for the DSR (default: number of symbol x route streams)"
    )
    p.add_argument("--window", type=int, default=30, help="rolling window in days (default 30)")
    p.add_argument("--models", help="model registry folder (default LOGS_DIR/models)")
    p.add_argument("--model", help="model name in the registry (default: the first)")
    p.add_argument("--no-models", action="store_true", help="do not split by model version")
    return p.parse_args(argv)


def _read_bars(paths: Sequence[str], benchmark: str) -> pd.DataFrame | None:
    """Bars of the benchmark only (a Parquet file is filtered while reading)."""
    if not paths:
        return None
    from infra.loaders import load_bars_many

    frames = []
    for path in paths:
        if Path(path).suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            symbols = pq.read_table(path, columns=["symbol"]).column("symbol").unique().to_pylist()
            chosen = pick_benchmark(symbols, benchmark)
            if chosen is None:
                continue
            frames.append(
                pd.read_parquet(path, columns=["symbol", "ts", "close"], filters=[("symbol", "==", chosen)])
            )
        else:
            frames.append(load_bars_many([path])[["symbol", "ts", "close"]])
    return pd.concat(frames, ignore_index=True) if frames else None


def read_trades(path: str) -> pd.DataFrame:
    """The columns the tear sheet uses (:data:`~execution.tear_sheet.REQUIRED`).

    A Parquet log with those columns already typed (tz-aware timestamps, as the platform writes
    them) is read column-wise, and :func:`~execution.tear_sheet.build_tear_sheet` checks every
    field it uses (finite PnL, positive size, closed after opened, row named); anything else (CSV,
    strings for timestamps, missing columns) goes through :func:`infra.loaders.load_trades`, the
    full contract validation that names the file, row and field.
    """
    from infra.loaders import load_trades

    p = Path(path)
    if p.suffix in (".parquet", ".pq") and p.exists():
        import pyarrow.parquet as pq

        names = set(pq.read_schema(p).names)
        if set(REQUIRED) <= names:
            frame = pd.read_parquet(p, columns=list(REQUIRED))
            if all(isinstance(frame[c].dtype, pd.DatetimeTZDtype) for c in ("opened_at", "closed_at")):
                return frame
    return load_trades(p)[list(REQUIRED)]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from infra.settings import load_settings

    t0 = time.perf_counter()
    trades = read_trades(args.trades)
    trades = select_trades(trades, args.symbols, args.routes)
    if len(trades) == 0:
        print(
            f"tear_sheet_report: no trades in {args.trades} match the symbols/routes chosen.", file=sys.stderr
        )
        return 2
    bars = _read_bars(args.bars, args.benchmark)
    promotions: list[Promotion] = []
    if not args.no_models:
        root = Path(args.models) if args.models else load_settings().logs_dir / "models"
        promotions = load_promotions(root, args.model)
    try:
        sheet = build_tear_sheet(
            trades,
            bars,
            benchmark=args.benchmark,
            initial_equity=args.equity,
            promotions=promotions,
            n_trials=args.n_trials,
            rolling_window=args.window,
        )
    except ValueError as exc:
        print(f"tear_sheet_report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    csv = Path(args.csv) if args.csv else out.with_name(out.stem + "_metrics.csv")
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{len(trades):,} trades from {args.trades}; generated {generated}."
    size_html, size_csv = write_report(sheet, out, csv, subtitle=subtitle)
    print(
        f"wrote {out} ({size_html / 1e6:.2f} MB) and {csv} ({size_csv / 1e3:.1f} kB) from {len(trades):,} trades "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m execution.tear_sheet_report"))
