"""Closed-trade (fill) logs too large for pandas: DuckDB over Parquet files and partitioned folders.

Why this file is long: the SQL aggregation and the pandas pass over its output are one engine that
must agree, definition by definition, with :mod:`execution.router_health`; kept together, that
agreement is reviewable in one place. The shared parameters live in
:mod:`execution.router_health_inputs`.

The Router Health numbers (:func:`execution.router_health.router_health_view`) need, per UTC day
and per ``symbol x route``, only a handful of sums: PnL, |PnL| (for the confidence haircut),
the return on notional ``sum(pnl_usd / size_usd)``, wins, trades, fees and size. This module
pushes the filters (date range, lookback, routes) and that aggregation into DuckDB (embedded, no
server; ``memory_limit`` and ``threads`` set per connection, spilling to disk beyond the limit)
and pulls only the daily aggregates into pandas. Everything after that (top-N, curves, rolling
hit rate, rolling Sharpe band, normalized table) is computed from the aggregates by
:func:`view_from_daily`, a pure function, with the same definitions as the pandas path:

- Daily label: periods are right-closed and labelled by their END on an epoch-anchored grid,
  ``ceil(closed_at / 1 day)`` (as :func:`execution.trade_returns.trade_returns`).
- Daily return of a key: ``sum(pnl_usd / size_usd)`` over its trades closed that day, 0.0 on
  days inside the key's active span without a trade, NaN outside it.
- Confidence-weighted PnL: the haircut ``pnl - (1 - w) |pnl|`` per trade (:func:`haircut`), with
  ``w`` the doctor's weight of the trade's symbol (symbol curves) or ``SYMBOL|route`` pair
  (route curves). ``w`` is constant within a pair, so the per-trade haircut summed over a day
  equals ``sum(pnl) - (1 - w) sum(|pnl|)`` of the pair's day: the weight is applied to the
  aggregates and the SQL does not depend on the doctor.

Symbols are filtered in pandas on the aggregates, not in SQL: the normalized table's deflated
Sharpe counts every symbol passing the other filters as a trial (as the pandas path does), so
the aggregation must see them all.

Sources: a Parquet file, or a folder of Parquet files, optionally hive-partitioned
(``date=2025-01-01/part-0.parquet``). A file DuckDB cannot read raises :class:`FillStoreError`
naming the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from execution.metrics_normalizer import normalized_table, periods_per_year_of
from execution.router_health import RouterHealthView, sharpe_keys
from execution.router_health_curves import rolling_hit_rate, rolling_sharpe_band
from execution.router_health_inputs import (
    PAIR_SEP,
    DoctorConfidence,
    TradeWindow,
    ViewOptions,
    periods_per_year_for,
)

DAY_NS = 86_400 * 10**9
REQUIRED = ("symbol", "route", "closed_at", "pnl_usd", "size_usd")
AGG_COLUMNS = ("n_trades", "n_wins", "pnl_usd", "abs_pnl_usd", "ret", "size_usd", "fees_usd")
"""Per ``symbol, route, day`` sums pulled out of DuckDB (``fees_usd`` NaN without the column)."""
ENGINES = ("auto", "duckdb", "pandas")
AUTO_ROWS = 2_000_000
"""``auto``: a single file with more rows than this (or any folder) goes through DuckDB. Below it
the pandas path is as fast or faster (1M trades: 2.5 s pandas, 3.5 s DuckDB on 2 loaded cores,
bench/bench_scale.py) and its memory (~1 GB at 1M trades) is still affordable."""


class FillStoreError(ValueError):
    """A fill-log source that cannot be used; the message names the file (and row and field)."""


def haircut(pnl: Any, abs_pnl: Any, weight: Any) -> Any:
    """Confidence-weighted PnL: ``pnl - (1 - w) |pnl|``, summed: ``sum(pnl) - (1 - w) sum(|pnl|)``.

    A weight of 1 keeps the PnL; a lower weight shrinks gains and enlarges losses, so lower
    confidence never makes a route look better.

    >>> haircut(10.0, 10.0, 0.5), haircut(-10.0, 10.0, 0.5), haircut(-4.0, 16.0, 1.0)
    (5.0, -15.0, -4.0)
    """
    return pnl - (1.0 - weight) * abs_pnl


# --------------------------------------------------------------------------- sources
def parquet_files(source: str | Path) -> list[Path]:
    """The Parquet files of ``source`` (a file, or every ``*.parquet`` below a folder), sorted.

    Raises
    ------
    FileNotFoundError
        ``source`` does not exist.
    FillStoreError
        A folder without any Parquet file.
    """
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"The fill log {path} does not exist.")
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise FillStoreError(f"The fill-log folder {path} holds no *.parquet file.")
    return files


def source_stamp(source: str | Path) -> tuple[int, int]:
    """``(digest, total bytes)`` of every file's name, modification time and size (a cache key).

    Rewriting, adding or removing any partition changes it.
    """
    h = hashlib.blake2b(digest_size=8)
    total = 0
    for p in parquet_files(source):
        st = p.stat()
        total += st.st_size
        h.update(f"{p}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return int.from_bytes(h.digest(), "big", signed=True), total


def use_duckdb(source: str | Path, engine: str = "auto") -> bool:
    """Whether ``source`` goes through DuckDB: ``engine`` forces it, ``auto`` decides by size.

    ``auto``: a folder, or a Parquet file with more than :data:`AUTO_ROWS` rows (read from its
    footer, no data read); a file that is not Parquet stays on the pandas path, which reports it.
    """
    if engine not in ENGINES:
        raise ValueError(
            f"The 'engine' parameter of use_duckdb must be one of {list(ENGINES)}. Got {engine!r}."
        )
    if engine != "auto":
        return engine == "duckdb"
    path = Path(source)
    if path.is_dir():
        return True
    if not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows) > AUTO_ROWS
    except (OSError, ValueError):  # not Parquet: the pandas path names the problem
        return False


def default_threads() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def connect(*, memory_limit: str = "500MB", threads: int | None = None) -> Any:
    """An in-memory DuckDB connection with ``memory_limit`` and ``threads`` set (UTC session)."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{_memory_limit(memory_limit)}'")
    con.execute(f"SET threads = {int(threads or default_threads())}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")  # lets aggregation stream
    con.execute("SET enable_progress_bar = false")
    return con


