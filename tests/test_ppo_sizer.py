"""PPO sizer: hand-computed pieces, learning on a contextual bandit, checkpoints and atomicity."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from research.rl_sizer.checkpoints import CheckpointError, latest_name, load_checkpoint
from research.rl_sizer.ppo_sizer import (
    Batch,
    PPOConfig,
    PPOSizer,
    clipped_surrogate,
    normalize_advantages,
)

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


def fixed_beta_sizer(alpha: float, beta: float) -> PPOSizer:
    """A sizer whose policy is Beta(alpha, beta) in every state (last layer: zero weights, set bias)."""
    sizer = PPOSizer(2, seed=0)
    last = sizer.actor[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([_inv_softplus(alpha - 1.0), _inv_softplus(beta - 1.0)]))
    return sizer


# -- hand-computed pieces ----------------------------------------------------------------------
def test_beta_log_prob_by_hand_and_against_scipy() -> None:
    sizer = fixed_beta_sizer(2.0, 3.0)
    state = np.zeros(2)
    # Beta(2, 3) density is 12 u (1 - u)^2; at m = 1.25, u = 0.5: 1.5; divided by the span 1.5 -> 1
    assert sizer.log_prob(state, 1.25)[0] == pytest.approx(0.0, abs=1e-6)
    for m in (0.5 + 1e-3, 0.8, 1.1, 1.7, 2.0 - 1e-3):
        u = (m - 0.5) / 1.5
        expected = stats.beta.logpdf(u, 2.0, 3.0) - math.log(1.5)
        assert sizer.log_prob(state, m)[0] == pytest.approx(expected, abs=1e-4)
    # the serving multiplier is the mean: 0.5 + 1.5 * 2 / 5
    assert sizer.get_multiplier(state) == pytest.approx(1.1, abs=1e-6)


def test_density_integrates_to_one_over_the_multiplier_range() -> None:
    sizer = fixed_beta_sizer(1.7, 4.2)
    grid = np.linspace(0.5, 2.0, 20001)
    dens = np.exp(sizer.log_prob(np.zeros((grid.size, 2)), grid))
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=2e-3)


def test_clipped_surrogate_on_a_tiny_batch_by_hand() -> None:
    # ratios 1.5, 0.5, 1.1 with advantages 1, -1, 2 and eps 0.2:
    # min(1.5, 1.2) = 1.2; min(-0.5, -0.8) = -0.8; min(2.2, 2.2) = 2.2 -> mean 2.6 / 3, loss negated
    new = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    old = torch.zeros(3)
    adv = torch.tensor([1.0, -1.0, 2.0])
    assert float(clipped_surrogate(new, old, adv, 0.2)) == pytest.approx(-2.6 / 3, abs=1e-6)
    # at ratio 1 the loss is minus the mean advantage
    assert float(clipped_surrogate(old, old, adv, 0.2)) == pytest.approx(-2.0 / 3, abs=1e-7)


def test_advantage_normalisation_batch_of_one_constant_and_pair() -> None:
    one = normalize_advantages(torch.tensor([3.5]))
    assert one.tolist() == [3.5]
    const = normalize_advantages(torch.tensor([2.0, 2.0, 2.0]))
    assert torch.all(torch.isfinite(const)) and torch.all(const == 0)
    pair = normalize_advantages(torch.tensor([1.0, 3.0]))
    assert pair.tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)


def test_update_on_a_batch_of_one_is_finite_and_moves_towards_the_reward() -> None:
    sizer = PPOSizer(2, seed=1, config=PPOConfig(epochs=5))
    s = np.array([[0.3, -0.2]])
    before_lp = sizer.log_prob(s, 1.9)[0]
    res = sizer.update(Batch(s, np.array([1.9]), np.array([before_lp]), np.array([5.0])))
    assert all(math.isfinite(v) for v in (res.policy_loss, res.value_loss, res.entropy))
    assert sizer.log_prob(s, 1.9)[0] > before_lp  # a positive advantage raises its probability


def test_stored_log_prob_matches_recomputed_so_first_ratio_is_one() -> None:
    sizer = PPOSizer(3, seed=2)
    states = np.random.default_rng(0).normal(size=(20, 3))
    m, lp = sizer.sample_many(states)
    assert np.all((m >= 0.5) & (m <= 2.0))
    np.testing.assert_allclose(sizer.log_prob(states, m), lp, atol=1e-6)
    m1, lp1 = sizer.sample(states[0])
    assert sizer.log_prob(states[0], m1)[0] == pytest.approx(lp1, abs=1e-6)


def test_critic_is_trained_on_its_current_predictions() -> None:
    sizer = PPOSizer(1, seed=3, config=PPOConfig(epochs=20))
    states = np.linspace(-1, 1, 50).reshape(-1, 1)
    m, lp = sizer.sample_many(states)
    rewards = np.full(50, 2.0)
    losses = [sizer.update(Batch(states, m, lp, rewards)).value_loss for _ in range(5)]
    assert losses[-1] < 0.2 * losses[0]
    assert sizer.value(states).mean() == pytest.approx(2.0, abs=0.3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
    st.floats(0.5, 2.0),
)
def test_multiplier_in_range_and_log_prob_finite_anywhere(state: list[float], action: float) -> None:
    sizer = PPOSizer(3, seed=0)
    s = np.array(state)
    assert 0.5 <= sizer.get_multiplier(s) <= 2.0
    assert np.isfinite(sizer.log_prob(s, action)[0])


def test_bad_state_and_batch_are_rejected_with_the_field_named() -> None:
    sizer = PPOSizer(3, seed=0)
    with pytest.raises(ValueError, match="state"):
        sizer.get_multiplier(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="rewards"):
        Batch(np.zeros((2, 3)), np.ones(2), np.zeros(2), np.ones(1))
    with pytest.raises(ValueError, match="clip_eps"):
        PPOConfig(clip_eps=0.0)


# -- learning ----------------------------------------------------------------------------------
def bandit_optimum(states: np.ndarray) -> np.ndarray:
    """The right multiplier depends on the state: 1.25 + 0.75 * s0 spans [0.5, 2.0]."""
    return 1.25 + 0.75 * states[:, 0]


def bandit_reward(states: np.ndarray, mult: np.ndarray) -> np.ndarray:
    return -((mult - bandit_optimum(states)) ** 2)


def test_policy_learns_state_dependent_multiplier_and_beats_best_constant() -> None:
    rng = np.random.default_rng(0)
    sizer = PPOSizer(2, seed=0)
    for _ in range(15):  # 15 updates of 50 trades
        s = rng.uniform(-1, 1, (50, 2))
        m, lp = sizer.sample_many(s)
        sizer.update(Batch(s, m, lp, bandit_reward(s, m)))
    test_states = rng.uniform(-1, 1, (1000, 2))
    learned = np.array([sizer.get_multiplier(x) for x in test_states])
    policy_r = bandit_reward(test_states, learned).mean()
    # the best constant multiplier is 1.25, expected reward -E[(0.75 s)^2] = -0.1875
    const_r = bandit_reward(test_states, np.full(1000, 1.25)).mean()
    assert const_r == pytest.approx(-0.1875, abs=0.02)
    assert policy_r > 0.25 * const_r  # loses at most a quarter of what the best constant loses
    assert np.corrcoef(learned, bandit_optimum(test_states))[0, 1] > 0.9


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path: Path) -> None:
    sizer = PPOSizer(3, seed=4)
    s = np.random.default_rng(1).normal(size=(50, 3))
    m, lp = sizer.sample_many(s)
    sizer.update(Batch(s, m, lp, np.ones(50)))
    sizer.save(tmp_path, step=50, meta={"trades_seen": 50, "reward_stats": {"mean": 1.0}})
    loaded, meta = PPOSizer.load(tmp_path)
    assert meta["step"] == 50 and meta["trades_seen"] == 50 and len(meta["sha256"]) == 64
    for x in s[:5]:
        assert loaded.get_multiplier(x) == sizer.get_multiplier(x)
    np.testing.assert_allclose(loaded.norm.mean, sizer.norm.mean)
    assert loaded.stats.updates == 1


def test_corrupt_or_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    sizer = PPOSizer(3, seed=4)
    path = sizer.save(tmp_path, step=100)
    weights = path / "policy.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path)
    (path / "meta.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(tmp_path)


_SAVER = """
import sys, torch
torch.set_num_threads(1)
from pathlib import Path
from research.rl_sizer.checkpoints import CheckpointError
from research.rl_sizer.ppo_sizer import PPOSizer
d = Path(sys.argv[1])
try:  # resume like the trainer: continue after the promoted step
    sizer, meta = PPOSizer.load(d)
    step = meta["step"]
