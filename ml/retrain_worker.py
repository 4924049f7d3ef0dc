"""The retrain worker: ``model.retrain.trigger`` -> retrain -> validate -> promote or reject.

For each trigger (payload ``trigger_id, model, reason, drift_info, priority, triggered_at``):

1. **Dedupe**: one job per ``trigger_id`` (the ``retrain_jobs`` log); a repeated trigger is
   acknowledged and counted, never retrained twice.
2. **Resolve** the trigger's ``model`` in the :class:`ml.model_registry.ModelRegistry` (a model
   name, one of its versions, or an alias such as the signal log's model name). Unknown ->
   ``rejected`` with the reason.
3. **Retrain** the reference :class:`ml.signal_model.SignalModel` on the most recent
   ``train_window_bars`` bars strictly before ``triggered_at`` (``fit(until=T - 1 bar)``: every
   label used is known one bar before the trigger). A training error -> ``failed``.
4. **Validate** the candidate against the current model on the later out-of-sample window
   ``[T, T + validation_bars)`` (rows whose labels are known in the data):
   :func:`ml.retrain_validation.compare` (Brier, ECE, high-confidence hit rate; block-bootstrap
   CIs of the paired differences). Too few rows -> ``rejected`` (the trigger should be re-sent
   once more data exists).
5. **Promote** (new version staged atomically, then the ``current`` pointer switched; parent
   kept) or **reject** with the reasons. In ``ENV=prod`` promotion needs ``ALLOW_PROD_WRITE=1``;
   a refused promotion is recorded as ``failed`` with the guard's message.
6. **Record** the outcome with its metrics in ``retrain_jobs``, the worker's own artifact and the
   only one it writes (one writer per artifact): ``ml.drift_service`` reads it to resolve its
   ``retrain_triggers`` queue and to start the promoted version's detector from zero; readers
   (doctor, autotuner) take outcomes from it via :func:`ml.drift_state.open_detections`. After a
   promotion the ``on_promoted`` hook runs.

A trigger is acknowledged on the bus only after its job was recorded (promoted, rejected, failed
or duplicate). ``python -m ml.retrain_worker --rollback`` switches the pointer back.

**One child process per job** (``isolate=True``, always in the CLI service): steps 3-4 (load the
bars, build the features, fit the candidate, validate) run in :func:`train_and_validate` in a
fresh interpreter (``spawn``, never ``fork``: the service has threads) that exits after the job,
so the job's working set goes back to the OS instead of staying in the long-running service's
heap (CPython and glibc keep freed memory: in the one-hour soak the in-process worker peaked at
363 MB during its job and stayed at 335 MB, from 316 MB, after it). Only the job's fields, the candidate and its
validation come back; steps 5-6 (stage, promote, ``on_promoted``, record) stay in the service.
A child that dies (killed, out of memory) or raises -> ``failed`` with the cause, and the
service goes on. The cost is a spawn per job (~1-2 s of imports); jobs are rare. In-process
(``isolate=False``, the default) is what the demo and the tests use.

Why this file is long: one job whose steps (parse the trigger, retrain, validate, promote or
reject, record) share the worker's state and are tested as one; validation statistics live in
:mod:`ml.retrain_validation`, the registry in :mod:`ml.model_registry`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from infra.cli import run_cli
from infra.timeutil import utc_iso
from ml.model_registry import ModelRegistry, RegistryError
from ml.retrain_validation import Validation, ValidationConfig, compare

if TYPE_CHECKING:
    from infra.artifacts import ArtifactStore
    from infra.bus import Bus, Message
    from ml.signal_model import FeatureSet, ModelConfig, SignalModel

log = logging.getLogger(__name__)

SOURCE = "ml.retrain_worker"
JOBS_ARTIFACT = "retrain_jobs"
DEMO_ARTIFACT = "retrain"
GROUP = "retrain-worker"
DEFAULT_MODEL = "signal-model"
Outcome = Literal["promoted", "rejected", "failed", "duplicate"]
MAX_JOBS = 500


@dataclass(frozen=True, kw_only=True)
class RetrainConfig:
    """What the worker trains on and how it decides."""

    train_window_bars: int = 240
    """Bars (per symbol) of the retraining window ending just before the trigger."""
    validation_bars: int = 240
    """Bars of the out-of-sample validation window starting at the trigger."""
    min_validation_rows: int = 200
    """Fewer labelled validation rows than this: rejected as not enough evidence."""
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    """Metrics, bootstrap and promotion margins."""

    def __post_init__(self) -> None:
        for name, lo in (("train_window_bars", 48), ("validation_bars", 1), ("min_validation_rows", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < lo:
                raise ValueError(
                    f"The '{name}' parameter of RetrainConfig must be an int >= {lo}. Got {value!r} instead."
                )

    def model_config(self, base: ModelConfig | None = None) -> ModelConfig:
        """The candidate's hyperparameters: ``base`` (or the defaults) with this training window."""
        from dataclasses import replace

        from ml.signal_model import ModelConfig

        return replace(base or ModelConfig(), train_window_bars=self.train_window_bars)


