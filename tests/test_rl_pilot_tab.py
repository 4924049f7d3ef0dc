"""The RL Pilot tab renders a real rl_pilot artifact and never imports torch / SB3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from infra import jsonio
from infra.artifacts import atomic_write_text
from infra.settings import load_settings
from research.rl_sizer.evaluate import run_ab
from research.rl_sizer.pilot_artifact import ab_dir, write_pilot_artifact
from research.rl_sizer.runner import run_pilot
from research.rl_sizer.signals import synthetic_trades

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TAB = "RL Pilot"


def _tab(at: AppTest):  # type: ignore[no-untyped-def]
    return next(t for t in at.tabs if t.label == TAB)


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "logs"
    monkeypatch.setenv("ENV", "research")
    monkeypatch.setenv("LOGS_DIR", str(root))
    for var in ("DATA_DIR", "CACHE_DIR", "RESEARCH_DIR", "FIRESTORE_PROJECT", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    return root


def test_tab_draws_runs_and_ab(logs: Path) -> None:
    settings = load_settings()
    run_pilot(settings, agent="kelly", episodes=3, progress=False)
    run_pilot(settings, agent="table", episodes=2, progress=False)
    res = run_ab(synthetic_trades(1500, rng=np.random.default_rng(0)), seeds=(0,), agents=("kelly", "table"),
                 n_boot=50, label="tabtest")  # fmt: skip
    res["source"] = "synthetic"
    atomic_write_text(ab_dir(settings, dry_run=False) / "tabtest.json", jsonio.dumps(res))
    write_pilot_artifact(settings, dry_run=False, source="test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = _tab(at)
    assert [e.value for e in tab.error] == []
    charts = tab.get("plotly_chart")
    assert len(charts) == 3  # reward, drawdown, Sharpe
    reward = json.loads(charts[0].proto.spec)
    assert len(reward["data"]) == 2 and sorted(len(t["x"]) for t in reward["data"]) == [2, 3]
    assert any("tabtest" in m.value for m in tab.markdown)
    assert any(res["verdict"] in t.value for t in tab.text)  # as text, never rendered as markdown
    assert len(tab.dataframe) == 2  # the A/B table and the latest-episode table
    captions = " ".join(c.value for c in tab.caption)
    assert "paired block bootstrap" in captions and "annualized" in captions
    assert reward["layout"]["xaxis"]["title"]["text"] == "episode (training cycle)"
    # the header says which trades were sized and that its times are UTC
    header = next(m.value for m in tab.markdown if "tabtest" in m.value)
    assert "trades from the synthetic trades" in header and "(UTC," in header
    # a caption with units under every chart, a CSV download next to every table
    assert len(tab.caption) >= len(charts) + len(tab.dataframe)
    for unit in ("log growth", "negative", "annualized"):
        assert unit in captions
    downloads = tab.get("download_button")
    assert len(downloads) == len(tab.dataframe)
    # the artifact's generated-at line (require_artifact -> status_line)
    assert any("rl_pilot.json" in c.value and "generated" in c.value for c in tab.caption)
    latest = tab.dataframe[1].value
    assert (
        "logged at (UTC)" in latest.columns and latest["logged at (UTC)"].str.match(r"\d{4}-\d\d-\d\d ").all()
    )


def test_tab_names_the_model_source_and_uses_material_icons(logs: Path) -> None:
    settings = load_settings()
    res = run_ab(synthetic_trades(400, rng=np.random.default_rng(1)), seeds=(0,), agents=("kelly",), n_boot=20,
                 label="BTC_USDT_USDT-1h-futures-model")  # fmt: skip
    res["source"] = "model"
    atomic_write_text(ab_dir(settings, dry_run=False) / "m.json", jsonio.dumps(res))
    write_pilot_artifact(settings, dry_run=False, source="test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = _tab(at)
    assert any("walk-forward reference model" in m.value for m in tab.markdown)
    infos = tab.info  # no runs logged: an info box with a Material icon, not an emoji
    assert infos and all(i.icon == ":material/info:" for i in infos)


def test_tab_with_artifact_missing(logs: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB  # lazy tabs: open this one
    at.run()
    assert not at.exception
    tab = _tab(at)
    assert any("research.rl_sizer.runner" in i.value for i in tab.info)


def test_dashboard_tab_does_not_import_torch() -> None:
    code = ("import sys; import dashboard.rl_pilot; "
            "bad = [m for m in ('torch', 'stable_baselines3', 'sklearn', 'research') if m in sys.modules]; "
            "assert not bad, bad")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- cron dry-run (issue 23 item 8)
def _tree(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def _cron_dry_run_twice_then_open_the_tab(logs: Path, extra: list[str]) -> None:
    import os

    settings = load_settings()
    run_pilot(settings, agent="kelly", episodes=1, progress=False)  # a live run and its live artifact
    outside = {p: b for p, b in _tree(logs).items() if (logs / "research") not in p.parents}
    env = {**os.environ, "ENV": "research", "LOGS_DIR": str(logs)}
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "research.rl_sizer.runner", "--episodes", "1", "--dry-run", *extra],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "\r" not in proc.stderr  # no progress bar in a cron log
    # nothing outside logs/research/ changed: the live artifact, thresholds, checkpoints ...
    assert {p: b for p, b in _tree(logs).items() if (logs / "research") not in p.parents} == outside
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = _tab(at)
    latest = tab.dataframe[-1].value
    dry = latest[latest["dry_run"]]
    assert len(dry) == 1 and dry["episode"].tolist() == [1]  # one dry run, resumed: episodes 0 and 1
    assert dry["label"].iloc[0].endswith(" dry")
    reward = json.loads(tab.get("plotly_chart")[0].proto.spec)
    dry_trace = next(t for t in reward["data"] if t["name"].endswith(" dry"))
    assert list(dry_trace["x"]) == [0, 1] and dry_trace["line"]["dash"] == "dot"
    assert any("dry run(s)" in c.value for c in tab.caption)


def test_cron_dry_run_twice_shows_two_episodes_and_changes_nothing_live(logs: Path) -> None:
    _cron_dry_run_twice_then_open_the_tab(logs, ["--agent", "kelly"])


@pytest.mark.slow
def test_cron_dry_run_line_exactly_as_documented(logs: Path) -> None:
    """The documented line itself (PPO, 2048 steps per cycle: about 20 s a run)."""
    _cron_dry_run_twice_then_open_the_tab(logs, [])


def test_run_labels_are_short_ticks_whole_and_the_baseline_reads_baseline(logs: Path) -> None:
    settings = load_settings()
    run_pilot(settings, agent="kelly", episodes=3, progress=False)
    res = run_ab(synthetic_trades(400, rng=np.random.default_rng(1)), seeds=(0,), agents=("kelly", "table"),
                 n_boot=20, label="lbl")  # fmt: skip
    res["source"] = "synthetic"
    atomic_write_text(ab_dir(settings, dry_run=False) / "l.json", jsonio.dumps(res))
    write_pilot_artifact(settings, dry_run=False, source="test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB
    at.run()
    tab = _tab(at)
    for chart in tab.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        x = spec["layout"]["xaxis"]
        assert x["tickmode"] == "linear" and x["dtick"] == 1 and x["tickformat"] == "d"
        assert all(len(t["name"]) <= 24 for t in spec["data"])  # "kelly 12-04 18:41:00"
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    shown = convert_arrow_bytes_to_pandas_df(tab.dataframe[0].proto.arrow_data.styler.display_values)
    kelly = shown[shown["sizer"] == "kelly"].iloc[0]
    assert kelly["Δ Sharpe"] == "baseline" and kelly["Δ Sharpe 95% CI"] == "baseline"
    assert "None" not in shown.astype(str).to_numpy().ravel().tolist()
    assert any("Simulated" in c.value and "RL Learning Loop" in c.value for c in tab.caption)


def test_tab_shows_the_growth_ab_rows(logs: Path) -> None:
    from research.rl_sizer.growth_ab import run_synthetic_ab

    settings = load_settings()
    res = run_synthetic_ab(seeds=(0, 1), n_train=300, n_test=300, optimum_trades=2000)
    res["source"] = "synthetic"
    atomic_write_text(ab_dir(settings, dry_run=False) / "growth.json", jsonio.dumps(res))
    write_pilot_artifact(settings, dry_run=False, source="test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["tab"] = TAB
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tab = _tab(at)
    table = tab.dataframe[0].value
    assert list(table["sizer"]) == ["kelly", "const", "edge", "table", "optimum"]
    for col in (
        "E log growth / 1k trades",
        "at position cap",
        "MDE (primary)",
        "share of optimum",
        "Δ primary 95% CI",
    ):
        assert col in table.columns
    assert set(table["share of optimum"]) <= {"", "cannot tell"} | {f"{p}%" for p in range(-500, 501)}
    slopes = tab.dataframe[1].value
    assert list(slopes["regime"]) == [0, 1, 2] and "slope" in slopes.columns
    assert any(t.value == "Verdict: " + res["verdict"] for t in tab.text)
    captions = " ".join(c.value for c in tab.caption)
    assert "best-constant row" in captions and "minimum detectable difference" in captions
    assert len(tab.get("download_button")) == len(tab.dataframe) == 2
