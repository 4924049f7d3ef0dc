"""The trainer learns every order once when Redis re-delivers what it already learned (issue 22).

A Redis restarted from an older snapshot rolls the ``ppo-trainer`` group back: entries the trainer
learned, checkpointed and acknowledged are delivered again (and the bridge re-publishes the
feedback Redis lost, under new entry ids). The fault-injection bench measured the PPO trainer
learning all 200 trades of such a run twice (its dedupe covered only the last checkpoint's window)
while the edge learner, which dedupes by order id, did not -- so the two also fell out of step
and checkpointed at different moments.
"""

from __future__ import annotations

from pathlib import Path

from research.rl_sizer.checkpoints import latest_name, load_checkpoint
from research.rl_sizer.edge_online import EdgeLearner
from research.rl_sizer.ppo_sizer import PPOSizer
from research.rl_sizer.trainer import OnlineTrainer, TrainerConfig
from tests.test_trainer import feedback


def _learn(trainer: OnlineTrainer, ids: range) -> None:
    for i in ids:
        trainer.observe(dict(feedback(i)))


def test_redelivered_orders_are_learned_once_in_memory_and_after_a_restart(tmp_path: Path) -> None:
    ppo_dir, edge_dir = tmp_path / "ppo", tmp_path / "edge"
    trainer = OnlineTrainer(
        PPOSizer(3, seed=0), checkpoint_dir=ppo_dir, edge=EdgeLearner(checkpoint_dir=edge_dir)
    )
    _learn(trainer, range(200))
    _learn(trainer, range(200))  # the rolled-back group hands everything over again
    assert trainer.trades_seen == trainer.edge.trades_seen == 200
    assert trainer.reward_stats()["count"] == 200
    assert latest_name(ppo_dir) == latest_name(edge_dir) == "step_000200"

    # a restart: both resume from their checkpoints, then the re-delivery, then new trades
    edge = EdgeLearner.resume(edge_dir)
    resumed = OnlineTrainer.resume(ppo_dir, edge=edge)
    assert resumed.trades_seen == 200 and list(resumed.learned_order_ids) == [
        f"o-{i:05d}" for i in range(200)
    ]
    _learn(resumed, range(200))
    assert resumed.trades_seen == edge.trades_seen == 200 and resumed.history.order_ids == []
    _learn(resumed, range(150, 300))
    assert resumed.trades_seen == edge.trades_seen == 300
    assert resumed.history.order_ids == [f"o-{i:05d}" for i in range(200, 300)]
    assert latest_name(ppo_dir) == latest_name(edge_dir) == "step_000300"  # still in step
    meta = load_checkpoint(ppo_dir).meta
    assert meta["learned_order_ids"] == [f"o-{i:05d}" for i in range(300)]
    assert meta["trades_seen"] == 300 and meta["reward_stats"]["count"] == 300


def test_the_kept_order_ids_are_bounded(tmp_path: Path) -> None:
    cfg = TrainerConfig(learned_ids_kept=120)
    trainer = OnlineTrainer(PPOSizer(3, seed=0), config=cfg, checkpoint_dir=tmp_path / "ppo")
    _learn(trainer, range(300))
    assert list(trainer.learned_order_ids) == [f"o-{i:05d}" for i in range(180, 300)]
    assert load_checkpoint(tmp_path / "ppo").meta["learned_order_ids"] == [
        f"o-{i:05d}" for i in range(180, 300)
    ]
    _learn(trainer, range(180, 300))  # within the kept window: not again
    assert trainer.trades_seen == 300


def test_held_messages_survive_restarts_before_their_checkpoint(tmp_path: Path) -> None:
    """The trainer acknowledges at its checkpoints (every 100 trades), so the trades after the last
    one stay pending and are delivered again at every restart. The bench's kill -9 scenario
    restarted it 7 times inside one checkpoint window: the consumer loop counted those deliveries
    as handler failures and dead-lettered 45 good trades (max_deliveries=5), and the rest stayed
    held forever behind a checkpoint that never came."""
    from infra.bus import TOPIC_FEEDBACK, MemoryBus
    from tests.test_trainer import publish

    bus = MemoryBus()
    publish(bus, range(150))
    ckpt, edge_dir = tmp_path / "ppo", tmp_path / "edge"
    for _ in range(8):  # killed after learning, before the checkpoint at 200: the same 50 again
        trainer = OnlineTrainer.resume(ckpt, edge=EdgeLearner.resume(edge_dir))
        trainer.run(bus, consumer="t1", block_ms=0, until_idle=True)
        assert trainer.trades_seen == 150
    publish(bus, range(150, 200))
    trainer.run(bus, consumer="t1", block_ms=0, until_idle=True)
    assert bus.dead_letters(TOPIC_FEEDBACK, count=None) == []
    assert trainer.trades_seen == trainer.edge.trades_seen == 200
    assert bus.pending(TOPIC_FEEDBACK, "ppo-trainer") == 0
    assert load_checkpoint(ckpt).meta["learned_order_ids"] == [f"o-{i:05d}" for i in range(200)]
