"""The sizer sweep: a 2-CPU local Ray run equals the serial run cell by cell; grid and outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from research.rl_sizer import sweep, sweep_sizers
from research.rl_sizer.agents import make_sizer
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.env import SizingEnv
from research.rl_sizer.rollout import run_episode
from research.rl_sizer.signals import synthetic_trades

GRID = {"table_prior_strength": [5.0, 50.0]}


@pytest.fixture(scope="module")
def cells() -> list[sweep.Cell]:
    data = ["synthetic:400:1"]
    return sweep.make_grid(data, [0, 1], ["kelly", "table"], GRID) + sweep.make_grid(
        data, [0, 1], ["kelly", "ppo"], train_steps=256
    )


@pytest.fixture(scope="module")
def serial(cells: list[sweep.Cell]) -> list[dict[str, Any]]:
    return sweep.run_serial(cells, progress=False)


def test_grid_shape_and_validation(cells: list[sweep.Cell]) -> None:
    # 2 params x (kelly + table, 1 seed each: untrained), then kelly + ppo x 2 seeds
    assert len(cells) == 2 * 2 + 3
    assert {c.seed for c in cells if c.sizer == "kelly"} == {0}
    assert [c.seed for c in cells if c.sizer == "ppo"] == [0, 1]
    assert {c.params for c in cells} == {
        (("table_prior_strength", 5.0),),
        (("table_prior_strength", 50.0),),
        (),
    }
    with pytest.raises(ValueError, match=r"Unknown sizer\(s\) \['edge2'\]"):
        sweep.make_grid(["synthetic:400"], [0], ["edge2"])
    with pytest.raises(ValueError, match=r"Grid key\(s\) \['shrinkage_x'\]"):
        sweep.make_grid(["synthetic:400"], [0], ["kelly"], {"shrinkage_x": [1]})
    with pytest.raises(ValueError, match="synthetic:N"):
        sweep.parse_dataset("synthetic:abc")
    with pytest.raises(ValueError, match="neither"):
        sweep.parse_dataset("/no/such/bars.csv")


def test_cell_equals_a_direct_run_of_the_sizer(serial: list[dict[str, Any]], cells: list[sweep.Cell]) -> None:
    """Independent path: build the trades, train and roll out by hand (the A/B protocol)."""
    i = next(k for k, c in enumerate(cells) if c.sizer == "table" and c.dataset == "synthetic:400:1")
    cfg = PilotConfig().replace(**dict(cells[i].params))
    train, test = synthetic_trades(400, rng=np.random.default_rng(1)).split(cfg.train_frac)
    sizer = make_sizer("table", cfg, seed=0)
    sizer.learn(SizingEnv(trades=train, config=cfg), 0)
    ref = run_episode(SizingEnv(trades=test, config=cfg, terminate_on_drawdown=False), sizer, seed=0,
                      options={"length": None})  # fmt: skip
    assert serial[i]["log_growth"] == pytest.approx(float(np.sum(np.log1p(ref.returns))), rel=1e-12)
    assert serial[i]["returns"] == [float(x) for x in ref.returns]
    assert serial[i]["trades"] == len(test)


def test_local_ray_with_two_cpus_equals_serial(serial: list[dict[str, Any]], cells: list[sweep.Cell]) -> None:
    ray = pytest.importorskip("ray")
    try:
        sweep.init_ray(cpus=2)
        parallel = sweep.run_ray(cells, progress=False)
        assert ray.cluster_resources().get("CPU") == 2.0
    finally:
        ray.shutdown()
    assert len(parallel) == len(serial)
    for a, b in zip(parallel, serial):
        for key in ("dataset", "seed", "sizer", "params", "trades", "returns", *sweep.METRICS):
            assert a[key] == b[key], (key, a["sizer"], a["seed"])


def test_outputs_parquet_ab_and_pilot_artifact(serial: list[dict[str, Any]], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("LOGS_DIR", str(tmp_path))
    for var in ("RESEARCH_DIR", "CACHE_DIR", "DATA_DIR", "FIRESTORE_PROJECT", "FIRESTORE_EMULATOR_HOST",
                "GOOGLE_CLOUD_PROJECT"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    out = sweep.save(serial, label="t", n_boot=50)
    frame = pd.read_parquet(out)
    assert len(frame) == len(serial) and "returns" not in frame.columns
    assert frame["log_growth"].tolist() == [r["log_growth"] for r in serial]
    artifact = json.loads((tmp_path / "cache" / "rl_pilot.json").read_text())
    abs_ = artifact["data"]["ab"]
    assert len(abs_) == 3  # 1 data set x 3 hyperparameter sets
    ab = next(a for a in abs_ if a["label"] == "t-synthetic4001-table_prior_strength5.0")
    rows = {r["sizer"]: r for r in ab["rows"]}
    assert set(rows) == {"kelly", "table"}
    rl = {r["sizer"]: r for r in next(a for a in abs_ if a["label"] == "t-synthetic4001")["rows"]}
    assert set(rl) == {"kelly", "ppo"} and rl["ppo"]["seeds"] == 2
    ppo = [r for r in serial if r["sizer"] == "ppo"]
    assert rl["ppo"]["sharpe"] == pytest.approx(np.mean([r["sharpe"] for r in ppo]))
    lo, hi = rows["table"]["d_sharpe_ci"]
    assert lo <= rows["table"]["d_sharpe"] <= hi and "d_sharpe" not in rows["kelly"]
    assert ab["verdict"] and ab["test"]["trades"] == serial[0]["trades"]


def test_registry_accepts_a_new_sizer() -> None:
    spec = sweep_sizers.register_sizer(
        sweep_sizers.SizerSpec(
            "kelly_x", trains=False, factory=lambda cfg, seed: make_sizer("kelly", cfg, seed=seed)
        )
    )
    try:
        out = sweep.run_cell(sweep.Cell("synthetic:300", 0, "kelly_x"))
        ref = sweep.run_cell(sweep.Cell("synthetic:300", 0, "kelly"))
        assert out["log_growth"] == ref["log_growth"] and spec.name in sweep.SIZERS
    finally:
        sweep_sizers.SIZERS.pop("kelly_x")


def test_importing_the_sweep_does_not_import_ray() -> None:
    code = "import sys, research.rl_sizer.sweep; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_search_with_ray_tune_and_optuna_stays_in_the_space(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    try:
        sweep.init_ray(cpus=2)
        found = sweep.search(
            "kelly", ["synthetic:300"], [0], samples=3, train_steps=0, storage=tmp_path / "tune"
        )
    finally:
        ray.shutdown()
    _kind, lo, hi = sweep.SIZERS["kelly"].search_space["kelly_fraction"]
    assert lo <= found["best_params"]["kelly_fraction"] <= hi
    # the best score is the mean held-out log growth of that configuration, re-computable serially
    cell = sweep.Cell(
        "synthetic:300", 0, "kelly", (("kelly_fraction", found["best_params"]["kelly_fraction"]),), 0
    )
    assert found["best_score"] == pytest.approx(sweep.run_cell(cell)["log_growth"], rel=1e-12)
    assert found["confirm_datasets"] == ["synthetic:300:1000"] and np.isfinite(found["confirm_score"])


def test_edge_sizer_cell_equals_its_own_simulation() -> None:
    """The registry's edge entry: fitted on the training trades, its multipliers traded in the env."""
    from research.rl_sizer.edge_sizer import EdgeSizer, simulate_returns

    cell = sweep.make_grid(
        ["synthetic:600:2"], [0], ["edge"], {"edge_prior_strength": [5.0], "kelly_fraction": [0.4]}
    )
    assert len(cell) == 1
    out = sweep.run_cell(cell[0])
    cfg = PilotConfig(kelly_fraction=0.4)
    train, test = synthetic_trades(600, rng=np.random.default_rng(2)).split(cfg.train_frac)
    model = EdgeSizer.from_config(cfg, prior_strength=5.0).fit_trades(train, cfg)
    ref = simulate_returns(test, model.trade_multipliers(test, cfg), cfg)
    np.testing.assert_allclose(out["returns"], ref, rtol=1e-12, atol=0)
    assert out["log_growth"] == pytest.approx(float(np.sum(np.log1p(ref))), rel=1e-12)
    assert sweep._parse_grid(["edge_prior_strength=5,50"]) == {"edge_prior_strength": [5.0, 50.0]}
