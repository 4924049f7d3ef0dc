"""Position-size governor: fractional Kelly times a learned multiplier, capped.

For a bet that wins with probability ``p`` and pays ``b`` per unit risked on a win (loses the
unit otherwise), the growth-optimal fraction is Kelly's ``f* = p - (1 - p) / b = (p (b + 1) - 1) / b``
(Kelly 1956; Thorp 2006, "The Kelly criterion in blackjack, sports betting and the stock
market", eq. 2.3). The governor takes ``p`` from the model's confidence, floors ``f*`` at 0 (no
edge, no position), scales it by ``kelly_fraction`` (half Kelly by default: about three quarters
of the growth for half the variance), multiplies by the sizing policy's multiplier clamped to
``[0.5, 2.0]`` and caps the result at ``max_position_pct``::

    size_pct = min(kelly_fraction * max(f*, 0) * clamp(multiplier, 0.5, 2.0), max_position_pct)

The policy is any object with ``get_multiplier(state) -> float`` (the job that runs the governor
wires it, :mod:`research.rl_sizer.serving`; ``execution/`` never imports ``research/``). Optional:
``name`` (``"edge"``, ``"ppo"``: the decision's ``source``), ``explain(state)`` returning the
learned ``edge`` and a ``no_edge`` flag (shown in the log line and counted in the status; the
multiplier is still clamped to the configured range), and ``sample(state) -> (multiplier,
log_prob)``, used when ``GovernorConfig.explore`` is set: the decision then records the behaviour
log-probability, which :meth:`SizingDecision.execution_fields` puts into ``trade.execution.res``
as ``behaviour_logp`` for the PPO trainer. Without a policy, or when the policy raises
or returns a non-finite number, the multiplier is 1.0 (static Kelly); the first such event is
logged as a warning and the reason is kept in :meth:`Governor.status`. Every decision is logged
as ``Kelly=12.50% x PPO=1.32 = 16.50%`` (percent of equity).

Examples
--------
>>> gov = Governor(GovernorConfig(kelly_fraction=0.5, max_position_pct=25.0))
>>> d = gov.size(confidence=0.6, payoff_ratio=1.0)
>>> round(d.kelly_pct, 6), d.multiplier, round(d.size_pct, 6), d.source
(10.0, 1.0, 10.0, 'static')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

MULT_MIN = 0.5
MULT_MAX = 2.0


class SizingPolicy(Protocol):
    """What the governor needs from a learned sizer."""

    def get_multiplier(self, state: Any) -> float: ...


def kelly_fraction(p: float, b: float) -> float:
    """Full-Kelly fraction ``(p (b + 1) - 1) / b`` for win probability ``p`` and payoff ratio ``b``.

    Negative when the bet has no edge (the governor floors it at 0).

    Examples
    --------
    >>> round(kelly_fraction(0.6, 1.0), 12), kelly_fraction(0.5, 2.0)
    (0.2, 0.25)
    """
    if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        raise ValueError(
            f"The 'confidence' parameter of kelly_fraction must be in [0, 1]. Got {p!r} instead."
        )
    if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
        raise ValueError(
            f"The 'payoff_ratio' parameter of kelly_fraction must be a number > 0. Got {b!r} instead."
        )
    return (p * (b + 1.0) - 1.0) / b


@dataclass(frozen=True, kw_only=True)
class GovernorConfig:
    """Governor parameters."""

    kelly_fraction: float = 0.5
    """Share of full Kelly used as the base size (0 < x <= 1)."""
    payoff_ratio: float = 1.0
    """Default win/loss payoff ratio ``b`` when a decision does not give one."""
    max_position_pct: float = 10.0
    """Cap on one position, in percent of equity."""
    min_multiplier: float = MULT_MIN
    """Lower clamp of the policy multiplier."""
    max_multiplier: float = MULT_MAX
    """Upper clamp of the policy multiplier."""
    explore: bool = False
    """Sample the multiplier from the policy (one with ``sample(state) -> (multiplier, log_prob)``)
    and record the behaviour log-probability with the decision (on-policy data for PPO)."""

    def __post_init__(self) -> None:
        if not (0.0 < self.kelly_fraction <= 1.0):
            raise ValueError(
                f"The 'kelly_fraction' parameter of GovernorConfig must be in (0, 1]. Got {self.kelly_fraction!r} instead."
            )
        if not (math.isfinite(self.payoff_ratio) and self.payoff_ratio > 0):
            raise ValueError(
                f"The 'payoff_ratio' parameter of GovernorConfig must be > 0. Got {self.payoff_ratio!r} instead."
            )
        if not (0.0 < self.max_position_pct <= 100.0):
            raise ValueError(
                f"The 'max_position_pct' parameter of GovernorConfig must be in (0, 100]. "
                f"Got {self.max_position_pct!r} instead."
            )
        if not (0.0 < self.min_multiplier <= self.max_multiplier):
            raise ValueError(
                "The 'min_multiplier' and 'max_multiplier' parameters of GovernorConfig must satisfy "
                f"0 < min <= max. Got {self.min_multiplier!r} and {self.max_multiplier!r} instead."
            )


@dataclass(frozen=True)
class SizingDecision:
    """One sizing decision (percentages of equity)."""

    kelly_pct: float
    """Fractional Kelly size before the multiplier."""
    suggested_multiplier: float | None
    """What the policy returned (None without a policy or when it failed)."""
    multiplier: float
    """Multiplier applied: the suggestion clamped to [min, max], or 1.0 under static Kelly."""
    size_pct: float
    """Final size after the cap."""
    capped: bool
    """True when ``max_position_pct`` bound the size."""
    source: str
    """The policy's ``name`` (``"edge"``, ``"ppo"``) or ``"static"``."""
    behaviour_logp: float | None = None
    """Log-density of the sampled multiplier under the behaviour policy (``explore``), else None."""
    no_edge: bool | None = None
    """The policy's learned net edge is <= 0 (a policy with ``explain``), else None."""
    edge: float | None = None
    """The policy's learned net edge per unit risk, if it reports one."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def execution_fields(self) -> dict[str, Any]:
        """What ``trade.execution.res`` carries of this decision: ``multiplier_used`` and, when the
        multiplier was sampled, ``behaviour_logp`` (the PPO trainer uses no sample without it)."""
        out: dict[str, Any] = {"multiplier_used": self.multiplier}
        if self.behaviour_logp is not None:
            out["behaviour_logp"] = self.behaviour_logp
        return out


class Governor:
    """Sizes positions (see the module docstring).

    Parameters
    ----------
    config : GovernorConfig
    policy : SizingPolicy or None
        Learned sizer; None means static Kelly.
    policy_info : str
        Where the policy came from, or why there is none (shown in :meth:`status`).
    """

    def __init__(
        self,
        config: GovernorConfig | None = None,
        *,
        policy: SizingPolicy | None = None,
        policy_info: str = "",
    ) -> None:
        self.config = config or GovernorConfig()
        self.decisions = 0
        self.fallbacks = 0
        self.capped = 0
        self.no_edge = 0
        self.last_fallback_reason: str | None = None
        self._warned = False
        self.use_policy(
            policy, policy_info or ("policy injected" if policy is not None else "no policy given")
        )

    def use_policy(self, policy: SizingPolicy | None, policy_info: str) -> None:
        """Size from now on with ``policy`` (None: static Kelly), e.g. a newer checkpoint of the live sizer.

        Decisions already made keep the policy they were made with; the counters carry on.
        """
        self.policy: SizingPolicy | None = policy
        self.policy_info = policy_info
        self.policy_name = str(getattr(policy, "name", "ppo")) if policy is not None else "static"
        if policy is None:
            self._fallback(f"static Kelly: {policy_info}")
        else:
            self.last_fallback_reason = None

    def _fallback(self, reason: str) -> None:
        self.last_fallback_reason = reason
        if not self._warned:
            log.warning("governor: sizing with static Kelly (multiplier 1.0): %s", reason)
            self._warned = True

    def size(
        self, *, confidence: float, payoff_ratio: float | None = None, state: Sequence[float] | Any = None
    ) -> SizingDecision:
        """Size one position from the model's ``confidence`` (win probability) and the policy's view of ``state``."""
        cfg = self.config
        b = cfg.payoff_ratio if payoff_ratio is None else payoff_ratio
        kelly_pct = cfg.kelly_fraction * max(kelly_fraction(confidence, b), 0.0) * 100.0
        suggested: float | None = None
        source = "static"
        mult = 1.0
        logp: float | None = None
        no_edge: bool | None = None
        edge: float | None = None
        policy = self.policy
        if policy is not None:
            try:
                sample = getattr(policy, "sample", None) if cfg.explore else None
                if sample is not None:
                    m, lp = sample(state)
                    suggested, logp = float(m), float(lp)
                else:
                    suggested = float(policy.get_multiplier(state))
                explain = getattr(policy, "explain", None)
                if explain is not None:
                    info = explain(state)
                    no_edge = bool(info.get("no_edge")) if "no_edge" in info else None
                    edge = float(info["edge"]) if "edge" in info else None
            except Exception as exc:  # a broken policy must not stop trading: fall back and say so
                self.fallbacks += 1
                self._fallback(f"policy raised {type(exc).__name__}: {exc}")
                suggested = logp = no_edge = edge = None
            else:
                if math.isfinite(suggested):
                    mult = min(max(suggested, cfg.min_multiplier), cfg.max_multiplier)
                    source = self.policy_name
                    if mult != suggested or (logp is not None and not math.isfinite(logp)):
                        logp = None  # the clamp moved the sample: its density no longer applies
                else:
                    self.fallbacks += 1
                    self._fallback(f"policy returned a non-finite multiplier {suggested!r}")
                    suggested = logp = no_edge = edge = None
        raw = kelly_pct * mult
        size_pct = min(raw, cfg.max_position_pct)
        capped = raw > cfg.max_position_pct
        self.decisions += 1
        self.capped += int(capped)
        self.no_edge += int(bool(no_edge))
        log.info(
            "Kelly=%.2f%% x %s=%.2f = %.2f%%%s%s",
            kelly_pct,
            source.upper() if source != "static" else "static",
            mult,
            size_pct,
            " (capped)" if capped else "",
            " (learned edge <= 0: no edge)" if no_edge else "",
        )
        return SizingDecision(kelly_pct, suggested, mult, size_pct, capped, source, logp, no_edge, edge)

    def status(self) -> dict[str, Any]:
        """What the governor is doing, for artifacts and the doctor."""
        return {
            "mode": self.policy_name,
            "policy_info": self.policy_info,
            "decisions": self.decisions,
            "fallbacks": self.fallbacks,
            "capped": self.capped,
            "no_edge": self.no_edge,
            "last_fallback_reason": self.last_fallback_reason,
            "config": asdict(self.config),
        }
