"""Model registry: staging, atomic promotion and rollback, prod-write guard, SIGKILL during save."""

from __future__ import annotations

import copy
import datetime as dt
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from functools import lru_cache
from pathlib import Path

import pytest

from infra import jsonio
from infra.safety import ProductionWriteRefused
from infra.settings import load_settings
from ml.model_registry import STAGING_PREFIX, ModelRegistry, RegistryError
from ml.signal_model import SignalModel
from tests.ml_fixtures import demo_bars

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
DEV = load_settings({"ENV": "dev"})


@lru_cache(maxsize=1)
def _fitted() -> SignalModel:
    return SignalModel().fit(demo_bars(n_symbols=2, n_bars=700))


def model_named(version: str) -> SignalModel:
    """A fitted model relabelled as ``version`` (fitting once keeps the suite fast)."""
    m = copy.copy(_fitted())
    m.model_version_ = version
    return m


def test_stage_promote_rollback_round_trip(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, settings=DEV)
    assert reg.current("m") is None and reg.models() == []
    reg.stage("m", model_named("v1"), metadata={"trigger_id": None, "parent_version": None})
    assert reg.current("m") is None  # staged is not live
    reg.promote("m", "v1", at=T0)
    reg.stage("m", model_named("v2"), metadata={"trigger_id": "t-1", "parent_version": "v1"})
    reg.promote("m", "v2", at=T0 + dt.timedelta(hours=1))
    assert reg.current_version("m") == "v2" and reg.previous_version("m") == "v1"
    assert reg.get("m", "v2").metadata["trigger_id"] == "t-1"
    assert reg.get("m", "v2").metadata["parent_version"] == "v1"
    assert reg.get("m", "v2").metadata["train_end"] == _fitted().metadata["train_end"]
    assert reg.load_current("m").model_version_ == "v2"
    assert reg.models() == ["m"] and reg.versions("m") == ["v1", "v2"]

    back = reg.rollback("m", at=T0 + dt.timedelta(hours=2))
    assert back.version == "v1" and reg.current_version("m") == "v1"
    assert reg.versions("m") == ["v1", "v2"]  # the rolled-back version is kept
    actions = [e["action"] for e in reg.pointer("m")["events"]]
    assert actions == ["promote", "promote", "rollback"]
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback("m", at=T0)


def test_duplicate_stage_never_overwrites(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, settings=DEV)
    reg.stage("m", model_named("v1"), metadata={"trigger_id": "first"})
    before = (tmp_path / "m" / "v1" / "model.pkl").read_bytes()
    with pytest.raises(RegistryError, match="already has version 'v1'"):
        reg.stage("m", model_named("v1"), metadata={"trigger_id": "second"})
    assert (tmp_path / "m" / "v1" / "model.pkl").read_bytes() == before
    assert reg.get("m", "v1").metadata["trigger_id"] == "first"
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(STAGING_PREFIX)]


def test_find_resolves_names_versions_and_aliases(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, settings=DEV)
    reg.stage("m", model_named("v1"), metadata={"aliases": ["demo-signal-v1"]})
    reg.promote("m", "v1", at=T0)
    assert reg.find("m") == ("m", None)
    assert reg.find("v1") == ("m", "v1")
    assert reg.find("demo-signal-v1") == ("m", "v1")
    assert reg.find("nope") is None


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".staging-x", "x" * 200])
def test_bad_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="'model' of ModelRegistry"):
        ModelRegistry(tmp_path).versions(bad)


def test_promotion_and_rollback_are_prod_writes(tmp_path: Path) -> None:
    dev = ModelRegistry(tmp_path, settings=DEV)
    for v in ("v1", "v2"):
        dev.stage("m", model_named(v), metadata={})
    dev.promote("m", "v1", at=T0)
    pointer = (tmp_path / "m" / "current.json").read_bytes()

    prod = ModelRegistry(tmp_path, settings=load_settings({"ENV": "prod"}))
    with pytest.raises(ProductionWriteRefused, match=r"model promotion.*ALLOW_PROD_WRITE"):
        prod.promote("m", "v2", at=T0)
    assert (tmp_path / "m" / "current.json").read_bytes() == pointer
    allowed = ModelRegistry(tmp_path, settings=load_settings({"ENV": "prod", "ALLOW_PROD_WRITE": "1"}))
    allowed.promote("m", "v2", at=T0)
    assert allowed.current_version("m") == "v2"
    with pytest.raises(ProductionWriteRefused, match="model rollback"):
        prod.rollback("m", at=T0)
    assert prod.current_version("m") == "v2"
    # staging is not a production write
    prod.stage("m", model_named("v3"), metadata={})


def test_promote_refuses_missing_or_corrupt_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path, settings=DEV)
    reg.stage("m", model_named("v1"), metadata={})
    reg.promote("m", "v1", at=T0)
    with pytest.raises(KeyError, match="no version 'v9'"):
        reg.promote("m", "v9", at=T0)
    reg.stage("m", model_named("v2"), metadata={})
    (tmp_path / "m" / "v2" / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(pickle.UnpicklingError):
        reg.promote("m", "v2", at=T0)
    assert reg.current_version("m") == "v1"


WRITER = textwrap.dedent(
    """
    import copy, datetime as dt, pickle, sys
    from pathlib import Path
    from infra.settings import load_settings
    from ml.model_registry import ModelRegistry
    root, model_file = Path(sys.argv[1]), sys.argv[2]
    with open(model_file, "rb") as fh:
        base = pickle.load(fh)
    reg = ModelRegistry(root, settings=load_settings({"ENV": "dev"}))
    start = len(reg.versions("m"))
    for i in range(start, start + 100000):
        m = copy.copy(base)
        m.model_version_ = f"v{i:06d}"
        reg.stage("m", m, metadata={"i": i})
        reg.promote("m", m.model_version_, at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        if i % 3 == 2:
            reg.rollback("m", at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        print(i, flush=True)
    """
)


def test_sigkill_during_save_leaves_a_loadable_current_version(tmp_path: Path) -> None:
    root = tmp_path / "models"
    reg = ModelRegistry(root, settings=DEV)
    reg.stage("m", model_named("v-base"), metadata={})
    reg.promote("m", "v-base", at=T0)
    model_file = tmp_path / "model.pkl"
    model_file.write_bytes(pickle.dumps(_fitted()))
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for k, delay in enumerate((0.0, 0.023, 0.071)):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(root), str(model_file)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # it has written at least one version: the kill interrupts real work
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        # after every kill: the pointer parses, its current and previous versions load
        cur = reg.current_version("m")
        assert cur is not None, f"kill {k}: no current version"
        assert reg.load_current("m").model_version_ == cur
        prev = reg.previous_version("m")
        assert prev is not None and reg.get("m", prev).load().model_version_ == prev
        for v in reg.versions("m"):  # every finished version is complete
            assert reg.get("m", v).load().model_version_ == v
        assert jsonio.loads((root / "m" / "current.json").read_text())["current"] == cur
    removed = reg.clean_staging("m")
    assert removed >= 0
    assert not [p for p in (root / "m").iterdir() if p.name.startswith(STAGING_PREFIX)]
