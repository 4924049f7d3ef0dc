"""Typed artifact contracts (issue 21 item 4, issue 22 item 8): every writer's output decodes,
a writer cannot write what its contract refuses, and every reader (store, doctor, dashboard
tabs) reports a wrong schema, NaN metrics, garbage data or a future ``generated_at`` by field."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.artifacts import ArtifactStore, read_artifact_file
from infra.contracts.artifacts import REGISTRY, ArtifactDataError, decode_data
from infra.contracts.ml_artifacts import Calibration, MlTelemetryData
from infra.contracts.ops_artifacts import DoctorData

NOW = dt.datetime(2025, 3, 31, 12, tzinfo=dt.UTC)


def telemetry_data(*, ece: float = 0.02, mean_confidence: float = 0.6) -> dict[str, Any]:
    """The smallest ``ml_telemetry`` data its contract accepts (one symbol, one bin)."""
    return {
        "high_confidence_threshold": 0.7,
        "model_version": "m1",
        "model_versions": [{"model_version": "m1", "first_ts": "2025-03-01T00:00:00Z",
                            "last_ts": "2025-03-02T00:00:00Z", "n": 10}],
        "data_window": {"start": "2025-03-01T00:00:00Z", "end": "2025-03-02T00:00:00Z",
                        "n_rows": 10, "n_resolved": 8, "symbols": ["BTCUSDT"]},
        "bucket": "1D",
        "confidence_over_time": [],
        "confidence_recent": [],
        "confidence_histogram": {"edges": [0.5, 1.0], "counts": {"BTCUSDT": [10], "ALL": [10]}},
        "calibration": {"n": 8, "brier": 0.24, "ece": ece, "ece_null_q95": 0.05, "hit_rate": 0.55,
                        "mean_confidence": mean_confidence, "citl": {"gap": 0.05, "se": 0.1, "z": 0.5},
                        "n_bins": 1, "reliability": [{"bin_lower": 0.5, "bin_upper": 1.0, "count": 8.0,
                        "mean_confidence": mean_confidence, "hit_rate": 0.55, "gap": 0.05}]},
        "calibration_over_time": [],
    }  # fmt: skip


def _envelope(
    name: str, data: Any, *, schema_version: int = 1, generated_at: str = "2025-03-31T11:00:00Z"
) -> str:
    return json.dumps(
        {
            "schema_version": schema_version,
            "name": name,
            "generated_at": generated_at,
            "env": "dev",
            "source": "test",
            "data": data,
        }
    )


# --------------------------------------------------------------------------- round trips
def test_every_artifact_the_demo_writes_decodes_into_its_contract(demo_logs: Path) -> None:
    """The real writers (one demo run): each registered artifact reads ``ok`` with its Struct, and
    the Struct re-encodes to data that decodes to the same Struct."""
    cache = demo_logs / "cache"
    written = {p.stem for p in cache.glob("*.json")}
    expected = set(REGISTRY) - {"autotune_dry_run"}
    assert expected <= written, f"the demo no longer writes {sorted(expected - written)}"
    for name in sorted(expected):
        res = read_artifact_file(cache / f"{name}.json")
        assert res.status == "ok", (name, res.message)
        assert isinstance(res.typed, REGISTRY[name].data_type)
        again = decode_data(name, msgspec.to_builtins(res.typed))
        assert again == res.typed, name
    tel = read_artifact_file(cache / "ml_telemetry.json").typed
    assert isinstance(tel, MlTelemetryData)
    assert tel.calibration.ece is not None and 0.0 <= tel.calibration.ece <= 1.0


def test_autotune_dry_run_writer_output_decodes(tmp_path: Path) -> None:
    from execution.risk_autotune import SymbolInputs, run_cycle
    from infra.settings import load_settings

    s = load_settings({"LOGS_DIR": str(tmp_path), "ENV": "dev"})
    store = ArtifactStore(s.cache_dir)
    inputs = {"BTC": SymbolInputs(n_trades=200, dsr=0.8, psr=0.9, sharpe=1.5, sharpe_lo=1.2, n_obs=90)}
    run_cycle(s, store=store, inputs=inputs, dry_run=True, now=NOW)
    res = store.read("autotune_dry_run")
    assert res.status == "ok", res.message
    assert res.typed.dry_run is True and res.typed.applied is False  # type: ignore[union-attr]


# --------------------------------------------------------------------------- writers refuse
def test_a_writer_cannot_write_data_its_contract_refuses(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, clock=lambda: NOW)
    bad = telemetry_data()
    bad["calibration"]["ece"] = float("nan")
    with pytest.raises(ArtifactDataError, match=r"ml_telemetry: field \$\.calibration\.ece is nan"):
        store.write("ml_telemetry", bad, source="t")
    assert not store.path("ml_telemetry").exists()  # nothing touched the disk
    # a Struct built in code is checked too (msgspec does not check constraints on construction)
    struct = decode_data("ml_telemetry", telemetry_data())
    assert isinstance(struct, MlTelemetryData)
    broken = msgspec.structs.replace(
        struct, calibration=msgspec.structs.replace(struct.calibration, brier=float("inf"))
    )
    with pytest.raises(ArtifactDataError, match=r"\$\.calibration\.brier is inf"):
        store.write("ml_telemetry", broken, source="t")
    with pytest.raises(TypeError, match="takes MlTelemetryData"):
        store.write("ml_telemetry", DoctorData(symbol_confidence={}), source="t")
    with pytest.raises(ValueError, match="schema_version 1"):
        store.write("ml_telemetry", telemetry_data(), source="t", schema_version=2)
    # a valid Struct is written as plain JSON and reads back typed
    store.write("ml_telemetry", struct, source="t")
    res = store.read("ml_telemetry")
    assert res.ok and res.typed == struct
    assert json.loads(store.path("ml_telemetry").read_text())["data"]["calibration"]["ece"] == 0.02


def test_unknown_artifacts_stay_plain_mappings(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, clock=lambda: NOW)
    store.write("my_notes", {"anything": [1, "x", None]}, source="t")
    res = store.read("my_notes")
    assert res.ok and res.typed is None and res.data == {"anything": [1, "x", None]}


# --------------------------------------------------------------------------- readers report
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(REGISTRY)), data=json_values)
def test_garbage_data_never_raises_and_names_a_field(tmp_path: Path, name: str, data: Any) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(_envelope(name, data).replace("Infinity", "1e999"), encoding="utf-8")
    res = read_artifact_file(path, now=NOW)
    assert res.status == "invalid", (name, data)
    assert res.field is not None and res.field.startswith("$")
    assert f"field {res.field}" in res.message and name in res.message
    assert res.data is None and res.typed is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(REGISTRY)), data=json_values)
def test_no_writer_can_write_garbage(tmp_path: Path, name: str, data: Any) -> None:
    store = ArtifactStore(tmp_path / name, clock=lambda: NOW)
    with pytest.raises(ArtifactDataError) as info:
        store.write(name, data, source="t")
    assert info.value.artifact == name and info.value.field.startswith("$")
    assert not store.path(name).exists()


def _bad_telemetry(case: str) -> str:
    """The four bad artifacts of issue 22 item 8, as files."""
    if case == "wrong_schema":
        return _envelope("ml_telemetry", telemetry_data(), schema_version=7)
    if case == "nan":  # a bare NaN token, as Python's json module writes it
        return _envelope("ml_telemetry", telemetry_data(ece=0.5)).replace('"ece": 0.5', '"ece": NaN')
    if case == "garbage":
        return _envelope("ml_telemetry", {"calibration": "fine", "model_version": [1, 2]})
    if case == "future":
        return _envelope("ml_telemetry", telemetry_data(), generated_at="2999-01-01T00:00:00Z")
    raise ValueError(case)


CASES = {
    "wrong_schema": ("wrong_schema", "schema_version 7, expected 1"),
    "nan": ("invalid", "field $.calibration.ece is nan"),
    "garbage": ("invalid", "field $.calibration = 'fine'"),
    "future": ("invalid", "generated_at 2999-01-01T00:00:00Z is in the future"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_store_reports_each_bad_artifact(tmp_path: Path, case: str) -> None:
    path = tmp_path / "ml_telemetry.json"
    path.write_text(_bad_telemetry(case), encoding="utf-8")
    res = read_artifact_file(path, now=NOW)
    status, text = CASES[case]
    assert res.status == status and text in res.message, res.message
    assert res.data is None and res.typed is None


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_doctor_fails_each_bad_artifact_by_field(
    demo_logs: Path,
    tmp_path: Path,
    case: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scripts.doctor import main as doctor_main

    logs = tmp_path / "logs"
    shutil.copytree(demo_logs, logs)
    (logs / "cache" / "ml_telemetry.json").write_text(_bad_telemetry(case), encoding="utf-8")
    monkeypatch.setenv("LOGS_DIR", str(logs))
    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("ARTIFACT_MAX_AGE_S", str(10 * 365 * 86400))
    for var in (
        "DATA_DIR",
        "CACHE_DIR",
        "RESEARCH_DIR",
        "EVENTBUS_URL",
        "FIRESTORE_EMULATOR_HOST",
        "FIRESTORE_PROJECT",
    ):
        monkeypatch.delenv(var, raising=False)
    code = doctor_main(["--json", "--no-write"])
    out = capsys.readouterr().out
    report = json.loads(out)
    (check,) = [c for c in report["checks"] if c["name"] == "ml_telemetry"]
    assert code == 2 and check["status"] == "FAIL", check
    assert CASES[case][1] in check["message"]
    assert "ECE nan" not in out and "ECE: nan" not in out


def test_calibration_without_resolved_rows_is_none_not_nan() -> None:
    cal = decode_data("ml_telemetry", {**telemetry_data(), "calibration": {
        "n": 0, "brier": None, "ece": None, "hit_rate": None, "mean_confidence": None, "n_bins": 0,
        "reliability": []}})  # fmt: skip
    assert isinstance(cal, MlTelemetryData) and isinstance(cal.calibration, Calibration)
    assert cal.calibration.ece is None


# --------------------------------------------------------------------------- the tabs
APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
NAN_WORD = re.compile(r"\bnan\b", re.IGNORECASE)
TAB_CASES = {
    # tab: (artifact, a promised number to set to NaN, garbage data)
    "ML Confidence": (
        "ml_telemetry",
        ("calibration", "ece"),
        {"calibration": "fine", "model_version": [1, 2]},
    ),
    "Drift": ("drift", ("checks", 0, "accuracy_cusum"), {"checks": "fine", "n_trades": 5}),
}
TAB_EXPECTED = {
    "wrong_schema": "schema_version 7, expected 1",
    "nan": "is nan",
    "garbage": "field $.",
    "future": "generated_at 2999-01-01T00:00:00Z is in the future",
}


def _bad_file(valid: dict[str, Any], name: str, case: str, nan_path: tuple[Any, ...], garbage: Any) -> str:
    env = dict(valid)
    if case == "wrong_schema":
        env["schema_version"] = 7
    elif case == "future":
        env["generated_at"] = "2999-01-01T00:00:00Z"
    elif case == "garbage":
        env["data"] = garbage
    elif case == "nan":
        data = json.loads(json.dumps(env["data"]))
        cur = data
        for key in nan_path[:-1]:
            cur = cur[key]
        cur[nan_path[-1]] = float("nan")
        env["data"] = data
        return json.dumps(env)  # a bare NaN token, as Python's json writes it
    return json.dumps(env)


@pytest.mark.parametrize("case", sorted(TAB_EXPECTED))
@pytest.mark.parametrize("tab_label", sorted(TAB_CASES))
def test_the_tabs_show_each_bad_artifact_without_crashing_or_nan(
    demo_logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tab_label: str, case: str
) -> None:
    from streamlit.testing.v1 import AppTest

    name, nan_path, garbage = TAB_CASES[tab_label]
    logs = tmp_path / "logs"
    shutil.copytree(demo_logs, logs)
    valid = json.loads((demo_logs / "cache" / f"{name}.json").read_text())
    (logs / "cache" / f"{name}.json").write_text(_bad_file(valid, name, case, nan_path, garbage))
    monkeypatch.setenv("LOGS_DIR", str(logs))
    monkeypatch.setenv("ARTIFACT_MAX_AGE_S", str(10 * 365 * 86400))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_EMULATOR_HOST", "FIRESTORE_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["tab"] = tab_label
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = next(t for t in at.tabs if t.label == tab_label)
    errors = [str(e.value) for e in tab.error]
    assert any(TAB_EXPECTED[case] in e and f"{name}.json" in e for e in errors), errors
    shown = [str(m.value) for m in tab.metric] + [str(e.value) for k in ("markdown", "caption", "info", "success", "warning") for e in tab.get(k)]  # fmt: skip
    assert not [t for t in shown if NAN_WORD.search(t)], shown
    assert tab.get("plotly_chart") == [] or name != "ml_telemetry"


# --------------------------------------------------------------------------- small valid builders
def demo_data_data(**files: str) -> dict[str, Any]:
    return {"seed": 7, "scale": "default", "bars_source": "synthetic", "signal_source": "simulated",
            "symbols": ["BTC"], "routes": ["a"], "n_bars": 10, "n_trades": 5, "n_orders": 5,
            "files": files}  # fmt: skip


def feedback_data(*, closed: int = 5, dead_lettered: int = 0) -> dict[str, Any]:
    return {"counts": {"tracked": closed, "closed": closed, "dead_lettered": dead_lettered}}


def detection(
    kind: str = "accuracy_drift", *, n_trades: int = 250, trigger_id: str = "rt-1"
) -> dict[str, Any]:
    return {"kind": kind, "statistic": "cusum", "value": 12.0, "threshold": 10.0, "message": "CUSUM over",
            "n_trades": n_trades, "trigger_id": trigger_id}  # fmt: skip


def drift_data(*detections: dict[str, Any], n_trades: int = 300) -> dict[str, Any]:
    return {"n_trades": n_trades, "checks": [{"n_trades": n_trades}], "detections": list(detections)}


def triggers_data(**outcomes: str) -> dict[str, Any]:
    rows = [{"trigger_id": tid.replace("_", "-"), "model": "m1", "reason": "accuracy_drift", "priority": "high",
             "triggered_at": "2025-03-06T15:59:31Z", "outcome": o} for tid, o in outcomes.items()]  # fmt: skip
    return {"cooldown_s": 86400.0, "history_limit": 500, "triggers": rows}


def autotune_data(*, applied: bool, adjustments: list[dict[str, Any]] | None = None,
                  thresholds: dict[str, dict[str, float]] | None = None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"cycle_at": "2025-03-31T11:00:00Z", "dry_run": not applied, "applied": applied,
            "thresholds_path": "t.json", "inputs": {}, "adjustments": adjustments or [],
            "thresholds": thresholds or {}, **extra}  # fmt: skip