def _memory_limit(value: str) -> str:
    text = str(value).strip()
    num = text.rstrip("KMGTiBb ").strip()
    try:
        ok = float(num) > 0 and text[len(num) :].strip().upper() in {
            "KB",
            "MB",
            "GB",
            "TB",
            "KIB",
            "MIB",
            "GIB",
        }
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"DuckDB memory limit must look like '500MB' or '2GB'. Got {value!r} instead.")
    return text


def _scan(files: Sequence[Path], extra: str = "") -> str:
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
    return f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true{extra})"


def _find_bad_file(files: Sequence[Path], con: Any, exc: Exception) -> FillStoreError:
    """The first file DuckDB cannot read on its own, named in the error."""
    import duckdb

    for p in files:
        try:
            con.execute(f"SELECT count(*) FROM {_scan([p])}").fetchone()
        except duckdb.Error as inner:
            return FillStoreError(f"The fill-log file {p} is not a readable Parquet file: {inner}")
    return FillStoreError(f"The fill log ({len(files)} files, first {files[0]}) cannot be read: {exc}")


def _run(con: Any, files: Sequence[Path], sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    import duckdb

    try:
        return con.execute(sql, list(params)).df()
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.BinderException):
            raise FillStoreError(f"The fill log (first file {files[0]}) cannot be aggregated: {exc}") from exc
        raise _find_bad_file(files, con, exc) from exc


