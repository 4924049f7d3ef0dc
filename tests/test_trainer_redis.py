"""End to end through a real redis-server: replayed trades -> bridge -> trainer process -> checkpoint -> governor."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from execution.feedback_bridge import FeedbackBridge
from execution.governor import Governor
from infra.bus import TOPIC_FEEDBACK, connect_bus
from research.rl_sizer.checkpoints import latest_name
from research.rl_sizer.serving import load_policy
from sim.replay import replay, trade_events
from tests.feedback_fixtures import make_trades
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parent.parent


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return str(resp.read().decode())


def _value(text: str, name: str) -> float | None:
    m = re.search(rf"^{name} ([0-9.eE+-]+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


def test_trades_flow_to_a_checkpoint_the_governor_loads(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    bus = connect_bus(redis_server.url, environ={})
    trades = make_trades(230, seed=3)
    replay(bus, trade_events(trades, updates_per_trade=2, duplicate_rate=0.05, shuffle_window=16, seed=3))
    bridge = FeedbackBridge(bus, consumer="e2e-bridge", block_ms=0)
    assert bridge.run(until_idle=True).closed == 230
    assert bus.length(TOPIC_FEEDBACK) == 230

    ckpt = tmp_path / "ckpt"
    port = free_port()
    env = {**os.environ, "LOGS_DIR": str(tmp_path / "logs"), "ENV": "dev", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "research.rl_sizer.trainer", "--bus", redis_server.url, "--consumer", "e2e",
           "--checkpoint-dir", str(ckpt), "--metrics-port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline:
            try:
                text = _scrape(port)
            except OSError:
                text = ""
            if _value(text, "quantum_rl_rewards_total") == 230.0 and latest_name(ckpt) == "step_000200":
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.3)
        assert _value(text, "quantum_rl_rewards_total") == 230.0
        # replayed executions carry no behaviour_logp (deterministic multipliers), so none of them is
        # a PPO sample: no update, and the trainer says so once (issue 20: no sample without it)
        assert _value(text, "quantum_rl_training_steps_total") == 0.0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "trainer stopped: 230 trades learned" in err
    assert "carries no behaviour_logp: not a PPO sample" in err
    assert (tmp_path / "logs" / "research" / "tensorboard" / "ppo_sizer").is_dir()
    # trades after the last checkpoint stay pending for the next run
    assert bus.pending(TOPIC_FEEDBACK, "ppo-trainer") == 30

    policy, info = load_policy(ckpt)
    assert policy is not None, info
    assert "step 200" in info
    governor = Governor(policy=policy, policy_info=info)
    state = np.array([0.7, 0.01, 1.0])
    d = governor.size(confidence=0.7, state=state)
    assert d.source == "ppo"
    assert d.multiplier == pytest.approx(policy.get_multiplier(state))
    assert governor.status()["mode"] == "ppo"

    # a restart resumes at 200 and learns exactly the 30 pending trades (same consumer name)
    from research.rl_sizer.trainer import OnlineTrainer

    again = OnlineTrainer.resume(ckpt)
    assert again.trades_seen == 200
    assert again.run(bus, consumer="e2e", block_ms=0, until_idle=True) == 30
    assert again.trades_seen == 230
    assert (
        again.history.order_ids == sorted(again.history.order_ids) or len(set(again.history.order_ids)) == 30
    )
    bus.close()


def test_corrupt_checkpoint_leaves_the_governor_on_static_kelly(tmp_path: Path) -> None:
    from research.rl_sizer.ppo_sizer import PPOSizer

    PPOSizer(3, seed=0).save(tmp_path, step=100)
    weights = tmp_path / "step_000100" / "policy.pt"
    weights.write_bytes(b"x" + weights.read_bytes()[1:])
    policy, info = load_policy(tmp_path)
    assert policy is None and "SHA-256" in info
    governor = Governor(policy=policy, policy_info=info)
    assert governor.size(confidence=0.6).source == "static"
    assert "SHA-256" in str(governor.status()["last_fallback_reason"])
