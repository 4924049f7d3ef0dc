from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra import jsonio
from infra.artifacts import ArtifactStore
from infra.settings import load_settings
from infra.store import open_store

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def test_envelope_roundtrip(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, env="research", clock=Clock())
    env = store.write("notes", {"a": 1, "b": [1.5, None]}, source="tests")
    assert env == {
        "schema_version": 1,
        "name": "notes",
        "generated_at": "2025-03-01T12:00:00Z",
        "env": "research",
        "source": "tests",
        "data": {"a": 1, "b": [1.5, None]},
    }
    res = store.read("notes", now=T0)
    assert res.ok and res.status == "ok"
    assert res.data == {"a": 1, "b": [1.5, None]}
    assert res.generated_at == T0
    # the file on disk is strict JSON
    assert json.loads((tmp_path / "notes.json").read_text())["name"] == "notes"


def test_nonfinite_floats_are_strict_json_and_roundtrip(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, clock=Clock())
    store.write("m", {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "s": "NaN"}, source="t")
    text = (tmp_path / "m.json").read_text()
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard token {c}"))
    assert strict["data"]["nan"] == {"$float": "NaN"}
    data = store.read("m", now=T0).data
    assert math.isnan(data["nan"]) and data["inf"] == math.inf and data["ninf"] == -math.inf
    assert data["s"] == "NaN"  # a genuine string stays a string


def test_numpy_and_pandas_values_serialise(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, clock=Clock())
    store.write(
        "x",
        {
            "i": np.int64(3),
            "f": np.float32(0.5),
            "arr": np.array([1.0, np.nan]),
            "ts": pd.Timestamp("2025-01-01", tz="UTC"),
        },
        source="t",
    )
    data = store.read("x", now=T0).data
    assert data["i"] == 3 and data["f"] == 0.5 and data["ts"] == "2025-01-01T00:00:00Z"
    assert data["arr"][0] == 1.0 and math.isnan(data["arr"][1])


def test_naive_datetime_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, clock=Clock())
    with pytest.raises(ValueError, match="UTC-aware"):
        store.write("x", {"ts": dt.datetime(2025, 1, 1)}, source="t")
    assert store.read("x").status == "missing"


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text() | st.integers(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_jsonio_roundtrip_property(value: Any) -> None:
    back = jsonio.loads(jsonio.dumps(value))

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) and math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return bool(a == b)

    assert same(value, back)


@pytest.mark.parametrize("bad", ["", "Upper", "has-dash", "../escape", "1starts_with_digit", "x" * 65])
def test_bad_names_are_refused(tmp_path: Path, bad: str) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(ValueError, match=r"The 'name' of an artifact must be"):
        store.write(bad, {}, source="t")


def test_read_failure_reasons(tmp_path: Path) -> None:
    clock = Clock()
    store = ArtifactStore(tmp_path, clock=clock)
    assert store.read("nothing").status == "missing"
    (tmp_path / "garbage.json").write_text("{not json")
    res = store.read("garbage")
    assert res.status == "corrupt" and "not valid JSON" in res.message and res.data is None
    (tmp_path / "partial.json").write_text(json.dumps({"name": "partial", "data": 1}))
    res = store.read("partial")
    assert res.status == "corrupt" and "missing schema_version" in res.message
    (tmp_path / "badts.json").write_text(
        json.dumps(
            {
                "schema_version": 1,
                "name": "badts",
                "generated_at": "yesterday",
                "env": "dev",
                "source": "t",
                "data": 1,
            }
        )
    )
    assert store.read("badts").status == "corrupt"
    store.write("v2", {"x": 1}, source="t", schema_version=2)
    res = store.read("v2", schema_version=1, now=T0)
    assert res.status == "wrong_schema" and "expected 1" in res.message
    res = store.read("v2", max_age_s=3600, now=T0 + dt.timedelta(hours=2))
    assert res.status == "stale" and res.data == {"x": 1} and res.age_s == pytest.approx(7200)
    assert store.read("v2", max_age_s=3600, now=T0 + dt.timedelta(minutes=30)).ok
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    assert store.read("binary").status == "corrupt"


def test_rotation_bounded_by_count(tmp_path: Path) -> None:
    clock = Clock()
    store = ArtifactStore(tmp_path, history_count=3, history_bytes=10**9, clock=clock)
    for i in range(7):
        clock.now = T0 + dt.timedelta(minutes=i)
        store.write("a", {"i": i}, source="t")
    hist = store.history("a")
    assert len(hist) == 3
    kept = [jsonio.loads(p.read_text())["data"]["i"] for p in hist]
    assert kept == [3, 4, 5]  # the three most recent *previous* versions, oldest first
    assert store.read("a", now=clock.now).data == {"i": 6}


def test_rotation_bounded_by_bytes(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, history_count=100, history_bytes=2_500, clock=Clock())
    for i in range(10):
        store.write("b", {"i": i, "pad": "x" * 900}, source="t")
    sizes = [p.stat().st_size for p in store.history("b")]
    assert sum(sizes) <= 2_500
    assert len(sizes) == 2  # each ~1 kB: only two fit under 2.5 kB
    assert store.read("b").data["i"] == 9


