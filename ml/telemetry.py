"""The ``ml_telemetry`` job: walk-forward score the reference model and write the artifact.

``python -m ml.telemetry [--bars PATH ...]`` runs one cycle (walk-forward training and scoring of
the reference model over the latest bars) and writes ``ml_telemetry``, whose ``data`` is
:class:`infra.contracts.ml_artifacts.MlTelemetryData`; the demo's telemetry step calls
:func:`run_cycle`. The computation is :class:`ml.confidence_telemetry.ConfidenceTelemetry`
(re-exported here).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from infra.cli import run_cli
from infra.contracts.artifacts import decode_data
from infra.contracts.ml_artifacts import MlTelemetryData
from ml.confidence_telemetry import (  # noqa: F401 - the computation's public names, re-exported
    ALL,
    ARTIFACT,
    HIGH_CONFIDENCE,
    NORMAL_MIN_COUNT,
    QUANTILES,
    SCHEMA_VERSION,
    ConfidenceTelemetry,
    ImportanceCache,
    group_quantiles,
)

if TYPE_CHECKING:
    from infra.settings import Settings


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def summary_line(data: MlTelemetryData, model_version: str) -> str:
    """One line: rows, symbols, versions, Brier/ECE ("n/a" before any outcome), top feature."""
    cal = data.calibration
    top = data.feature_importance.top if data.feature_importance is not None else []
    return (
        f"ml_telemetry: {data.data_window.n_resolved} scored rows over "
        f"{len(data.data_window.symbols)} symbols, {len(data.model_versions)} model versions; "
        f"Brier {_fmt(cal.brier)}, ECE {_fmt(cal.ece)} (calibrated q95 {_fmt(cal.ece_null_q95)}), "
        f"top feature {top[0].feature if top else '-'}; model {model_version}"
    )


def run_cycle(
    bars: pd.DataFrame,
    *,
    settings: Settings | None = None,
    model_dir: Path | None = None,
    min_train_bars: int | None = None,
    retrain_every_bars: int | None = None,
) -> tuple[dict[str, Any], str]:
    """Walk-forward train and score the reference model on ``bars``, write ``ml_telemetry``.

    Every fold's model scores the bars after its training time; telemetry sees those honest
    out-of-sample forecasts with their outcomes. The final model (trained on everything known
    at the last bar) is saved under ``model_dir`` (default ``<logs_dir>/models``) and produces
    the latest signals. Returns the envelope written and a one-line summary.
    """
    from infra.settings import load_settings
    from ml.signal_model import FeatureSet, ModelConfig, SignalModel, iter_walk_forward, single_threaded

    s = settings or load_settings()
    cfg = ModelConfig()
    with single_threaded():
        fs = FeatureSet.from_bars(bars, cfg)
        n_bars = int(fs.features.groupby("symbol").size().max())
        # defaults: train on the first ~third, retrain about eight times over the rest
        n_symbols = int(fs.features["symbol"].nunique())
        need = -(-320 // n_symbols) + cfg.horizon  # bars per symbol giving ~320 labelled training rows
        mtb = min_train_bars or max(cfg.features.warmup + need, n_bars // 3)
        reb = retrain_every_bars or max(24, (n_bars - mtb) // 8)
        tel: ConfidenceTelemetry | None = None
        for fold in iter_walk_forward(
            bars, config=cfg, min_train_bars=mtb, retrain_every_bars=reb, features=fs
        ):
            if tel is None:
                tel = ConfidenceTelemetry(fold.model, model_version=fold.model.model_version_)
            tel.set_model(fold.model, model_version=fold.model.model_version_)
            X = fold.rows[fold.model.feature_names_]
            tel.update(X, ts=fold.rows["ts"], symbol=fold.rows["symbol"].to_numpy(), y=fold.rows["y"])
        if tel is None:
            raise ValueError(
                f"bars too short for walk-forward telemetry: {n_bars} bars per symbol, need more than {mtb}."
            )
        tel.refresh_importance()  # out-of-sample: the last walk-forward model on its own window
        final = SignalModel(cfg).fit_features(fs)
        # the live model explains the newest row per symbol (the latest signals)
        tel.set_model(final, model_version=final.model_version_)
        snap = tel.snapshot()
    folder = model_dir or (s.logs_dir / "models")
    path = final.save(folder / f"{final.model_version_}.pkl")
    final.save(folder / "signal_model_latest.pkl")
    snap["model"] = {**final.metadata, "path": str(path)}
    from infra.store import open_store

    envelope = open_store(s).write(ARTIFACT, snap, source="ml.telemetry", schema_version=SCHEMA_VERSION)
    typed = decode_data(ARTIFACT, envelope["data"])  # what every reader sees
    if not isinstance(typed, MlTelemetryData):
        raise TypeError(f"{ARTIFACT} decoded to {type(typed).__name__}, expected MlTelemetryData")
    return envelope, summary_line(typed, final.model_version_)


def _load_bars(paths: Sequence[str]) -> pd.DataFrame:
    from infra.loaders import load_bars_many

    return load_bars_many(paths)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ml.telemetry [--bars PATH ...]``: one telemetry cycle; exit 0 on success."""
    from infra.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m ml.telemetry", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bars",
        nargs="+",
        metavar="PATH",
        help="bar files (CSV/Parquet; several files are concatenated). Default: <DATA_DIR>/bars.parquet",
    )
    parser.add_argument(
        "--min-train-bars", type=int, default=None, help="bars before the first model (default: auto)"
    )
    parser.add_argument(
        "--retrain-every", type=int, default=None, help="bars between retrains (default: auto)"
    )
    args = parser.parse_args(argv)
    s = load_settings()
    paths = args.bars or [str(s.data_dir / "bars.parquet")]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        print(
            f"ml.telemetry: bar file(s) not found: {', '.join(missing)}. Run `python -m scripts.demo` "
            "or pass --bars PATH (e.g. data/sample/binance_usdm/BTC_USDT_USDT-1h-futures.csv).",
            file=sys.stderr,
        )
        return 2
    bars = _load_bars(paths)
    _, summary = run_cycle(
        bars, settings=s, min_train_bars=args.min_train_bars, retrain_every_bars=args.retrain_every
    )
    print(summary)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(run_cli(main, prog="python -m ml.telemetry"))