@dataclass
class JobLog:
    """Job records keyed by ``trigger_id`` (the ``retrain_jobs`` artifact's ``data``)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)

    def get(self, trigger_id: str) -> dict[str, Any] | None:
        return next((j for j in self.jobs if j["trigger_id"] == trigger_id), None)

    def add(self, job: dict[str, Any]) -> None:
        self.jobs.append(job)
        del self.jobs[: max(0, len(self.jobs) - MAX_JOBS)]

    def to_dict(self) -> dict[str, Any]:
        counts = {o: sum(j["outcome"] == o for j in self.jobs) for o in ("promoted", "rejected", "failed")}
        return {"jobs": list(self.jobs), "duplicates": dict(self.duplicates), "counts": counts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> JobLog:
        if not data:
            return cls()
        return cls(
            [dict(j) for j in data.get("jobs", [])],
            {str(k): int(v) for k, v in data.get("duplicates", {}).items()},
        )


def once_summary(handled: int, counts: Mapping[str, int]) -> str:
    """What a run did, then the job log's totals, worded so the two cannot be confused.

    >>> once_summary(0, {"promoted": 0, "rejected": 1, "failed": 0})
    'no new retrain trigger in this run; job log so far (last 500 jobs): 0 promoted, 1 rejected, 0 failed'
    >>> once_summary(2, {"promoted": 1, "rejected": 1, "failed": 0})
    '2 retrain trigger(s) handled in this run; job log so far (last 500 jobs): 1 promoted, 1 rejected, 0 failed'
    """
    now = (
        "no new retrain trigger in this run"
        if handled == 0
        else f"{handled} retrain trigger(s) handled in this run"
    )
    totals = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("promoted", "rejected", "failed"))
    return f"{now}; job log so far (last {MAX_JOBS} jobs): {totals}"


class ChildDied(RuntimeError):
    """A job's child process ended without a result (killed, out of memory, crashed)."""


class TriggerError(ValueError):
    """A trigger payload lacks a field or has a malformed one."""


def parse_trigger(payload: Mapping[str, Any]) -> tuple[str, str, pd.Timestamp]:
    """``(trigger_id, model, triggered_at)`` of a ``model.retrain.trigger`` payload."""
    for name in ("trigger_id", "model", "triggered_at"):
        if not isinstance(payload.get(name), str) or not payload.get(name):
            raise TriggerError(
                f"The '{name}' field of a model.retrain.trigger must be a non-empty string. Got {payload.get(name)!r}."
            )
    try:
        ts = pd.Timestamp(payload["triggered_at"])
    except ValueError as exc:
        raise TriggerError(
            f"The 'triggered_at' field of a model.retrain.trigger must be ISO 8601. Got {payload['triggered_at']!r}."
        ) from exc
    if ts.tzinfo is None:
        raise TriggerError(
            f"The 'triggered_at' field of a model.retrain.trigger must be timezone-aware. Got {payload['triggered_at']!r}."
        )
    return str(payload["trigger_id"]), str(payload["model"]), ts.tz_convert("UTC")


