"""A real Prometheus scrapes the bridge, the trainer and the retrain worker fed by a short replay.

Every query of both Grafana dashboards must return data from what the services export; the
Sharpe and cumulative-reward panels must equal the numbers computed here from the feedback
events; the alert rules must load. Needs the ``prometheus`` binary (Debian package
``prometheus``): skipped without it locally, a failure under ``CI=true``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from deploy.grafana.build import DASHBOARDS, SHARPE_EXPR, panel_queries
from tests.deploy_fixtures import ROOT, Loop, run_loop

PROM_DIR = ROOT / "deploy" / "prometheus"
DASH_DIR = ROOT / "deploy" / "grafana" / "dashboards"


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus binary not found (apt-get install -y prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


class Prometheus:
    def __init__(self, base: str) -> None:
        self.base = base

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = _get(f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])


def scrape_config(loop: Loop, tmp_path: Path) -> Path:
    """deploy/prometheus/prometheus.yml with the loop's ports, a 1 s interval and absolute rule paths."""
    cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    cfg["global"]["scrape_interval"] = cfg["global"]["evaluation_interval"] = "1s"
    cfg["rule_files"] = [str(PROM_DIR / f) for f in cfg["rule_files"]]
    ports = {
        "trainer": loop.servers[1],
        "feedback_bridge": loop.servers[0],
        "retrain_worker": loop.servers[2],
    }
    # the replay runs no drift service (its numbers come through the retrain worker): no target for it
    cfg["scrape_configs"] = [
        job
        for job in cfg["scrape_configs"]
        if all(sc["labels"]["service"] in ports for sc in job["static_configs"])
    ]
    for job in cfg["scrape_configs"]:
        for sc in job["static_configs"]:
            server = ports[sc["labels"]["service"]]
            sc["targets"] = [f"127.0.0.1:{server.server_address[1]}"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Loop, Prometheus]]:
    binary = prometheus_binary()
    tmp_path = tmp_path_factory.mktemp("live")
    loop = run_loop(tmp_path, serve=True)
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={scrape_config(loop, tmp_path)}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(tmp_path / 'prometheus.log').read_text()}")
            time.sleep(0.2)
        yield loop, Prometheus(base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        loop.close()


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(r["value"][1]) for r in result]


def test_every_dashboard_query_returns_data_from_the_services(live: tuple[Loop, Prometheus]) -> None:
    _, prom = live
    queries = [  # the committed JSON Grafana loads (test_deploy_grafana checks it is up to date)
        (name, title, expr)
        for name in DASHBOARDS
        for title, expr in panel_queries(json.loads((DASH_DIR / name).read_text(encoding="utf-8")))
    ]
    assert len(queries) >= 20
    deadline = time.monotonic() + 20
    while True:  # rate() needs two scrapes of each target: poll until every query has data
        empty = [(n, t, e) for n, t, e in queries if not prom.query(e)]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not empty, f"queries without data: {empty}"
    ups = prom.query("up")
    assert sorted(r["metric"]["service"] for r in ups) == ["feedback_bridge", "retrain_worker", "trainer"]
    assert _values(ups) == [1.0, 1.0, 1.0]
    rules = _get(f"{prom.base}/api/v1/rules")["data"]["groups"]
    loaded = [r for g in rules for r in g["rules"]]
    assert len(loaded) == 11 and all(r["health"] == "ok" for r in loaded), loaded


def test_sharpe_and_reward_panels_equal_the_feedback_numbers(live: tuple[Loop, Prometheus]) -> None:
    loop, prom = live
    fb = loop.feedback
    assert len(fb) == 100
    pnl = np.array([e["pnl_usd"] for e in fb])
    m = np.array([e["multiplier_used"] for e in fb])
    expected = {"rl": pnl.mean() / pnl.std(), "kelly": (pnl / m).mean() / (pnl / m).std()}
    deadline = time.monotonic() + 20
    while not (got := prom.query(SHARPE_EXPR)) and time.monotonic() < deadline:
        time.sleep(0.5)
    sharpe = {r["metric"]["sizing"]: float(r["value"][1]) for r in got}
    assert sharpe.keys() == expected.keys()
    for k, v in expected.items():
        assert math.isclose(sharpe[k], v, rel_tol=1e-9), (k, sharpe[k], v)
    assert sharpe["rl"] != pytest.approx(sharpe["kelly"])  # the multipliers did change the P&L
    [total] = _values(prom.query('sum(quantum_rl_cumulative_reward{service="trainer"})'))
    assert total == pytest.approx(sum(e["reward"] for e in fb), rel=1e-9)
    [dead] = _values(prom.query("sum(max by (topic) (quantum_bus_dead_letters))"))
    assert dead == 3.0  # the replay's three malformed events
