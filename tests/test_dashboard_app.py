"""The dashboard shell and the Router Health 2.0 tab, driven through Streamlit's AppTest."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from infra.artifacts import ArtifactStore
from infra.contracts.artifacts import ArtifactDataError
from tests.conftest import ROOT, run_demo

APP = str(ROOT / "dashboard" / "app.py")
LABELS = ["Router Health 2.0", "ML Confidence", "RL Pilot", "RL Learning Loop", "Drift", "Tear Sheet"]
HEAVY = ("torch", "stable_baselines3", "sklearn")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo generator's data files (no pipeline step, so no artifact exists)."""
    logs = tmp_path_factory.mktemp("rh_app") / "logs"
    run_demo(logs, "--data-only")
    return logs / "data"


@pytest.fixture(scope="module")
def trades(demo_data: Path) -> pd.DataFrame:
    return pd.read_parquet(demo_data / "trades.parquet")


def _point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("CACHE_DIR", str(cache))
    for var in ("RESEARCH_DIR", "FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return cache


def _run() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _rh(at: AppTest) -> Any:
    return at.tabs[0]


def _open(at: AppTest, label: str) -> Any:
    """Open tab ``label`` (tabs are lazy: only the open one runs) and return it."""
    at.query_params["tab"] = label
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return next(t for t in at.tabs if t.label == label)


def _array(value: Any) -> np.ndarray:
    """A plotly JSON array: a list, or plotly's typed base64 form {'dtype', 'bdata'}."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def _traces(chart: Any) -> dict[str, dict[str, Any]]:
    spec = json.loads(chart.proto.spec)
    return {t.get("name", f"#{i}"): t for i, t in enumerate(spec["data"])}


def _table(at: AppTest) -> pd.DataFrame:
    frames = _rh(at).dataframe
    assert len(frames) == 2  # the normalized statistics, then trade statistics from fills
    return frames[0].value


def _texts(elements: Any) -> str:
    return "\n".join(e.value for e in elements)


# --------------------------------------------------------------------------- shell
def test_app_has_five_tabs_and_router_health_content(
    demo_data: Path, trades: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    assert [t.label for t in at.tabs] == LABELS
    rh = _rh(at)
    assert _texts(rh.error) == ""
    charts = rh.get("plotly_chart")
    assert len(charts) == 3  # PnL by symbol, PnL by route, rolling Sharpe band
    names = set(_traces(charts[0]))
    symbols = sorted(trades["symbol"].unique())
    assert {f"{s} raw" for s in symbols} <= names and {f"{s} weighted" for s in symbols} <= names
    assert {f"{s} hit rate" for s in symbols} <= names
    routes = set(_traces(charts[1]))
    assert {f"{r} raw" for r in trades["route"].unique()} <= routes
    assert any("1.96 SE" in n for n in _traces(charts[2]))
    table = _table(at)
    assert table["symbol"].tolist() == symbols
    assert {"sharpe", "sortino", "psr", "dsr", "n_obs", "lookback_days"} <= set(table.columns)
    assert table["n_trades"].sum() == len(trades)
    assert table["pnl_usd"].sum() == pytest.approx(trades["pnl_usd"].sum())
    assert len(rh.get("download_button")) == 1
    # one look: white template, legend above the plot, UTC time axes, units on every value axis
    specs = [json.loads(c.proto.spec) for c in charts]
    for spec in specs:
        lay = spec["layout"]
        assert lay["template"]["layout"]["paper_bgcolor"] == "white"
        assert lay["legend"]["orientation"] == "h" and lay["legend"]["y"] > 1
        assert lay["xaxis"]["title"]["text"].endswith("(UTC)")
    assert [s["layout"]["yaxis"]["title"]["text"] for s in specs] == [
        "cumulative PnL (USD)", "cumulative PnL (USD)", "Sharpe ratio (annualised)"
    ]  # fmt: skip
    assert specs[0]["layout"]["yaxis2"]["title"]["text"] == "rolling hit rate (%)"
    # a caption under each figure and the table
    captions = _texts(rh.caption)
    for what in ("Cumulative PnL of each symbol", "Cumulative PnL of each execution route",
                 "95 % band", "One row per symbol"):  # fmt: skip
        assert what in captions, what
    # the raw symbol curve ends at the symbol's total PnL
    btc = _traces(charts[0])[f"{symbols[0]} raw"]
    total = trades.loc[trades["symbol"] == symbols[0], "pnl_usd"].sum()
    assert _array(btc["y"])[-1] == pytest.approx(total)
    # the other tabs are lazy: nothing of theirs ran, and each renders its own panel when opened
    assert all(len(tab.subheader) == 0 for tab in at.tabs[1:])
    for label in LABELS[1:]:
        assert [s.value for s in _open(at, label).subheader] == [label]


def test_without_doctor_weights_are_one_with_a_visible_note(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    note = _texts(_rh(at).info)
    assert "No doctor confidence yet" in note and "python -m scripts.doctor" in note and "1.0" in note
    traces = _traces(_rh(at).get("plotly_chart")[0])
    for name, trace in traces.items():
        if name.endswith(" raw"):
            np.testing.assert_allclose(_array(traces[name[:-4] + " weighted"]["y"]), _array(trace["y"]))


def test_doctor_confidence_weights_the_curves(
    demo_data: Path, trades: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _point(monkeypatch, tmp_path, demo_data)
    symbols = sorted(trades["symbol"].unique())
    conf = {s: 0.25 for s in symbols[1:]}  # the first symbol is unknown to the doctor: weight 1
    pair = f"{symbols[1]}|bybit_legacy"
    ArtifactStore(cache).write(
        "doctor", {"symbol_confidence": conf, "route_confidence": {pair: 0.0}}, source="test"
    )
    at = _run()
    rh = _rh(at)
    assert "No doctor confidence yet" not in _texts(rh.info)
    assert "doctor.json" in _texts(rh.caption)
    assert f"No doctor confidence for 1 symbol(s), weighted 1.0: {symbols[0]}" in _texts(rh.caption)
    by_symbol = _traces(rh.get("plotly_chart")[0])
    for s in symbols:
        w = 1.0 if s == symbols[0] else 0.25  # per-symbol curves ignore pair weights
        raw, weighted = _array(by_symbol[f"{s} raw"]["y"]), _array(by_symbol[f"{s} weighted"]["y"])
        pnl = trades.loc[trades["symbol"] == s, "pnl_usd"]
        # the haircut pnl - (1 - w)|pnl|, trade by trade
        assert weighted[-1] == pytest.approx((pnl - (1 - w) * pnl.abs()).sum(), abs=1e-6)
        if w == 1.0:
            np.testing.assert_allclose(weighted, raw, atol=1e-6)
    # per-route curves: pair weight (0 for symbols[1] on bybit_legacy), else the symbol's
    by_route = _traces(rh.get("plotly_chart")[1])
    legacy = trades[trades["route"] == "bybit_legacy"]
    w = legacy["symbol"].map(lambda s: 0.0 if s == symbols[1] else conf.get(s, 1.0))
    expected = (legacy["pnl_usd"] - (1 - w) * legacy["pnl_usd"].abs()).sum()
    assert _array(by_route["bybit_legacy weighted"]["y"])[-1] == pytest.approx(expected)
    # a distrusted route never looks better weighted than raw (issue 23 item 5)
    for name, trace in by_route.items():
        if name.endswith(" raw"):
            assert _array(by_route[name[:-4] + " weighted"]["y"])[-1] <= _array(trace["y"])[-1] + 1e-6


# --------------------------------------------------------------------------- filters
def test_symbol_and_route_filters_change_table_and_figures(
    demo_data: Path, trades: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    full = _table(at)
    picked = sorted(trades["symbol"].unique())[2:4]
    at.multiselect(key="rh_symbols").set_value(picked).run()
    table = _table(at)
    assert table["symbol"].tolist() == picked
    pd.testing.assert_frame_equal(
        table.reset_index(drop=True), full[full["symbol"].isin(picked)].reset_index(drop=True)
    )
    assert {n.rsplit(" ", 1)[0] for n in _traces(_rh(at).get("plotly_chart")[0])} <= set(picked) | {
        f"{s} hit" for s in picked
    }

    at.multiselect(key="rh_routes").set_value(["bybit_legacy"]).run()
    table = _table(at)
    sel = trades[trades["symbol"].isin(picked) & (trades["route"] == "bybit_legacy")]
    assert table["n_trades"].sum() == len(sel)
    assert table["pnl_usd"].sum() == pytest.approx(sel["pnl_usd"].sum())
    assert set(_traces(_rh(at).get("plotly_chart")[1])) == {
        "bybit_legacy raw", "bybit_legacy weighted", "bybit_legacy hit rate"
    }  # fmt: skip

    at.radio(key="rh_rows").set_value("Symbol × route").run()
    table = _table(at)
    assert table[["symbol", "route"]].to_numpy().tolist() == [[s, "bybit_legacy"] for s in picked]


def test_lookback_and_date_range_change_table(
    demo_data: Path, trades: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    closed = trades["closed_at"]
    last_day_end = closed.max().floor("1D") + pd.Timedelta(days=1)

    at.selectbox(key="rh_lookback").set_value(30).run()
    table = _table(at)
    n30 = int((closed >= last_day_end - pd.Timedelta(days=30)).sum())
    assert 0 < table["n_trades"].sum() == n30 < len(trades)
    assert (table["start"] >= last_day_end - pd.Timedelta(days=30)).all()

    at.selectbox(key="rh_lookback").set_value(None).run()
    d0, d1 = dt.date(2025, 2, 1), dt.date(2025, 2, 14)
    at.date_input(key="rh_dates").set_value((d0, d1)).run()
    table = _table(at)
    lo, hi = pd.Timestamp(d0, tz="UTC"), pd.Timestamp(d1, tz="UTC") + pd.Timedelta(days=1)
    in_range = trades[(closed >= lo) & (closed < hi)]
    assert 0 < table["n_trades"].sum() == len(in_range)
    assert table["pnl_usd"].sum() == pytest.approx(in_range["pnl_usd"].sum())
    x = pd.to_datetime(
        _traces(_rh(at).get("plotly_chart")[0])[f"{table['symbol'].iloc[0]} raw"]["x"], utc=True
    )
    assert x.min() >= lo and x.max() <= hi  # right-closed daily points end at the range's end


# --------------------------------------------------------------------------- failure panels
def test_corrupt_doctor_shows_its_error_panel_and_the_rest_renders(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _point(monkeypatch, tmp_path, demo_data)
    cache.mkdir(parents=True)
    (cache / "doctor.json").write_text("{not json at all", encoding="utf-8")
    at = _run()
    assert [t.label for t in at.tabs] == LABELS
    rh = _rh(at)
    err = _texts(rh.error)
    assert "doctor.json" in err and "corrupt" in err and "python -m scripts.doctor" in err
    assert len(rh.get("plotly_chart")) == 3 and len(rh.dataframe) == 2  # falls back to weight 1.0
    for label in LABELS[1:]:
        tab = _open(at, label)
        assert [s.value for s in tab.subheader] == [label]
        assert "doctor.json" not in _texts(tab.error)


def test_doctor_with_bad_confidences_falls_back(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _point(monkeypatch, tmp_path, demo_data)
    # the doctor can no longer write it (its contract promises confidences in [0, 1]); a file can hold it
    with pytest.raises(ArtifactDataError, match=r"symbol_confidence\['BTCUSDT'\] = 7"):
        ArtifactStore(cache).write("doctor", {"symbol_confidence": {"BTCUSDT": 7}}, source="test")
    cache.mkdir(parents=True, exist_ok=True)
    env = {"schema_version": 1, "name": "doctor", "generated_at": "2025-01-01T00:00:00Z", "env": "dev",
           "source": "test", "data": {"symbol_confidence": {"BTCUSDT": 7}}}  # fmt: skip
    (cache / "doctor.json").write_text(json.dumps(env))
    at = _run()
    err = _texts(_rh(at).error)
    assert "symbol_confidence['BTCUSDT']" in err and "1.0" in err
    assert len(_rh(at).get("plotly_chart")) == 3


def test_missing_trades_explains_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _point(monkeypatch, tmp_path, tmp_path / "empty")
    at = _run()
    rh = _rh(at)
    assert "No closed-trade log yet" in _texts(rh.info) and "python -m scripts.demo" in _texts(rh.info)
    assert len(rh.get("plotly_chart")) == 0
    assert [s.value for s in _open(at, "Drift").subheader] == ["Drift"]


def test_invalid_trades_show_an_error_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"order_id": ["a"], "symbol": ["BTC"]}).to_parquet(data / "trades.parquet")
    _point(monkeypatch, tmp_path, data)
    at = _run()
    err = _texts(_rh(at).error)
    assert "trades.parquet" in err and "missing column(s)" in err and "route" in err
    assert [t.label for t in at.tabs] == LABELS


# --------------------------------------------------------------------------- imports and end to end
def test_no_torch_sb3_or_sklearn_after_a_run(demo_data: Path, tmp_path: Path) -> None:
    """In a fresh interpreter, so other tests' imports cannot hide or fake the answer."""
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout=60)\n"
        "at.run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "assert len(at.tabs[0].get('plotly_chart')) == 3\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "LOGS_DIR": str(tmp_path),
        "DATA_DIR": str(demo_data),
        "CACHE_DIR": str(tmp_path / "c"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_demo_doctor_feeds_router_health_confidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m scripts.demo`` (data + the doctor step) gives this tab its confidence weights."""
    logs = tmp_path / "logs"
    run_demo(logs, "--only", "doctor")
    monkeypatch.setenv("LOGS_DIR", str(logs))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR"):
        monkeypatch.delenv(var, raising=False)
    at = _run()
    rh = _rh(at)
    assert "No doctor confidence yet" not in _texts(rh.info)
    assert "doctor.json" in _texts(rh.caption)
    doctor = json.loads((logs / "cache" / "doctor.json").read_text())["data"]
    assert doctor["symbol_confidence"]
    traces = _traces(rh.get("plotly_chart")[0])
    trades = pd.read_parquet(logs / "data" / "trades.parquet")
    for s, w in doctor["symbol_confidence"].items():
        weighted = _array(traces[f"{s} weighted"]["y"])
        pnl = trades.loc[trades["symbol"] == s, "pnl_usd"]
        assert weighted[-1] == pytest.approx((pnl - (1 - w) * pnl.abs()).sum(), abs=1e-6)


def test_filters_that_match_nothing_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    opened = pd.to_datetime(["2025-01-01 10:00", "2025-01-20 10:00"], utc=True)
    pd.DataFrame(
        {
            "order_id": ["o1", "o2"], "symbol": ["AAAUSDT", "BBBUSDT"], "route": ["okx_smart"] * 2,
            "side": ["LONG", "SHORT"], "opened_at": opened, "closed_at": opened + pd.Timedelta(hours=2),
            "entry_price": [10.0, 20.0], "exit_price": [11.0, 19.0], "size_usd": [100.0, 100.0],
            "fees_usd": [0.1, 0.1], "pnl_usd": [9.9, 4.9], "confidence": [0.6, 0.7], "multiplier": [1.0, 1.0],
            "max_adverse_pct": [0.5, 0.2],
        }
    ).to_parquet(data / "trades.parquet")  # fmt: skip
    _point(monkeypatch, tmp_path, data)
    at = _run()
    assert _table(at)["n_trades"].tolist() == [1.0, 1.0]
    # the 7-day lookback ends on the log's last day (Jan 20): AAA's only trade is outside it
    at.multiselect(key="rh_symbols").set_value(["AAAUSDT"])
    at.selectbox(key="rh_lookback").set_value(7).run()
    assert not at.exception
    assert "No trades match these filters" in _texts(_rh(at).warning)
    assert len(_rh(at).dataframe) == 0 and len(_rh(at).get("plotly_chart")) == 0


def test_garbage_trades_file_shows_an_error_panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "trades.parquet").write_bytes(b"this is not parquet")
    _point(monkeypatch, tmp_path, data)
    at = _run()
    err = _texts(_rh(at).error)
    assert "trades.parquet" in err and "cannot be used" in err and "python -m scripts.demo" in err
    assert [s.value for s in _open(at, "RL Pilot").subheader] == ["RL Pilot"]


# --------------------------------------------------------------------------- shell hygiene (issue 23)
def test_nothing_but_title_and_status_line_above_the_tabs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare string literal in app.py is printed by Streamlit's magic: nothing such may leak."""
    _point(monkeypatch, tmp_path, tmp_path / "empty")
    at = _run()
    top = list(at.main.children.values())
    first_tabs = next(i for i, el in enumerate(top) if getattr(el, "type", None) == "tab_container")
    kinds = [(el.type, el.value) for el in top[:first_tabs]]
    assert [k for k, _ in kinds] == ["title", "caption"], kinds
    assert kinds[0][1] == "Quant research monitor" and "Firestore" in kinds[1][1]


@pytest.mark.parametrize(
    ("asked", "opened"),
    [("drift", "Drift"), ("ML CONFIDENCE", "ML Confidence"), ("rl  pilot", "RL Pilot"), ("Drift", "Drift")],
)
def test_tab_query_parameter_is_case_insensitive(
    asked: str, opened: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, tmp_path / "empty")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = asked
    at.run()
    assert not at.exception
    ran = [t.label for t in at.tabs if len(t.subheader)]
    assert ran == [opened]
    assert len(at.warning) == 0


def test_unknown_tab_name_is_named_in_a_visible_note_as_plain_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, tmp_path / "empty")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = "Drfit![x](http://127.0.0.1:9/p.png)"
    at.run()
    assert not at.exception
    assert [t.label for t in at.tabs if len(t.subheader)] == ["Router Health 2.0"]
    (note,) = at.warning
    assert "No tab is named" in note.value and "showing Router Health 2" in note.value
    # the user's text is escaped: no markdown image/link syntax survives to the renderer
    assert "![" not in note.value and "](" not in note.value and "\\!\\[x\\]\\(http" in note.value


