"""RiskAutotuner: turn measured performance into per-symbol risk thresholds, cautiously.

Policy (pure: :func:`propose`; see ``docs/autotune.md``)
---------------------------------------------------------
Each symbol has a *level* ``L`` in ``[-2, 2]`` (negative: tightened, positive: loosened) and three
thresholds: ``min_confidence`` (minimum model confidence to trade), ``size_scale`` (multiplier
on the governor's size) and ``max_exposure`` (fraction of equity). One cycle:

1. **Score** ``s``: the symbol's deflated Sharpe ratio (Bailey and Lopez de Prado 2014: the
   probability that the true Sharpe exceeds the best of the symbols compared by chance), or the
   probabilistic Sharpe ratio when the DSR is not finite. Both are probabilities in [0, 1].
2. **Level with hysteresis**: the boundaries ``B = (0.25, 0.50, 0.75, 0.90)`` separate levels
   -2|-1|0|1|2. From the current level the desired level rises across boundary ``b`` only when
   ``s >= b + h`` and falls only when ``s < b - h`` (``h = 0.05`` by default), so a score
   hovering within ``h`` of a boundary never flips the level back and forth. The top level is
   entered at a DSR of 0.95 (95 % probability that the Sharpe beats the best of the symbols by
   chance, the usual significance level) and left below 0.85. The top boundary used to be 0.95:
   with the hysteresis that asked for a DSR of exactly 1.0, which a finite sample never reaches,
   so the top level was unreachable; the config now refuses any ``b + h >= 1``.
3. **Caps from the model's health**: drift detected caps the desired level at -1; a calibration
   error (ECE) above ``max_ece`` caps it at 0 (never loosen a miscalibrated model); a drawdown
   deeper than ``max_drawdown`` caps it at -1.
4. **Bounded change**: the level moves at most one step per cycle.
5. **Targets**: ``size_scale = default * (1 + step)^L``, ``max_exposure = default * (1 + step)^L``,
   ``min_confidence = default * (1 + step)^-L``, each clipped to its hard floor and ceiling.
   The new value is the target clipped to ``[old / (1 + step), old * (1 + step)]`` (a bounded
   step of at most ``step``, default 10 %, per cycle) and then to the floor and ceiling, which
   always win. Adjacent levels' targets are one step apart, so one level change moves each
   threshold by one bounded step: a metric oscillating around a boundary by less than ``h``
   changes each threshold at most once.
6. **Too little data**: fewer than ``min_trades`` trades (or no finite score) keeps the current
   thresholds (the defaults for a new symbol) and says so in the adjustment's reason.

The job that reads the inputs and writes the thresholds is :mod:`execution.risk_autotune`.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from execution.thresholds import (
    THRESHOLD_NAMES,
    SymbolThresholds,
)

log = logging.getLogger(__name__)

MIN_LEVEL, MAX_LEVEL = -2, 2
LOG_PREFIX = "autotune adjustments="
DRY_RUN_ARTIFACT = "autotune_dry_run"


@dataclass(frozen=True, kw_only=True)
class AutotuneConfig:
    """Knobs of the policy (see the module docstring)."""

    max_step: float = 0.10
    """Largest relative change of a threshold per cycle (0.10 = 10 %)."""
    hysteresis: float = 0.05
    """Half-width ``h`` of the dead band around each score boundary."""
    boundaries: tuple[float, float, float, float] = (0.25, 0.50, 0.75, 0.90)
    """Score boundaries between levels -2|-1|0|1|2 (the top level is entered at 0.90 + h = 0.95)."""
    min_trades: int = 30
    """Trades a symbol needs before its thresholds move."""
    max_ece: float = 0.10
    """Expected calibration error above which the level is capped at 0."""
    max_drawdown: float = 0.25
    """Drawdown (positive fraction) beyond which the level is capped at -1."""
    defaults: Mapping[str, float] = field(
        default_factory=lambda: {"min_confidence": 0.55, "size_scale": 1.0, "max_exposure": 0.10}
    )
    floors: Mapping[str, float] = field(
        default_factory=lambda: {"min_confidence": 0.50, "size_scale": 0.25, "max_exposure": 0.02}
    )
    ceilings: Mapping[str, float] = field(
        default_factory=lambda: {"min_confidence": 0.80, "size_scale": 1.50, "max_exposure": 0.25}
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.max_step, (int, float)) and 0 < self.max_step <= 1):
            raise ValueError(
                f"The 'max_step' of AutotuneConfig must be in (0, 1]. Got {self.max_step!r} instead."
            )
        if not (isinstance(self.hysteresis, (int, float)) and 0 <= self.hysteresis < 0.25):
            raise ValueError(
                f"The 'hysteresis' of AutotuneConfig must be in [0, 0.25). Got {self.hysteresis!r} instead."
            )
        b = tuple(self.boundaries)
        if len(b) != 4 or any(not 0 < x < 1 for x in b) or any(x >= y for x, y in itertools.pairwise(b)):
            raise ValueError(
                f"The 'boundaries' of AutotuneConfig must be 4 increasing numbers in (0, 1). Got {b!r} instead."
            )
        if b[-1] + self.hysteresis >= 1.0:
            raise ValueError(
                f"AutotuneConfig's top boundary plus hysteresis must be < 1 (a DSR or PSR never reaches 1.0, "
                f"so the top level would be unreachable). Got {b[-1]!r} + {self.hysteresis!r}."
            )
        if not isinstance(self.min_trades, int) or self.min_trades < 1:
            raise ValueError(
                f"The 'min_trades' of AutotuneConfig must be an int >= 1. Got {self.min_trades!r} instead."
            )
        for name in THRESHOLD_NAMES:
            for what in ("defaults", "floors", "ceilings"):
                if name not in getattr(self, what):
                    raise ValueError(f"The '{what}' of AutotuneConfig must have a value for {name!r}.")
            lo, d, hi = self.floors[name], self.defaults[name], self.ceilings[name]
            if not 0 < lo <= d <= hi:
                raise ValueError(
                    f"AutotuneConfig needs 0 < floor <= default <= ceiling for {name!r}. "
                    f"Got {lo!r}, {d!r}, {hi!r} instead."
                )

    def default_thresholds(self) -> SymbolThresholds:
        return SymbolThresholds(
            min_confidence=self.defaults["min_confidence"],
            size_scale=self.defaults["size_scale"],
            max_exposure=self.defaults["max_exposure"],
            level=0,
        )


@dataclass(frozen=True, kw_only=True)
class SymbolInputs:
    """What the policy knows about one symbol this cycle (``None``: not available)."""

    n_trades: int
    psr: float | None = None
    dsr: float | None = None
    sharpe: float | None = None
    sharpe_lo: float | None = None
    """Lo's (2002) autocorrelation-adjusted annual Sharpe (normalized_table's ``sharpe_lo``)."""
    n_obs: int | None = None
    """Daily observations behind the Sharpe, PSR and DSR."""
    max_drawdown: float | None = None
    """Maximum drawdown, either sign (its magnitude is used)."""
    mean_confidence: float | None = None
    ece: float | None = None
    drift: bool | None = None


@dataclass(frozen=True)
class Adjustment:
    """One line of the log: a threshold that changed (or was held on purpose), and why."""

    symbol: str
    threshold: str
    old: float
    new: float
    reason: str


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def score_of(inputs: SymbolInputs) -> tuple[float | None, str]:
    """The score (DSR, else PSR) and its name; ``None`` when neither is finite."""
    if _finite(inputs.dsr):
        return float(inputs.dsr), "dsr"  # type: ignore[arg-type]
    if _finite(inputs.psr):
        return float(inputs.psr), "psr"  # type: ignore[arg-type]
    return None, "none"


def desired_level(score: float, current: int, config: AutotuneConfig) -> int:
    """Level the score asks for from ``current``, with hysteresis ``h`` around each boundary.

    Examples
    --------
    >>> cfg = AutotuneConfig()
    >>> desired_level(0.78, 0, cfg), desired_level(0.81, 0, cfg), desired_level(0.72, 1, cfg)
    (0, 1, 1)
    """
    b, h = config.boundaries, config.hysteresis
    level = max(MIN_LEVEL, min(MAX_LEVEL, int(current)))
    # rounded: 0.90 + 0.05 is 0.9500000000000001 in binary, which would refuse a DSR of 0.95
    while level < MAX_LEVEL and score >= round(b[level + 2] + h, 12):
        level += 1
    while level > MIN_LEVEL and score < round(b[level + 1] - h, 12):
        level -= 1
    return level


def target_value(name: str, level: int, config: AutotuneConfig) -> float:
    """The value of threshold ``name`` at ``level`` (before the bounded step), within its bounds."""
    g = 1.0 + config.max_step
    exponent = -level if name == "min_confidence" else level
    raw = config.defaults[name] * g**exponent
    return min(config.ceilings[name], max(config.floors[name], raw))


def step_towards(name: str, old: float, target: float, config: AutotuneConfig) -> float:
    """Move ``old`` towards ``target`` by at most ``max_step`` (relative), then into the hard bounds."""
    g = 1.0 + config.max_step
    new = min(old * g, max(old / g, target))
    new = min(config.ceilings[name], max(config.floors[name], new))
    return round(new, 10)


def propose(
    current: SymbolThresholds | None,
    inputs: SymbolInputs,
    config: AutotuneConfig,
) -> tuple[SymbolThresholds, list[str]]:
    """One cycle of the policy for one symbol: ``(new thresholds, reasons)``.

    ``reasons`` explains the level decision (one string per rule that applied).
    """
    cur = current or config.default_thresholds()
    score, score_name = score_of(inputs)
    if inputs.n_trades < config.min_trades or score is None:
        why = (
            f"insufficient data: {inputs.n_trades} trades < min_trades {config.min_trades}"
            if inputs.n_trades < config.min_trades
            else "insufficient data: no finite DSR or PSR"
        )
        return cur, [why + ("; keeping defaults" if current is None else "; keeping current thresholds")]
    reasons = [f"{score_name}={score:.3f}"]
    want = desired_level(score, cur.level, config)
    if inputs.drift:
        if want > -1:
            reasons.append("drift detected: level capped at -1")
        want = min(want, -1)
    ece = inputs.ece if _finite(inputs.ece) else None
    if ece is not None and ece > config.max_ece:
        if want > 0:
            reasons.append(f"ece={ece:.3f} > {config.max_ece}: level capped at 0")
        want = min(want, 0)
    dd = (
        abs(inputs.max_drawdown) if inputs.max_drawdown is not None and _finite(inputs.max_drawdown) else None
    )
    if dd is not None and dd > config.max_drawdown:
        if want > -1:
            reasons.append(f"drawdown {dd:.3f} > {config.max_drawdown}: level capped at -1")
        want = min(want, -1)
    new_level = max(cur.level - 1, min(cur.level + 1, want))
    if new_level != cur.level:
        reasons.append(f"level {cur.level} -> {new_level}")
    else:
        reasons.append(f"level {cur.level} held")
    values = {
        n: step_towards(n, cur.get(n), target_value(n, new_level, config), config) for n in THRESHOLD_NAMES
    }
    return SymbolThresholds(level=new_level, **values), reasons


def plan(
    current: Mapping[str, SymbolThresholds],
    inputs: Mapping[str, SymbolInputs],
    config: AutotuneConfig,
) -> tuple[dict[str, SymbolThresholds], list[Adjustment]]:
    """Run :func:`propose` for every symbol in ``inputs``; symbols without inputs keep their state.

    Adjustments list every threshold that changed, plus one entry per threshold of a symbol held
    for too little data (``old == new``, the reason says so).
    """
    out, adjustments, _ = _plan(current, inputs, config)
    return out, adjustments


def _plan(
    current: Mapping[str, SymbolThresholds],
    inputs: Mapping[str, SymbolInputs],
    config: AutotuneConfig,
) -> tuple[dict[str, SymbolThresholds], list[Adjustment], dict[str, list[str]]]:
    out = dict(current)
    adjustments: list[Adjustment] = []
    reasons_by_symbol: dict[str, list[str]] = {}
    for sym in sorted(inputs):
        old = current.get(sym)
        new, reasons = propose(old, inputs[sym], config)
        out[sym] = new
        reasons_by_symbol[sym] = reasons
        base = old or config.default_thresholds()
        held = reasons[0].startswith("insufficient data")
        for name in THRESHOLD_NAMES:
            a, b = base.get(name), new.get(name)
            if a != b or held:
                adjustments.append(Adjustment(sym, name, a, b, "; ".join(reasons)))
    return out, adjustments, reasons_by_symbol


def _num(x: Any) -> float | int | None:
    """A JSON-safe number: finite floats rounded to 6 decimals, ints kept, anything else None."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int):
        return x
    v = _as_float(x)
    return None if v is None else round(v, 6)