def test_zero_history_keeps_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, history_count=0)
    store.write("c", 1, source="t")
    store.write("c", 2, source="t")
    assert store.history("c") == []


def test_unserialisable_data_leaves_old_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, clock=Clock())
    store.write("d", {"ok": True}, source="t")
    with pytest.raises(TypeError, match="not JSON serialisable"):
        store.write("d", {"bad": object()}, source="t")
    assert store.read("d", now=T0).data == {"ok": True}
    assert store.history("d") == []


def test_mirror_failure_does_not_fail_local_write(tmp_path: Path) -> None:
    class Broken:
        calls = 0

        def mirror(self, name: str, envelope: dict[str, Any]) -> None:
            Broken.calls += 1
            raise ConnectionError("firestore down")

    store = ArtifactStore(tmp_path, mirror=Broken(), clock=Clock())
    store.write("e", {"v": 1}, source="t")
    assert Broken.calls == 1
    assert store.read("e", now=T0).data == {"v": 1}


def test_open_store_uses_settings(tmp_path: Path) -> None:
    s = load_settings({"LOGS_DIR": str(tmp_path), "ARTIFACT_HISTORY_COUNT": "4", "ENV": "research"})
    store = open_store(s)
    assert store.root == tmp_path / "cache" and store.history_count == 4 and store.env == "research"
    assert store.mirror is None


WRITER = textwrap.dedent(
    """
    import sys
    from infra.artifacts import ArtifactStore
    store = ArtifactStore(sys.argv[1], history_count=2)
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        store.write("big", {"i": i, "payload": [float(i)] * 200_000}, source="writer")
    """
)


def test_writer_killed_mid_write_leaves_a_readable_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.write("big", {"i": 0, "payload": [0.0] * 200_000}, source="seed")
    root = Path(__file__).resolve().parent.parent
    for attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], cwd=root, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.15 + 0.11 * attempt)  # land the kill at different points of a write
        proc.kill()
        proc.wait(timeout=10)
        res = store.read("big")
        assert res.ok, res.message
        data = res.data
        assert len(data["payload"]) == 200_000 and set(data["payload"]) == {float(data["i"])}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert store.names() == ["big"]  # a leftover temp file is never mistaken for an artifact
    assert all(name.startswith(".big.json.") for name in leftovers)


# ---------------------------------------------------------------- bounds (issue 22 item 10)
def test_write_over_max_bytes_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    from infra.artifacts import ArtifactTooLarge

    store = ArtifactStore(tmp_path, max_bytes=10_000)
    store.write("small", {"x": 1}, source="t")
    with pytest.raises(
        ArtifactTooLarge, match=r"'small' is 20,1\d\d bytes as JSON, over the 10,000-byte limit"
    ):
        store.write("small", {"x": "a" * 20_000}, source="t")
    assert store.read("small").data == {"x": 1}
    assert store.history("small") == []


def test_read_of_an_oversized_file_does_not_load_it(tmp_path: Path) -> None:
    big = ArtifactStore(tmp_path, max_bytes=10_000_000)
    big.write("big", {"x": "a" * 200_000}, source="t")
    small = ArtifactStore(tmp_path, max_bytes=100_000)
    result = small.read("big")
    assert result.status == "corrupt"
    assert "bytes, over the 100,000-byte limit (ARTIFACT_MAX_BYTES)" in result.message
    assert result.envelope is None


def test_orphaned_temp_files_of_killed_writers_are_swept(tmp_path: Path) -> None:
    import os
    import time

    from infra.artifacts import sweep_temp_files

    store = ArtifactStore(tmp_path)
    store.write("a", {"x": 1}, source="t")
    old = tmp_path / ".a.json.abc123.tmp"
    fresh = tmp_path / ".a.json.def456.tmp"  # a concurrent writer's file: must survive
    other = tmp_path / ".b.json.zzz.tmp"
    for p in (old, fresh, other):
        p.write_bytes(b"x" * 1000)
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(other, (past, past))
    store.write("a", {"x": 2}, source="t")
    assert not old.exists() and fresh.exists() and other.exists()
    assert sweep_temp_files(tmp_path) == 1
    assert not other.exists() and fresh.exists()


def test_settings_bound_reaches_the_store(tmp_path: Path) -> None:
    from infra.settings import load_settings

    s = load_settings({"LOGS_DIR": str(tmp_path), "ARTIFACT_MAX_BYTES": "2048"})
    assert ArtifactStore.from_settings(s).max_bytes == 2048


def test_artifacts_and_their_history_are_group_readable(tmp_path: Path) -> None:
    """A dashboard running as another user of the jobs' group can read what cron wrote (0640)."""
    import os
    import stat

    store = ArtifactStore(tmp_path, history_count=2, clock=Clock())
    store.write("notes", {"x": 1}, source="test")
    store.write("notes", {"x": 2}, source="test")
    files = sorted(p for p in tmp_path.rglob("*.json"))
    assert len(files) >= 2  # the artifact and at least one history copy
    old = os.umask(0o077)  # even a strict umask does not hide them from the group
    try:
        store.write("scratch", {"x": 3}, source="test")
    finally:
        os.umask(old)
    for path in [*files, tmp_path / "scratch.json"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o640, f"{path.name}: {oct(mode)}"
