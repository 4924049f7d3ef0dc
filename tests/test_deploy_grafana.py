"""Grafana dashboards: generated from code and committed up to date, the plan's panels, exported metrics only."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deploy.grafana import build
from tests.deploy_fixtures import ROOT, promql_metric_names, run_loop

GRAFANA = ROOT / "deploy" / "grafana"


def _load(name: str) -> dict:
    return json.loads((GRAFANA / "dashboards" / name).read_text(encoding="utf-8"))


def test_committed_json_is_what_the_builder_writes() -> None:
    assert build.main(["--check"]) == 0
    for name, make in build.DASHBOARDS.items():
        assert (GRAFANA / "dashboards" / name).read_text(encoding="utf-8") == build.render(make)


def test_dashboards_have_the_plans_panels() -> None:
    rl = {p["title"] for p in _load("quantum-rl-learning-loop.json")["panels"]}
    assert {
        "Reward distribution",
        "Cumulative reward",
        "PPO losses",
        "Position-size multiplier: actual vs suggested",
        "Sharpe per trade: static Kelly (before RL) vs as traded (with RL)",
    } <= rl
    clm = _load("quantum-clm-drift.json")
    titles = {p["title"] for p in clm["panels"]}
    assert {
        "Calibration CUSUM bank vs threshold",
        "Accuracy CUSUM bank vs threshold",
        "High-confidence win rate vs floor",
        "K-S statistic vs threshold",
        "Retrain triggers timeline",
        "Model version history",
    } <= titles
    # each statistic panel draws its threshold line as a second series
    for p in clm["panels"]:
        if p["title"].endswith(("vs threshold", "vs floor")):
            assert [t["legendFormat"] for t in p["targets"]][1] == "threshold"
            assert "quantum_clm_drift_threshold" in p["targets"][1]["expr"]


def test_panel_ids_are_unique_and_uids_stable() -> None:
    for name in build.DASHBOARDS:
        d = _load(name)
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        assert d["uid"] == name.removesuffix(".json")


def test_every_query_uses_only_metrics_the_services_export(tmp_path: Path) -> None:
    exported = run_loop(tmp_path, train=False).exported_names()
    used: set[str] = set()
    for name in build.DASHBOARDS:
        for title, expr in build.panel_queries(_load(name)):
            names = promql_metric_names(expr)
            assert names, (title, expr)
            assert names <= exported, (title, names - exported)
            used |= names
    assert len(used) >= 15


def test_metric_name_parser_sees_through_labels_and_functions() -> None:
    expr = 'sum by (le) (rate(quantum_a_bucket{service="quantum_label_value"}[5m])) / scalar(quantum_b)'
    assert promql_metric_names(expr) == {"quantum_a_bucket", "quantum_b"}


def test_provisioning_points_at_the_dashboards_datasource() -> None:
    ds = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "quantum.yml").read_text(encoding="utf-8")
    )
    [source] = ds["datasources"]
    assert (source["uid"], source["type"]) == (build.DATASOURCE["uid"], build.DATASOURCE["type"])
    for name in build.DASHBOARDS:
        for p in _load(name)["panels"]:
            assert p["datasource"] == build.DATASOURCE
            assert all(t["datasource"] == build.DATASOURCE for t in p["targets"])
    prov = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "quantum.yml").read_text(encoding="utf-8")
    )
    assert prov["providers"][0]["options"]["path"].endswith("deploy/grafana/dashboards")
