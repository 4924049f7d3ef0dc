"""The A/B: bootstrap mechanics, scale invariance of Sharpe, a small end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest

from execution.metrics_normalizer import sharpe_ratio
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.evaluate import block_indices, format_table, paired_difference, run_ab, verdict
from research.rl_sizer.signals import synthetic_trades


def test_block_indices_are_contiguous_circular_blocks():
    idx = block_indices(10, n_boot=50, block=3, rng=np.random.default_rng(0))
    assert idx.shape == (10, 50) and idx.min() >= 0 and idx.max() <= 9
    for col in idx.T:
        for start in range(0, 9, 3):  # within a block consecutive indices follow each other mod t
            blk = col[start : start + 3]
            assert np.all(np.diff(blk) % 10 == 1)


def test_identical_series_give_zero_difference():
    r = np.random.default_rng(1).normal(0.001, 0.01, 300)
    d, lo, hi = paired_difference(r[None], r, metric="sharpe", periods_per_year=365, n_boot=200,
                                  rng=np.random.default_rng(0))  # fmt: skip
    assert d == 0.0 and lo == 0.0 and hi == 0.0


def test_constant_multiplier_cannot_change_sharpe():
    # the first fact: a constant size multiplier scales mean and deviation alike
    r = np.random.default_rng(2).normal(0.001, 0.01, 500)
    d, lo, hi = paired_difference(2.0 * r[None], r, metric="sharpe", periods_per_year=365, n_boot=200,
                                  rng=np.random.default_rng(0))  # fmt: skip
    assert (
        d == pytest.approx(0.0, abs=1e-9)
        and lo == pytest.approx(0.0, abs=1e-9)
        and hi == pytest.approx(0.0, abs=1e-9)
    )
    d_lg, _, _ = paired_difference(2.0 * r[None], r, metric="log_growth", periods_per_year=365, n_boot=10,
                                   rng=np.random.default_rng(0))  # fmt: skip
    assert d_lg == pytest.approx(np.log1p(2 * r).sum() - np.log1p(r).sum())


def test_paired_difference_point_and_interval():
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 0.01, 2000)
    better = base + 0.002  # a clear, constant edge
    d, lo, hi = paired_difference(np.stack([better, better]), base, metric="sharpe", periods_per_year=1.0,
                                  n_boot=300, rng=np.random.default_rng(0))  # fmt: skip
    expected = sharpe_ratio(better, periods_per_year=1.0) - sharpe_ratio(base, periods_per_year=1.0)
    assert d == pytest.approx(expected)
    assert 0 < lo < d < hi


def test_verdict_lines():
    rows = [{"sizer": "kelly"},
            {"sizer": "ppo", "d_sharpe": 0.1, "d_sharpe_ci": [-0.2, 0.4]},
            {"sizer": "table", "d_sharpe": 0.5, "d_sharpe_ci": [0.1, 0.9]}]  # fmt: skip
    assert verdict(rows).startswith("TABLE beat static Kelly")
    rows[2]["d_sharpe_ci"] = [-0.1, 0.9]
    assert verdict(rows).startswith("No evidence")
    rows[1]["d_sharpe_ci"] = [-0.4, -0.1]
    assert "PPO do worse" in verdict(rows)


def test_small_ab_on_synthetic_regimes():
    trades = synthetic_trades(3000, rng=np.random.default_rng(0))
    res = run_ab(trades, config=PilotConfig(), seeds=(0, 1), agents=("kelly", "table"), n_boot=200, label="t")
    names = [r["sizer"] for r in res["rows"]]
    assert names == ["kelly", "table", "oracle"]
    kelly, table, oracle = res["rows"]
    assert kelly["mean_multiplier"] == 1.0 and "d_sharpe" not in kelly
    assert table["d_sharpe_ci"][0] <= table["d_sharpe"] <= table["d_sharpe_ci"][1]
    assert oracle["d_sharpe"] > 0  # the ceiling: Kelly on the true probability beats Kelly on the claim
    assert res["test"]["trades"] == 1200 and res["verdict"]
    assert "Verdict:" in format_table(res)


def test_run_ab_rejects_bad_agents():
    trades = synthetic_trades(200, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="must include 'kelly'"):
        run_ab(trades, agents=("table",))


@pytest.mark.slow
def test_full_ab_with_rl_agents_on_synthetic():
    trades = synthetic_trades(4000, rng=np.random.default_rng(0))
    res = run_ab(trades, seeds=(0, 1), train_steps=4000, n_boot=200, label="slow")
    assert [r["sizer"] for r in res["rows"]] == ["ppo", "dqn", "kelly", "table", "oracle"]


def test_evaluate_cli_refuses_in_prod(tmp_path, monkeypatch, capsys):
    from research.rl_sizer.evaluate import main

    monkeypatch.setenv("ENV", "prod")
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    assert main(["--synthetic", "300", "--agents", "kelly"]) == 2
    assert "ENV=prod" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_evaluate_cli_json_and_files(tmp_path, monkeypatch, capsys):
    from infra import jsonio
    from research.rl_sizer.evaluate import main

    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    for var in ("RESEARCH_DIR", "CACHE_DIR", "FIRESTORE_PROJECT", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--synthetic", "1500", "--agents", "kelly,table", "--seeds", "2", "--n-boot", "50", "--json",
                 "--dry-run"]) == 0  # fmt: skip
    out = jsonio.loads(capsys.readouterr().out)
    assert [r["sizer"] for r in out["rows"]] == ["kelly", "table", "oracle"]
    dry = tmp_path / "logs" / "research" / "dry_run"
    assert len(list((dry / "rl_ab").glob("*.json"))) == 1 and (dry / "cache" / "rl_pilot.json").exists()
    assert not (tmp_path / "logs" / "cache").exists()
