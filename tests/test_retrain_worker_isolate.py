"""Retrain worker with ``isolate=True``: each job trains and validates in a fresh child process.

The bars sources here are module-level classes (the child unpickles them by importing this
module); each spawn costs ~1-2 s of imports.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.retrain_worker import RetrainWorker, preload_promotion
from tests.test_retrain_worker import bar_ts, registry_with_stale, stale_model, stream, trigger


@dataclass(frozen=True)
class PidBars:
    """The demo stream; records the pid of the process that loads it."""

    path: Path

    def __call__(self) -> pd.DataFrame:
        with open(self.path, "a", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
        return stream()


@dataclass(frozen=True)
class SignalledInChild:
    """Sends ``signals`` to the process that loads the bars unless it is ``parent`` (the test process)."""

    parent: int
    signals: tuple[int, ...]

    def __call__(self) -> pd.DataFrame:
        if os.getpid() != self.parent:
            for sig in self.signals:
                os.kill(os.getpid(), sig)
        return stream()


@dataclass(frozen=True)
class RaisesInChild:
    def __call__(self) -> pd.DataFrame:
        raise OSError("bar file unreadable: /nowhere/bars.parquet")


def test_isolated_job_matches_the_in_process_one_and_runs_in_another_process(tmp_path: Path) -> None:
    at = bar_ts(1000)
    ref_reg = registry_with_stale(tmp_path / "ref")
    ref = RetrainWorker(registry=ref_reg, bars=stream).handle(trigger("t-shift", at))
    assert ref["outcome"] == "promoted", ref.get("note")

    pids = tmp_path / "pids.txt"
    reg = registry_with_stale(tmp_path / "iso")
    promoted: list[tuple[str, str, int]] = []
    worker = RetrainWorker(
        registry=reg,
        bars=PidBars(pids),
        isolate=True,
        on_promoted=lambda m, v: promoted.append((m, v, os.getpid())),
    )
    job = worker.handle(trigger("t-shift", at))
    # same inputs, same job: candidate, validation numbers, windows, new version, note
    assert job == ref
    assert job["validation"] == ref["validation"] and job["candidate_version"] == ref["candidate_version"]
    # the bars were loaded once, by another process; the promotion and its hook ran here
    child = [int(x) for x in pids.read_text().split()]
    assert len(child) == 1 and child[0] != os.getpid()
    assert promoted == [("signal-model", job["new_version"], os.getpid())]
    assert reg.current_version("signal-model") == job["new_version"]
    assert reg.previous_version("signal-model") == stale_model().model_version_


def test_a_child_that_dies_or_raises_fails_the_job_and_the_worker_goes_on(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    worker = RetrainWorker(registry=reg, bars=SignalledInChild(os.getpid(), (signal.SIGKILL,)), isolate=True)
    died = worker.handle(trigger("t-killed", bar_ts(1000)))
    assert died["outcome"] == "failed"
    assert died["note"].startswith("ChildDied: the retrain child process of trigger t-killed died")
    assert reg.versions("signal-model") == [stale_model().model_version_]  # nothing written

    worker.bars = RaisesInChild()  # an error raised in the child comes back with its type and text
    raised = worker.handle(trigger("t-raises", bar_ts(1000)))
    assert raised == {
        **{k: raised[k] for k in ("model_ref", "reason", "priority", "triggered_at", "model")},
        "trigger_id": "t-raises",
        "outcome": "failed",
        "note": "OSError: bar file unreadable: /nowhere/bars.parquet",
    }

    worker.bars = stream  # the next trigger is handled normally, in a fresh child
    ok = worker.handle(trigger("t-next", bar_ts(1000)))
    assert ok["outcome"] == "promoted", ok.get("note")
    assert [j["outcome"] for j in worker.log.jobs] == ["failed", "failed", "promoted"]
    assert reg.current_version("signal-model") == ok["new_version"]


def test_preload_loads_the_live_models_and_reports_one_that_does_not_load(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    assert preload_promotion(reg) == ["signal-model"]
    cur = reg.current("signal-model")
    assert cur is not None
    cur.model_path.write_bytes(b"not a model")
    assert preload_promotion(reg) == []  # logged at INFO; the job that promotes over it reports it


def test_a_stop_signal_reaching_the_child_lets_the_job_finish(tmp_path: Path) -> None:
    reg = registry_with_stale(tmp_path)
    stop = SignalledInChild(os.getpid(), (signal.SIGTERM, signal.SIGINT))  # a service stop reaching the child
    worker = RetrainWorker(registry=reg, bars=stop, isolate=True)
    job = worker.handle(trigger("t-stop", bar_ts(1000)))
    assert job["outcome"] == "promoted", job.get("note")  # not "failed": the trigger is not lost
