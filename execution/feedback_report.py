"""Summary of published ``rl.feedback`` events: the ``feedback`` artifact's data.

Examples
--------
>>> r = feedback_report([{"reward": 1.0, "closed_at": "2025-01-01T00:00:00Z", "order_id": "a"},
...                      {"reward": -0.5, "closed_at": "2025-01-01T01:00:00Z", "order_id": "b"}], stats={})
>>> r["reward"]["count"], r["cumulative"]["reward"]
(2, [1.0, 0.5])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def feedback_report(
    feedback: Sequence[Mapping[str, Any]],
    *,
    stats: Mapping[str, Any],
    bins: int = 30,
    max_points: int = 2000,
    **extra: Any,
) -> dict[str, Any]:
    """Reward distribution, cumulative reward over close time, mean components and counters.

    Parameters
    ----------
    feedback : sequence of mapping
        ``rl.feedback`` events (need ``reward``, ``closed_at``, ``order_id``).
    stats : mapping
        The bridge's counters (tracked, closed, parked, duplicates, dead_lettered, ...).
    bins : int
        Histogram bins of the reward distribution.
    max_points : int
        The cumulative curve is thinned to at most this many points (the last point is kept).
    **extra
        Added to the report as-is (e.g. ``trades_in_log``, ``params``).
    """
    rows = sorted(feedback, key=lambda e: (str(e.get("closed_at", "")), str(e.get("order_id", ""))))
    rewards = np.asarray([float(e["reward"]) for e in rows], dtype=float)
    n = int(rewards.size)
    if n:
        q = np.quantile(rewards, [0.05, 0.25, 0.5, 0.75, 0.95])
        counts, edges = np.histogram(rewards, bins=bins)
        dist: dict[str, Any] = {
            "count": n,
            "mean": float(rewards.mean()),
            "std": float(rewards.std(ddof=1)) if n > 1 else float("nan"),
            "min": float(rewards.min()),
            "p05": float(q[0]),
            "p25": float(q[1]),
            "median": float(q[2]),
            "p75": float(q[3]),
            "p95": float(q[4]),
            "max": float(rewards.max()),
            "positive_share": float((rewards > 0).mean()),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        }
    else:
        nan = float("nan")
        dist = {"count": 0, "mean": nan, "std": nan, "min": nan, "median": nan, "max": nan,
                "positive_share": nan, "histogram": {"edges": [], "counts": []}}  # fmt: skip
    cum = np.cumsum(rewards)
    idx = np.arange(n)
    if n > max_points:
        idx = np.unique(np.r_[np.linspace(0, n - 1, max_points).astype(int), n - 1])
    components: dict[str, float] = {}
    for e in rows:
        for k, v in (e.get("reward_components") or {}).items():
            components[k] = components.get(k, 0.0) + float(v)
    return {
        "counts": dict(stats),
        "reward": dist,
        "cumulative": {
            "closed_at": [str(rows[i].get("closed_at")) for i in idx],
            "order_id": [str(rows[i].get("order_id")) for i in idx],
            "reward": [float(cum[i]) for i in idx],
        },
        "components_mean": {k: v / n for k, v in components.items()} if n else {},
        **extra,
    }
