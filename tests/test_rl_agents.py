"""Sizers: the baselines compute what they claim on hand-made cases; short PPO/DQN runs work."""

from __future__ import annotations

import numpy as np
import pytest

from research.rl_sizer.agents import KellySizer, SB3Sizer, TableSizer, load_sizer, make_sizer
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.env import SizingEnv, kelly_fraction
from research.rl_sizer.rollout import run_episode
from research.rl_sizer.signals import HOUR_NS, TradeSet, synthetic_trades


def hand_trades() -> TradeSet:
    """Bucket edges fall at the median 0.6; regime 0 cells win 70% / 50%, regime 1 cells 40% / 90%."""
    conf = np.r_[np.full(10, 0.55), np.full(10, 0.65), np.full(10, 0.55), np.full(10, 0.65)]
    regime = np.r_[np.zeros(20, int), np.ones(20, int)]
    wins = np.r_[[1] * 7 + [0] * 3, [1] * 5 + [0] * 5, [1] * 4 + [0] * 6, [1] * 9 + [0] * 1]
    n = len(conf)
    return TradeSet(
        symbol=np.full(n, "X", dtype=object),
        entry_ns=np.arange(n, dtype=np.int64) * HOUR_NS,
        exit_ns=(np.arange(n, dtype=np.int64) + 1) * HOUR_NS,
        confidence=conf, volatility=np.full(n, 0.5), regime=regime,
        outcome_r=np.where(np.asarray(wins) == 1, 1.0, -1.0), barrier=np.full(n, 0.02),
        mae_pct=np.zeros(n), true_prob=np.full(n, np.nan), n_regimes=2,
    )  # fmt: skip


def test_kelly_sizer_always_plays_kelly():
    obs = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    np.testing.assert_array_equal(KellySizer().act(obs), np.zeros((7, 1), np.float32))
    assert KellySizer().act(obs[0]).shape == (1,)


def test_table_sizer_by_hand():
    k = 10.0
    table = TableSizer(PilotConfig(table_conf_buckets=2, table_prior_strength=k)).fit_trades(hand_trades())
    # cell (low bucket, regime 0): 10 trades, 7 wins, claim 0.55 -> q = (7 + 10*0.55) / 20 = 0.625
    expected_q = np.array([[(7 + 5.5) / 20, (4 + 5.5) / 20], [(5 + 6.5) / 20, (9 + 6.5) / 20]])
    claims = np.array([[0.55, 0.55], [0.65, 0.65]])
    np.testing.assert_allclose(table.shift_, expected_q - claims)
    np.testing.assert_array_equal(table.counts_, [[10, 10], [10, 10]])
    m = table.multiplier(np.array([0.55, 0.55, 0.65, 0.65]), np.array([0, 1, 0, 1]))
    # multiplier = f*(calibrated) / f*(claim), f*(p) = 2p - 1, clipped to [0.5, 2]
    raw = np.array([2 * expected_q[0, 0] - 1, 2 * expected_q[0, 1] - 1, 2 * expected_q[1, 0] - 1,
                    2 * expected_q[1, 1] - 1]) / np.array([0.1, 0.1, 0.3, 0.3])  # fmt: skip
    np.testing.assert_allclose(m, np.clip(raw, 0.5, 2.0))
    assert m[0] == pytest.approx(2.0) and m[1] == pytest.approx(0.5)  # 2.5 and -0.5 clipped
    assert m[2] == pytest.approx(0.5) and m[3] == pytest.approx((2 * 0.775 - 1) / 0.3)
    obs = np.array([[0.55, 0.5, 0, 0, 0], [0.65, 0.5, 1, 0, 0]], np.float32)
    np.testing.assert_allclose(2.0 ** table.act(obs).ravel(), [m[0], m[3]], rtol=1e-6)


def test_table_with_a_calibrated_signal_stays_near_kelly():
    trades = synthetic_trades(60_000, rng=np.random.default_rng(1))
    calibrated = trades.take(trades.regime == 0)
    table = TableSizer(PilotConfig()).fit_trades(calibrated)
    m = table.multiplier(calibrated.confidence[:2000], calibrated.regime[:2000])
    assert abs(np.median(m) - 1.0) < 0.15


def test_table_on_synthetic_regimes_learns_the_direction():
    env = SizingEnv(config=PilotConfig())
    table = TableSizer(PilotConfig(), seed=0).learn(env, 40_000)
    m = table.multiplier(np.full(3, 0.6), np.array([0, 1, 2]))
    assert m[1] < m[0] < m[2]  # over-confident regime 1 smaller, under-confident regime 2 larger
    assert m[1] == pytest.approx(0.5, abs=0.1) and m[2] == pytest.approx(1.6, abs=0.25)


def test_save_and_load_round_trip_baselines(tmp_path):
    table = TableSizer(PilotConfig(table_conf_buckets=2)).fit_trades(hand_trades())
    back = load_sizer(table.save(tmp_path / "t"))
    obs = np.array([[0.55, 0.5, 0, 0, 0], [0.65, 0.5, 1, 0, 0]], np.float32)
    np.testing.assert_array_equal(back.act(obs), table.act(obs))
    assert isinstance(load_sizer(KellySizer().save(tmp_path / "k")), KellySizer)
    with pytest.raises(FileNotFoundError, match=r"sizer\.json"):
        load_sizer(tmp_path / "nothing")


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_short_sb3_run_learns_saves_loads(algo, tmp_path):
    cfg = PilotConfig(n_steps=128, batch_size=64, dqn_learning_starts=100, episode_length=64)
    sizer = make_sizer(algo, cfg, seed=0)
    assert isinstance(sizer, SB3Sizer)
    env = SizingEnv(config=cfg)
    assert sizer.learn(env, 256) is sizer
    assert sizer.num_timesteps >= 256
    res = run_episode(SizingEnv(config=cfg), sizer, seed=5)
    assert len(res.returns) >= 1 and np.all((res.multipliers >= 0.5) & (res.multipliers <= 2.0))
    obs = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    a = sizer.act(obs)
    back = load_sizer(sizer.save(tmp_path / algo))
    np.testing.assert_array_equal(back.act(obs), a)
    back.learn(env, 128)  # continues training from the checkpoint
    assert back.num_timesteps >= sizer.num_timesteps + 128


def test_ppo_uses_the_configured_exploration():
    sizer = SB3Sizer("ppo", PilotConfig(n_steps=64, batch_size=32, log_std_init=-1.2)).learn(SizingEnv(), 0)
    log_std = sizer.model.policy.log_std.detach().numpy()
    np.testing.assert_allclose(log_std, [-1.2])


def test_make_sizer_rejects_unknown():
    with pytest.raises(ValueError, match="ppo, dqn, kelly, table"):
        make_sizer("a2c")


def test_kelly_fraction_matches_log_growth_optimum():
    # numerically maximise p log(1 + b f) + (1 - p) log(1 - f)
    f = np.linspace(0, 0.99, 99_001)
    for p, b in [(0.6, 1.0), (0.55, 2.0), (0.7, 0.5)]:
        g = p * np.log1p(b * f) + (1 - p) * np.log1p(-f)
        assert float(kelly_fraction(p, b)) == pytest.approx(f[np.argmax(g)], abs=1e-4)