except CheckpointError:
    sizer, step = PPOSizer(3, seed=0), 0
print("ready", flush=True)
while True:
    step += 1
    sizer.save(d, step=step, meta={"trades_seen": step})
"""


def test_crash_between_weights_and_metadata_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import research.rl_sizer.checkpoints as ck

    sizer = PPOSizer(3, seed=5)
    sizer.save(tmp_path, step=100)
    expected = sizer.get_multiplier(np.ones(3))

    def crash(path: Path, text: str) -> None:
        raise KeyboardInterrupt("killed while writing " + path.name)

    monkeypatch.setattr(ck, "atomic_write_text", crash)
    s = np.random.default_rng(0).normal(size=(50, 3))
    m, lp = sizer.sample_many(s)
    sizer.update(Batch(s, m, lp, np.full(50, 3.0)))
    with pytest.raises(KeyboardInterrupt):
        sizer.save(tmp_path, step=200)
    assert (tmp_path / "step_000200" / "policy.pt").exists()  # the new weights landed ...
    loaded, meta = PPOSizer.load(tmp_path)  # ... but latest still names the complete previous pair
    assert meta["step"] == 100
    assert loaded.get_multiplier(np.ones(3)) == expected
    monkeypatch.undo()
    with pytest.raises(ValueError, match="latest"):
        loaded.save(tmp_path, step=100)


@pytest.mark.slow
def test_sigkill_during_saves_always_leaves_a_loadable_latest(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = np.random.default_rng(0)
    last_step = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(ckpt)], env=env, stdout=subprocess.PIPE, cwd=ROOT
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(0.2 + float(rng.uniform(0, 0.3)))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        name = latest_name(ckpt)
        assert name is not None
        loaded, meta = PPOSizer.load(ckpt)  # verifies the hash
        assert 0.5 <= loaded.get_multiplier(np.zeros(3)) <= 2.0
        assert meta["step"] > last_step  # every run made progress and resumed from the last one
        last_step = meta["step"]


def test_untrained_policy_is_kelly_in_every_state() -> None:
    sizer = PPOSizer(3, seed=3)
    for state in ([0.55, 0.001, 0.0], [0.9, 0.05, 2.0], [0.5, 10.0, 1.0]):
        assert sizer.get_multiplier(np.array(state)) == pytest.approx(1.0, abs=1e-6)
    m, _ = sizer.sample_many(np.tile([0.6, 0.01, 1.0], (4000, 1)))
    assert m.mean() == pytest.approx(1.0, abs=0.02)  # Beta(2, 4) on [0.5, 2]: sd 1.5 * 0.178 = 0.27
    assert m.std() == pytest.approx(1.5 * np.sqrt(8 / (36 * 7)), abs=0.02)


def test_normaliser_variance_floor() -> None:
    from research.rl_sizer.ppo_sizer import RunningNorm

    norm = RunningNorm(2, var_floor=1e-2)
    norm.update(np.array([[0.6, 1.0], [0.6, 3.0]]))  # feature 0 constant in the first batch
    out = norm(np.array([0.65, 2.0]))
    # without the floor (0.65 - 0.6) / sqrt(1e-8) hits the +-10 clip; with it: 0.05 / 0.1 = 0.5
    assert out[0] == pytest.approx(0.5) and out[1] == pytest.approx(0.0)
    assert norm(np.array([0.6, 4.0]))[1] == pytest.approx(2.0)  # var 1 > floor: plain z-score


def test_kl_early_stop_cuts_the_epochs() -> None:
    from research.rl_sizer.ppo_sizer import Batch, PPOConfig

    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 3))
    steps = {}
    for target in (None, 1e-4):
        sizer = PPOSizer(3, seed=0, config=PPOConfig(epochs=10, lr=3e-2, target_kl=target))
        m, lp = sizer.sample_many(s)
        res = sizer.update(Batch(s, m, lp, (m - 1.0) * 5.0))
        steps[target] = res.grad_steps
    assert steps[None] == 10 and 1 <= steps[1e-4] < 10


def test_checkpoints_are_pruned_to_the_newest_keep_and_never_the_latest(tmp_path: Path) -> None:
    from research.rl_sizer.checkpoints import KEEP, latest_name, load_checkpoint, write_checkpoint

    for step in range(1, KEEP + 6):
        write_checkpoint(tmp_path, step=step * 100, payload=f"w{step}".encode(), meta={})
    kept = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert kept == [f"step_{s * 100:06d}" for s in range(6, KEEP + 6)]
    assert latest_name(tmp_path) == f"step_{(KEEP + 5) * 100:06d}"
    # candidates written without promotion push older ones out, but the promoted one stays loadable
    for step in range(KEEP + 6, 2 * KEEP + 10):
        write_checkpoint(tmp_path, step=step * 100, payload=b"c", meta={}, promote=False)
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(names) == KEEP + 1 and latest_name(tmp_path) in names
    assert load_checkpoint(tmp_path).payload == f"w{KEEP + 5}".encode()
    unrelated = tmp_path / "notes"
    unrelated.mkdir()
    write_checkpoint(tmp_path, step=10**6, payload=b"x", meta={}, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["notes", "step_1000000"]
