"""RiskAutotuner: hysteresis, bounded steps, floors/ceilings, prod-write guard, the log line."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.risk_autotune import (
    LOG_PREFIX,
    AutotuneConfig,
    SymbolInputs,
    desired_level,
    ml_inputs,
    plan,
    propose,
    run_cycle,
)
from execution.thresholds import THRESHOLD_NAMES, SymbolThresholds, load_thresholds, thresholds_path
from infra.artifacts import ArtifactStore
from infra.contracts.artifacts import ArtifactDataError
from infra.safety import ProductionWriteRefused
from infra.settings import load_settings

CFG = AutotuneConfig()
NOW = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)


def inp(score: float, n: int = 100, **kw: object) -> SymbolInputs:
    return SymbolInputs(n_trades=n, dsr=score, **kw)  # type: ignore[arg-type]


def run(scores: list[float], start: SymbolThresholds | None = None) -> list[SymbolThresholds]:
    cur = start
    out = []
    for s in scores:
        cur, _ = propose(cur, inp(s), CFG)
        out.append(cur)
    return out


def test_level_bands_hand_computed() -> None:
    # boundary 0.75 between 0 and 1, h = 0.05: up needs >= 0.80, down needs < 0.70
    assert desired_level(0.79, 0, CFG) == 0
    assert desired_level(0.80, 0, CFG) == 1
    assert desired_level(0.71, 1, CFG) == 1
    assert desired_level(0.69, 1, CFG) == 0
    assert desired_level(0.10, 2, CFG) == -2
    assert desired_level(1.0, -2, CFG) == 2


def test_one_step_targets_hand_computed() -> None:
    new, reasons = propose(None, inp(0.85), CFG)
    assert new.level == 1
    assert new.size_scale == pytest.approx(1.1)
    assert new.max_exposure == pytest.approx(0.11)
    assert new.min_confidence == pytest.approx(0.55 / 1.1)
    assert "level 0 -> 1" in reasons[-1]


@settings(max_examples=200, deadline=None)
@given(
    entry=st.floats(0.80, 0.94),
    wobble=st.lists(st.floats(-0.0499, 0.0499), min_size=1, max_size=40),
)
def test_metric_oscillating_around_boundary_changes_threshold_at_most_once(
    entry: float, wobble: list[float]
) -> None:
    # start at level 0 (adjacent to the 0|1 boundary at 0.75); enter once, then hover within h of 0.75
    path = run([entry] + [0.75 + w for w in wobble])
    for name in THRESHOLD_NAMES:
        values = [1.0 if name == "size_scale" else CFG.defaults[name]] + [p.get(name) for p in path]
        changes = sum(1 for a, b in itertools.pairwise(values) if a != b)
        assert changes <= 1, (name, values)


def test_oscillation_without_hysteresis_would_flip() -> None:
    # the same wobble with h = 0 flips every cycle: the band is what prevents it
    cfg = AutotuneConfig(hysteresis=0.0)
    cur = None
    levels = []
    for s in [0.76, 0.74] * 4:
        cur, _ = propose(cur, inp(s), cfg)
        levels.append(cur.level)
    assert levels == [1, 0] * 4


@settings(max_examples=200, deadline=None)
@given(scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), drift=st.booleans())
def test_steps_bounded_and_within_floors_and_ceilings(scores: list[float], drift: bool) -> None:
    cur: SymbolThresholds | None = None
    prev = CFG.default_thresholds()
    for s in scores:
        cur, _ = propose(cur, inp(s, drift=drift), CFG)
        assert abs(cur.level - prev.level) <= 1
        for name in THRESHOLD_NAMES:
            old, new = prev.get(name), cur.get(name)
            assert CFG.floors[name] <= new <= CFG.ceilings[name]
            assert new <= old * (1 + CFG.max_step) + 1e-9
            assert new >= old / (1 + CFG.max_step) - 1e-9
        prev = cur


def test_floors_and_ceilings_hold_under_sustained_extremes() -> None:
    tight = run([0.0] * 30)[-1]
    assert tight.level == -2
    assert tight.size_scale == pytest.approx(1 / 1.1**2)
    loose_cfg = AutotuneConfig(max_step=0.6)
    cur = None
    for _ in range(30):
        cur, _ = propose(cur, inp(1.0), loose_cfg)
    assert cur is not None
    assert cur.size_scale == loose_cfg.ceilings["size_scale"]  # 1.6**2 = 2.56 clipped to 1.5
    assert cur.max_exposure == loose_cfg.ceilings["max_exposure"]
    assert (
        cur.min_confidence == loose_cfg.floors["min_confidence"]
    )  # 0.55 / 2.56 clipped to 0.5; 0.1 * 2.56 clipped to 0.25


def test_out_of_bounds_current_value_is_pulled_into_bounds() -> None:
    start = SymbolThresholds(min_confidence=0.95, size_scale=3.0, max_exposure=0.5, level=0)
    new, _ = propose(start, inp(0.6), CFG)
    assert new.size_scale == CFG.ceilings["size_scale"]
    assert new.min_confidence == CFG.ceilings["min_confidence"]


def test_insufficient_data_keeps_defaults_and_says_so() -> None:
    new, adjustments = plan({}, {"NEW": inp(0.99, n=5)}, CFG)
    assert new["NEW"] == CFG.default_thresholds()
    assert len(adjustments) == 3
    assert all(a.old == a.new for a in adjustments)
    assert all(
        "insufficient data: 5 trades < min_trades 30; keeping defaults" in a.reason for a in adjustments
    )


def test_drift_and_miscalibration_cap_the_level() -> None:
    drifting, reasons = propose(None, inp(0.99, drift=True), CFG)
    assert drifting.level == -1 and any("drift detected" in r for r in reasons)
    miscal, reasons = propose(None, inp(0.99, ece=0.2), CFG)
    assert miscal.level == 0 and any("ece=0.200" in r for r in reasons)
    deep, _ = propose(None, inp(0.99, max_drawdown=-0.4), CFG)
    assert deep.level == -1


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match=r"'max_step' of AutotuneConfig must be in \(0, 1\]. Got 0"):
        AutotuneConfig(max_step=0)
    with pytest.raises(ValueError, match="boundaries"):
        AutotuneConfig(boundaries=(0.5, 0.4, 0.6, 0.9))
    with pytest.raises(ValueError, match=r"top boundary plus hysteresis must be < 1"):
        AutotuneConfig(boundaries=(0.25, 0.5, 0.75, 0.95), hysteresis=0.05)  # the old, unreachable top


def test_top_level_is_reachable_at_a_dsr_of_095() -> None:
    """Boundary 0.90 + h 0.05: level 2 from a DSR of 0.95 (it needed exactly 1.0 before)."""
    assert desired_level(0.949, 1, CFG) == 1
    assert desired_level(0.95, 1, CFG) == 2
    assert desired_level(0.86, 2, CFG) == 2  # inside the dead band: held
    assert desired_level(0.849, 2, CFG) == 1
    levels = [t.level for t in run([0.97, 0.97, 0.97])]
    assert levels == [1, 2, 2]


def _settings(tmp_path: Path, **env: str) -> object:
    return load_settings({"LOGS_DIR": str(tmp_path), **env})


INPUTS = {"BTC": inp(0.9), "ETH": inp(0.1), "NEW": inp(0.9, n=3)}


def test_log_line_exact_form(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = _settings(tmp_path)
    store = ArtifactStore(tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="execution.risk_autotune"):
        run_cycle(s, store=store, inputs=INPUTS, now=NOW)  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records if r.name == "execution.risk_autotune"]
    assert len(lines) == 1
    assert lines[0].startswith(LOG_PREFIX) and "\n" not in lines[0]
    payload = json.loads(lines[0][len(LOG_PREFIX) :])
    assert isinstance(payload, dict) and sorted(payload) == ["BTC", "ETH", "NEW"]  # keyed by symbol
    btc = payload["BTC"]
    assert btc["status"] == "tuned" and btc["level"] == "0 -> 1"
    assert btc["thresholds"] == {
        "size_scale": "1 -> 1.1",
        "max_exposure": "0.1 -> 0.11",
        "min_confidence": "0.55 -> 0.5",
    }
    assert btc["inputs"]["dsr"] == 0.9 and btc["score"] == {"name": "dsr", "value": 0.9}
    assert set(btc["inputs"]) == {"sharpe", "sharpe_lo", "psr", "dsr", "n_obs", "n_trades", "max_drawdown"}
    assert set(btc["ml"]) == {"mean_confidence", "ece", "drift"} and btc["drift_cap"] is None
    new = payload["NEW"]
    assert new["status"] == "held" and set(new["thresholds"].values()) == {
        "unchanged (0.1)", "unchanged (0.55)", "unchanged (1)"
    }  # fmt: skip
    assert "3 trades < min_trades 30" in new["reason"]
    art = store.read("autotune").data
    assert art["applied"] is True and art["inputs"]["BTC"]["dsr"] == 0.9
    assert art["insufficient_data"] == ["NEW"]


def test_cycle_persists_levels_for_hysteresis(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    store = ArtifactStore(tmp_path / "cache")
    run_cycle(s, store=store, inputs={"BTC": inp(0.85)}, now=NOW)  # type: ignore[arg-type]
    run_cycle(s, store=store, inputs={"BTC": inp(0.72)}, now=NOW)  # type: ignore[arg-type]
    saved, problem = load_thresholds(thresholds_path(s))  # type: ignore[arg-type]
    assert problem is None and saved["BTC"].level == 1


def test_prod_write_guard(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "cache")
    prod = _settings(tmp_path, ENV="prod")
    with pytest.raises(ProductionWriteRefused, match="risk thresholds"):
        run_cycle(prod, store=store, inputs=INPUTS, now=NOW)  # type: ignore[arg-type]
    assert not thresholds_path(prod).exists()  # type: ignore[arg-type]
    assert store.read("autotune").status == "missing"
    data = run_cycle(prod, store=store, inputs=INPUTS, now=NOW, dry_run=True)  # type: ignore[arg-type]
    assert data["applied"] is False and data["dry_run"] is True
    assert not thresholds_path(prod).exists()  # type: ignore[arg-type]
    allowed = _settings(tmp_path, ENV="prod", ALLOW_PROD_WRITE="1")
    run_cycle(allowed, store=store, inputs=INPUTS, now=NOW)  # type: ignore[arg-type]
    assert thresholds_path(allowed).exists()  # type: ignore[arg-type]


def test_corrupt_thresholds_file_starts_from_defaults(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    p = thresholds_path(s)  # type: ignore[arg-type]
    p.parent.mkdir(parents=True)
    p.write_text("{not json")
    data = run_cycle(s, store=ArtifactStore(tmp_path / "cache"), inputs={"BTC": inp(0.6)}, now=NOW)  # type: ignore[arg-type]
    assert "thresholds.json is unreadable" in data["sources"]["thresholds_problem"]
    assert data["thresholds"]["BTC"]["size_scale"] == 1.0


def _trigger(outcome: str) -> dict[str, object]:
    return {"trigger_id": "rt-1", "model": "m1", "reason": "calibration_drift", "priority": "high",
            "triggered_at": "2025-03-06T15:59:31Z", "outcome": outcome}  # fmt: skip


def _triggers(outcome: str) -> dict[str, object]:
    return {"cooldown_s": 86400.0, "history_limit": 500, "triggers": [_trigger(outcome)]}


def test_ml_inputs_read_drift_from_the_drift_services_layout(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    det = {
        "kind": "calibration_drift",
        "statistic": "high_conf_win_rate",
        "value": 0.41,
        "threshold": 0.45,
        "message": "win rate of high-confidence trades fell",
        "n_trades": 1100,
        "trigger_id": "rt-1",
    }
    store.write("drift", {"n_trades": 1490, "checks": [{"n_trades": 1400}], "detections": [det]}, source="t")
    store.write("retrain_triggers", _triggers("pending"), source="t")
    per, sources = ml_inputs(store, ["BTCUSDT", "ETHUSDT"], max_age_s=3600)
    assert per["BTCUSDT"]["drift"] is True
    assert per["ETHUSDT"]["drift"] is True
    assert sources["drift"]["open_detections"][0]["trigger_state"] == "pending"
    # once the retrain was promoted the detection is answered: no drift cap any more
    store.write("retrain_triggers", _triggers("promoted"), source="t")
    per, _ = ml_inputs(store, ["BTCUSDT"], max_age_s=3600)
    assert per["BTCUSDT"]["drift"] is False
    # an artifact without the service's fields cannot be written, and a file holding one is
    # reported as invalid (naming the field), not guessed
    with pytest.raises(ArtifactDataError, match=r"\$\.n_trades is missing"):
        store.write("drift", {"state": "drift"}, source="t")
    env = {"schema_version": 1, "name": "drift", "generated_at": "2025-01-01T00:00:00Z", "env": "dev",
           "source": "t", "data": {"state": "drift"}}  # fmt: skip
    store.path("drift").write_text(json.dumps(env), encoding="utf-8")
    per, sources = ml_inputs(store, ["BTCUSDT"], max_age_s=1e12)
    assert "drift" not in per["BTCUSDT"]
    assert sources["drift"]["status"] == "invalid"
    assert "field $.n_trades is missing" in sources["drift"]["message"]


def test_ml_inputs_read_the_telemetry_contract_not_guessed_paths(tmp_path: Path) -> None:
    """Mean confidence and ECE come from ``calibration`` of the ml_telemetry contract; a NaN ECE
    makes the artifact invalid instead of reaching the policy."""
    from tests.test_artifact_contracts import telemetry_data

    store = ArtifactStore(tmp_path)
    store.write("ml_telemetry", telemetry_data(ece=0.0421, mean_confidence=0.61), source="t")
    per, sources = ml_inputs(store, ["BTCUSDT"], max_age_s=1e12)
    assert per["BTCUSDT"] == {"mean_confidence": 0.61, "ece": 0.0421}
    assert sources["ml_telemetry"] == {"status": "ok", "missing_fields": []}
    bad = telemetry_data(ece=0.0421, mean_confidence=0.61)
    bad["calibration"]["ece"] = float("nan")
    with pytest.raises(ArtifactDataError, match=r"\$\.calibration\.ece is nan"):
        store.write("ml_telemetry", bad, source="t")


# --------------------------------------------------------------------------- issue 23 item 9
def test_the_line_is_one_object_even_when_nothing_moves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = _settings(tmp_path)
    store = ArtifactStore(tmp_path / "cache")
    quiet = {"BTC": inp(0.6, sharpe=0.4, sharpe_lo=0.35, psr=0.7, n_obs=90), "ETH": inp(0.9, n=5)}
    with caplog.at_level(logging.INFO, logger="execution.risk_autotune"):
        run_cycle(s, store=store, inputs=quiet, now=NOW)  # type: ignore[arg-type]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "execution.risk_autotune"]
    payload = json.loads(line.removeprefix(LOG_PREFIX))
    assert payload["BTC"]["level"] == "0 held" and payload["BTC"]["status"] == "tuned"
    assert all(v.startswith("unchanged") for v in payload["BTC"]["thresholds"].values())
    assert payload["BTC"]["inputs"] == {
        "sharpe": 0.4, "sharpe_lo": 0.35, "psr": 0.7, "dsr": 0.6, "n_obs": 90, "n_trades": 100, "max_drawdown": None
    }  # fmt: skip
    assert payload["ETH"]["status"] == "held"


def test_drift_cap_is_named_in_the_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = _settings(tmp_path)
    with caplog.at_level(logging.INFO, logger="execution.risk_autotune"):
        run_cycle(
            s, store=ArtifactStore(tmp_path / "c"), inputs={"BTC": inp(0.99, drift=True, ece=0.2)}, now=NOW
        )  # type: ignore[arg-type]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "execution.risk_autotune"]
    btc = json.loads(line.removeprefix(LOG_PREFIX))["BTC"]
    assert btc["drift_cap"] == "drift detected: level capped at -1" and btc["level"] == "0 -> -1"
    assert btc["ml"] == {"mean_confidence": None, "ece": 0.2, "drift": True}


def test_dry_run_never_replaces_the_applied_record(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    store = ArtifactStore(tmp_path / "cache")
    applied = run_cycle(s, store=store, inputs=INPUTS, now=NOW)  # type: ignore[arg-type]
    before = (tmp_path / "cache" / "autotune.json").read_bytes()
    thresholds_before = thresholds_path(s).read_bytes()  # type: ignore[arg-type]
    dry = run_cycle(s, store=store, inputs={"BTC": inp(0.1)}, now=NOW, dry_run=True)  # type: ignore[arg-type]
    assert (tmp_path / "cache" / "autotune.json").read_bytes() == before
    assert thresholds_path(s).read_bytes() == thresholds_before  # type: ignore[arg-type]
    assert store.read("autotune").data["applied"] is True and applied["applied"] is True
    assert store.read("autotune_dry_run").data["dry_run"] is True and dry["applied"] is False


def test_symbols_gone_from_the_log_are_marked_stale_not_counted(tmp_path: Path) -> None:
    """8 synthetic symbols tuned, then a 2-symbol real log: 2 tuned, 6 stale (kept, not tuned)."""
    from execution.risk_autotune import summary_line

    s = _settings(tmp_path)
    store = ArtifactStore(tmp_path / "cache")
    eight = {f"S{i}USDT": inp(0.1) for i in range(6)} | {"BTCUSDT": inp(0.9), "ETHUSDT": inp(0.9)}
    run_cycle(s, store=store, inputs=eight, now=NOW)  # type: ignore[arg-type]
    data = run_cycle(s, store=store, inputs={"BTCUSDT": inp(0.9), "ETHUSDT": inp(0.6)}, now=NOW)  # type: ignore[arg-type]
    assert data["tuned_symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert data["stale_symbols"] == [f"S{i}USDT" for i in range(6)]
    stale = data["report"]["S0USDT"]
    assert stale["status"] == "stale" and stale["level"] == "-1 held"
    assert all(v.startswith("unchanged") for v in stale["thresholds"].values())
    assert data["thresholds"]["S0USDT"]["level"] == -1  # kept: a tightened symbol is not reset
    line = summary_line(data)
    assert line.startswith("2 symbols tuned") and "6 stale" in line


def test_cli_dry_run_prints_one_line_with_every_symbols_inputs(tmp_path: Path) -> None:
    """``python -m execution.risk_autotune --dry-run`` on the demo's trade log."""
    import subprocess
    import sys

    from tests.conftest import ROOT, run_demo

    logs = tmp_path / "logs"
    run_demo(logs, "--data-only")
    env = {"PATH": "/usr/bin:/bin", "LOGS_DIR": str(logs), "ENV": "dev"}
    proc = subprocess.run(
        [sys.executable, "-m", "execution.risk_autotune", "--dry-run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "autotune" in ln]
    assert len(lines) == 1 and lines[0].startswith("autotune adjustments={")
    payload = json.loads(lines[0].removeprefix(LOG_PREFIX))
    import pandas as pd

    symbols = sorted(pd.read_parquet(logs / "data" / "trades.parquet")["symbol"].unique())
    assert sorted(payload) == symbols
    for sym in symbols:
        i = payload[sym]["inputs"]
        assert all(isinstance(i[k], (int, float)) for k in ("sharpe", "sharpe_lo", "psr", "dsr", "n_obs")), i
    assert "dry run, nothing applied" in proc.stderr
    assert not (logs / "cache" / "autotune.json").exists()  # the applied record is untouched
