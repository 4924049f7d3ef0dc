"""Wiring for live sizing: load the promoted PPO checkpoint as a policy for the governor.

``execution/`` never imports ``research/``; the job that runs the governor calls
:func:`load_policy` and hands the result to :class:`execution.governor.Governor`, which only needs
an object with ``get_multiplier(state)``. A missing or corrupt checkpoint gives ``None`` plus the
reason, and the governor then sizes with static Kelly and says so in its status.

Examples
--------
>>> from pathlib import Path
>>> policy, reason = load_policy(Path("/nonexistent"))
>>> policy is None, reason.startswith("no checkpoint")
(True, True)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.rl_sizer.checkpoints import CheckpointError, load_checkpoint

if TYPE_CHECKING:
    from infra.settings import Settings
    from research.rl_sizer.ppo_sizer import PPOSizer

log = logging.getLogger(__name__)


def checkpoint_dir(settings: Settings) -> Path:
    """Where the trainer writes and live sizing reads checkpoints."""
    return settings.research_dir / "checkpoints" / "ppo_sizer"


def load_policy(directory: Path, name: str | None = None) -> tuple[PPOSizer | None, str]:
    """Load and hash-verify the checkpoint ``latest`` names (or ``name``).

    Returns
    -------
    (policy or None, message)
        The sizer and ``"loaded <path> (step N)"``, or ``None`` and why it could not be loaded.
    """
    try:
        ckpt = load_checkpoint(directory, name)
    except CheckpointError as exc:
        return None, str(exc)
    try:
        import torch

        torch.set_num_threads(1)
        from research.rl_sizer.ppo_sizer import PPOSizer

        sizer = PPOSizer.from_bytes(ckpt.payload)
    except Exception as exc:  # a checkpoint that verifies but does not unpickle is still unusable
        return None, f"checkpoint {ckpt.path} failed to load: {type(exc).__name__}: {exc}"
    return sizer, f"loaded {ckpt.path} (step {ckpt.meta.get('step')})"


def policy_meta(directory: Path) -> dict[str, Any] | None:
    """Metadata of the promoted checkpoint, or None."""
    try:
        return load_checkpoint(directory).meta
    except CheckpointError:
        return None
