"""The doctor: each check in its OK/WARN/FAIL states, exit codes, corrupt artifacts, dead stores."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from infra.artifacts import ArtifactStore
from infra.settings import PROJECT_ROOT, load_settings
from infra.timeutil import utc_iso
from scripts.doctor import doctor_report, format_table
from scripts.doctor_checks import DoctorContext
from scripts.doctor_checks.artifacts import check_artifacts
from scripts.doctor_checks.data import check_data_freshness, check_route_health
from scripts.doctor_checks.jobs import check_autotune, check_drift, check_feedback, check_ml_telemetry
from scripts.doctor_checks.system import check_event_bus, check_firestore, check_settings
from tests.test_artifact_contracts import (
    autotune_data,
    demo_data_data,
    detection,
    drift_data,
    feedback_data,
    telemetry_data,
    triggers_data,
)

NOW = dt.datetime(2025, 4, 1, 12, tzinfo=dt.UTC)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def write_data(data: Path, *, newest: dt.datetime, bad_route_fail: int = 0) -> None:
    data.mkdir(parents=True, exist_ok=True)
    ts = [pd.Timestamp(newest) - pd.Timedelta(hours=i) for i in range(40)]
    pd.DataFrame(
        {"symbol": "BTC", "ts": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    ).to_parquet(data / "bars.parquet")
    pd.DataFrame(
        {"symbol": "BTC", "route": "a", "closed_at": ts, "pnl_usd": 1.0, "size_usd": 100.0}
    ).to_parquet(data / "trades.parquet")
    status = ["FILLED"] * 40
    for i in range(bad_route_fail):
        status[i] = "ERROR"
    pd.DataFrame(
        {"order_id": [str(i) for i in range(40)], "ts": ts, "symbol": "BTC", "route": "a", "status": status,
         "slippage_bps": 1.0, "expected_slippage_bps": 1.0, "latency_ms": 10.0}
    ).to_parquet(data / "orders.parquet")  # fmt: skip


def make_ctx(tmp_path: Path, **env: str) -> DoctorContext:
    environ = {"LOGS_DIR": str(tmp_path), **env}
    s = load_settings(environ)
    return DoctorContext.from_env(s, ArtifactStore.from_settings(s), now=NOW, environ=environ)


def by_name(results: list, name: str):  # type: ignore[no-untyped-def,type-arg]
    return next(r for r in results if r.name == name)


def test_settings_check_states(tmp_path: Path) -> None:
    assert check_settings(make_ctx(tmp_path)).status == "OK"
    r = check_settings(make_ctx(tmp_path, ENV="prod", ALLOW_PROD_WRITE="1"))
    assert r.status == "WARN" and "ALLOW_PROD_WRITE=1" in r.message


def test_settings_check_fails_on_unwritable_logs(tmp_path: Path) -> None:
    # A folder below a regular file can be created by nobody, root included (tests run as root).
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    r = check_settings(make_ctx(blocker / "logs"))
    assert r.status == "FAIL"
    assert "not writable" in r.message
    assert str(blocker / "logs") in r.message


def test_data_freshness_states(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    missing = check_data_freshness(ctx)
    assert [r.status for r in missing] == ["WARN", "WARN"] and "python -m scripts.demo" in missing[0].fix
    write_data(ctx.settings.data_dir, newest=NOW - dt.timedelta(hours=1))
    assert [r.status for r in check_data_freshness(ctx)] == ["OK", "OK"]
    write_data(ctx.settings.data_dir, newest=NOW - dt.timedelta(days=3))
    stale = check_data_freshness(ctx)
    assert stale[0].status == "FAIL" and "3.0 d old" in stale[0].message
    ctx.store.write("demo_data", demo_data_data(bars=str(ctx.settings.data_dir / "bars.parquet")), source="t")
    demo = check_data_freshness(ctx)
    assert demo[0].status == "WARN" and "demo data is historical" in demo[0].message
    relaxed = make_ctx(tmp_path, DOCTOR_DATA_MAX_AGE_H="100")
    assert check_data_freshness(relaxed)[0].status == "OK"
    (ctx.settings.data_dir / "bars.parquet").write_bytes(b"garbage")
    assert check_data_freshness(ctx)[0].status == "FAIL"


def test_route_health_states_and_confidence(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    assert check_route_health(ctx).status == "WARN"
    write_data(ctx.settings.data_dir, newest=NOW)
    good = check_route_health(ctx)
    assert good.status == "OK"
    c_good = ctx.shared["symbol_confidence"]["BTC"]
    write_data(ctx.settings.data_dir, newest=NOW, bad_route_fail=6)
    meh = check_route_health(ctx)
    assert meh.status == "WARN" and "BTC|a" in meh.message
    c_meh = ctx.shared["symbol_confidence"]["BTC"]
    write_data(ctx.settings.data_dir, newest=NOW, bad_route_fail=30)
    bad = check_route_health(ctx)
    assert bad.status == "FAIL" and "BTC" in bad.message
    assert c_good > c_meh > ctx.shared["symbol_confidence"]["BTC"]
    assert ctx.shared["route_confidence"]["BTC|a"] == ctx.shared["symbol_confidence"]["BTC"]


def test_artifact_states_and_corrupt_file_named(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    assert by_name(check_artifacts(ctx), "artifact:demo_data").status == "WARN"
    ctx.store.write("demo_data", demo_data_data(), source="t", generated_at=NOW - dt.timedelta(minutes=5))
    assert by_name(check_artifacts(ctx), "artifact:demo_data").status == "OK"
    ctx.store.write("demo_data", demo_data_data(), source="t", generated_at=NOW - dt.timedelta(days=5))
    assert by_name(check_artifacts(ctx), "artifact:demo_data").status == "WARN"
    (ctx.settings.cache_dir / "demo_data.json").write_text("{broken")
    r = by_name(check_artifacts(ctx), "artifact:demo_data")
    assert r.status == "FAIL" and str(ctx.settings.cache_dir / "demo_data.json") in r.message
    (ctx.settings.cache_dir / "drift.json").write_text("[1, 2")
    d = check_drift(ctx)
    assert d.status == "FAIL" and "drift.json" in d.message


def _raw(ctx: Any, name: str, data: Any) -> None:
    """A file a writer could no longer produce (its contract refuses ``data``)."""
    env = {
        "schema_version": 1,
        "name": name,
        "generated_at": utc_iso(NOW),
        "env": "dev",
        "source": "t",
        "data": data,
    }
    (ctx.settings.cache_dir / f"{name}.json").write_text(json.dumps(env))


def test_job_checks_read_typed_fields_and_fail_bad_ones_by_field(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    w = lambda n, d: ctx.store.write(n, d, source="t", generated_at=NOW)  # noqa: E731
    w("feedback", feedback_data(closed=5))
    assert check_feedback(ctx).status == "OK"
    w("feedback", feedback_data(closed=5, dead_lettered=2))
    assert "2 feedback event(s) dead-lettered" in check_feedback(ctx).message
    _raw(ctx, "feedback", {"other": 1})
    r = check_feedback(ctx)
    assert r.status == "FAIL" and "field $.counts is missing" in r.message
    w("ml_telemetry", telemetry_data(ece=0.02, mean_confidence=0.6))
    r = check_ml_telemetry(ctx)
    assert r.status == "OK" and r.message == "mean confidence 0.600, ECE 0.020, Brier 0.240."
    w("ml_telemetry", telemetry_data(ece=0.3, mean_confidence=0.6))
    assert "ECE 0.300" in check_ml_telemetry(ctx).message
    _raw(ctx, "ml_telemetry", {"mean_confidence": 0.6})
    r = check_ml_telemetry(ctx)
    assert r.status == "FAIL" and "is missing" in r.message and "nan" not in r.message
    w("drift", drift_data())
    assert check_drift(ctx).status == "OK"
    w("drift", drift_data(detection()))
    r = check_drift(ctx)
    assert r.status == "WARN"
    assert "accuracy_drift at trade 250 (cusum; trigger no trigger)" in r.message
    w("retrain_triggers", triggers_data(rt_1="pending"))
    assert "trigger pending" in check_drift(ctx).message
    w("retrain_triggers", triggers_data(rt_1="promoted"))
    assert check_drift(ctx).status == "OK"
    _raw(ctx, "drift", {"state": "drift"})
    r = check_drift(ctx)
    assert r.status == "FAIL" and "field $.n_trades is missing" in r.message
    w("autotune", autotune_data(applied=False))
    assert "dry run" in check_autotune(ctx).message
    w("autotune", autotune_data(applied=True, thresholds={"A": {"size_scale": 1.1}},
                                adjustments=[{"symbol": "A", "threshold": "size_scale", "old": 1, "new": 1.1, "reason": "r"}]))  # fmt: skip
    assert check_autotune(ctx).status == "OK"
    # after switching from 8 to 2 symbols: 2 tuned, the 6 others named stale, not counted as tuned
    w("autotune", autotune_data(applied=True, thresholds={f"S{i}": {} for i in range(8)},
                                tuned_symbols=["S0", "S1"], stale_symbols=[f"S{i}" for i in range(2, 8)]))  # fmt: skip
    r = check_autotune(ctx)
    assert (
        r.status == "OK" and "to 2 symbols" in r.message and "6 stale symbol(s) kept, not tuned" in r.message
    )


def test_unreachable_redis_fails_fast(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, EVENTBUS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    t0 = time.perf_counter()
    r = check_event_bus(ctx)
    assert time.perf_counter() - t0 < 1.0
    assert r.status == "FAIL" and "redis://127.0.0.1" in r.message
    local = check_event_bus(make_ctx(tmp_path))
    assert local.status == "OK"


def test_unreachable_firestore_fails_fast(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{closed_port()}")
    t0 = time.perf_counter()
    r = check_firestore(ctx)
    assert time.perf_counter() - t0 < 1.0
    assert r.status == "FAIL" and "unreachable" in r.message
    assert check_firestore(make_ctx(tmp_path)).status == "OK"


def test_report_keys_and_summary(tmp_path: Path) -> None:
    environ = {"LOGS_DIR": str(tmp_path)}
    s = load_settings(environ)
    write_data(s.data_dir, newest=NOW)
    rep = doctor_report(s, now=NOW, environ=environ)
    assert set(rep) == {"symbol_confidence", "route_confidence", "checks", "summary"}
    assert 0 <= rep["symbol_confidence"]["BTC"] <= 1 and "BTC|a" in rep["route_confidence"]
    assert all(set(c) == {"name", "status", "message", "details"} for c in rep["checks"])
    text = format_table(rep, verbose=True).splitlines()
    assert text[-1].startswith("  WARN:") and "exit code 1" in text[-1]
    assert any("how to fix" in line for line in text[-20:])


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("FIRESTORE", "EVENTBUS", "DOCTOR"))}
    e.update({"LOGS_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "-m", "scripts.doctor", *args],
        cwd=PROJECT_ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_exit_codes_and_json(tmp_path: Path) -> None:
    r = run_cli(tmp_path, "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["summary"]["exit_code"] == 1
    assert (tmp_path / "cache" / "doctor.json").exists()
    t0 = time.perf_counter()
    bad = run_cli(
        tmp_path,
        "-v",
        EVENTBUS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{closed_port()}",
    )
    assert time.perf_counter() - t0 < 10
    assert bad.returncode == 2 and "FAIL" in bad.stdout.splitlines()[-1]


def test_exit_code_zero_when_all_ok(tmp_path: Path) -> None:
    from scripts.doctor import EXIT_CODES, overall
    from scripts.doctor_checks.base import ok, warn

    assert EXIT_CODES[overall([ok("a", "fine")])] == 0
    assert EXIT_CODES[overall([ok("a", "fine"), warn("b", "meh", "fix")])] == 1
    assert EXIT_CODES[overall([])] == 0


def test_verbose_lists_what_the_route_hint_promises(tmp_path: Path) -> None:
    """Issue 23 item 11: the hint said -v shows fill rate and slippage, but -v skipped the routes."""
    environ = {"LOGS_DIR": str(tmp_path)}
    s = load_settings(environ)
    write_data(s.data_dir, newest=NOW, bad_route_fail=6)
    rep = doctor_report(s, now=NOW, environ=environ)
    route = next(c for c in rep["checks"] if c["name"] == "route_health")
    assert (
        route["status"] == "WARN"
        and "-v" in route["details"]["fix"]
        and "fill rate" in route["details"]["fix"]
    )
    text = format_table(rep, verbose=True)
    rows = {f"{r['symbol']}|{r['route']}": r for r in route["details"]["routes"]}
    r = rows["BTC|a"]
    expected = f"fill {r['n_filled'] / r['n_orders']:.0%} of {r['n_orders']} orders"
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("a ") and expected in ln)
    assert "slippage" in line and "bps" in line
    assert expected not in format_table(rep, verbose=False)  # the plain table stays short
