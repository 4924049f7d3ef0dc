"""The whole loop under load: redis-server, the services as separate processes, the paper driver.

``python -m bench.soak --duration 1h --rate 50 [--drift-at 30m] [--out DIR]``
``python -m bench.soak --stress [--step 20s]``

What it does, the way the systemd units run the services:

1. makes a throwaway ``LOGS_DIR`` with the demo's data and models (``python -m scripts.demo``);
2. starts ``redis-server`` on a free loopback port (append-only file) and every long-running
   service as its own process against it (:data:`SERVICES`: the feedback bridge, the online
   trainer, the retrain worker and the drift detector service);
3. runs the paper-trading driver (:mod:`sim.paper`) at ``--rate`` trades per second;
4. samples every ``--sample`` seconds each process's RSS and CPU (``/proc``) and its children's
   RSS (the retrain worker's job runs in a child: reported as its "job peak"), each consumer
   group's lag and pending count, the dead-letter streams, and the latency from a trade's signal
   being published (the start of its batch) to its ``rl.feedback`` (stream entry ids carry
   Redis's clock);
5. stops the driver, waits for the groups to drain, stops the services with SIGTERM and audits
   every order (:mod:`sim.audit`: exactly one ``rl.feedback`` with the right reward), counts log
   lines at WARNING and above per service, and writes ``soak.json``, a table on stdout and
   ``soak.html`` (RSS, lag and latency over time; plotly, self-contained).

``--stress`` raises the rate step by step (doubling) until a group's lag keeps growing through a
step, and reports the highest sustainable rate and the service whose group fell behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SERVICES: dict[str, list[str]] = {
    "bridge": ["-m", "execution.feedback_bridge", "--consumer", "bridge-soak"],
    "trainer": ["-m", "research.rl_sizer.trainer", "--consumer", "trainer-soak", "--metrics-port", "-1"],
    "retrain": ["-m", "ml.retrain_worker", "--consumer", "retrain-soak"],
    "drift": ["-m", "ml.drift_service", "--consumer", "drift-soak"],
}
"""Service name -> interpreter arguments (the README's commands; the bus URL comes from EVENTBUS_URL)."""

LOG_LEVEL = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")


@dataclass(frozen=True, kw_only=True)
class SoakConfig:
    duration_s: float = 60.0
    rate: float = 10.0
    drift_at_s: float | None = None
    warmup_s: float = 300.0
    """RSS growth is measured from the end of the warm-up (or a fifth of the run, if shorter)."""
    sample_s: float = 2.0
    drain_s: float = 60.0
    duplicates: float = 0.02
    shuffle_window: int = 8
    symbols: int = 8
    drift_flip: float = 0.35
    """Share of outcomes turned against the signal after ``drift_at_s`` (:class:`sim.paper.PaperConfig`)."""
    model_name: str | None = None
    """``model_version`` on every signal; None (the default): each walk-forward refit's own version,
    registered under the registry's ``signal-model`` so a retrain trigger naming it resolves to
    the live model. One name over every refit would show each refit as a shift of the confidence
    distribution (the KS test fires after the first refit, before any planted change)."""
    registry_model: str = "signal-model"
    services: tuple[str, ...] = tuple(SERVICES)
    out: Path | None = None
    seed: int = 0
    policy: str = "edge"
    """The driver's governor policy (:func:`sim.paper.live_governor`): the live edge sizer the
    trainer checkpoints (static Kelly until its first valid checkpoint), ``ppo`` or ``kelly``."""


@dataclass
class Sample:
    t: float
    rss_mb: dict[str, float] = field(default_factory=dict)
    child_rss_mb: dict[str, float] = field(default_factory=dict)
    """Summed RSS of each service's live descendants (the retrain worker's job child), 0 when none."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    feedback: int = 0
    p99_ms: float | None = None
    governor_policy: str | None = None
    """The policy the driver's governor reports sizing now (``quantum_rl_governor_policy``)."""
    governor_fallbacks: float = 0.0


def _proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds) of a live process, from /proc."""
    rss = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(parts[11]) + int(parts[12])) / ticks


def _descendants(pid: int) -> list[int]:
    """Pids of a process's live descendants (``/proc/<pid>/task/*/children``, recursively)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        kids: list[int] = []
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{p}/task/{task}/children") as fh:
                    kids += [int(k) for k in fh.read().split()]
        out += kids
        todo += kids
    return out