def _change(old: float, new: float) -> str:
    return f"unchanged ({old:g})" if old == new else f"{old:g} -> {new:g}"


def cycle_report(
    current: Mapping[str, SymbolThresholds],
    new: Mapping[str, SymbolThresholds],
    inputs: Mapping[str, SymbolInputs],
    reasons: Mapping[str, list[str]],
    config: AutotuneConfig,
) -> dict[str, dict[str, Any]]:
    """The cycle as one JSON object keyed by symbol (what the log line holds), for every symbol.

    Each entry: ``status`` (``tuned``, ``held`` for too little data, ``stale`` for a symbol of
    the thresholds file without trades in the current log); ``inputs`` the normalized inputs
    used (``sharpe``, ``sharpe_lo`` = Lo-adjusted Sharpe, ``psr``, ``dsr``, ``n_obs``,
    ``n_trades``, ``max_drawdown``); ``ml`` (``mean_confidence``, ``ece``); ``score`` (which of
    DSR/PSR drove the level and its value); ``drift_cap`` (the drift cap applied, else None) and
    ``caps`` (every cap applied); ``level`` (``old -> new`` or ``held``); ``thresholds``: each
    threshold's ``"old -> new"`` or ``"unchanged (value)"``; ``reason``.

    Examples
    --------
    >>> cfg = AutotuneConfig()
    >>> inputs = {"BTC": SymbolInputs(n_trades=100, dsr=0.9, psr=0.97, sharpe=2.1, sharpe_lo=1.9, n_obs=90)}
    >>> new, _ = plan({}, inputs, cfg)
    >>> r = cycle_report({}, new, inputs, {"BTC": propose(None, inputs["BTC"], cfg)[1]}, cfg)["BTC"]
    >>> r["status"], r["score"], r["level"], r["thresholds"]["size_scale"], r["drift_cap"]
    ('tuned', {'name': 'dsr', 'value': 0.9}, '0 -> 1', '1 -> 1.1', None)
    """
    out: dict[str, dict[str, Any]] = {}
    for sym in sorted(set(new) | set(inputs)):
        old = current.get(sym) or config.default_thresholds()
        cur = new.get(sym, old)
        thresholds = {name: _change(old.get(name), cur.get(name)) for name in THRESHOLD_NAMES}
        if sym not in inputs:
            out[sym] = {
                "status": "stale",
                "reason": "no trades in the current trade log: thresholds kept, not tuned",
                "inputs": None, "ml": None, "score": None, "drift_cap": None, "caps": [],
                "level": f"{old.level} held", "thresholds": thresholds,
            }  # fmt: skip
            continue
        i = inputs[sym]
        why = reasons.get(sym, [])
        held = bool(why) and why[0].startswith("insufficient data")
        score, score_name = score_of(i)
        caps = [r for r in why if "capped" in r]
        out[sym] = {
            "status": "held" if held else "tuned",
            "reason": "; ".join(why),
            "inputs": {
                "sharpe": _num(i.sharpe), "sharpe_lo": _num(i.sharpe_lo), "psr": _num(i.psr),
                "dsr": _num(i.dsr), "n_obs": _num(i.n_obs), "n_trades": _num(i.n_trades),
                "max_drawdown": _num(i.max_drawdown),
            },
            "ml": {"mean_confidence": _num(i.mean_confidence), "ece": _num(i.ece), "drift": i.drift},
            "score": None if score is None else {"name": score_name, "value": _num(score)},
            "drift_cap": next((c for c in caps if c.startswith("drift")), None),
            "caps": caps,
            "level": f"{old.level} held" if cur.level == old.level else f"{old.level} -> {cur.level}",
            "thresholds": thresholds,
        }  # fmt: skip
    return out


def log_line(report: Mapping[str, Any]) -> str:
    """``autotune adjustments={...}``: the single line a cycle logs (:func:`cycle_report`)."""
    return LOG_PREFIX + json.dumps(dict(report), sort_keys=True, allow_nan=False, separators=(",", ":"))


def _as_float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
