"""The command-line jobs report bad user input as one line on stderr with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BAD_BARS = "timestamp,open,high,low,close,volume\n2025-01-01T00:00:00Z,1,2,0.5,abc,3\n"


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "LOGS_DIR": str(tmp_path / "logs"), "ENV": "research", **env}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "module_args",
    [
        ["ml.telemetry", "--bars"],
        ["research.rl_sizer.runner", "--episodes", "1", "--dry-run", "--data"],
        ["research.rl_sizer.evaluate", "--data"],
    ],
)
def test_bad_data_file_is_one_line_and_exit_2(module_args: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_BARS)
    proc = run([*module_args, str(bad)], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        f"python -m {module_args[0]}: {bad}, row 2: field 'close' has an unparseable or missing number 'abc'"
        in proc.stderr
    )


@pytest.mark.parametrize("module", ["scripts.doctor", "ml.drift_service", "execution.risk_autotune"])
def test_bad_environment_variable_is_one_line_and_exit_2(module: str, tmp_path: Path) -> None:
    proc = run([module], tmp_path, ENV="staging")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ENV must be one of dev, research, prod. Got 'staging' instead." in proc.stderr


def test_production_refusal_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    from infra.cli import run_cli
    from infra.safety import require_prod_write
    from infra.settings import load_settings

    def main() -> int:
        require_prod_write(load_settings({"ENV": "prod"}), "model promotion")
        return 0

    assert run_cli(main, prog="python -m ml.retrain_worker") == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("python -m ml.retrain_worker: refused: Refusing to write model promotion: ENV=prod")


@pytest.mark.parametrize(
    ("module", "what"),
    [
        (["ml.retrain_worker", "--once"], "model promotion"),
        (["research.rl_sizer.trainer", "--once", "--metrics-port", "-1"], "checkpoint"),
        (["research.rl_sizer.runner", "--episodes", "1"], "refuses to run with ENV=prod"),
        (["scripts.demo"], "refuses to run with ENV=prod"),
    ],
)
def test_services_refuse_production_first_with_one_line_and_exit_3(
    module: list[str], what: str, tmp_path: Path
) -> None:
    """Issue 22 item 11: refusals used to be tracebacks, and the worker exited 0 after consuming."""
    proc = run(module, tmp_path, ENV="prod", ALLOW_PROD_WRITE="0")
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"python -m {module[0]}: refused:")]
    assert len(lines) == 1 and what in lines[0], proc.stderr
    assert not (tmp_path / "logs" / "cache").exists() or not any((tmp_path / "logs" / "cache").iterdir())


MODULES_WITH_RUN_CLI = [
    "scripts.doctor", "scripts.demo", "sim.replay", "ml.drift_service", "ml.retrain_worker",
    "ml.telemetry", "execution.risk_autotune", "execution.feedback_bridge", "research.rl_sizer.runner",
    "research.rl_sizer.evaluate",
]  # fmt: skip


@pytest.mark.parametrize("module", MODULES_WITH_RUN_CLI)
def test_help_usage_shows_the_python_dash_m_command(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 23 item 11: ``--help`` said ``usage: drift_service.py`` for parsers built without prog."""
    import importlib
    import sys

    from infra.cli import run_cli

    mod = importlib.import_module(module)
    monkeypatch.setattr(sys, "argv", [f"/somewhere/{module.rsplit('.', 1)[1]}.py", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: mod.main(), prog=f"python -m {module}")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m {module} ")
    assert sys.argv[0].endswith(".py")  # restored afterwards


def test_drift_thresholds_help_shows_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    from ml.drift_thresholds import main

    with pytest.raises(SystemExit):
        main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m ml.drift_thresholds ")
