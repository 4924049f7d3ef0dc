"""``make bench`` (``python -m bench.run_all``) finds every benchmark and runs the ones asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import run_all

ROOT = Path(__file__).resolve().parent.parent


def test_every_bench_module_is_listed() -> None:
    files = sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))
    assert run_all.available() == files
    assert {"feedback", "metrics", "dashboard_startup", "drift"} <= set(files)


def test_unknown_names_are_refused_with_the_choices() -> None:
    with pytest.raises(SystemExit, match=r"--only names no benchmark 'nope'; choose from .*feedback"):
        run_all.main(["--only", "feedback,nope"])
    with pytest.raises(SystemExit, match="--skip names no benchmark 'x'"):
        run_all.main(["--skip", "x"])


def test_runs_a_real_benchmark_and_reports_it() -> None:
    """The telemetry benchmark (about 10 s) through the runner, in its own interpreter."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--only", "telemetry"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "===== bench.bench_telemetry =====" in out
    assert "sklearn LogisticRegression (peer)" in out  # the benchmark's own output passes through
    summary = out.split("===== summary =====")[1].split()
    assert summary[:2] == ["ok", "bench_telemetry"]
