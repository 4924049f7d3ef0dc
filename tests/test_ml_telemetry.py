"""ConfidenceTelemetry with a plain LogisticRegression and the reference model; the ml.telemetry job."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from infra.artifacts import read_artifact_file
from infra.bus import TOPIC_SIGNAL, MemoryBus
from infra.settings import load_settings
from ml.calibration import brier_score, expected_calibration_error
from ml.signal_model import SignalModel
from ml.telemetry import ARTIFACT, ConfidenceTelemetry, main, run_cycle
from scripts.demo_steps.telemetry import demo_step
from tests.conftest import ROOT
from tests.ml_fixtures import demo_bars

N = 3000
TS = pd.date_range("2025-01-01", periods=N, freq="1h", tz="UTC")


def _planted(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature 'signal' drives y through a logistic link; three noise features do not."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(N, 4)), columns=["noise_a", "signal", "noise_b", "noise_c"])
    p = 1.0 / (1.0 + np.exp(-1.5 * X["signal"].to_numpy()))
    y = (rng.random(N) < p).astype(int)
    return X, y


@pytest.fixture(scope="module")
def lr_fit() -> tuple[LogisticRegression, pd.DataFrame, np.ndarray]:
    X, y = _planted(0)
    return LogisticRegression().fit(X.to_numpy(), y), X, y


def test_works_with_logistic_regression_and_ranks_the_planted_feature_first(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, _, _ = lr_fit
    X, y = _planted(1)  # fresh data from the same process
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns), model_version="lr-1", random_state=0)
    assert tel.update(X.to_numpy(), ts=TS, symbol="BTCUSDT", y=y) is tel
    imp = tel.feature_importance_
    assert imp is not None
    assert imp["feature"].iloc[0] == "signal"
    assert imp["importance_mean"].iloc[0] > 10 * max(imp["importance_mean"].iloc[1:].abs().max(), 1e-4)
    # numbers equal the pure functions on the same rows
    p = est.predict_proba(X.to_numpy())[:, 1]
    conf = np.maximum(p, 1 - p)
    correct = (y == (p >= 0.5)).astype(float)
    assert tel.brier_ == pytest.approx(brier_score(correct, conf), abs=1e-12)
    assert tel.brier_ == pytest.approx(brier_score(y, p), abs=1e-12)
    assert tel.ece_ == pytest.approx(
        expected_calibration_error(correct, conf, value_range=(0.5, 1.0)), abs=1e-12
    )
    # a well-specified logistic model is calibrated on fresh data from its own process
    assert tel.ece_ < 0.04
    assert abs(tel.calibration_in_the_large_.z) < 3
    assert tel.reliability_["count"].sum() == N


def test_linear_attribution_is_exact_for_logistic_regression(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, X, y = lr_fit
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns)).update(
        X.to_numpy(), ts=TS, symbol=np.where(np.arange(N) % 2 == 0, "A", "B"), y=y
    )
    latest = tel.latest_signals_
    assert latest.attrs["attribution_method"] == "linear_logodds"
    assert latest["symbol"].tolist() == ["A", "B"]
    assert latest["ts"].tolist() == [TS[-2], TS[-1]]
    row = X.iloc[-1].to_numpy()
    base = X.median().to_numpy()  # the buffer holds all N rows (< 2 * importance_window)
    sign = 1.0 if est.predict_proba(row[None, :])[0, 1] >= 0.5 else -1.0
    expected = sign * est.coef_[0] * (row - base)
    top = latest["top_features"].iloc[1]
    j = list(X.columns).index(top[0]["feature"])
    assert top[0]["contribution"] == pytest.approx(expected[j], rel=1e-9)
    assert top[0]["feature"] == list(X.columns)[int(np.argmax(np.abs(expected)))]


def test_overconfident_model_is_flagged() -> None:
    X, y = _planted(2)
    # too steep a logistic: right direction, exaggerated confidence
    est = LogisticRegression().fit(X.to_numpy(), y)
    est.coef_ = est.coef_ * 4.0
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns)).update(X.to_numpy(), ts=TS, y=y)
    citl = tel.calibration_in_the_large_
    assert citl.gap < -0.05
    assert citl.z < -5
    snap = tel.snapshot()
    assert snap["calibration"]["ece"] > 3 * snap["calibration"]["ece_null_q95"]


def test_importance_is_cached_by_event_time_not_wall_clock(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, X, y = lr_fit
    tel = ConfidenceTelemetry(
        est,
        feature_names=list(X.columns),
        importance_interval="6h",
        min_importance_rows=100,
        importance_window=500,
    )
    tel.update(X.iloc[:1000].to_numpy(), ts=TS[:1000], y=y[:1000])
    first = tel.feature_importance_
    assert tel.n_importance_computations_ == 1
    # 5 more hours of events: still cached, however long the wall clock took
    tel.update(X.iloc[1000:1005].to_numpy(), ts=TS[1000:1005], y=y[1000:1005])
    assert tel.feature_importance_ is first
    tel.snapshot()
    assert tel.n_importance_computations_ == 1
    # the 6th hour after the computation makes it due
    tel.update(X.iloc[1005:1006].to_numpy(), ts=TS[1005:1006], y=y[1005:1006])
    assert tel.feature_importance_ is not first
    assert tel.n_importance_computations_ == 2


def test_outcomes_recorded_later_and_unknown_ones_ignored(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, X, y = lr_fit
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns))
    syms = np.where(np.arange(N) % 3 == 0, "A", "B")
    tel.update(X.to_numpy(), ts=TS, symbol=syms)
    assert tel.n_rows_ == N
    assert tel.n_resolved_ == 0
    assert np.isnan(tel.brier_)
    assert tel.feature_importance_ is None
    half = slice(0, N // 2)
    tel.record_outcomes(symbol=syms[half], ts=TS[half], y=y[half])
    assert tel.n_resolved_ == N // 2
    p = est.predict_proba(X.to_numpy()[half])[:, 1]
    assert tel.brier_ == pytest.approx(brier_score(y[half], p), abs=1e-12)
    assert tel.feature_importance_ is not None


def test_confidence_over_time_per_symbol_and_overall(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, X, y = lr_fit
    syms = np.where(np.arange(N) % 2 == 0, "A", "B")
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns), bucket="1D").update(
        X.to_numpy(), ts=TS, symbol=syms, y=y
    )
    cot = tel.confidence_over_time_
    assert set(cot["symbol"]) == {"A", "B", "ALL"}
    day0 = cot[cot["bucket_start"] == TS[0]]
    assert day0.set_index("symbol")["n"].to_dict() == {"A": 12, "B": 12, "ALL": 24}
    p = est.predict_proba(X.to_numpy()[:24])[:, 1]
    conf = np.maximum(p, 1 - p)
    allrow = day0.set_index("symbol").loc["ALL"]
    assert allrow["q50"] == pytest.approx(np.quantile(conf, 0.5))
    assert allrow["share_high"] == pytest.approx(np.mean(conf >= 0.8))
    assert (cot["q10"] <= cot["q90"]).all()
    cal_t = tel.calibration_over_time_
    assert cal_t["n"].sum() == N
    assert {"brier", "ece", "ece_null_q95", "hit_rate", "mean_confidence"} <= set(cal_t.columns)


def test_snapshot_is_an_artifact_the_store_accepts(lr_fit, logs_env: Path) -> None:  # type: ignore[no-untyped-def]
    est, X, y = lr_fit
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns), top_n=3).update(
        X.to_numpy(), ts=TS, symbol="A", y=y
    )
    env = tel.write(load_settings())
    res = read_artifact_file(logs_env / "cache" / f"{ARTIFACT}.json")
    assert res.ok, res.message
    data = res.data
    assert data == env["data"]
    assert data["high_confidence_threshold"] == 0.8
    assert len(data["feature_importance"]["top"]) == 3
    assert data["data_window"]["start"] == "2025-01-01T00:00:00Z"
    assert data["data_window"]["n_resolved"] == N
    assert len(data["calibration"]["reliability"]) == 10
    assert sum(r["count"] for r in data["calibration"]["reliability"]) == N
    assert set(data["calibration"]["citl"]) == {"gap", "se", "z"}


def test_bad_arguments_name_the_parameter(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, X, _ = lr_fit
    with pytest.raises(
        ValueError, match="'estimator' parameter of ConfidenceTelemetry must have predict_proba"
    ):
        ConfidenceTelemetry(object())
    with pytest.raises(ValueError, match="'high_confidence' parameter"):
        ConfidenceTelemetry(est, high_confidence=1.2)
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns))
    with pytest.raises(ValueError, match="must have 4 columns"):
        tel.update(np.zeros((2, 3)), ts=TS[:2])
    with pytest.raises(ValueError, match="timezone-aware"):
        tel.update(X.to_numpy()[:2], ts=TS[:2].tz_localize(None))
    with pytest.raises(
        ValueError, match=r"'y' parameter of ConfidenceTelemetry\.update must hold 0, 1 or NaN"
    ):
        tel.update(X.to_numpy()[:2], ts=TS[:2], y=[0, 2])


def test_works_with_the_reference_model() -> None:
    bars = demo_bars(n_symbols=3, n_bars=900)
    model = SignalModel().fit(bars, until=bars["ts"].min() + pd.Timedelta(hours=600))
    from ml.signal_model import FeatureSet

    fs = FeatureSet.from_bars(bars, model.config)
    later = fs.valid & (fs.features["ts"] > model.trained_until_).to_numpy()
    rows = fs.features[later]
    tel = ConfidenceTelemetry(model, model_version=model.model_version_, min_importance_rows=100)
    tel.update(rows[model.feature_names_], ts=rows["ts"], symbol=rows["symbol"], y=fs.labels["y"][later])
    snap = tel.snapshot()
    assert snap["data_window"]["symbols"] == sorted(bars["symbol"].unique())
    assert snap["latest_signals"]["attribution_method"] == "occlusion_prob"
    assert len(snap["latest_signals"]["signals"]) == 3
    assert snap["feature_importance"]["top"]
    assert snap["model_versions"][0]["model_version"] == model.model_version_


def test_run_cycle_and_demo_step(logs_env: Path) -> None:
    from scripts.pipeline import DemoContext

    settings = load_settings()
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    demo_bars(n_symbols=3, n_bars=900).to_parquet(data_dir / "bars.parquet")
    from infra.store import open_store

    ctx = DemoContext(
        settings=settings,
        store=open_store(settings),
        data_dir=data_dir,
        seed=7,
        scale="default",
        real_bars=False,
    )
    bus = MemoryBus()
    ctx.bus = bus
    summary = demo_step(ctx)
    assert summary.startswith("ml_telemetry:")
    res = read_artifact_file(settings.cache_dir / "ml_telemetry.json")
    assert res.ok, res.message
    data = res.data
    model_path = Path(data["model"]["path"])
    assert model_path.parent == settings.logs_dir / "models"
    assert (settings.logs_dir / "models" / "signal_model_latest.pkl").exists()
    loaded = SignalModel.load(model_path)
    assert loaded.model_version_ == data["model_version"] == data["model"]["model_version"]
    assert len(data["model_versions"]) >= 4  # walk-forward retrains
    assert [e["symbol"] for e in bus.events(TOPIC_SIGNAL)] == sorted(data["data_window"]["symbols"])
    # walk-forward: every scored row comes after the first model's training time
    first = data["model_versions"][0]
    assert pd.Timestamp(first["first_ts"]) >= pd.Timestamp(data["data_window"]["start"])


def test_cli_missing_file_is_a_clear_error(logs_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bars", str(logs_env / "nope.csv")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_on_real_binance_bars(logs_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import SAMPLE

    code = main(
        ["--bars", str(SAMPLE / "BTC_USDT_USDT-1h-futures.csv"), str(SAMPLE / "ETH_USDT_USDT-1h-futures.csv")]
    )
    assert code == 0
    assert "over 2 symbols" in capsys.readouterr().out
    res = read_artifact_file(logs_env / "cache" / "ml_telemetry.json")
    assert res.ok, res.message
    assert res.data["data_window"]["symbols"] == ["BTCUSDT", "ETHUSDT"]


def test_module_runs_as_a_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ml.telemetry", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--bars" in proc.stdout


def test_run_cycle_rejects_too_short_bars(logs_env: Path) -> None:
    with pytest.raises(ValueError, match=r"bars too short|needs at least"):
        run_cycle(demo_bars(n_symbols=1, n_bars=300), settings=load_settings())


def test_group_quantiles_match_pandas() -> None:
    from ml.telemetry import QUANTILES, group_quantiles

    rng = np.random.default_rng(3)
    values = rng.random(500)
    codes = rng.integers(0, 7, 500)
    codes[codes == 4] = 5  # an empty group
    got = group_quantiles(values, codes, QUANTILES)
    expected = pd.Series(values).groupby(codes).quantile(list(QUANTILES)).unstack()
    np.testing.assert_allclose(got[expected.index.to_numpy()], expected.to_numpy(), atol=1e-15)
    assert np.isnan(got[4]).all()


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_batching_does_not_change_the_numbers(cuts: list[int]) -> None:
    """Streaming invariance: the same rows fed in any batches give the same state."""
    X, y = _planted(4)
    est = LogisticRegression().fit(X.to_numpy(), y)
    n = 800
    whole = ConfidenceTelemetry(est, feature_names=list(X.columns)).update(
        X.to_numpy()[:n], ts=TS[:n], y=y[:n]
    )
    parts = ConfidenceTelemetry(est, feature_names=list(X.columns))
    bounds = sorted({0, n, *[min(c * 2, n) for c in cuts]})
    for a, b in itertools.pairwise(bounds):
        parts.update(X.to_numpy()[a:b], ts=TS[a:b], y=y[a:b])
    assert parts.n_rows_ == n
    assert parts.brier_ == pytest.approx(whole.brier_, abs=1e-15)
    assert parts.ece_ == pytest.approx(whole.ece_, abs=1e-15)
    pd.testing.assert_frame_equal(parts.confidence_over_time_, whole.confidence_over_time_)


def test_max_rows_keeps_the_newest(lr_fit) -> None:  # type: ignore[no-untyped-def]
    est, X, y = lr_fit
    tel = ConfidenceTelemetry(est, feature_names=list(X.columns), max_rows=1000)
    for a in range(0, N, 500):
        tel.update(X.to_numpy()[a : a + 500], ts=TS[a : a + 500], y=y[a : a + 500])
    assert tel.n_rows_ == 1000
    assert tel.records["ts"].min() == TS[N - 1000]
    assert tel.latest_ts_ == TS[-1]