# --------------------------------------------------------------------------- aggregation (SQL)
@dataclass(frozen=True)
class DailyAggregates:
    """Per-day, per ``symbol x route`` sums of the filtered fills, plus log-wide facts."""

    daily: pd.DataFrame
    """Columns ``symbol``, ``route``, ``day`` (int64 ns of the period end), :data:`AGG_COLUMNS`,
    ``first_ns`` / ``last_ns`` (first and last ``closed_at`` of the group, int64 ns)."""
    n_trades_total: int
    """Fills in the whole source before any filter."""


def _columns(con: Any, files: Sequence[Path]) -> list[str]:
    frame = _run(con, files, f"DESCRIBE SELECT * FROM {_scan(files)}")
    return [str(c) for c in frame["column_name"]]


def aggregation_sql(
    scan: str,
    *,
    has_fees: bool,
    routes: Sequence[str] | None,
    start_ns: int | None,
    end_ns: int | None,
    step_ns: int = DAY_NS,
) -> tuple[str, list[Any]]:
    """The filtering and per-day ``symbol x route`` aggregation as SQL with ``?`` parameters.

    ``start_ns <= closed_at < end_ns`` in epoch nanoseconds (either may be None); the day label
    is ``ceil(ns / step) * step``.
    """
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if start_ns is not None:
        where.append("ns >= ?")
        params.append(int(start_ns))
    if end_ns is not None:
        where.append("ns < ?")
        params.append(int(end_ns))
    if routes is not None:
        if not routes:
            where.append("FALSE")
        else:
            where.append(f"route IN ({', '.join('?' for _ in routes)})")
            params.extend(str(r) for r in routes)
    fees = "sum(fees_usd)" if has_fees else "CAST(NULL AS DOUBLE)"
    sql = f"""
        WITH f AS (
            SELECT CAST(symbol AS VARCHAR) AS symbol, CAST(route AS VARCHAR) AS route,
                   epoch_ns(closed_at) AS ns, CAST(pnl_usd AS DOUBLE) AS pnl_usd,
                   CAST(size_usd AS DOUBLE) AS size_usd{", CAST(fees_usd AS DOUBLE) AS fees_usd" if has_fees else ""}
            FROM {scan}
        )
        SELECT symbol, route,
               CASE WHEN ns > 0 THEN (ns + {step_ns} - 1) // {step_ns} ELSE -((-ns) // {step_ns}) END
                   * {step_ns} AS day,
               count(*) AS n_trades,
               sum(CAST(pnl_usd > 0 AS INTEGER)) AS n_wins,
               sum(pnl_usd) AS pnl_usd,
               sum(abs(pnl_usd)) AS abs_pnl_usd,
               sum(pnl_usd / size_usd) AS ret,
               sum(size_usd) AS size_usd,
               {fees} AS fees_usd,
               min(ns) AS first_ns,
               max(ns) AS last_ns,
               count(pnl_usd) AS n_pnl,
               count(size_usd) AS n_size,
               min(size_usd) AS min_size
        FROM f
        WHERE {" AND ".join(where)}
        GROUP BY ALL
    """
    return sql, params


CHECKS = {
    "symbol": "symbol IS NULL",
    "route": "route IS NULL",
    "closed_at": "ns IS NULL",
    "pnl_usd": "pnl_usd IS NULL OR NOT isfinite(CAST(pnl_usd AS DOUBLE))",
    "size_usd": "size_usd IS NULL OR NOT isfinite(CAST(size_usd AS DOUBLE)) OR CAST(size_usd AS DOUBLE) <= 0",
}
"""Per field, the SQL condition of a value the aggregation cannot use (to find the first such row)."""


def _bad_fields(daily: pd.DataFrame) -> list[str]:
    """Fields with an unusable value somewhere, read off the aggregates (no extra scan).

    A NULL key shows as a NULL group key, a NULL value as ``count(field) < count(*)``, a
    non-finite PnL as a non-finite sum, a bad size as a non-finite or non-positive minimum.
    """
    n = daily["n_trades"].to_numpy()
    min_size = daily["min_size"].to_numpy(dtype=float)
    bad = {
        "symbol": bool(daily["symbol"].isna().any()),
        "route": bool(daily["route"].isna().any()),
        "closed_at": bool(daily["day"].isna().any()),
        "pnl_usd": bool(
            (daily["n_pnl"].to_numpy() < n).any()
            or not np.isfinite(daily["pnl_usd"].to_numpy(dtype=float)).all()
        ),
        "size_usd": bool(
            (daily["n_size"].to_numpy() < n).any() or not (np.isfinite(min_size) & (min_size > 0)).all()
        ),
    }
    return [name for name, flag in bad.items() if flag]


