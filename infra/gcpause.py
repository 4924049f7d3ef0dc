"""Defer CPython's cyclic garbage collector across a bounded batch of acyclic work.

Why
    CPython's collector is generational: objects alive when a young collection runs move to an
    older generation, and a *full* collection (which walks every tracked object in the process)
    runs once the objects promoted since the last one exceed a quarter of the old generation.
    A consumer that holds a batch of events in flight (messages, their dicts, the trades they
    touch) keeps those objects alive across the young collections that its own allocations
    trigger, so they are promoted and then die a moment later, and their promotion counts towards
    the next full collection. With the feedback bridge on the in-memory bus this made the
    collector cost 90 to 150 ms per 20,000 trades (a full collection each time, most of it walking
    the bus's own stored events) against 20 to 35 ms with the collector paused across each batch
    (``bench/bench_feedback.py`` prints both).

    Reference counting still frees everything that is not part of a cycle while the collector
    is paused; only cycles wait, for at most one batch. The bridge's batch work creates none.

What it does
    :func:`gc_paused` disables the collector for the duration of a ``with`` block and restores
    the state it found. Pauses may overlap (threads, nesting): the collector comes back when the
    last one ends, only if it was enabled when the first began. When overlapping pauses keep it
    off for longer than ``max_defer_s``, the pause that ends runs a young collection
    (generations 0 and 1), so a process with several busy consumers never starves the collector.

Calling :func:`gc.enable` or :func:`gc.disable` from elsewhere during a pause is not tracked:
the state found when the first pause began is the one restored.

Examples
--------
>>> import gc
>>> with gc_paused():
...     gc.isenabled()
False
>>> gc.isenabled()
True
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_depth = 0  # pauses in progress
_resume = False  # whether the collector was enabled when the first of them began
_since = 0.0  # monotonic time of the last collection or of the first pause


@contextmanager
def gc_paused(*, max_defer_s: float = 1.0) -> Iterator[None]:
    """Pause the cyclic collector inside the block (see the module docstring).

    Parameters
    ----------
    max_defer_s : float
        Longest time overlapping pauses may keep the collector off before the pause that ends
        runs a young collection.
    """
    global _depth, _resume, _since
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            _since = time.monotonic()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _resume:
                    gc.enable()
            elif _resume and time.monotonic() - _since >= max_defer_s:
                gc.collect(1)  # others still paused: collect the young generations, bounded wait
                _since = time.monotonic()
