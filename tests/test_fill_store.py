"""The DuckDB fill-log path equals the pandas Router Health path; bad sources are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from execution import fill_store
from execution.router_health import (
    DoctorConfidence,
    RouterHealthView,
    filter_trades,
    pnl_curves,
    router_health_view,
)
from scripts.demo_data import DemoConfig, generate

RTOL = 1e-9


@pytest.fixture(scope="module")
def demo_trades() -> pd.DataFrame:
    return generate(DemoConfig.for_scale("default", 7)).trades


@pytest.fixture(scope="module")
def demo_file(demo_trades: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fills") / "trades.parquet"
    demo_trades.to_parquet(path, index=False)
    return path


def write_partitioned(trades: pd.DataFrame, root: Path) -> Path:
    """Hive-style ``date=YYYY-MM-DD/part-0.parquet`` folders (the date column lives in the path)."""
    day = trades["closed_at"].dt.strftime("%Y-%m-%d")
    for d, part in trades.groupby(day, sort=True):
        folder = root / f"date={d}"
        folder.mkdir(parents=True, exist_ok=True)
        part.to_parquet(folder / "part-0.parquet", index=False)
    return root


@pytest.fixture(scope="module")
def demo_folder(demo_trades: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_partitioned(demo_trades, tmp_path_factory.mktemp("fills_hive") / "trades")


def pandas_uses_haircut() -> bool:
    """Whether the pandas path already weighs PnL with the haircut (a one-trade probe)."""
    t = pd.DataFrame({"symbol": ["A"], "route": ["r"], "closed_at": pd.to_datetime(["2024-01-01"], utc=True),
                      "pnl_usd": [-10.0], "size_usd": [100.0]})  # fmt: skip
    c = pnl_curves(t, confidence=DoctorConfidence({"A": 0.5}, {}, True))
    return bool(np.isclose(c["pnl_weighted_usd"].iloc[0], -15.0))


def haircut_reference(
    trades: pd.DataFrame, curves: pd.DataFrame, conf: DoctorConfidence, by: str
) -> np.ndarray:
    """Per-trade ``pnl - (1 - w)|pnl|`` summed per key and day, aligned with ``curves`` (row by row)."""
    w = np.array(
        [
            conf.weight(s) if by == "symbol" else conf.weight(s, r)
            for s, r in zip(trades["symbol"], trades["route"])
        ]
    )
    pnl = trades["pnl_usd"].to_numpy(dtype=float)
    day = trades["closed_at"].dt.ceil("1D")
    frame = pd.DataFrame({"key": trades[by].to_numpy(), "ts": day, "v": pnl - (1.0 - w) * np.abs(pnl)})
    sums = frame.groupby(["key", "ts"])["v"].sum()
    return sums.reindex(pd.MultiIndex.from_frame(curves[["key", "ts"]])).to_numpy(dtype=float)


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, what: str, skip: tuple[str, ...] = ()) -> None:
    assert list(a.columns) == list(b.columns), what
    assert len(a) == len(b), f"{what}: {len(a)} vs {len(b)} rows"
    for col in a.columns:
        if col in skip:
            continue
        x, y = a[col], b[col]
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            np.testing.assert_allclose(
                x.to_numpy(dtype=float),
                y.to_numpy(dtype=float),
                rtol=RTOL,
                atol=1e-9,
                err_msg=f"{what}.{col}",
            )
        elif isinstance(x.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(x):
            assert (pd.DatetimeIndex(x).as_unit("ns") == pd.DatetimeIndex(y).as_unit("ns")).all(), (
                f"{what}.{col}"
            )
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), f"{what}.{col}"


def assert_views_equal(duck: RouterHealthView, ref: RouterHealthView, trades: pd.DataFrame,
                       conf: DoctorConfidence) -> None:  # fmt: skip
    for name in ("n_trades_total", "n_trades", "start", "end", "sharpe_keys", "plotted_symbols",
                 "plotted_routes", "unweighted_symbols", "periods_per_year", "rolling_window_days"):  # fmt: skip
        assert getattr(duck, name) == getattr(ref, name), name
    haircut_now = pandas_uses_haircut()
    weighted = () if haircut_now else ("pnl_weighted_usd", "cum_pnl_weighted_usd")
    for name, by in (("symbol_curves", "symbol"), ("route_curves", "route")):
        d, r = getattr(duck, name), getattr(ref, name)
        assert_frames_close(d, r, name, skip=weighted)
        if not haircut_now:  # until the pandas path adopts the haircut: an independent per-trade sum
            np.testing.assert_allclose(
                d["pnl_weighted_usd"], haircut_reference(trades, d, conf, by), rtol=RTOL
            )
    assert_frames_close(duck.sharpe, ref.sharpe, "sharpe")
    assert_frames_close(duck.table, ref.table, "table")


CONF = DoctorConfidence({"BTCUSDT": 0.4, "ETHUSDT": 0.9}, {"BTCUSDT|bybit_legacy": 0.1}, True)
CASES: list[dict[str, Any]] = [
    {},
    {"symbols": ["ETHUSDT", "SOLUSDT"], "routes": ["okx_smart", "bybit_legacy"], "top_n": 1},
    {"lookback_days": 30, "table_by_route": True, "rolling_window_days": 7},
    {"start": "2025-01-20", "end": "2025-03-01", "symbols": ["XRPUSDT"]},
    {"routes": []},
]


@pytest.mark.parametrize("case", CASES)
def test_duckdb_equals_pandas_on_the_demo_file(demo_trades: pd.DataFrame, demo_file: Path,
                                               case: dict[str, Any]) -> None:  # fmt: skip
    ref = router_health_view(demo_trades, confidence=CONF, **case)
    duck = fill_store.router_health_view_duckdb(demo_file, confidence=CONF, threads=2, **case)
    if ref.n_trades == 0:
        assert duck.n_trades == 0 and duck.table.empty and duck.n_trades_total == ref.n_trades_total
        return
    view = filter_trades(demo_trades, **{k: case[k] for k in ("symbols", "routes", "start", "end", "lookback_days")
                                         if k in case})  # fmt: skip
    assert_views_equal(duck, ref, view, CONF)


def test_duckdb_equals_pandas_on_a_partitioned_folder(demo_trades: pd.DataFrame, demo_folder: Path) -> None:
    assert len(list(demo_folder.rglob("*.parquet"))) > 80  # one file per UTC day
    ref = router_health_view(demo_trades, confidence=CONF, lookback_days=60, table_by_route=True)
    duck = fill_store.router_health_view_duckdb(
        demo_folder, confidence=CONF, lookback_days=60, table_by_route=True, memory_limit="200MB", threads=1
    )
    assert_views_equal(duck, ref, filter_trades(demo_trades, lookback_days=60), CONF)
    cat = fill_store.catalog(fill_store.daily_aggregates(demo_folder))
    assert cat["n_trades"] == len(demo_trades)
    assert cat["routes"] == sorted(demo_trades["route"].unique())
    assert cat["first_day"] == demo_trades["closed_at"].min().date()
    assert cat["last_day"] == demo_trades["closed_at"].max().date()
    totals = demo_trades.groupby("symbol")["pnl_usd"].sum()
    assert cat["symbols"] == sorted(totals.index, key=lambda s: (-abs(totals[s]), s))


def test_daily_aggregates_hand_computed(tmp_path: Path) -> None:
    t = pd.DataFrame(
        {
            "symbol": ["A", "A", "A", "B"],
            "route": ["x", "x", "y", "x"],
            "closed_at": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-01 23:00", "2024-01-02 00:00", "2024-01-03 01:00"], utc=True
            ),
            "pnl_usd": [10.0, -4.0, 3.0, 0.0],
            "size_usd": [100.0, 200.0, 50.0, 10.0],
            "fees_usd": [1.0, 2.0, 0.5, 0.1],
        }
    )
    t.to_parquet(tmp_path / "t.parquet", index=False)
    agg = fill_store.daily_aggregates(tmp_path / "t.parquet", threads=1)
    d = agg.daily
    assert agg.n_trades_total == 4
    day2 = pd.Timestamp("2024-01-02", tz="UTC").value  # 2024-01-02 00:00 closes the first day
    ax = d[(d["symbol"] == "A") & (d["route"] == "x")].iloc[0]
    assert (ax["day"], ax["n_trades"], ax["n_wins"]) == (day2, 2, 1)
    assert ax["pnl_usd"] == pytest.approx(6.0) and ax["abs_pnl_usd"] == pytest.approx(14.0)
    assert ax["ret"] == pytest.approx(0.1 - 0.02) and ax["fees_usd"] == pytest.approx(3.0)
    ay = d[(d["symbol"] == "A") & (d["route"] == "y")].iloc[0]
    assert ay["day"] == day2  # exactly midnight belongs to the day it ends
    b = d[d["symbol"] == "B"].iloc[0]
    assert (b["n_wins"], b["day"]) == (0, pd.Timestamp("2024-01-04", tz="UTC").value)  # flat is no win
    # lookback 1 day ends at the end of the latest fill's day (2024-01-04 00:00): only B's fill
    assert fill_store.daily_aggregates(tmp_path / "t.parquet", lookback_days=1).daily["symbol"].tolist() == [
        "B"
    ]
    assert fill_store.haircut(6.0, 14.0, 0.5) == pytest.approx(-1.0)


def test_malformed_partition_is_named(demo_trades: pd.DataFrame, tmp_path: Path) -> None:
    root = write_partitioned(demo_trades.head(300), tmp_path / "trades")
    files = sorted(root.rglob("*.parquet"))
    bad = files[len(files) // 2]
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(fill_store.FillStoreError, match=str(bad).replace(".", r"\.")):
        fill_store.daily_aggregates(root)


def test_bad_value_names_file_row_and_field(demo_trades: pd.DataFrame, tmp_path: Path) -> None:
    root = write_partitioned(demo_trades.head(300), tmp_path / "trades")
    target = sorted(root.rglob("*.parquet"))[1]
    part = pd.read_parquet(target)
    part.loc[2, "size_usd"] = -5.0
    part.to_parquet(target, index=False)
    with pytest.raises(fill_store.FillStoreError, match=r"row 2: field 'size_usd' must be > 0.*-5"):
        fill_store.daily_aggregates(root)
    with pytest.raises(fill_store.FillStoreError, match=str(target.parent.name)):
        fill_store.daily_aggregates(root)


def test_missing_column_and_source(tmp_path: Path) -> None:
    pd.DataFrame({"symbol": ["A"], "pnl_usd": [1.0]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(fill_store.FillStoreError, match=r"missing column\(s\) \['route', 'closed_at'"):
        fill_store.daily_aggregates(tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError, match="nope"):
        fill_store.daily_aggregates(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(fill_store.FillStoreError, match=r"no \*\.parquet"):
        fill_store.parquet_files(tmp_path / "empty")


def test_engine_choice_and_stamp(
    demo_file: Path, demo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fill_store.use_duckdb(demo_folder) and not fill_store.use_duckdb(demo_file)
    monkeypatch.setattr(fill_store, "AUTO_ROWS", 1489)  # the demo file has 1490 rows
    assert fill_store.use_duckdb(demo_file)
    monkeypatch.setattr(fill_store, "AUTO_ROWS", 1490)
    assert not fill_store.use_duckdb(demo_file)
    (tmp_path / "junk.parquet").write_text("not parquet")
    assert not fill_store.use_duckdb(tmp_path / "junk.parquet") and not fill_store.use_duckdb(
        tmp_path / "none"
    )
    assert fill_store.use_duckdb(demo_file, "duckdb") and not fill_store.use_duckdb(demo_folder, "pandas")
    with pytest.raises(ValueError, match=r"'engine'.*'auto', 'duckdb', 'pandas'"):
        fill_store.use_duckdb(demo_file, "polars")
    with pytest.raises(ValueError, match=r"memory limit.*'lots'"):
        fill_store.connect(memory_limit="lots")
    root = write_partitioned(pd.read_parquet(demo_file).head(50), tmp_path / "t")
    before = fill_store.source_stamp(root)
    assert fill_store.source_stamp(root) == before
    victim = sorted(root.rglob("*.parquet"))[0]
    pd.read_parquet(victim).head(1).to_parquet(victim, index=False)
    assert fill_store.source_stamp(root) != before


def test_settings_fields() -> None:
    from infra.settings import SettingsError, load_settings

    assert (load_settings({}).fill_engine, load_settings({}).duckdb_memory_limit) == ("auto", "500MB")
    s = load_settings({"FILL_ENGINE": "DuckDB", "DUCKDB_MEMORY_LIMIT": "1.5GB"})
    assert (s.fill_engine, s.duckdb_memory_limit) == ("duckdb", "1.5GB")
    with pytest.raises(SettingsError, match=r"FILL_ENGINE must be one of auto, duckdb, pandas. Got 'polars'"):
        load_settings({"FILL_ENGINE": "polars"})
    with pytest.raises(SettingsError, match=r"DUCKDB_MEMORY_LIMIT .* Got 'lots'"):
        load_settings({"DUCKDB_MEMORY_LIMIT": "lots"})


def test_dashboard_renders_router_health_from_a_partitioned_folder(
    demo_trades: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    data_dir = tmp_path / "data"
    write_partitioned(demo_trades, data_dir / "trades.parquet")  # a folder, as Spark/DuckDB write them
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FILL_ENGINE", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    rh = at.tabs[0]
    assert "\n".join(e.value for e in rh.error) == ""
    captions = "\n".join(c.value for c in rh.caption)
    assert f"{len(demo_trades):,} of {len(demo_trades):,} trades" in captions
    assert "this log is aggregated in DuckDB" in captions  # per-fill trade stats: pandas path only
    assert len(rh.get("plotly_chart")) == 3
    table = rh.dataframe[0].value
    ref = router_health_view(demo_trades).table
    assert table["symbol"].tolist() == ref["symbol"].tolist()
    np.testing.assert_allclose(table["sharpe"], ref["sharpe"], rtol=RTOL)
    np.testing.assert_allclose(table["pnl_usd"], ref["pnl_usd"], rtol=RTOL)
    # a filter change reruns from the cached daily aggregates: a route filter narrows the table
    rh.multiselect(key="rh_routes").set_value(["okx_smart"]).run()
    assert not at.exception, [e.value for e in at.exception]
    okx = router_health_view(demo_trades, routes=["okx_smart"]).table
    np.testing.assert_allclose(at.tabs[0].dataframe[0].value["n_trades"], okx["n_trades"], rtol=0)


def test_huge_demo_writer_is_chunked_deterministic_and_readable(tmp_path: Path) -> None:
    from scripts.demo_huge import write_huge_fills

    info = write_huge_fills(tmp_path / "a", n_fills=3001, n_days=3, n_symbols=5, seed=1, progress=False)
    write_huge_fills(tmp_path / "b", n_fills=3001, n_days=3, n_symbols=5, seed=1, progress=False)
    files = sorted((tmp_path / "a").rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["date=2025-01-01", "date=2025-01-02", "date=2025-01-03"]
    assert info == {"fills": 3001, "days": 3, "bytes": sum(f.stat().st_size for f in files)}
    for f in files:  # same seed, same bytes
        assert f.read_bytes() == (tmp_path / "b" / f.parent.name / f.name).read_bytes()
    day1 = pd.read_parquet(files[0])
    assert len(day1) == 1001 and day1["closed_at"].dt.strftime("%Y-%m-%d").eq("2025-01-01").all()
    agg = fill_store.daily_aggregates(tmp_path / "a")
    assert agg.n_trades_total == 3001 and int(agg.daily["n_trades"].sum()) == 3001
    assert set(agg.daily["route"]) == {"binance_direct", "okx_smart", "bybit_legacy"}
    assert not (tmp_path / "a.tmp").exists()
    with pytest.raises(ValueError, match="n_fills >= n_days"):
        write_huge_fills(tmp_path / "c", n_fills=2, n_days=3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pnl_usd", np.nan, "field 'pnl_usd' must be finite"),
        ("pnl_usd", np.inf, "field 'pnl_usd' must be finite"),
        ("size_usd", 0.0, "field 'size_usd' must be > 0"),
        ("size_usd", None, "field 'size_usd' must be > 0"),
        ("symbol", None, "field 'symbol' must be present"),
        ("closed_at", None, "field 'closed_at' must be present"),
    ],
)
def test_each_bad_value_is_named(tmp_path: Path, field: str, value: Any, message: str) -> None:
    t = pd.DataFrame(
        {"symbol": ["A", "B", "C"], "route": ["x"] * 3,
         "closed_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"], utc=True),
         "pnl_usd": [1.0, 2.0, 3.0], "size_usd": [10.0, 10.0, 10.0]}
    ).astype({"size_usd": "float64", "symbol": "object"})  # fmt: skip
    t.loc[1, field] = value
    t.to_parquet(tmp_path / "t.parquet", index=False)
    with pytest.raises(fill_store.FillStoreError, match=rf"t\.parquet row 1: {message}"):
        fill_store.daily_aggregates(tmp_path / "t.parquet")


@pytest.mark.parametrize(
    ("kwargs", "need"),
    [
        ({"top_n": 0}, "The 'top_n' parameter of {f} must be an int >= 1. Got 0 instead."),
        ({"top_n": True}, "The 'top_n' parameter of {f} must be an int >= 1. Got True instead."),
        ({"rolling_window_days": 1}, "The 'rolling_window_days' parameter of {f} must be an int >= 2. Got 1 instead."),
        ({"lookback_days": 0}, "The 'lookback_days' parameter of {f} must be an int >= 1 or None. Got 0 instead."),
        ({"start": "2024-02-01", "end": "2024-01-01"},
         "The 'end' parameter of {f} must be after 'start' (2024-02-01 00:00:00+00:00). "
         "Got Timestamp('2024-01-01 00:00:00+0000', tz='UTC') instead."),
        ({"start": "soon"}, "The 'start' parameter of {f} must be a timestamp or date. Got 'soon' instead."),
    ],
)  # fmt: skip
def test_both_engines_refuse_the_same_parameters_with_the_same_words(
    demo_trades: pd.DataFrame, demo_file: Path, kwargs: dict[str, Any], need: str
) -> None:
    """One parameter object (TradeWindow, ViewOptions) checks both paths: only the function differs."""
    with pytest.raises(ValueError) as pandas_err:
        router_health_view(demo_trades, **kwargs)
    with pytest.raises(ValueError) as duck_err:
        fill_store.router_health_view_duckdb(demo_file, **kwargs)
    funcs = {"filter_trades", "router_health_view", "daily_aggregates", "view_from_daily"}
    assert any(str(pandas_err.value) == need.format(f=f) for f in funcs), str(pandas_err.value)
    assert any(str(duck_err.value) == need.format(f=f) for f in funcs), str(duck_err.value)


def test_lookback_is_anchored_alike_in_both_engines(demo_trades: pd.DataFrame, demo_file: Path) -> None:
    """The lookback ends at the end of the newest fill's UTC day (no ``end``) in both engines."""
    last = demo_trades["closed_at"].max()
    agg = fill_store.daily_aggregates(demo_file, lookback_days=3)
    kept = filter_trades(demo_trades, lookback_days=3)
    assert agg.daily["n_trades"].sum() == len(kept) > 0
    assert kept["closed_at"].min() >= last.floor("1D") - pd.Timedelta(days=2)
