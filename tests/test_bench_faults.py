"""The fault-injection bench (issue 22): its trainer audit catches loss, double learning and wrong
numbers, and (slow) every scenario ends with 0 lost, 0 duplicated, 0 wrong for bridge and trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bench_faults import POISON, SCENARIOS, Trainer, audit_trainer
from infra.bus import MemoryBus
from research.rl_sizer.checkpoints import write_checkpoint


def _want(n: int) -> dict[str, dict[str, float]]:
    return {f"o{i}": {"pnl_pct": 0.5 * i, "reward": 0.1 * i} for i in range(n)}


def _checkpoints(trainer: Trainer, ppo_ids: list[str], edge_ids: list[str], want: dict[str, dict[str, float]],
                 *, pnl_shift: float = 0.0) -> None:  # fmt: skip
    ppo_meta = {"trades_seen": len(ppo_ids), "learned_order_ids": sorted(set(ppo_ids)),
                "reward_stats": {"sum": sum(want[o]["reward"] for o in ppo_ids)}}  # fmt: skip
    write_checkpoint(trainer.ppo_dir, step=len(ppo_ids), payload=b"w", meta=ppo_meta)
    edge = {"trades_seen": len(edge_ids), "order_ids": edge_ids,
            "pnl_pct": [want[o]["pnl_pct"] + pnl_shift for o in edge_ids]}  # fmt: skip
    write_checkpoint(trainer.edge_dir, step=len(edge_ids), payload=json.dumps(edge).encode(), meta={})


@pytest.mark.parametrize(
    ("ppo", "edge", "shift", "expected"),
    [
        (range(10), range(10), 0.0, (10, 0, 0, 0)),
        (range(9), range(10), 0.0, (9, 1, 0, 0)),  # PPO never learned o9
        ([*range(10), 3], range(10), 0.0, (10, 0, 1, 1)),  # PPO learned o3 twice: its reward sum is off too
        (range(10), range(10), 0.25, (10, 0, 0, 10)),  # the edge learner holds other pnl_pct than the log
    ],
)
def test_the_trainer_audit_counts_what_the_checkpoints_hold(
    tmp_path: Path, ppo: range | list[int], edge: range, shift: float, expected: tuple[int, int, int, int]
) -> None:
    want = _want(10)
    trainer = Trainer("memory://", tmp_path / "logs")
    _checkpoints(trainer, [f"o{i}" for i in ppo], [f"o{i}" for i in edge], want, pnl_shift=shift)
    got = audit_trainer(MemoryBus(), trainer, want)
    assert (got["t_learned"], got["t_lost"], got["t_duplicated"], got["t_wrong"]) == expected
    assert got["t_dead"] == 0


def test_no_checkpoint_means_everything_lost(tmp_path: Path) -> None:
    got = audit_trainer(MemoryBus(), Trainer("memory://", tmp_path / "logs"), _want(5))
    assert got["t_learned"] == 0 and got["t_lost"] == 5


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_loses_duplicates_and_miscounts_nothing(tmp_path: Path, name: str) -> None:
    r = SCENARIOS[name](tmp_path, 200, 1)
    assert (r["sent"], r["published"], r["lost"], r["duplicated"], r["wrong"]) == (200, 200, 0, 0, 0), r
    assert (r["t_learned"], r["t_lost"], r["t_duplicated"], r["t_wrong"]) == (200, 0, 0, 0), r
    assert r["t_dead"] == r["t_dead_expected"] == (2 * len(POISON) if name == "poison messages" else 0), r