# --------------------------------------------------------------------------- statistics as read (issue 23 items 2, 3, 10)
def _display(at: AppTest) -> pd.DataFrame:
    """The statistics table's cells as the reader sees them (the Styler's display values)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    proto = _rh(at).dataframe[0].proto
    return convert_arrow_bytes_to_pandas_df(proto.arrow_data.styler.display_values)


def test_statistics_errors_and_bounds_are_annualised_and_named(
    demo_data: Path, trades: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from execution.metrics_normalizer import normalized_table

    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    table = _table(at)
    assert not {"sharpe_se", "sharpe_lo", "min_trl"} & set(table.columns)  # the misleading names are gone
    ref = normalized_table(trades, calendar="crypto").set_index("symbol")
    got = table.set_index("symbol")
    # the per-period SE times sqrt(365): the unit of the annualised Sharpe beside it
    np.testing.assert_allclose(got["sharpe_se_ann"], ref["sharpe_se"] * np.sqrt(365.0), rtol=1e-9)
    np.testing.assert_allclose(got["sharpe_ci_low"], ref["sharpe"] - 1.96 * got["sharpe_se_ann"], rtol=1e-9)
    np.testing.assert_allclose(got["sharpe_autocorr_adj"], ref["sharpe_lo"], rtol=1e-9)
    assert np.isfinite(got["min_trl_days"].dropna()).all()
    shown = _display(at)
    cells = shown.astype(str).to_numpy().ravel().tolist()
    assert not [c for c in cells if c.lower() in ("nan", "none", "inf", "-inf", "infinity")]
    losers = table.index[table["sharpe"] <= 0]
    assert all(shown.loc[i, "min_trl_days"] == "never" for i in losers)
    captions = _texts(_rh(at).caption)
    assert "sharpe_se_ann" in captions and "not a bound" in captions and '"never"' in captions


def test_a_short_lookback_flags_rows_instead_of_printing_extreme_ratios(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    at.selectbox(key="rh_lookback").set_value(7).run()
    table, shown = _table(at), _display(at)
    assert (table["n_obs"] < 30).all() and table["few_obs"].all()
    assert (shown["sharpe"] == "n<30").all() and (shown["sortino"] == "n<30").all()
    assert (shown["few_obs"] == "yes").all()
    assert "fewer than 30 daily observations" in _texts(_rh(at).caption)
    at.selectbox(key="rh_lookback").set_value(None).run()
    assert not _table(at)["few_obs"].any()  # 90 days: every row is a measurement


def test_hit_rate_ticks_are_round_and_the_legend_is_short(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, demo_data)
    at = _run()
    for chart in _rh(at).get("plotly_chart")[:2]:
        spec = json.loads(chart.proto.spec)
        assert spec["layout"]["yaxis2"]["tickvals"] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        assert spec["layout"]["yaxis2"]["tickformat"] == ".0%"
        in_legend = [t["name"] for t in spec["data"] if t.get("showlegend", True)]
        assert 1 <= len(in_legend) <= 8, in_legend
    # the slider cannot draw more than 8; any other symbol is picked with the Symbols filter
    assert _rh(at).slider(key="rh_top_n").max == 8


@pytest.fixture(scope="module")
def real_bars_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SAMPLE

    logs = tmp_path_factory.mktemp("rh_real") / "logs"
    run_demo(logs, "--data-only", "--bars", *map(str, sorted(SAMPLE.glob("*1h*.csv"))))
    return logs / "data"


def test_rolling_sharpe_on_30_days_of_real_bars_is_a_curve_or_a_message(
    real_bars_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point(monkeypatch, tmp_path, real_bars_data)
    at = _run()
    window = at.select_slider(key="rh_window").value
    assert window < 30  # 30 days of bars: the default window leaves points for a curve
    charts = _rh(at).get("plotly_chart")
    assert len(charts) == 3
    sharpe = _traces(charts[2])
    line = next(t for n, t in sharpe.items() if n.endswith("Sharpe"))
    assert len(_array(line["y"])) >= 5
    at.select_slider(key="rh_window").set_value(30).run()
    assert len(_rh(at).get("plotly_chart")) == 2  # no single-point chart ...
    info = _texts(_rh(at).info)  # ... but a message saying why and what to do
    assert "pick a shorter rolling window" in info and (
        "too few for a curve" in info or "Too few days" in info
    )
    # a window leaving 1-4 full windows: no dots-only chart either, the count is named
    at.select_slider(key="rh_window").set_value(14).run()
    if len(_rh(at).get("plotly_chart")) == 2:
        assert re.search(r"Only [1-4] full 14-day window\(s\)", _texts(_rh(at).info))
    else:
        line = next(t for n, t in _traces(_rh(at).get("plotly_chart")[2]).items() if n.endswith("Sharpe"))
        assert len(_array(line["y"])) >= 5


def test_artifact_source_with_markdown_is_shown_as_code_not_rendered(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22 item 7: user-supplied strings never reach the markdown renderer as markup."""
    cache = _point(monkeypatch, tmp_path, demo_data)
    evil = "![x](http://127.0.0.1:9/p.png)`[y](http://e.vil)"
    ArtifactStore(cache).write("doctor", {"symbol_confidence": {}}, source=evil)
    at = _run()
    line = next(c.value for c in _rh(at).caption if "doctor.json" in c.value)
    # one code span holding the whole string (its backtick replaced), so no link or image is rendered
    assert "`![x](http://127.0.0.1:9/p.png)'[y](http://e.vil)`" in line
