"""The reference signal model: learns the planted edge out of sample, trains only on the past,
scores one row fast and exactly, saves and loads atomically, emits trade.signal.v5 signals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.bus import TOPIC_SIGNAL
from infra.loaders import load_bars_many
from ml.calibration import brier_score
from ml.fast_predict import CompiledCalibratedTrees
from ml.signal_model import (
    SIGNAL_COLUMNS,
    FeatureSet,
    ModelConfig,
    SignalModel,
    iter_walk_forward,
    signal_events,
    walk_forward_predict,
)
from tests.conftest import SAMPLE
from tests.ml_fixtures import demo_bars

VERSION_RE = re.compile(r"^sig-\d{12}-[0-9a-f]{8}$")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return demo_bars(n_symbols=4, n_bars=1000)


@pytest.fixture(scope="module")
def model(bars: pd.DataFrame) -> SignalModel:
    # trained before the flip (60% of 1000 bars), where the planted momentum holds
    return SignalModel().fit(bars, until=bars["ts"].min() + pd.Timedelta(hours=560))


def test_fit_records_window_version_and_respects_until(model: SignalModel, bars: pd.DataFrame) -> None:
    until = bars["ts"].min() + pd.Timedelta(hours=560)
    assert model.trained_until_ == until
    # the last training row's label (close at ts + 1 bar) is known at `until`
    assert model.train_end_ + pd.Timedelta(hours=1) <= until
    assert model.train_start_ > until - pd.Timedelta(hours=720)
    assert VERSION_RE.match(model.model_version_)
    assert model.model_version_.startswith("sig-" + until.strftime("%Y%m%d%H%M"))
    meta = model.metadata
    assert meta["feature_names"] == list(model.config.features.names)
    assert meta["n_train"] > 3 * meta["n_calibration"] - 3


def test_version_is_deterministic_and_data_dependent(bars: pd.DataFrame, model: SignalModel) -> None:
    until = bars["ts"].min() + pd.Timedelta(hours=560)
    again = SignalModel().fit(bars, until=until)
    assert again.model_version_ == model.model_version_
    other = SignalModel().fit(bars, until=until + pd.Timedelta(hours=24))
    assert other.model_version_ != model.model_version_


def test_learns_planted_momentum_out_of_sample() -> None:
    big = demo_bars(n_symbols=8, n_bars=2160)  # the default demo size; the flip is at bar 1296
    fs = FeatureSet.from_bars(big, ModelConfig())
    ts = fs.features["ts"]
    t0 = big["ts"].min()
    y = fs.labels["y"].to_numpy()
    known = fs.valid & fs.labels["y"].notna().to_numpy()
    model = SignalModel().fit_features(fs, until=t0 + pd.Timedelta(hours=900))
    X = fs.features[model.feature_names_]
    # unseen bars before the flip
    test = known & ((ts > t0 + pd.Timedelta(hours=900)) & (ts < t0 + pd.Timedelta(hours=1296))).to_numpy()
    p = model.predict_proba(X[test])[:, 1]
    hit = np.mean((p >= 0.5) == (y[test] == 1))
    # ~3,100 rows: a coin stays below 0.53 with probability > 0.999; the planted edge gives ~0.56
    assert hit > 0.53, hit
    assert brier_score(y[test], p) < 0.2495
    # after the flip the pre-flip model is worse than a coin: the drift the platform must catch
    post = known & (ts >= t0 + pd.Timedelta(hours=1400)).to_numpy()
    p_post = model.predict_proba(X[post])[:, 1]
    assert np.mean((p_post >= 0.5) == (y[post] == 1)) < 0.48


def test_compiled_trees_match_sklearn_exactly(model: SignalModel, bars: pd.DataFrame) -> None:
    fs = FeatureSet.from_bars(bars, model.config)
    X = fs.features[model.feature_names_].iloc[:600].to_numpy()  # includes NaN warm-up rows
    assert np.isnan(X).any()
    ref = model.estimator_.predict_proba(pd.DataFrame(X, columns=model.feature_names_))
    np.testing.assert_allclose(model.compiled_.predict_proba(X), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X[:1]), ref[:1], rtol=0, atol=1e-12)


def test_compiled_trees_match_isotonic_calibration(bars: pd.DataFrame) -> None:
    iso = SignalModel(ModelConfig(calibration="isotonic", max_iter=30)).fit(bars)
    fs = FeatureSet.from_bars(bars, iso.config)
    X = fs.features[iso.feature_names_].to_numpy()[fs.valid][:500]
    ref = iso.estimator_.predict_proba(pd.DataFrame(X, columns=iso.feature_names_))
    np.testing.assert_allclose(CompiledCalibratedTrees(iso.estimator_).predict_proba(X), ref, atol=1e-12)


def test_predict_proba_input_forms_agree(model: SignalModel, bars: pd.DataFrame) -> None:
    fs = FeatureSet.from_bars(bars, model.config)
    X = fs.features[fs.valid][model.feature_names_].iloc[-300:]
    p_frame = model.predict_proba(X)
    np.testing.assert_allclose(p_frame, model.estimator_.predict_proba(X), rtol=0, atol=1e-12)
    p_arr = model.predict_proba(X.to_numpy())
    p_reordered = model.predict_proba(X[X.columns[::-1]])
    np.testing.assert_allclose(p_frame, p_arr, atol=1e-12)
    np.testing.assert_allclose(p_frame, p_reordered, atol=1e-12)
    np.testing.assert_allclose(p_frame.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="must have 13 columns"):
        model.predict_proba(np.zeros((2, 3)))


def test_signals_have_the_signal_contract(model: SignalModel, bars: pd.DataFrame) -> None:
    sig = model.signals(bars)
    assert list(sig.columns) == SIGNAL_COLUMNS
    assert sorted(sig["symbol"]) == sorted(bars["symbol"].unique())
    last_ts = bars.groupby("symbol")["ts"].max()
    assert (sig.set_index("symbol")["ts"] == last_ts).all()
    assert set(sig["action"]) <= {"BUY", "SELL"}
    assert ((sig["confidence"] >= 0.5) & (sig["confidence"] <= 1.0)).all()
    np.testing.assert_allclose(sig["confidence"], np.maximum(sig["p_up"], 1 - sig["p_up"]))
    assert ((sig["action"] == "BUY") == (sig["p_up"] >= 0.5)).all()
    for top in sig["top_features"]:
        assert len(top) == 3
        assert all(t["feature"] in model.feature_names_ for t in top)
        mags = [abs(t["contribution"]) for t in top]
        assert mags == sorted(mags, reverse=True)
    events = signal_events(sig)
    assert [e["schema"] for e in events] == [TOPIC_SIGNAL] * len(sig)
    assert {"symbol", "action", "confidence", "model_version", "top_features", "event_id", "ts"} <= set(
        events[0]
    )
    assert events[0]["ts"].endswith("Z")
    all_rows = model.signals(bars, latest_only=False)
    assert len(all_rows) > 3000


def test_save_and_load_round_trip(model: SignalModel, bars: pd.DataFrame, tmp_path: Path) -> None:
    path = model.save(tmp_path / "models" / "m.pkl")
    assert path.exists()
    assert not list(path.parent.glob(".*.tmp"))  # atomic write leaves no temp file
    loaded = SignalModel.load(path)
    assert loaded.model_version_ == model.model_version_
    assert loaded.metadata == model.metadata
    fs = FeatureSet.from_bars(bars, model.config)
    X = fs.features[fs.valid][model.feature_names_].iloc[-50:]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    bad = tmp_path / "bad.pkl"
    import pickle

    bad.write_bytes(pickle.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a SignalModel file"):
        SignalModel.load(bad)


def test_walk_forward_trains_only_on_the_past(bars: pd.DataFrame) -> None:
    folds = list(iter_walk_forward(bars, min_train_bars=400, retrain_every_bars=200))
    assert [f.index for f in folds] == list(range(len(folds)))
    assert len(folds) == 3  # starts at 400, 600, 800
    for f in folds:
        assert f.model.trained_until_ == f.start
        assert f.model.train_end_ + pd.Timedelta(hours=1) <= f.start
        assert (f.rows["ts"] >= f.start).all()
        assert (f.rows["ts"] < f.end).all()
    preds = walk_forward_predict(bars, min_train_bars=400, retrain_every_bars=200)
    assert preds["model_version"].nunique() == 3
    assert ((preds["p_up"] > 0) & (preds["p_up"] < 1)).all()


def test_real_binance_bars_work() -> None:
    real = load_bars_many([SAMPLE / "BTC_USDT_USDT-1h-futures.csv", SAMPLE / "ETH_USDT_USDT-1h-futures.csv"])
    m = SignalModel().fit(real)
    sig = m.signals(real)
    assert sorted(sig["symbol"]) == ["BTCUSDT", "ETHUSDT"]
    assert sig["confidence"].between(0.5, 1.0).all()


def test_bad_config_and_not_fitted() -> None:
    with pytest.raises(ValueError, match="'calibration' parameter of ModelConfig"):
        ModelConfig(calibration="platt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'train_window_bars'"):
        ModelConfig(train_window_bars=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        SignalModel().predict_proba(np.zeros((1, 13)))


def test_too_little_history_is_a_clear_error(bars: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="needs at least 200 training and 50 calibration rows"):
        SignalModel().fit(bars, until=bars["ts"].min() + pd.Timedelta(hours=200))