def _raise_first_bad(con: Any, files: Sequence[Path], name: str) -> None:
    """Find the first row failing ``CHECKS[name]`` and raise naming its file, row and value."""
    scan = _scan(files, ", filename = true, file_row_number = true")
    where = _run(
        con,
        files,
        f"SELECT filename, file_row_number, CAST({name} AS VARCHAR) AS v "
        f"FROM (SELECT *, epoch_ns(closed_at) AS ns FROM {scan}) WHERE {CHECKS[name]} LIMIT 1",
    ).iloc[0]
    need = "> 0 and finite" if name == "size_usd" else "finite" if name == "pnl_usd" else "present"
    raise FillStoreError(
        f"The fill-log file {where['filename']} row {int(where['file_row_number'])}: field '{name}' "
        f"must be {need}. Got {where['v']!r} instead."
    )


def daily_aggregates(
    source: str | Path,
    *,
    routes: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    lookback_days: int | None = None,
    memory_limit: str = "500MB",
    threads: int | None = None,
) -> DailyAggregates:
    """Filter the fills of ``source`` and aggregate them per day and ``symbol x route`` in DuckDB.

    Filters as :func:`execution.router_health.filter_trades` (``start <= closed_at < end``; the
    lookback ends at ``end`` or, without it, at the end of the day of the latest fill of the whole
    log). Symbols are not filtered here (module docstring).

    Raises
    ------
    FillStoreError
        An unreadable file (named), a missing column, or a bad value (file, row and field named).
    """
    files = parquet_files(source)
    window = TradeWindow.of(start, end, lookback_days, func="daily_aggregates")
    con = connect(memory_limit=memory_limit, threads=threads)
    try:
        cols = _columns(con, files)
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise FillStoreError(
                f"The fill log {Path(source)} is missing column(s) {missing}; it has {cols}."
            )
        scan = _scan(files)
        head = _run(con, files, f"SELECT count(*) AS n, max(closed_at) AS last FROM {scan}").iloc[0]
        n_total = int(head["n"])
        latest = None if pd.isna(head["last"]) else pd.Timestamp(pd.Timestamp(head["last"]).value, tz="UTC")
        lo = window.lookback_start(latest)  # the same anchor as filter_trades
        bounds = [b for b in (window.start, lo) if b is not None]
        start_ns = int(max(bounds).value) if bounds else None
        end_ns = None if window.end is None else int(window.end.value)
        sql, params = aggregation_sql(
            scan, has_fees="fees_usd" in cols, routes=routes, start_ns=start_ns, end_ns=end_ns
        )
        daily = _run(con, files, sql, params)
        for name in _bad_fields(daily):  # seen in the aggregates; a second look only to name the row
            _raise_first_bad(con, files, name)
    finally:
        con.close()
    daily = daily.drop(columns=["n_pnl", "n_size", "min_size"])
    for c in ("day", "n_trades", "n_wins", "first_ns", "last_ns"):
        daily[c] = daily[c].astype(np.int64)
    daily = daily.sort_values(["symbol", "route", "day"], kind="stable").reset_index(drop=True)
    return DailyAggregates(daily=daily, n_trades_total=n_total)