def _children_rss(pid: int) -> float:
    """Summed RSS in MB of a process's live descendants (0.0 when it has none)."""
    total = 0.0
    for kid in _descendants(pid):
        with contextlib.suppress(OSError):
            total += _proc_stats(kid)[0]
    return total


def _demo_logs(logs: Path, *, full: bool) -> None:
    """Demo data (and, with ``full``, the demo's registered models, which a retrain needs)."""
    env = {**os.environ, "LOGS_DIR": str(logs), "ENV": "dev"}
    cmd = [sys.executable, "-m", "scripts.demo", *([] if full else ["--data-only"])]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(0.99 * len(v)))]


class Soak:
    """One soak run (see the module docstring)."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.samples: list[Sample] = []
        self.latencies_ms: list[float] = []
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.extra_args: dict[str, list[str]] = {}
        self._sent_at: dict[str, float] = {}
        self._fb_ids: dict[str, str] = {}
        self._fb_events: list[dict[str, Any]] = []
        self._last_fb_id = "0-0"
        self.driver_error: str | None = None
        self.refresher: Any = None
        self._sized: dict[str, int] = {}
        self._first_learned: int | None = None
        self._learned_mults: list[float] = []
        """Keeps the driver's governor on the trainer's newest checkpoint (set by :meth:`run`)."""
        self.drift_report: dict[str, Any] | None = None
        from infra.prom import make_metrics

        self.metrics = make_metrics()
        """The driver's metrics (its governor's policy gauge), sampled with the services'."""

    # ------------------------------------------------------------------ processes
    def _start_services(self, url: str, logs: Path, work: Path) -> None:
        for name in self.config.services:
            env = {
                **os.environ,
                "LOGS_DIR": str(logs),
                "EVENTBUS_URL": url,
                "ENV": "dev",
                "PYTHONUNBUFFERED": "1",
                # /metrics on a free port (0): a second soak or an installed service never collides
                **{
                    f"METRICS_PORT_{svc.upper()}": "0"
                    for svc in ("feedback_bridge", "retrain_worker", "drift_service")
                },
            }
            log = open(work / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it until the end
            self.procs[name] = subprocess.Popen(
                [sys.executable, *SERVICES[name], *self.extra_args.get(name, []), "--bus", url],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )

    def _stop_services(self) -> dict[str, int | None]:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes

    # ------------------------------------------------------------------ sampling
    def _read_feedback(self, client: Any) -> None:
        from infra.bus import TOPIC_FEEDBACK

        while True:
            rows = client.xrange(TOPIC_FEEDBACK, min=f"({self._last_fb_id}", count=5000)
            if not rows:
                return
            for entry_id, fields in rows:
                eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                self._last_fb_id = eid
                raw = fields.get(b"payload", fields.get("payload")) if isinstance(fields, dict) else None
                if raw is None:
                    raw = next(iter(fields.values()))
                ev = json.loads(raw)
                self._fb_events.append(ev)
                sent = self._sent_at.get(str(ev.get("order_id")))
                if sent is not None:
                    self.latencies_ms.append(max(0.0, int(eid.split("-")[0]) - sent * 1000.0))

    def _sample(self, client: Any, bus: Any, t0: float) -> Sample:
        from infra.bus import TOPIC_EXECUTION, TOPIC_FEEDBACK, TOPIC_POSITION, TOPIC_RETRAIN, TOPIC_SIGNAL

        s = Sample(t=time.monotonic() - t0)
        for name, p in self.procs.items():
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    s.rss_mb[name], s.cpu_s[name] = _proc_stats(p.pid)
                    s.child_rss_mb[name] = _children_rss(p.pid)
        for topic in (TOPIC_SIGNAL, TOPIC_EXECUTION, TOPIC_POSITION, TOPIC_FEEDBACK, TOPIC_RETRAIN):
            try:
                for g in bus.groups(topic):
                    key = f"{topic}/{g.name}"
                    s.lag[key] = int(g.lag or 0)
                    s.pending[key] = int(g.pending)
            except Exception:  # a topic nobody has created yet
                continue
        s.dead_letters = sum(int(client.xlen(k)) for k in client.scan_iter(match="*.dlq"))
        self._read_feedback(client)
        s.feedback = len(self._fb_events)
        s.p99_ms = _p99(self.latencies_ms[-2000:])
        self._sample_governor(s)
        return s

    def _sample_governor(self, s: Sample) -> None:
        """The driver's governor metrics, read from its Prometheus registry."""
        from infra.prom import GOVERNOR_POLICIES

        reg = self.metrics.registry
        for p in GOVERNOR_POLICIES:
            if reg.get_sample_value("quantum_rl_governor_policy", {"policy": p}) == 1.0:
                s.governor_policy = p
        s.governor_fallbacks = reg.get_sample_value("quantum_rl_governor_fallbacks_total") or 0.0

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        import pandas as pd
        import redis

        from infra.bus import connect_bus
        from sim.audit import audit
        from sim.paper import PaperConfig, PaperTrader, cycled_bars, live_governor, load_signal_table
        from tests.redis_server import RedisServer

        cfg = self.config
        work = Path(tempfile.mkdtemp(prefix="soak-")) if cfg.out is None else cfg.out
        work.mkdir(parents=True, exist_ok=True)
        logs = work / "logs"
        # the refits the driver plays are the registry's versions (below); the full demo (its own
        # registered model, drift and pending retrain triggers) only when signals carry one name
        _demo_logs(logs, full=cfg.drift_at_s is not None and cfg.model_name is not None)
        server = RedisServer(work / "redis", appendfsync="everysec").start()
        client = redis.Redis.from_url(server.url)
        bus = connect_bus(server.url)
        audit_path = work / "sent.jsonl"
        try:
            from infra.settings import load_settings

            settings = load_settings({"LOGS_DIR": str(logs)})
            on_fold = None
            if cfg.drift_at_s is not None and cfg.model_name is None:
                from ml.model_registry import ModelRegistry

                registry = ModelRegistry.from_settings(settings)
                known = set(registry.versions(cfg.registry_model))

                def on_fold(model: Any) -> None:  # the upstream refits, as versions of the live model
                    if model.model_version_ not in known:
                        registry.stage(
                            cfg.registry_model, model, metadata={"source": "sim.paper walk-forward refit"}
                        )
                        known.add(model.model_version_)
                    if registry.current_version(cfg.registry_model) is None:
                        # the refit live when the first signal is played: what a retrain must beat,
                        # trained on data before every trigger of the run
                        registry.promote(cfg.registry_model, model.model_version_,
                                         at=model.trained_until_.to_pydatetime(), note="soak: first refit")  # fmt: skip

            signals = load_signal_table(settings, None, symbols=cfg.symbols, on_fold=on_fold)
            # the retrain worker trains on the market the driver plays: every pass of the bars
            passes = math.ceil(cfg.duration_s * cfg.rate / max(len(signals), 1)) + 1
            bars = pd.read_parquet(settings.data_dir / "bars.parquet")
            cycled_bars(bars, signals, passes).to_parquet(work / "bars_cycled.parquet", index=False)
            self.extra_args["retrain"] = ["--bars", str(work / "bars_cycled.parquet")]
            self._start_services(server.url, logs, work)
            time.sleep(3.0)  # let the services create their groups before the first trade
            paper = PaperConfig(rate=cfg.rate, duration_s=cfg.duration_s, drift_at_s=cfg.drift_at_s,
                                duplicate_rate=cfg.duplicates, shuffle_window=cfg.shuffle_window,
                                symbols=cfg.symbols, seed=cfg.seed, drift_flip=cfg.drift_flip,
                                model_name=cfg.model_name)  # fmt: skip
            fh = open(audit_path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
            governor, self.refresher = live_governor(settings, cfg.policy, every_s=2.0)
            trader = PaperTrader(
                bus, signals, config=paper, governor=governor, refresh=self.refresher.refresh,
                audit=fh, run_id=f"soak{cfg.seed}", metrics=self.metrics,
            )  # fmt: skip

            def drive() -> None:
                try:
                    trader.run()
                except Exception as exc:  # reported in the summary: a crashed driver is a finding
                    self.driver_error = f"{type(exc).__name__}: {exc}"

            driver = threading.Thread(target=drive, daemon=True)
            t0 = time.monotonic()
            driver.start()
            offset = 0
            while driver.is_alive():
                time.sleep(cfg.sample_s)
                offset = self._note_sent(audit_path, offset)
                self.samples.append(self._sample(client, bus, t0))
            fh.close()
            offset = self._note_sent(audit_path, offset)
            deadline = time.monotonic() + cfg.drain_s
            while time.monotonic() < deadline:
                s = self._sample(client, bus, t0)
                self.samples.append(s)
                if len(self._fb_events) >= trader.stats.trades and all(v == 0 for v in s.lag.values()):
                    break
                time.sleep(1.0)
            codes = self._stop_services()
            self._read_feedback(client)
            from sim.audit import read_sent

            sent = read_sent(audit_path)
            report = audit(sent, self._fb_events)
            self.drift_report = self._audit_drift(sent, settings) if "drift" in cfg.services else None
            return self._summary(work, trader.stats, report.as_dict(), codes)
        finally:
            for p in self.procs.values():
                if p.poll() is None:
                    p.kill()
            bus.close()
            server.stop()

    def _audit_drift(self, sent: list[dict[str, Any]], settings: Any) -> dict[str, Any]:
        """The drift audit (:func:`sim.audit.audit_drift`) over the services' artifacts."""
        from infra.store import open_store
        from sim.audit import audit_drift

        store = open_store(settings)

        def data(name: str) -> dict[str, Any] | None:
            res = store.read(name)
            return res.data if res.ok and isinstance(res.data, dict) else None

        return audit_drift(sent, data("drift"), data("retrain_triggers"), data("retrain_jobs"),
                           planted=self.config.drift_at_s is not None)  # fmt: skip

    def _count_sizing(self, rec: dict[str, Any]) -> None:
        """Tally which policy sized a sent trade (and the learned sizer's multiplier)."""
        src = str(rec.get("policy", "static"))
        self._sized[src] = self._sized.get(src, 0) + 1
        if src != "static":
            if self._first_learned is None:
                self._first_learned = len(self._sent_at) - 1
            self._learned_mults.append(float(rec["multiplier"]))

    def _sized_by(self) -> dict[str, Any]:
        """How the driver's governor sized the trades: trades per policy, the first one the learned
        sizer sized, the spread of its multipliers and how many checkpoints were loaded on the way."""
        import numpy as np

        m = self._learned_mults
        return {
            "trades": dict(self._sized),
            "first_learned_trade": self._first_learned,
            "learned_multiplier_p5_p50_p95": [float(v) for v in np.quantile(m, [0.05, 0.5, 0.95])]
            if m
            else None,
            "checkpoints_loaded": getattr(self.refresher, "loads", 0),
        }

    def _note_sent(self, path: Path, offset: int) -> int:
        with open(path, encoding="utf-8") as fh:
            fh.seek(offset)
            for line in fh:
                if line.endswith("\n"):
                    rec = json.loads(line)
                    # from the signal's publish (the batch start), as the latency budget counts
                    self._sent_at[str(rec["order_id"])] = float(rec.get("signal_sent_at", rec["sent_at"]))
                    self._count_sizing(rec)
            return fh.tell()

    def _summary(
        self, work: Path, stats: Any, report: dict[str, Any], codes: dict[str, int | None]
    ) -> dict[str, Any]:
        cfg = self.config
        warm = min(cfg.warmup_s, cfg.duration_s / 5.0)
        growth: dict[str, float | None] = {}
        for name in self.procs:
            series = [(s.t, s.rss_mb[name]) for s in self.samples if name in s.rss_mb]
            after = [r for t, r in series if t >= warm]
            growth[name] = None if len(after) < 2 else (max(after) / after[0] - 1.0)
        log_lines: dict[str, dict[str, int]] = {}
        examples: dict[str, list[str]] = {}
        for name in self.procs:
            text = (work / f"{name}.log").read_text(encoding="utf-8", errors="replace")
            counts: dict[str, int] = {}
            for line in text.splitlines():
                m = LOG_LEVEL.search(line)
                if m:
                    counts[m.group(1)] = counts.get(m.group(1), 0) + 1
                    examples.setdefault(name, [])
                    if len(examples[name]) < 3:
                        examples[name].append(line[:300])
            log_lines[name] = counts
        max_lag = max((v for s in self.samples for v in s.lag.values()), default=0)
        summary = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "driver": asdict(stats),
            "driver_error": self.driver_error,
            "audit": report,
            "drift": self.drift_report,
            "exit_codes": codes,
            "p50_ms": sorted(self.latencies_ms)[len(self.latencies_ms) // 2] if self.latencies_ms else None,
            "p99_ms": _p99(self.latencies_ms),
            "max_lag": max_lag,
            "rss_growth_after_warmup": growth,
            # the service's own RSS is what the growth check watches; a job's child still takes this
            "child_rss_peak_mb": {
                n: max((s.child_rss_mb.get(n, 0.0) for s in self.samples), default=0.0) for n in self.procs
            },
            "log_lines_warning_or_above": log_lines,
            "log_examples": examples,
            "dead_letters": self.samples[-1].dead_letters if self.samples else 0,
            "governor_policy": sorted({s.governor_policy for s in self.samples if s.governor_policy}),
            "sized_by": self._sized_by(),
            "work_dir": str(work),
        }
        (work / "soak.json").write_text(
            json.dumps({**summary, "samples": [asdict(s) for s in self.samples]}, indent=1)
        )
        self._plot(work / "soak.html")
        return summary

    def _plot(self, path: Path) -> None:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=3, cols=1, shared_xaxes=True,
                            subplot_titles=("RSS per service (MB)", "consumer-group lag (entries)",
                                            "p99 signal -> rl.feedback (ms, last 2,000 trades)"))  # fmt: skip
        t = [s.t for s in self.samples]
        for name in self.procs:
            fig.add_trace(
                go.Scatter(x=t, y=[s.rss_mb.get(name) for s in self.samples], name=f"RSS {name}"), 1, 1
            )
            kids = [s.child_rss_mb.get(name) for s in self.samples]
            if any(kids):  # a service that ran a child (the retrain worker's job): dotted
                fig.add_trace(
                    go.Scatter(x=t, y=kids, name=f"RSS {name} job child", line={"dash": "dot"}), 1, 1
                )
        keys = sorted({k for s in self.samples for k in s.lag})
        for k in keys:
            fig.add_trace(go.Scatter(x=t, y=[s.lag.get(k) for s in self.samples], name=f"lag {k}"), 2, 1)
        fig.add_trace(go.Scatter(x=t, y=[s.p99_ms for s in self.samples], name="p99 latency"), 3, 1)
        fig.update_xaxes(title_text="seconds since the first trade", row=3, col=1)
        fig.update_yaxes(title_text="MB", row=1, col=1)
        fig.update_yaxes(title_text="entries", row=2, col=1)
        fig.update_yaxes(title_text="ms", row=3, col=1)
        fig.update_layout(height=900, title="Soak: the learning loop under load")
        fig.write_html(path, include_plotlyjs=True)


def format_table(summary: dict[str, Any]) -> str:
    a = summary["audit"]
    rows = [
        ("trades sent", summary["driver"]["trades"]),
        ("feedback", a["feedback"]),
        ("lost / duplicated / wrong", f"{a['lost']} / {a['duplicated']} / {a['wrong']}"),
        ("p50 / p99 signal -> feedback (ms)", f"{summary['p50_ms']} / {summary['p99_ms']}"),
        ("max group lag", summary["max_lag"]),
        ("dead letters", summary["dead_letters"]),
        (
            "RSS growth after warm-up",
            {k: None if v is None else round(v, 3) for k, v in summary["rss_growth_after_warmup"].items()},
        ),
        (
            "child RSS peak (job, MB)",
            {k: round(v, 1) for k, v in summary.get("child_rss_peak_mb", {}).items() if v},
        ),
        ("log lines >= WARNING", summary["log_lines_warning_or_above"]),
        ("exit codes", summary["exit_codes"]),
        ("governor policy (sampled)", summary["governor_policy"]),
        ("trades sized by", summary["sized_by"]["trades"]),
    ]
    d = summary.get("drift")
    if d is not None:
        rows += [
            (
                "drift: outcome alarms before/after",
                f"{d['outcome_alarms_before']} / {d['outcome_alarms_after']}",
            ),
            ("drift: first after the change", d["first_after"]),
            (
                "drift: distribution shifts (before the change)",
                f"{len(d['distribution_shifts'])} ({d['distribution_shifts_before']})",
            ),
            (
                "drift: trigger / retrain outcome",
                f"{d['trigger_id']} published={d['trigger_published']} -> {d['retrain_outcome']}",
            ),
            ("drift audit ok", d["ok"]),
        ]
    return "\n".join(f"{k:34s} {v}" for k, v in rows)


STRESS_MAX_LAG = 1_000
"""A step whose largest lag reaches this (the soak's bound) is not sustainable, growing or not."""


def step_verdict(samples: Sequence[Sample], *, step_s: float) -> dict[str, Any]:
    """Which groups fell behind during one stress step (see :func:`stress`).

    ``peak_lag``: each group's largest lag while the driver published, up to and including the
    first sample after the step's end (on a saturated machine that sample can come many seconds
    late; the backlog it sees is still one the services built during the step); ``growing``: its lag at the step's last sample above ``max(100, 1.5 x)`` its
    lag at the middle sample; ``behind``: the groups growing or at :data:`STRESS_MAX_LAG` or more,
    largest peak first.
    """
    mid = [x for x in samples if x.t <= step_s]
    during = mid + [x for x in samples if x.t > step_s][:1]
    half = len(mid) // 2
    growing: dict[str, bool] = {}
    if half:
        for k in mid[-1].lag:
            first, last = mid[half].lag.get(k, 0), mid[-1].lag.get(k, 0)
            growing[k] = last > max(100, 1.5 * first)
    groups = sorted({k for x in during for k in x.lag})
    peak = {k: max(x.lag.get(k, 0) for x in during) for k in groups}
    behind = sorted(
        (k for k in groups if growing.get(k) or peak[k] >= STRESS_MAX_LAG), key=lambda k: -peak[k]
    )
    return {"peak_lag": peak, "growing": growing, "samples_in_step": len(mid), "behind": behind}


def stress(base: SoakConfig, *, step_s: float, start_rate: float, max_rate: float) -> dict[str, Any]:
    """Double the rate each step until a group falls behind; return the last rate every group kept up with.

    A group falls behind when its lag grows through the step's second half or reaches
    :data:`STRESS_MAX_LAG` while the driver publishes (a saturated machine may sample too rarely
    to see the growth: the bound still catches it). Each step runs in its own directory (its own
    Redis, services and logs) under ``base.out``.
    """
    results = []
    rate = start_rate
    best = None
    limiter = None
    while rate <= max_rate:
        out_dir = None if base.out is None else base.out / f"step_{int(rate)}"
        s = Soak(
            SoakConfig(
                **{**asdict(base), "duration_s": step_s, "rate": rate, "drain_s": 10.0, "out": out_dir}
            )
        )
        out = s.run()
        v = step_verdict(s.samples, step_s=step_s)
        behind = v["behind"]
        achieved = out["driver"]["trades"] / step_s
        results.append({"rate": rate, "achieved": achieved, "max_lag": out["max_lag"], **v,
                        "audit": out["audit"], "driver_error": out["driver_error"]})  # fmt: skip
        if behind or achieved < 0.8 * rate or out["driver_error"]:
            limiter = behind or [f"the driver ({out['driver_error'] or 'publishing'})"]
            break
        best = rate
        rate *= 2
    return {"steps": results, "highest_sustainable_rate": best, "limited_by": limiter}


def main(argv: Sequence[str] | None = None) -> int:
    from research.rl_sizer.serving import POLICIES
    from sim.paper import parse_duration

    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--duration", default="60s")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--drift-at", default=None)
    p.add_argument("--drift-flip", type=float, default=0.35)
    p.add_argument("--warmup", default="5m")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--stress", action="store_true")
    p.add_argument("--step", default="20s")
    p.add_argument("--max-rate", type=float, default=3200.0)
    p.add_argument("--policy", choices=POLICIES, default="edge", help="the driver's sizing policy")
    a = p.parse_args(argv)

    def on_term(signum: int, _frame: Any) -> None:  # SIGTERM unwinds like Ctrl-C: the services are killed
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    cfg = SoakConfig(duration_s=parse_duration(a.duration), rate=a.rate,
                     drift_at_s=None if a.drift_at is None else parse_duration(a.drift_at),
                     warmup_s=parse_duration(a.warmup), out=a.out, drift_flip=a.drift_flip,
                     policy=a.policy)  # fmt: skip
    if a.stress:
        print(
            json.dumps(
                stress(cfg, step_s=parse_duration(a.step), start_rate=a.rate, max_rate=a.max_rate), indent=1
            )
        )
        return 0
    summary = Soak(cfg).run()
    print(format_table(summary))
    print(f"details: {summary['work_dir']}/soak.json, plot: {summary['work_dir']}/soak.html")
    drift_ok = summary["drift"] is None or summary["drift"]["ok"]
    return 0 if summary["audit"]["ok"] and drift_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
