"""The A/B: bootstrap mechanics, scale invariance of Sharpe, a small end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest

from execution.metrics_normalizer import sharpe_ratio
from research.rl_sizer.ab_stats import block_indices, paired_difference
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.edge_sizer import cap_share, simulate
from research.rl_sizer.evaluate import format_table, run_ab, verdict
from research.rl_sizer.growth_ab import run_synthetic_ab, run_trades_ab
from research.rl_sizer.growth_report import format_growth_table, growth_verdict, share_known
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


def test_pure_scaling_leaves_sharpe_unchanged_but_the_position_cap_does_not():
    # scaling a return series alike leaves Sharpe unchanged ...
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
    # ... but a constant multiplier through the env does not scale the returns alike: trades at the
    # position cap stay at the cap, so their share of the mix changes and so does Sharpe
    cfg = PilotConfig()
    tr = synthetic_trades(2000, rng=np.random.default_rng(5))
    r1 = simulate(tr, np.ones(len(tr)), cfg)[0]
    r2 = simulate(tr, np.full(len(tr), 0.5), cfg)[0]
    assert cap_share(tr, np.ones(len(tr)), cfg) > 0.2
    assert not np.allclose(r2, 0.5 * r1)
    s1 = sharpe_ratio(r1, periods_per_year=tr.periods_per_year)
    s2 = sharpe_ratio(r2, periods_per_year=tr.periods_per_year)
    assert abs(s2 - s1) > 0.1


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
    from infra.cli import run_cli
    from research.rl_sizer.evaluate import main

    monkeypatch.setenv("ENV", "prod")
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    assert run_cli(lambda: main(["--train-trades", "300", "--agents", "kelly"]), prog="evaluate") == 3
    assert "evaluate: refused: " in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_evaluate_cli_json_and_files(tmp_path, monkeypatch, capsys):
    from infra import jsonio
    from research.rl_sizer.evaluate import main

    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("LOGS_DIR", str(tmp_path / "logs"))
    for var in ("RESEARCH_DIR", "CACHE_DIR", "FIRESTORE_PROJECT", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--train-trades", "300", "--test-trades", "300", "--agents", "kelly,edge", "--seeds", "2",
                 "--optimum-trades", "2000", "--json", "--dry-run"]) == 0  # fmt: skip
    out = jsonio.loads(capsys.readouterr().out)
    assert [r["sizer"] for r in out["rows"]] == ["kelly", "edge", "optimum"]
    assert out["source"] == "synthetic" and out["verdict"].startswith("Δ expected log growth")
    dry = tmp_path / "logs" / "research" / "dry_run"
    assert len(list((dry / "rl_ab").glob("*.json"))) == 1 and (dry / "cache" / "rl_pilot.json").exists()
    assert not (tmp_path / "logs" / "cache").exists()


def test_growth_ab_on_a_small_fixture_prints_every_row_and_cannot_tell():
    res = run_synthetic_ab(seeds=(0, 1, 2), n_train=300, n_test=400, optimum_trades=4000)
    names = [r["sizer"] for r in res["rows"]]
    assert names == ["kelly", "const", "edge", "table", "optimum"]
    text = format_growth_table(res)
    for name in names:
        assert any(line.startswith(name) for line in text.splitlines()), name
    for needle in ("ElogG/1k", "cap%", "MDE", "Realized-vs-claimed", "regime 0: slope", "Minimum detectable"):
        assert needle in text
    # 3 seeds of 400 test trades cannot resolve 10% of the optimum's gain
    assert "cannot tell" in res["verdict"] and "% of the optimum" not in res["verdict"]
    opt = next(r for r in res["rows"] if r["sizer"] == "optimum")
    lo, hi = opt["d_exp_log_growth_1k_ci"]
    assert lo < opt["d_exp_log_growth_1k"] < hi and opt["mde_exp_log_growth_1k"] > 0
    # the MDE is 2.80 standard errors: (hi - lo) / 2 = t_{0.975, 2} SE
    from scipy import stats

    se = (hi - lo) / 2 / stats.t.ppf(0.975, 2)
    assert opt["mde_exp_log_growth_1k"] == pytest.approx(2.8016 * se, rel=1e-3)


def test_trades_ab_has_an_upper_bound_row_and_says_no_edge():
    rng = np.random.default_rng(9)
    tr = synthetic_trades(1500, rng=rng)
    # a real-data stand-in: outcomes against the claim (a losing signal), truth unknown
    object.__setattr__(tr, "outcome_r", np.where(rng.random(len(tr)) < 0.42, 1.0, -1.0))
    object.__setattr__(tr, "true_prob", np.full(len(tr), np.nan))
    res = run_trades_ab(tr, n_boot=100, label="fixture")
    names = [r["sizer"] for r in res["rows"]]
    assert names == ["kelly", "const", "edge", "table", "upper bound"]
    assert res["verdict"].startswith("Δ log growth") and "No edge" in res["verdict"]
    assert res["net_edge"]["mean"] < 0
    text = format_growth_table(res)
    assert "upper bound" in text and "ElogG" not in text
    ub = next(r for r in res["rows"] if r["sizer"] == "upper bound")
    kelly = next(r for r in res["rows"] if r["sizer"] == "kelly")
    assert ub["log_growth_1k"] >= kelly["log_growth_1k"]  # hindsight over a grid that includes 1.0


def test_growth_verdict_states_a_share_only_when_it_can():
    rows = [{"sizer": "kelly"},
            {"sizer": "edge", "d_g": 0.24, "d_g_ci": [0.23, 0.25]},
            {"sizer": "table", "d_g": 0.05, "d_g_ci": [-0.05, 0.15]},
            {"sizer": "optimum", "d_g": 0.25, "d_g_ci": [0.22, 0.28]}]  # fmt: skip
    v = growth_verdict(rows, kind="synthetic", primary="g")
    assert "EDGE +0.240 [+0.230, +0.250]: beats Kelly; 96% of the optimum's gain" in v
    assert "TABLE +0.050 [-0.050, +0.150]: no difference from Kelly shown; cannot tell" in v
    assert share_known([0.2, 0.25], 0.25, 0.2) and not share_known([0.2, 0.26], 0.25, 0.2)