def catalog(agg: DailyAggregates) -> dict[str, Any]:
    """Filter options from unfiltered aggregates: symbols by |PnL| (then name), routes, span in days,
    first/last UTC day, count (the same keys as the pandas path's catalog).

    Read off the aggregates, so the dashboard scans the log once for both the options and the
    unfiltered view.
    """
    d = agg.daily
    totals = d.groupby("symbol", sort=True, observed=True)["pnl_usd"].sum()
    symbols = sorted(((str(s), float(v)) for s, v in totals.items()), key=lambda kv: (-abs(kv[1]), kv[0]))
    n = int(d["n_trades"].sum())
    return {
        "symbols": [s for s, _ in symbols],
        "routes": sorted(str(r) for r in d["route"].unique()),
        "span_days": (int(d["last_ns"].max()) - int(d["first_ns"].min())) / 86_400e9 if n else 0.0,
        "first_day": pd.Timestamp(int(d["first_ns"].min()), tz="UTC").date() if n else None,
        "last_day": pd.Timestamp(int(d["last_ns"].max()), tz="UTC").date() if n else None,
        "n_trades": n,
    }


# --------------------------------------------------------------------------- from aggregates (pandas)
def _ts(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns", utc=True))


@dataclass(frozen=True)
class _Keys:
    """Integer codes of the daily rows: symbols and routes (sorted names), pairs ``s * n_routes + r``."""

    sym: np.ndarray
    route: np.ndarray
    sym_names: np.ndarray
    route_names: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame) -> _Keys:
        sym, route = pd.Categorical(rows["symbol"]), pd.Categorical(rows["route"])  # categories sorted
        return cls(
            np.asarray(sym.codes, dtype=np.int64), np.asarray(route.codes, dtype=np.int64),
            np.asarray(sym.categories, dtype=object), np.asarray(route.categories, dtype=object),
        )  # fmt: skip

    @property
    def pair(self) -> np.ndarray:
        return self.sym * max(len(self.route_names), 1) + self.route

    def pair_name(self, code: int) -> str:
        n = max(len(self.route_names), 1)
        return f"{self.sym_names[code // n]}{PAIR_SEP}{self.route_names[code % n]}"


def _curves(
    rows: pd.DataFrame, codes: np.ndarray, names: np.ndarray, weight: np.ndarray, keep: Sequence[str]
) -> pd.DataFrame:
    """:func:`execution.router_health.pnl_curves` from daily pair rows grouped by ``codes``.

    ``names`` is sorted, so ordering by code orders by key name.
    """
    keep_codes = np.flatnonzero(np.isin(names, np.asarray(list(keep), dtype=object)))
    m = np.isin(codes, keep_codes)
    pnl = rows["pnl_usd"].to_numpy(dtype=float)[m]
    base = pd.DataFrame(
        {
            "k": codes[m],
            "t": rows["day"].to_numpy(dtype=np.int64)[m],
            "pnl_usd": pnl,
            "pnl_weighted_usd": haircut(pnl, rows["abs_pnl_usd"].to_numpy(dtype=float)[m], weight[m]),
            "n_trades": rows["n_trades"].to_numpy(dtype=np.int64)[m],
            "n_wins": rows["n_wins"].to_numpy(dtype=np.int64)[m],
        }
    )
    cols = ["pnl_usd", "pnl_weighted_usd", "n_trades", "n_wins"]
    agg = base.groupby(["k", "t"], sort=True)[cols].sum().reset_index()
    out = pd.DataFrame(
        {
            "key": names[agg["k"].to_numpy()] if len(agg) else np.zeros(0, dtype=object),
            "ts": _ts(agg["t"].to_numpy()),
        }
    ).join(agg[cols])
    grouped = out.groupby("key", sort=False)
    out["cum_pnl_usd"] = grouped["pnl_usd"].cumsum()
    out["cum_pnl_weighted_usd"] = grouped["pnl_weighted_usd"].cumsum()
    return out[["key", "ts", *cols[:2], "cum_pnl_usd", "cum_pnl_weighted_usd", *cols[2:]]]


