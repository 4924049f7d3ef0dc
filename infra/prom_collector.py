"""The scrape-time collector: bus, artifact and mirror state read on every Prometheus scrape.

:class:`ServiceCollector` is registered by :func:`infra.prom.start_service_metrics` next to the
metrics a service updates itself; it reads the stream lengths, consumer groups and dead letters
of the bus, the ages and contents of the artifacts (drift statistics, triggers, retrain jobs) and
the Firestore mirror's state at scrape time, so a scrape never waits on a service's loop and a
failing source gives ``quantum_bus_up 0`` (or no sample), never a failed scrape. The metric names
are listed in :mod:`infra.prom`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infra.artifacts import read_artifact_file
from infra.contracts.ml_artifacts import DriftData, RetrainJobsData, RetrainTriggersData

if TYPE_CHECKING:
    from infra.bus import Bus
    from infra.settings import Settings

log = logging.getLogger(__name__)

DRIFT_STATISTICS = ("accuracy_cusum", "calibration_cusum", "high_conf_win_rate", "ks_d")
_DRIFT_THRESHOLD_KEYS = {
    "accuracy_cusum": "accuracy_threshold",
    "calibration_cusum": "calibration_threshold",
    "high_conf_win_rate": "high_conf_threshold",
    "ks_d": "ks_threshold",
}
DRIFT_KINDS = ("accuracy_drift", "calibration_drift", "distribution_shift")
RETRAIN_OUTCOMES = ("promoted", "rejected", "failed")
TRIGGER_OUTCOMES = ("pending", "promoted", "rejected", "failed")
BREAKER_STATES = ("closed", "open", "half_open")


def epoch_seconds(ts: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 string with a timezone, None for anything else."""
    if not isinstance(ts, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


T = TypeVar("T")


def _read_typed(path: Path, cls: type[T]) -> T | None:
    """An artifact's ``data`` decoded by its contract (:mod:`infra.contracts`), or None when it is
    missing, corrupt, of another schema or invalid (the doctor names what is wrong)."""
    res = read_artifact_file(path)
    return res.typed if res.usable and isinstance(res.typed, cls) else None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


@dataclass(eq=False)  # registries keep collectors in a dict: hash by identity
class ServiceCollector(Collector):
    """Reads the bus, the artifact folder and the Firestore mirror's status on every scrape.

    Parameters
    ----------
    service
        Name of the service (``feedback_bridge``, ``trainer`` ...), for log lines; Prometheus
        labels its samples by the scrape target (``service`` in ``deploy/prometheus/prometheus.yml``).
    bus
        The service's bus: stream lengths, consumer groups (lag, pending) and dead letters of
        ``topics`` (a failing bus gives ``quantum_bus_up 0``, never a failed scrape).
    topics
        Topics to report (the ones the service reads or writes).
    settings
        For the artifact folder (``CACHE_DIR``), ``ARTIFACT_MAX_AGE_S`` and the mirror's breaker.
    stats
        Returns the service's own cumulative counters (name -> number), exported as
        ``quantum_service_events_total{kind}``.
    clm_artifacts
        Also export the drift and retrain numbers of the ``drift``, ``retrain_jobs`` and
        ``retrain_triggers`` artifacts (one service per deployment should: the retrain worker).
    """

    service: str
    bus: Bus | None = None
    topics: Sequence[str] = ()
    settings: Settings | None = None
    stats: Callable[[], Mapping[str, Any]] | None = None
    clm_artifacts: bool = False
    errors: int = field(default=0, init=False)

    def describe(self) -> Iterable[Metric]:
        return []  # no metadata call at registration: collect() may touch the bus

    def collect(self) -> Iterator[Metric]:
        for part in (self._bus, self._stats, self._artifacts, self._breaker, self._clm):
            try:
                yield from part()
            except Exception as exc:  # one broken source must not fail the whole scrape
                self.errors += 1
                log.warning(
                    "metrics: %s: %s sampling failed: %s: %s",
                    self.service,
                    part.__name__,
                    type(exc).__name__,
                    exc,
                )

    def _bus(self) -> Iterator[Metric]:
        if self.bus is None:
            return
        from infra.bus import DEFAULT_MAXLEN, dead_letter_topic

        up = GaugeMetricFamily("quantum_bus_up", "1 when the event bus answered this scrape")
        length = GaugeMetricFamily("quantum_bus_stream_length", "Entries in the stream", labels=["topic"])
        lag = GaugeMetricFamily(
            "quantum_bus_consumer_lag", "Entries not yet delivered to the group", labels=["topic", "group"]
        )
        pending = GaugeMetricFamily(
            "quantum_bus_consumer_pending",
            "Entries delivered but not acknowledged",
            labels=["topic", "group"],
        )
        dead = GaugeMetricFamily("quantum_bus_dead_letters", "Entries in <topic>.dlq", labels=["topic"])
        try:
            for topic in self.topics:
                length.add_metric([topic], self.bus.length(topic))
                dead.add_metric([topic], self.bus.length(dead_letter_topic(topic)))
                for g in self.bus.groups(topic):
                    pending.add_metric([topic, g.name], g.pending)
                    if g.lag is not None:
                        lag.add_metric([topic, g.name], g.lag)
        except Exception as exc:
            log.warning("metrics: the bus did not answer: %s: %s", type(exc).__name__, exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        cap = GaugeMetricFamily("quantum_bus_stream_maxlen", "Length cap of every stream (EVENTBUS_MAXLEN)")
        cap.add_metric([], float(getattr(self.bus, "maxlen", DEFAULT_MAXLEN)))
        yield from (up, cap, length, lag, pending, dead)

    def _stats(self) -> Iterator[Metric]:
        if self.stats is None:
            return
        # no ``service`` label here: the scrape config sets it on the target (a clash would rename it)
        fam = CounterMetricFamily(
            "quantum_service_events", "The service's own cumulative counters", labels=["kind"]
        )
        for kind, value in sorted(self.stats().items()):
            v = _num(value)
            if v is not None:
                fam.add_metric([kind], v)
        yield fam

    def _artifacts(self) -> Iterator[Metric]:
        if self.settings is None:
            return
        root = self.settings.cache_dir
        fam = GaugeMetricFamily(
            "quantum_artifact_last_write_timestamp_seconds",
            "Last write of <CACHE_DIR>/<artifact>.json, Unix seconds",
            labels=["artifact"],
        )
        if root.is_dir():
            for p in sorted(root.glob("*.json")):
                fam.add_metric([p.stem], p.stat().st_mtime)
        limit = GaugeMetricFamily("quantum_artifact_max_age_seconds", "ARTIFACT_MAX_AGE_S")
        limit.add_metric([], self.settings.artifact_max_age_s)
        yield from (fam, limit)

    def _breaker(self) -> Iterator[Metric]:
        if self.settings is None:
            return
        from infra.firestore_status import mirror_status

        st = mirror_status(self.settings)
        state = GaugeMetricFamily(
            "quantum_circuit_breaker_state", "1 for the breaker's current state", labels=["breaker", "state"]
        )
        if st.get("breaker_state") in BREAKER_STATES:
            for s in BREAKER_STATES:
                state.add_metric(["firestore", s], 1.0 if st["breaker_state"] == s else 0.0)
        depth = GaugeMetricFamily("quantum_firestore_outbox_depth", "Writes queued for the Firestore mirror")
        depth.add_metric([], float(st.get("outbox_depth") or 0))
        yield from (state, depth)

    def _clm(self) -> Iterator[Metric]:
        if not self.clm_artifacts or self.settings is None:
            return
        root = self.settings.cache_dir
        drift = _read_typed(root / "drift.json", DriftData)
        if drift is not None:
            stat = GaugeMetricFamily(
                "quantum_clm_drift_statistic", "Value at the last drift check", labels=["statistic"]
            )
            thr = GaugeMetricFamily(
                "quantum_clm_drift_threshold",
                "Threshold the statistic is tested against",
                labels=["statistic"],
            )
            checks = drift.checks
            current = drift.current_model
            if current is not None:  # one detector per model version: the live model's last check
                checks = [c for c in checks if c.model in (None, current)]
            if checks:
                last = checks[-1]
                for name in DRIFT_STATISTICS:  # field names of DriftCheck
                    v, t = getattr(last, name), getattr(last, _DRIFT_THRESHOLD_KEYS[name])
                    if v is not None:
                        stat.add_metric([name], v)
                    if t is not None:
                        thr.add_metric([name], t)
            kinds = {k: 0 for k in DRIFT_KINDS}
            for d in drift.detections:
                if d.kind in kinds:
                    kinds[d.kind] += 1
            det = GaugeMetricFamily(
                "quantum_clm_detections", "Detections in the drift artifact, by kind", labels=["kind"]
            )
            for k, n in kinds.items():
                det.add_metric([k], n)
            yield from (stat, thr, det)
        jobs = _read_typed(root / "retrain_jobs.json", RetrainJobsData)
        if jobs is not None:
            counts = GaugeMetricFamily(
                "quantum_clm_retrain_jobs", "Retrain jobs in the retrain_jobs artifact", labels=["outcome"]
            )
            last_ts = GaugeMetricFamily(
                "quantum_clm_retrain_last_timestamp_seconds",
                "decided_at of the last retrain job with this outcome, Unix seconds",
                labels=["outcome"],
            )
            n_jobs = {o: 0 for o in RETRAIN_OUTCOMES}
            latest: dict[str, float] = {}
            for j in jobs.jobs:
                if j.outcome in n_jobs:
                    n_jobs[j.outcome] += 1
                    if j.decided_at is not None:
                        ts = j.decided_at.timestamp()
                        latest[j.outcome] = max(latest.get(j.outcome, ts), ts)
            for o in RETRAIN_OUTCOMES:
                counts.add_metric([o], n_jobs[o])
                if o in latest:
                    last_ts.add_metric([o], latest[o])
            yield from (counts, last_ts)
        triggers = _read_typed(root / "retrain_triggers.json", RetrainTriggersData)
        if triggers is not None:
            fam = GaugeMetricFamily(
                "quantum_clm_retrain_triggers",
                "Triggers in the retrain_triggers artifact",
                labels=["outcome"],
            )
            by_outcome = {o: 0 for o in TRIGGER_OUTCOMES}
            for tr in triggers.triggers:
                if tr.outcome in by_outcome:
                    by_outcome[tr.outcome] += 1
            for o, c in by_outcome.items():
                fam.add_metric([o], c)
            yield fam