def validation_rows(fs: FeatureSet, start: pd.Timestamp, n_bars: int) -> pd.DataFrame:
    """Rows with valid features and a known label in ``[start, start + n_bars bars)``: ``ts, y`` + features."""
    ts = fs.features["ts"]
    end = start + n_bars * fs.bar_freq
    sel = fs.valid & ((ts >= start) & (ts < end)).to_numpy() & fs.labels["y"].notna().to_numpy()
    rows = fs.features.loc[sel].copy()
    rows.insert(2, "y", fs.labels["y"].to_numpy()[sel])
    return rows.sort_values(["ts", "symbol"], kind="stable")


def evaluate(model: SignalModel, rows: pd.DataFrame) -> np.ndarray:
    """``P(up)`` of ``model`` on validation rows."""
    from ml.attribution import predict_up

    return np.asarray(predict_up(model, rows[model.feature_names_]), dtype=np.float64)


def train_and_validate(
    registry: ModelRegistry,
    bars: Callable[[], pd.DataFrame],
    config: RetrainConfig,
    model_config: ModelConfig | None,
    model_name: str,
    at: pd.Timestamp,
    trigger_id: str,
) -> tuple[dict[str, Any], SignalModel | None, Validation | None]:
    """Steps 3-4 of a job: retrain on the bars before ``at``, validate on the window after it.

    Returns ``(fields, candidate, validation)``: ``fields`` carries ``outcome`` when the job is
    decided here (``rejected``: too few validation rows, or the candidate is not better); else
    ``candidate`` and ``validation`` are the promotion's inputs. Writes nothing: module-level and
    picklable, so :class:`RetrainWorker` can run it in a child process (``isolate=True``).
    """
    from ml.signal_model import FeatureSet, SignalModel, single_threaded

    current_mv = registry.current(model_name)
    if current_mv is None:
        raise RegistryError(f"model {model_name!r} has no current version")
    current = current_mv.load()
    cfg = config.model_config(model_config or current.config)
    with single_threaded():
        fs = FeatureSet.from_bars(bars(), cfg)
        until = at - fs.bar_freq
        out: dict[str, Any] = {"current_version": current_mv.version, "trigger_id": trigger_id}
        candidate = SignalModel(cfg).fit_features(fs, until=until)
        out["candidate_version"] = candidate.model_version_
        out["train_window"] = {
            "start": utc_iso(candidate.train_start_),
            "end": utc_iso(candidate.train_end_),
            "trained_until": utc_iso(until),
            "n_train": candidate.n_train_,
            "n_calibration": candidate.n_calibration_,
        }
        rows = validation_rows(fs, at, config.validation_bars)
        out["validation_window"] = {
            "start": utc_iso(at),
            "end": utc_iso(at + config.validation_bars * fs.bar_freq),
            "n_rows": len(rows),
        }
        if len(rows) < config.min_validation_rows:
            out.update(
                outcome="rejected",
                note=f"not enough out-of-sample rows after the trigger: {len(rows)} < "
                f"{config.min_validation_rows} (re-send the trigger once more bars exist)",
            )
            return out, None, None
        val = compare(
            rows["ts"], rows["y"], evaluate(current, rows), evaluate(candidate, rows), config.validation
        )
    out["validation"] = val.to_dict()
    out["decided_at"] = utc_iso(rows["ts"].max() + fs.bar_freq * (1 + cfg.horizon))
    if not val.promote:
        out.update(outcome="rejected", note="; ".join(val.reasons))
        return out, None, None
    return out, candidate, val


