"""systemd units: what each runs, restart and ordering, the env file, ``systemd-analyze verify``.

``systemd-analyze`` (package ``systemd``) is optional: the verify tests skip without it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.prom import SERVICE_PORTS
from tests.deploy_fixtures import ROOT

UNITS = ROOT / "deploy" / "systemd"
SERVICES = {
    "quantum-feedback-bridge.service": "execution.feedback_bridge",
    "quantum-rl-trainer.service": "research.rl_sizer.trainer",
    "quantum-retrain-worker.service": "ml.retrain_worker",
    "quantum-drift.service": "ml.drift_service --bus",  # the bus URL from EVENTBUS_URL
}
JOBS = {  # timer-driven oneshots: unit -> (module, OnCalendar)
    "quantum-autotune": ("execution.risk_autotune", "*:0/15"),
    "quantum-rl-pilot": ("research.rl_sizer.runner", "hourly"),
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """``section -> key -> values`` (systemd allows a key more than once)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, _, value = line.partition("=")
        out[section].setdefault(key, []).append(value)
    return out


def readme_modules() -> set[str]:
    """Modules the README runs with ``python -m``."""
    return set(re.findall(r"python -m ([a-z_.]+)", (ROOT / "README.md").read_text(encoding="utf-8")))


def test_the_units_present_are_the_services_and_jobs() -> None:
    names = {p.name for p in UNITS.iterdir() if p.suffix in {".service", ".timer"}}
    assert names == set(SERVICES) | {f"{j}.service" for j in JOBS} | {f"{j}.timer" for j in JOBS}


@pytest.mark.parametrize(("unit", "module"), sorted(SERVICES.items()))
def test_long_running_service_units(unit: str, module: str) -> None:
    u = parse_unit(UNITS / unit)
    svc = u["Service"]
    assert svc["ExecStart"] == [f"/srv/quant/.venv/bin/python -m {module}"]
    module = module.split()[0]
    assert module in readme_modules()
    assert importlib.util.find_spec(module) is not None
    assert svc["Type"] == ["simple"]
    assert svc["Restart"] == ["always"]
    # run_cli's exit codes for a configuration error (2) and a refused production write (3)
    assert svc["RestartPreventExitStatus"] == ["2 3"]
    assert "redis.service" in u["Unit"]["After"][0].split()
    assert svc["EnvironmentFile"] == ["/etc/quantum/quantum.env"]
    # the signal main() turns into a clean exit 0 (the retrain worker catches KeyboardInterrupt)
    assert svc["KillSignal"] == ["SIGINT" if module == "ml.retrain_worker" else "SIGTERM"]
    assert svc["ProtectSystem"] == ["strict"] and svc["NoNewPrivileges"] == ["yes"]
    assert svc["ReadWritePaths"] == ["/srv/quant/logs"]
    assert u["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize(("job", "spec"), sorted(JOBS.items()))
def test_timer_jobs_replace_the_cron_lines(job: str, spec: tuple[str, str]) -> None:
    module, calendar = spec
    svc, timer = parse_unit(UNITS / f"{job}.service"), parse_unit(UNITS / f"{job}.timer")
    [cmd] = svc["Service"]["ExecStart"]
    assert f"/srv/quant/.venv/bin/python -m {module}" in cmd
    assert module in readme_modules()
    assert svc["Service"]["Type"] == ["oneshot"]
    assert "Restart" not in svc["Service"]
    assert svc["Service"]["EnvironmentFile"] == ["/etc/quantum/quantum.env"]
    assert timer["Timer"]["OnCalendar"] == [calendar]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def test_rl_pilot_runs_in_research_like_the_cron_line() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "ENV=research .venv/bin/python -m research.rl_sizer.runner --episodes 1" in readme
    [cmd] = parse_unit(UNITS / "quantum-rl-pilot.service")["Service"]["ExecStart"]
    assert (
        cmd
        == "/usr/bin/env ENV=research /srv/quant/.venv/bin/python -m research.rl_sizer.runner --episodes 1"
    )


def test_env_example_documents_every_variable_the_platform_reads() -> None:
    settings_src = (ROOT / "infra" / "settings.py").read_text(encoding="utf-8")
    read = set()  # the [VAR] / [VAR or VAR] of every Settings field docstring
    for a, b in re.findall(r"\[([A-Z_]+)(?: or ([A-Z_]+))?\]", settings_src):
        read |= {a, b} - {""}
    read |= {f"METRICS_PORT_{s.upper()}" for s in SERVICE_PORTS if s != "trainer"}
    assert {"ENV", "ALLOW_PROD_WRITE", "EVENTBUS_URL", "EVENTBUS_MAXLEN", "METRICS_PORT"} <= read
    env = (UNITS / "quantum.env.example").read_text(encoding="utf-8")
    documented = {line.split("=", 1)[0] for line in env.splitlines() if re.match(r"^[A-Z_]+=", line)}
    assert read - documented == set()
    from infra.settings import load_settings

    values = dict(line.split("=", 1) for line in env.splitlines() if re.match(r"^[A-Z_]+=", line))
    s = load_settings(values)  # the example is a valid configuration as shipped
    assert (s.env, s.allow_prod_write, s.metrics_port) == ("prod", False, SERVICE_PORTS["trainer"])


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    # Point the units at this checkout (verify checks that ExecStart is executable).
    env = tmp_path / "quantum.env"
    shutil.copy(UNITS / "quantum.env.example", env)
    for p in UNITS.iterdir():
        if p.suffix in {".service", ".timer"}:
            text = p.read_text(encoding="utf-8").replace("/etc/quantum/quantum.env", str(env))
            (tmp_path / p.name).write_text(text.replace("/srv/quant", str(ROOT)), encoding="utf-8")
    units = sorted(str(p) for p in tmp_path.iterdir() if p.suffix in {".service", ".timer"})
    res = subprocess.run([tool, "verify", *units], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == ""  # no warning either (unknown keys, bad values)


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    text = (UNITS / "quantum-rl-trainer.service").read_text(encoding="utf-8")
    bad = tmp_path / "quantum-bad.service"
    bad.write_text(
        text.replace("Restart=always", "Restart=sometimes").replace(
            "/etc/quantum/quantum.env", "-/nonexistent"
        ),
        encoding="utf-8",
    )
    res = subprocess.run([tool, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "restart" in res.stderr.lower()