def _wide_returns(
    day: np.ndarray, codes: np.ndarray, ret: np.ndarray, label: Callable[[int], str], step_ns: int = DAY_NS
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Wide daily returns as ``trade_returns`` (0.0 inside a key's span, NaN outside), columns by code.

    Returns the frame, the codes of its columns and each row's column index.
    """
    if len(day) == 0:
        empty = pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="period_end"))
        return empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    present, col = np.unique(codes, return_inverse=True)
    first = int(day.min())
    r = (day - first) // step_ns
    n_rows, n_cols = int(r.max()) + 1, len(present)
    flat = r * n_cols + col
    sums = np.bincount(flat, weights=ret, minlength=n_rows * n_cols).reshape(n_rows, n_cols)
    occupied = np.bincount(flat, minlength=n_rows * n_cols).reshape(n_rows, n_cols) > 0
    lo = occupied.argmax(axis=0)
    hi = n_rows - 1 - occupied[::-1].argmax(axis=0)
    idx = np.arange(n_rows)[:, None]
    values = np.where((idx >= lo) & (idx <= hi), sums, np.nan)
    index = pd.DatetimeIndex(_ts(first + step_ns * np.arange(n_rows, dtype=np.int64)), name="period_end")
    columns = pd.Index(np.array([label(int(c)) for c in present], dtype=object))
    return pd.DataFrame(values, index=index, columns=columns), present, col


def _top(pnl: np.ndarray, codes: np.ndarray, names: np.ndarray, n: int) -> list[str]:
    """The ``n`` keys with the largest |total PnL| (ties by name), as ``router_health.top_keys``."""
    totals = np.bincount(codes, weights=pnl, minlength=len(names))
    present = np.bincount(codes, minlength=len(names)) > 0
    ranked = sorted(
        ((str(names[i]), abs(float(totals[i]))) for i in np.flatnonzero(present)),
        key=lambda kv: (-kv[1], kv[0]),
    )
    return [k for k, _ in ranked[: int(n)]]


def view_from_daily(
    agg: DailyAggregates,
    *,
    symbols: Sequence[str] | None = None,
    confidence: DoctorConfidence | None = None,
    top_n: int = 10,
    rolling_window_days: int = 30,
    table_by_route: bool = False,
) -> RouterHealthView:
    """:class:`~execution.router_health.RouterHealthView` from daily aggregates (pure pandas).

    ``agg`` is already filtered by routes and dates (:func:`daily_aggregates`); ``symbols``
    filters here. Same outputs as :func:`execution.router_health.router_health_view` with
    ``freq='1D'`` (module docstring).
    """
    opts = ViewOptions.of(top_n, rolling_window_days, table_by_route, func="view_from_daily")
    conf = confidence if confidence is not None else DoctorConfidence()
    ppy = periods_per_year_for("1D")
    universe = agg.daily
    view = universe if symbols is None else universe[universe["symbol"].isin([str(s) for s in symbols])]
    n_view = int(view["n_trades"].sum())
    if n_view == 0:
        return RouterHealthView.empty(
            n_trades_total=agg.n_trades_total,
            periods_per_year=ppy,
            rolling_window_days=opts.rolling_window_days,
        )
    view = view.reset_index(drop=True)
    keys = _Keys.of(view)
    sym_w = np.array([conf.weight(str(s)) for s in keys.sym_names], dtype=float)[keys.sym]
    pairs, pair_inv = np.unique(keys.pair, return_inverse=True)
    n_r = max(len(keys.route_names), 1)
    pair_w = np.array(
        [conf.weight(str(keys.sym_names[p // n_r]), str(keys.route_names[p % n_r])) for p in pairs],
        dtype=float,
    )[pair_inv]
    pnl = view["pnl_usd"].to_numpy(dtype=float)

    plotted = _top(pnl, keys.sym, keys.sym_names, opts.top_n)
    sym_curves = _curves(view, keys.sym, keys.sym_names, sym_w, plotted)
    sym_curves["hit_rate"] = rolling_hit_rate(sym_curves, window_days=opts.rolling_window_days)
    plotted_routes = _top(pnl, keys.route, keys.route_names, opts.top_n)
    route_curves = _curves(view, keys.route, keys.route_names, pair_w, plotted_routes)
    route_curves["hit_rate"] = rolling_hit_rate(route_curves, window_days=opts.rolling_window_days)

    m = np.isin(keys.sym, np.flatnonzero(np.isin(keys.sym_names, np.asarray(plotted, dtype=object))))
    day, ret = view["day"].to_numpy(dtype=np.int64)[m], view["ret"].to_numpy(dtype=float)[m]
    by_sym = _wide_returns(day, keys.sym[m], ret, lambda c: str(keys.sym_names[c]))[0]
    by_pair = _wide_returns(day, keys.pair[m], ret, keys.pair_name)[0]
    band = rolling_sharpe_band(
        pd.concat([by_sym, by_pair], axis=1), window=opts.window_periods(ppy), periods_per_year=ppy
    )
    table = _table(universe, by_route=opts.table_by_route)
    if symbols is not None:
        table = table[table["symbol"].isin(list(symbols))].reset_index(drop=True)
    present = sorted(str(s) for s in keys.sym_names[np.unique(keys.sym)])
    return RouterHealthView(
        n_trades_total=agg.n_trades_total,
        n_trades=n_view,
        start=pd.Timestamp(int(view["first_ns"].min()), tz="UTC"),
        end=pd.Timestamp(int(view["last_ns"].max()), tz="UTC"),
        table=table,
        symbol_curves=sym_curves,
        route_curves=route_curves,
        sharpe=band,
        sharpe_keys=sharpe_keys(plotted, band),
        plotted_symbols=plotted,
        plotted_routes=plotted_routes,
        unweighted_symbols=conf.unknown_symbols(present),
        periods_per_year=ppy,
        rolling_window_days=opts.rolling_window_days,
    )


def _table(universe: pd.DataFrame, *, by_route: bool) -> pd.DataFrame:
    """:func:`execution.metrics_normalizer.normalized_table` from the daily aggregates."""
    keys = _Keys.of(universe)
    codes = keys.pair if by_route else keys.sym
    label: Callable[[int], str] = keys.pair_name if by_route else (lambda c: str(keys.sym_names[c]))
    wide, present, col = _wide_returns(
        universe["day"].to_numpy(dtype=np.int64), codes, universe["ret"].to_numpy(dtype=float), label
    )
    table = normalized_table(
        returns=wide,
        by_route=by_route,
        periods_per_year=periods_per_year_of("1D", "crypto"),
        calendar="crypto",
    )
    k = len(present)
    n_trades = pd.Series(
        np.bincount(col, weights=universe["n_trades"].to_numpy(dtype=float), minlength=k), index=wide.columns
    )
    pnl = pd.Series(
        np.bincount(col, weights=universe["pnl_usd"].to_numpy(dtype=float), minlength=k), index=wide.columns
    )
    key = (
        (table["symbol"].astype(str) + PAIR_SEP + table["route"].astype(str))
        if by_route
        else table["symbol"].astype(str)
    )
    table["n_trades"] = n_trades.reindex(key.to_numpy()).to_numpy(dtype=float)
    table["pnl_usd"] = pnl.reindex(key.to_numpy()).to_numpy(dtype=float)
    return table


def router_health_view_duckdb(
    source: str | Path,
    *,
    symbols: Sequence[str] | None = None,
    routes: Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    lookback_days: int | None = None,
    confidence: DoctorConfidence | None = None,
    top_n: int = 10,
    rolling_window_days: int = 30,
    table_by_route: bool = False,
    memory_limit: str = "500MB",
    threads: int | None = None,
) -> RouterHealthView:
    """:func:`daily_aggregates` then :func:`view_from_daily`: the Router Health tab over a Parquet source."""
    agg = daily_aggregates(
        source, routes=routes, start=start, end=end, lookback_days=lookback_days,
        memory_limit=memory_limit, threads=threads,
    )  # fmt: skip
    return view_from_daily(
        agg, symbols=symbols, confidence=confidence, top_n=top_n,
        rolling_window_days=rolling_window_days, table_by_route=table_by_route,
    )  # fmt: skip
