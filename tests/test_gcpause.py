"""gc_paused: restores what it found, survives exceptions and overlaps, never starves the collector."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from infra.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_pauses_inside_and_restores_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nested_pauses_resume_only_at_the_outermost_end() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_in_threads_resume_when_the_last_one_ends() -> None:
    inside, release = threading.Event(), threading.Event()
    states: list[bool] = []

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=other)
    with gc_paused():
        t.start()
        assert inside.wait(5)
    states.append(gc.isenabled())  # this pause ended, the other thread's has not
    release.set()
    t.join(5)
    states.append(gc.isenabled())
    assert states == [False, True]


def test_a_long_overlap_runs_a_young_collection() -> None:
    collected: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        with gc_paused():
            with gc_paused(max_defer_s=0.0):
                pass  # ends while the outer pause holds: the collector has been off too long
            assert collected == [1]
            assert not gc.isenabled()
    finally:
        gc.callbacks.remove(watch)
    assert gc.isenabled()


def test_cycles_made_during_a_pause_are_collected_after_it() -> None:
    class Node:
        other: Node | None = None

    with gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        ref = weakref.ref(a)
        del a, b
        assert ref() is not None  # a cycle waits for the collector
    gc.collect()
    assert ref() is None
