"""Run every benchmark in ``bench/``, one after the other: ``make bench`` (``python -m bench.run_all``).

``python -m bench.run_all [--only NAME,...] [--skip NAME,...] [--list]``

Each ``bench/bench_<name>.py`` runs in its own interpreter with its default arguments (see its
docstring for what it measures and against which peers), so one benchmark's imports, caches and
heap do not change another's figures. Their output is passed through as it comes; a summary
of the exit status and wall time of each follows. The exit status is 1 when any benchmark failed.
Running all eight took 2:43 on the 2-core VM (2026-12-02; the browser end-to-end and the RL
environment benchmarks are the longest); the figures are indicative on a shared CPU, the printed
ratios against the peers are the stable part.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def available() -> list[str]:
    """Names of the benchmarks (``bench_<name>.py`` -> ``<name>``), sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def _names(raw: str | None, option: str, known: Sequence[str]) -> list[str]:
    if raw is None:
        return []
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(
            f"bench.run_all: {option} names no benchmark {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(known)}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated benchmark names to run (default: all)")
    parser.add_argument("--skip", help="comma-separated benchmark names not to run")
    parser.add_argument("--list", action="store_true", help="print the benchmark names and exit")
    args = parser.parse_args(argv)
    known = available()
    if args.list:
        print("\n".join(known))
        return 0
    only = _names(args.only, "--only", known)
    skip = set(_names(args.skip, "--skip", known))
    chosen = [n for n in (only or known) if n not in skip]
    results: list[tuple[str, int, float]] = []
    for name in chosen:
        print(f"\n===== bench.bench_{name} =====", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.bench_{name}"], cwd=ROOT)
        results.append((name, rc, time.perf_counter() - t0))
    print("\n===== summary =====")
    for name, rc, seconds in results:
        print(
            f"{'ok  ' if rc == 0 else 'FAIL'}  bench_{name:<20} {seconds:7.1f} s"
            + ("" if rc == 0 else f"  (exit {rc})")
        )
    return 1 if any(rc != 0 for _, rc, _ in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
