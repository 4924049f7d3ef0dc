"""Demo-like bars for the ML tests (small, so the fast suite stays fast)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from scripts.demo_data import DemoConfig, synthetic_bars


@lru_cache(maxsize=4)
def _demo_bars(n_symbols: int, n_bars: int, seed: int) -> pd.DataFrame:
    bars = synthetic_bars(DemoConfig(n_symbols=n_symbols, n_bars=n_bars), np.random.default_rng(seed))
    bars.attrs = {}
    return bars


def demo_bars(n_symbols: int = 4, n_bars: int = 1000, seed: int = 7) -> pd.DataFrame:
    """The demo generator's bars (planted momentum whose sign flips at 60% of the timeline)."""
    return _demo_bars(n_symbols, n_bars, seed).copy()