def _child_init(level: int) -> None:
    """A job's child process logs at the service's level, to the service's stderr, and finishes its
    job on SIGTERM/SIGINT: a stop (systemd signals the whole cgroup) must not kill the job and record
    it ``failed`` (acknowledging its trigger); the service stops after the job, as it does
    in-process. SIGKILL still kills both, and the unacknowledged trigger is redelivered."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s [retrain child]: %(message)s")


@dataclass
class RetrainWorker:
    """Runs one job per trigger (see the module docstring).

    Parameters
    ----------
    registry
        Where versions live and which one is current.
    bars
        Returns the bars to train and validate on (called once per job).
    store
        Artifact store for ``retrain_jobs`` and the trigger queue (``None``: records stay in memory).
    config
        Windows and promotion rules.
    model_config
        Base hyperparameters of candidates (default: the current model's).
    on_promoted
        Called with ``(model, new_version)`` after a promotion (e.g. reset a drift detector).
    aliases
        Extra names a trigger may use for a registered model (e.g. ``{"demo-signal-v1": "signal-model"}``).
    isolate
        Train and validate in a child process per job (the CLI service does); default in-process.
    """

    registry: ModelRegistry
    bars: Callable[[], pd.DataFrame]
    store: ArtifactStore | None = None
    config: RetrainConfig = field(default_factory=RetrainConfig)
    model_config: ModelConfig | None = None
    on_promoted: Callable[[str, str], None] | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    log: JobLog = field(default_factory=JobLog)
    isolate: bool = False
    """Run each job's training and validation in a fresh child process (see the module docstring).
    ``bars``, ``registry`` and the configs must then pickle (no lambdas)."""

    @classmethod
    def with_store_log(cls, **kwargs: Any) -> RetrainWorker:
        """A worker whose job log is loaded from the store's ``retrain_jobs`` artifact (dedupe across restarts)."""
        worker = cls(**kwargs)
        if worker.store is not None:
            res = worker.store.read(JOBS_ARTIFACT)
            if res.ok:
                worker.log = JobLog.from_dict(res.data)
        return worker

    # ------------------------------------------------------------------ one trigger
    def handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Run (or dedupe) the job of one trigger payload; returns its record."""
        try:
            trigger_id, model_ref, at = parse_trigger(payload)
        except TriggerError as exc:
            bad = {"trigger_id": str(payload.get("trigger_id", "?")), "outcome": "failed", "note": str(exc)}
            return self._record(bad, payload, resolve=False)
        done = self.log.get(trigger_id)
        if done is not None:
            self.log.duplicates[trigger_id] = self.log.duplicates.get(trigger_id, 0) + 1
            self._persist()
            return {**done, "duplicate_of": trigger_id, "outcome_now": "duplicate"}
        job: dict[str, Any] = {
            "trigger_id": trigger_id,
            "model_ref": model_ref,
            "reason": str(payload.get("reason", "")),
            "priority": payload.get("priority"),
            "triggered_at": utc_iso(at),
        }
        name = self.aliases.get(model_ref)
        found = (name, None) if name is not None else self.registry.find(model_ref)
        if found is None or self.registry.current_version(found[0]) is None:
            job.update(
                outcome="rejected",
                note=f"unknown model {model_ref!r}: not in the registry at {self.registry.root}",
            )
            return self._record(job, payload)
        model_name = found[0]
        job["model"] = model_name
        try:
            job.update(self._run(model_name, at, trigger_id))
        except Exception as exc:  # a failed job is recorded, never half-written
            log.exception("retrain job %s failed", trigger_id)
            job.update(outcome="failed", note=f"{type(exc).__name__}: {exc}")
        return self._record(job, payload)

    def _promote(
        self, model_name: str, candidate: SignalModel, parent: str, val: Validation, info: dict[str, Any]
    ) -> dict[str, Any]:
        meta = {
            "parent_version": parent,
            "trigger_id": info["trigger_id"],
            "train_window": info["train_window"],
            "validation_window": info["validation_window"],
            "metrics": val.to_dict()["metrics"],
        }
        try:
            self.registry.stage(model_name, candidate, metadata=meta)
        except RegistryError:
            if candidate.model_version_ not in self.registry.versions(model_name):
                raise
            # content-addressed version already stored (same config and data): reuse it
        at = pd.Timestamp(info["decided_at"]).to_pydatetime()
        self.registry.promote(model_name, candidate.model_version_, at=at, note=f"parent {parent}")
        if self.on_promoted is not None:
            self.on_promoted(model_name, candidate.model_version_)
        b = val.metrics["brier"]
        return {
            "outcome": "promoted",
            "new_version": candidate.model_version_,
            "note": f"promoted {candidate.model_version_} over {parent}: Brier {b.diff:+.5f} "
            f"[{b.ci_low:+.5f}, {b.ci_high:+.5f}]",
        }

    def _run(self, model_name: str, at: pd.Timestamp, trigger_id: str) -> dict[str, Any]:
        stale = self._stale(model_name, at, trigger_id)
        if stale is not None:  # decided from the live version's metadata: no model load, no child
            return stale
        args = (self.registry, self.bars, self.config, self.model_config, model_name, at, trigger_id)
        if self.isolate:
            out, candidate, val = self._in_child(args, trigger_id)
        else:
            out, candidate, val = train_and_validate(*args)
        if candidate is None or val is None:
            return out
        return {**out, **self._promote(model_name, candidate, out["current_version"], val, out)}

    def _stale(self, model_name: str, at: pd.Timestamp, trigger_id: str) -> dict[str, Any] | None:
        """The job's record when the live model was trained on data up to or after the trigger.

        A retrain on the bars before the trigger would replace the live model with one trained on
        older data (a trigger that waited in the queue while a newer model went live).
        """
        current_mv = self.registry.current(model_name)
        live_until = None if current_mv is None else current_mv.metadata.get("trained_until")
        if current_mv is None or live_until is None or pd.Timestamp(live_until) < at:
            return None
        return {
            "current_version": current_mv.version,
            "trigger_id": trigger_id,
            "outcome": "rejected",
            "note": f"stale trigger: the live model {current_mv.version} was trained on data until "
            f"{utc_iso(pd.Timestamp(live_until))}, not before the trigger at {utc_iso(at)}; a retrain on "
            "the bars before the trigger would replace it with an older model",
        }

    def _in_child(
        self, args: tuple[Any, ...], trigger_id: str
    ) -> tuple[dict[str, Any], SignalModel | None, Validation | None]:
        """:func:`train_and_validate` in a fresh spawned interpreter that exits after the job."""
        ctx = multiprocessing.get_context("spawn")  # never fork: the service has threads
        level = logging.getLogger().getEffectiveLevel()
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=_child_init, initargs=(level,)) as pool:
            try:
                return pool.submit(train_and_validate, *args).result()
            except BrokenProcessPool as exc:
                raise ChildDied(
                    f"the retrain child process of trigger {trigger_id} died before returning "
                    f"(killed, out of memory or crashed): {exc}"
                ) from exc

    # ------------------------------------------------------------------ bookkeeping
    def _record(
        self, job: dict[str, Any], payload: Mapping[str, Any], *, resolve: bool = True
    ) -> dict[str, Any]:
        self.log.add(job)  # the outcome's only record: ml.drift_service reads it, never rewrites it
        self._persist()
        log.info("retrain job %s: %s (%s)", job["trigger_id"], job["outcome"], job.get("note", ""))
        return job

    def _persist(self) -> None:
        if self.store is not None:
            self.store.write(JOBS_ARTIFACT, self.log.to_dict(), source=SOURCE)

    # ------------------------------------------------------------------ the bus
    def on_message(self, msg: Message) -> None:
        """Per-message handler: run the job; the loop acknowledges after this returns."""
        import msgspec

        self.handle(msgspec.to_builtins(msg.event))

    def consume(
        self,
        bus: Bus,
        *,
        consumer: str = "worker-1",
        once: bool = False,
        stop: threading.Event | None = None,
        block_ms: int = 1000,
    ) -> int:
        """Consume ``model.retrain.trigger`` as ``consumer`` of group ``retrain-worker``; returns jobs handled.

        Runs the bus's consumer loop (:class:`infra.bus.Consumer`): invalid triggers are
        dead-lettered with the reason, a trigger is acknowledged after its job was recorded, and
        a Redis outage is waited out like every other consumer does.
        """
        from infra.bus import TOPIC_RETRAIN, Consumer, each_message

        loop = Consumer(
            bus,
            [TOPIC_RETRAIN],
            GROUP,
            consumer,
            each_message(bus, GROUP, self.on_message),
            count=10,
            block_ms=block_ms,
        )
        return loop.run(stop=stop, until_idle=once).handled


# --------------------------------------------------------------------------- CLI
def preload_promotion(registry: ModelRegistry) -> list[str]:
    """Load each live model once at start-up; returns the models loaded.

    A promotion stays in the service and its load check unpickles the candidate, which imports
    scikit-learn and SciPy (~90 MB, once). Doing it before the first job makes the service's
    RSS flat from the start instead of stepping up at whichever job comes first (and checks that
    the live models load). A model that does not load is logged and left to its job to report.
    """
    loaded = []
    for name in registry.models():
        try:
            registry.load_current(name)
        except Exception as exc:  # the job that promotes over it will record the failure
            log.info("start-up: live model %r does not load (%s: %s)", name, type(exc).__name__, exc)
        else:
            loaded.append(name)
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ml.retrain_worker [--bus URL] [--once] [--rollback] [--model NAME] [--bars PATH ...]``."""
    from infra.bus import TOPIC_RETRAIN, connect_bus, stop_on_signals
    from infra.loaders import load_bars_many
    from infra.prom import make_metrics, start_service_metrics
    from infra.safety import ProductionWriteRefused, require_prod_write
    from infra.settings import load_settings
    from infra.store import open_store

    parser = argparse.ArgumentParser(
        prog="python -m ml.retrain_worker",
        description=__doc__.split("\n")[0],
        epilog="Each job trains and validates in a fresh child process (spawn) that exits after the "
        "job, so the service does not keep a job's memory (~1-2 s of imports per job).",
    )
    parser.add_argument("--bus", default=None, help="event bus URL (default: EVENTBUS_URL, else memory://)")
    parser.add_argument("--once", action="store_true", help="handle the triggers waiting now, then exit")
    parser.add_argument(
        "--rollback", action="store_true", help="make the previous version of --model live again"
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"model name for --rollback (default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--bars", nargs="+", metavar="PATH", help="bar files (default <DATA_DIR>/bars.parquet)"
    )
    parser.add_argument("--consumer", default="worker-1", help="consumer name within the group")
    args = parser.parse_args(argv)
    settings = load_settings()
    # Check first: a worker that may not promote must not consume (and lose) a trigger. One line,
    # exit 3, through run_cli (issue 22 item 11).
    require_prod_write(settings, "model promotion (the retrain worker promotes validated models)")
    registry = ModelRegistry.from_settings(settings)
    if args.rollback:
        try:
            mv = registry.rollback(args.model, at=dt.datetime.now(dt.UTC), note="manual rollback (CLI)")
        except (RegistryError, ProductionWriteRefused) as exc:
            print(f"ml.retrain_worker: {exc}", file=sys.stderr)
            return 2
        print(f"rolled back {args.model}: current version is now {mv.version}")
        return 0
    paths = args.bars or [str(settings.data_dir / "bars.parquet")]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        print(f"ml.retrain_worker: bar file(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    worker = RetrainWorker.with_store_log(
        registry=registry,
        bars=functools.partial(load_bars_many, paths),  # picklable: the job's child loads the bars
        store=open_store(settings),
        isolate=True,
    )
    preload_promotion(registry)
    bus = connect_bus(args.bus or settings.eventbus_url)
    server = None if args.once else start_service_metrics(make_metrics(), "retrain_worker", bus=bus, topics=(TOPIC_RETRAIN,), settings=settings, clm_artifacts=True)  # fmt: skip
    stop = stop_on_signals("retrain worker")
    try:
        n = worker.consume(bus, consumer=args.consumer, once=args.once, stop=stop)
    finally:
        if server is not None:
            server.shutdown()
        bus.close()
    print(f"ml.retrain_worker: {once_summary(n, worker.log.to_dict()['counts'])}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(run_cli(main, prog="python -m ml.retrain_worker"))
