"""The runner: refuses in prod, logs episodes, resumes, dry-run stays inside logs/research/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infra import jsonio
from infra.settings import load_settings
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.pilot_artifact import read_jsonl
from research.rl_sizer.runner import main, run_pilot

ROOT = Path(__file__).resolve().parent.parent
LOG_KEYS = {
    "episode",
    "reward",
    "sharpe",
    "log_growth",
    "max_drawdown",
    "mean_multiplier",
    "seed",
    "window",
    "data",
}


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    env = {"ENV": "research", "LOGS_DIR": str(tmp_path / "logs")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in (
        "RESEARCH_DIR",
        "CACHE_DIR",
        "DATA_DIR",
        "FIRESTORE_PROJECT",
        "GOOGLE_CLOUD_PROJECT",
        "FIRESTORE_EMULATOR_HOST",
    ):
        monkeypatch.delenv(k, raising=False)
    return tmp_path / "logs"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_runner_refuses_in_prod_subprocess(tmp_path):
    env = {**os.environ, "ENV": "prod", "LOGS_DIR": str(tmp_path / "logs")}
    proc = subprocess.run(
        [sys.executable, "-m", "research.rl_sizer.runner", "--episodes", "1", "--agent", "kelly"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 3  # a refusal (run_cli), distinct from bad input (2)
    assert "ENV=prod" in proc.stderr and "ENV=dev or ENV=research" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "logs").exists()  # nothing written


def test_run_pilot_refuses_in_prod_in_process(tmp_path):
    from infra.safety import EnvironmentRefused

    with pytest.raises(EnvironmentRefused, match="ENV=prod"):
        run_pilot(load_settings({"ENV": "prod", "LOGS_DIR": str(tmp_path)}), agent="kelly")


@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_short_rl_run_writes_logs_checkpoint_and_artifact(agent, dirs):
    code = main(["--episodes", "2", "--agent", agent, "--train-steps", "128", "--n-steps", "64", "--batch-size", "32",
                 "--dqn-learning-starts", "50", "--episode-length", "48"])  # fmt: skip
    assert code == 0
    runs = list((dirs / "research" / "rl_runs").iterdir())
    assert len(runs) == 1
    lines = read_jsonl(runs[0] / "episodes.jsonl")
    assert [r["episode"] for r in lines] == [0, 1]
    assert set(lines[0]) >= LOG_KEYS
    assert lines[1]["train_steps_total"] >= 256 and lines[0]["seed"] == 0 and lines[1]["seed"] == 1
    assert all(0.5 <= r["mean_multiplier"] <= 2.0 and np.isfinite(r["sharpe"]) for r in lines)
    assert (runs[0] / "checkpoint" / "model.zip").exists()
    art = jsonio.loads((dirs / "cache" / "rl_pilot.json").read_text())
    assert art["name"] == "rl_pilot" and art["data"]["runs"][0]["run_id"] == runs[0].name
    assert len(art["data"]["runs"][0]["episodes"]) == 2
    # --episodes 1 resumes the same run from its checkpoint
    assert main(["--episodes", "1", "--agent", agent, "--train-steps", "64"]) == 0
    lines = read_jsonl(runs[0] / "episodes.jsonl")
    assert [r["episode"] for r in lines] == [0, 1, 2] and len(
        list((dirs / "research" / "rl_runs").iterdir())
    ) == 1
    assert lines[2]["train_steps_total"] >= lines[1]["train_steps_total"] + 64


def test_dry_run_writes_only_under_research_dir(dirs):
    before = _files(dirs)
    assert main(["--episodes", "2", "--agent", "table", "--dry-run"]) == 0
    new = _files(dirs) - before
    assert new and all((dirs / "research") in p.parents for p in new)
    (run,) = list((dirs / "research" / "rl_runs").iterdir())
    assert jsonio.loads((run / "run.json").read_text())["dry_run"] is True
    assert [r["dry_run"] for r in read_jsonl(run / "episodes.jsonl")] == [True, True]
    assert (dirs / "research" / "dry_run" / "cache" / "rl_pilot.json").exists()
    assert not (dirs / "cache").exists() and not (dirs / "state").exists()


def test_dry_run_never_resumes_or_touches_a_live_run(dirs):
    """A dry run resumes only dry runs: a live run's checkpoint and episodes stay byte-identical."""
    assert main(["--episodes", "1", "--agent", "table"]) == 0
    (live,) = list((dirs / "research" / "rl_runs").iterdir())
    snapshot = {p: p.read_bytes() for p in live.rglob("*") if p.is_file()}
    live_artifact = (dirs / "cache" / "rl_pilot.json").read_bytes()
    for _ in range(2):
        assert main(["--episodes", "1", "--agent", "table", "--dry-run"]) == 0
    assert {p: p.read_bytes() for p in live.rglob("*") if p.is_file()} == snapshot
    assert (dirs / "cache" / "rl_pilot.json").read_bytes() == live_artifact
    dry = [d for d in (dirs / "research" / "rl_runs").iterdir() if d != live]
    assert len(dry) == 1  # the second dry run resumed the first
    assert [r["episode"] for r in read_jsonl(dry[0] / "episodes.jsonl")] == [0, 1]


def test_runner_on_real_bars_evaluates_the_held_out_period(dirs):
    from infra.loaders import load_bars

    bars = load_bars(ROOT / "data/sample/binance_usdm/BTC_USDT_USDT-1h-futures.csv")
    s = run_pilot(load_settings(), agent="kelly", episodes=1, bars=bars, data_label="btc", progress=False,
                  config=PilotConfig())  # fmt: skip
    rec = s.episodes[0]
    assert rec["window"]["start"] >= "2025-03-20"  # the test period is the later 40% of the trades
    assert rec["mean_multiplier"] == 1.0 and rec["data"] == "btc"


@pytest.mark.slow
def test_demo_step_writes_runs_ab_and_artifact(dirs, tmp_path):
    from infra.artifacts import ArtifactStore
    from scripts.demo_steps.rl_pilot import demo_step
    from scripts.pipeline import DemoContext
    from tests.ml_fixtures import demo_bars

    data = tmp_path / "data"
    data.mkdir()
    demo_bars(n_symbols=3, n_bars=900).to_parquet(data / "bars.parquet")
    s = load_settings()
    ctx = DemoContext(settings=s, store=ArtifactStore(s.cache_dir), data_dir=data, seed=7, scale="default",
                      real_bars=False)  # fmt: skip
    msg = demo_step(ctx)
    assert "demo trades" in msg
    art = jsonio.loads((dirs / "cache" / "rl_pilot.json").read_text())["data"]
    assert {r["agent"] for r in art["runs"]} == {"kelly", "table", "ppo"}
    assert art["ab"][0]["label"] == "demo-quick"


def test_demo_runs_are_labelled_by_their_real_source(tmp_path):
    """Synthetic and real-bars demo runs both read demo:bars.parquet before (issue 23 item 7)."""
    import types

    import pandas as pd

    from scripts.demo_steps.rl_pilot import demo_data_label

    bars = tmp_path / "bars.parquet"
    pd.DataFrame({"symbol": ["ETHUSDT", "BTCUSDT", "ETHUSDT"]}).to_parquet(bars)
    real = types.SimpleNamespace(real_bars=True, bars_path=bars)
    synth = types.SimpleNamespace(real_bars=False, bars_path=bars)
    assert demo_data_label(real) == "demo real bars BTCUSDT,ETHUSDT"  # type: ignore[arg-type]
    assert demo_data_label(synth) == "demo synthetic bars"  # type: ignore[arg-type]
