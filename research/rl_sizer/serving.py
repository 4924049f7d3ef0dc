"""Wiring for live sizing: pick the governor's policy (edge sizer, PPO or static Kelly).

``python -m research.rl_sizer.serving [--policy edge|ppo|kelly] [--confidence 0.6 --state 0.6,0.5,1]``

``execution/`` never imports ``research/``; the job that runs the governor calls
:func:`select_policy` and hands the result to :class:`execution.governor.Governor`, which only
needs an object with ``get_multiplier(state)``. The default policy is ``edge``: the edge sizer of
the latest valid checkpoint the trainer wrote (:mod:`research.rl_sizer.edge_online`); without
one, static Kelly, and the reason is kept in the governor's status. ``ppo`` loads the PPO
checkpoint (a labelled baseline); ``kelly`` is static Kelly on purpose. A long-running governor
(the paper driver, :mod:`sim.paper`) keeps up with the trainer through :class:`PolicyRefresher`,
which hands it each newer checkpoint.

Examples
--------
>>> from pathlib import Path
>>> policy, reason = load_policy(Path("/nonexistent"))
>>> policy is None, reason.startswith("no checkpoint")
(True, True)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.cli import run_cli
from research.rl_sizer.checkpoints import CheckpointError, latest_name, load_checkpoint

if TYPE_CHECKING:
    from execution.governor import Governor
    from infra.settings import Settings
    from research.rl_sizer.ppo_sizer import PPOSizer

log = logging.getLogger(__name__)

POLICIES = ("edge", "ppo", "kelly")


def checkpoint_dir(settings: Settings) -> Path:
    """Where the trainer writes and live sizing reads PPO checkpoints."""
    return settings.research_dir / "checkpoints" / "ppo_sizer"


def edge_checkpoint_dir(settings: Settings) -> Path:
    """Where the trainer writes and live sizing reads edge-sizer checkpoints."""
    return settings.research_dir / "checkpoints" / "edge_sizer"


def load_policy(directory: Path, name: str | None = None) -> tuple[PPOSizer | None, str]:
    """Load and hash-verify the PPO checkpoint ``latest`` names (or ``name``).

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


def select_policy(kind: str, settings: Settings) -> tuple[Any, str]:
    """The governor's policy for ``--policy kind`` and a message saying what was chosen and why.

    ``(None, message)`` means static Kelly; the message says why (pass it as ``policy_info``).
    """
    if kind not in POLICIES:
        raise ValueError(f"The 'policy' must be one of {', '.join(POLICIES)}. Got {kind!r} instead.")
    if kind == "kelly":
        return None, "requested (--policy kelly)"
    if kind == "ppo":
        policy, msg = load_policy(checkpoint_dir(settings))
        return policy, (f"PPO baseline: {msg}" if policy is not None else f"no valid PPO checkpoint ({msg})")
    from research.rl_sizer.edge_online import load_edge_policy

    edge, msg = load_edge_policy(edge_checkpoint_dir(settings))
    if edge is None:
        return None, f"no valid edge-sizer checkpoint yet ({msg})"
    return edge, f"edge sizer: {msg}"


class PolicyRefresher:
    """Keeps a governor on the newest checkpoint of the live sizer while the trainer writes new ones.

    :meth:`refresh` looks at the ``latest`` pointer of the ``kind``'s checkpoint directory at most
    once every ``every_s`` seconds (of ``clock``) and, when it names a checkpoint the governor is
    not using yet, loads it (:func:`select_policy`: hash-verified; an edge sizer fitted on too few
    trades is not served) and hands it to :meth:`execution.governor.Governor.use_policy`. Until a
    valid checkpoint exists the governor sizes with static Kelly and says why. ``kind="kelly"``
    never loads anything. A checkpoint that fails to load keeps the policy in use and is retried
    at the next pointer change.
    """

    def __init__(
        self,
        kind: str,
        settings: Settings,
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if kind not in POLICIES:
            raise ValueError(
                f"The 'kind' parameter of PolicyRefresher must be one of {', '.join(POLICIES)}. Got {kind!r} instead."
            )
        if not (every_s >= 0 and math.isfinite(every_s)):
            raise ValueError(
                f"The 'every_s' parameter of PolicyRefresher must be a finite number >= 0. Got {every_s!r} instead."
            )
        self.kind = kind
        self.settings = settings
        self.every_s = every_s
        self.clock = clock
        self.directory = edge_checkpoint_dir(settings) if kind == "edge" else checkpoint_dir(settings)
        self.loaded: str | None = None
        """Name of the checkpoint the governor is using (None: static Kelly)."""
        self.tried: str | None = None
        self.loads = 0
        """Checkpoints handed to the governor so far."""
        self._next = -math.inf

    def refresh(self, governor: Governor) -> bool:
        """Swap ``governor``'s policy when a new checkpoint is promoted; True when it was swapped."""
        now = self.clock()
        if self.kind == "kelly" or now < self._next:
            return False
        self._next = now + self.every_s
        try:
            name = latest_name(self.directory)
        except CheckpointError as exc:
            log.warning("policy refresh: %s", exc)
            return False
        if name is None or name == self.tried:
            return False
        self.tried = name
        policy, info = select_policy(self.kind, self.settings)
        if policy is None:
            if self.loaded is None:
                governor.use_policy(None, info)
            return False
        governor.use_policy(policy, info)
        self.loaded = name
        self.loads += 1
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: build the governor with the chosen policy, print its status and (optionally) one decision."""
    from execution.governor import Governor, GovernorConfig
    from infra.settings import load_settings

    parser = argparse.ArgumentParser(
        prog="python -m research.rl_sizer.serving", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--policy", choices=POLICIES, default="edge",
                        help="edge (default; static Kelly until a valid checkpoint exists), ppo or kelly")  # fmt: skip
    parser.add_argument("--confidence", type=float, default=None, help="size one trade with this confidence")
    parser.add_argument("--state", default=None, help="comma-separated state [confidence,volatility,regime]")
    parser.add_argument("--explore", action="store_true", help="sample the policy (records behaviour_logp)")
    args = parser.parse_args(argv)
    settings = load_settings()
    policy, info = select_policy(args.policy, settings)
    gov = Governor(GovernorConfig(explore=args.explore), policy=policy, policy_info=info)
    out: dict[str, Any] = {"status": gov.status()}
    if args.confidence is not None:
        try:
            state = [float(v) for v in args.state.split(",")] if args.state else [args.confidence, 0.0, 0.0]
        except ValueError:
            print(f"error: --state must be comma-separated numbers. Got {args.state!r}.", file=sys.stderr)
            return 2
        d = gov.size(confidence=args.confidence, state=state)
        out["decision"] = d.as_dict()
        out["execution_fields"] = d.execution_fields()
    print(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, prog="python -m research.rl_sizer.serving"))
