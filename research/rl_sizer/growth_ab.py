"""The log-growth A/B: can a learned sizer beat static Kelly, and by how much of what is achievable?

Why this file is long: the policies, the per-seed metrics and the two runs (synthetic data and real
trades) are one A/B sharing one result-row schema, and a fifth of it is this docstring's
definitions.

Pure computation (DESIGN.md layer 2); :mod:`research.rl_sizer.evaluate` is its command line.

Every policy is a multiplier per test trade, simulated through :class:`SizingEnv` with its
position cap, gross cap and costs (drawdown stop off, so every policy trades identical trades).

Rows
    ``kelly`` (static Kelly, multiplier 1), ``const`` (the best constant multiplier, picked on the
    training trades by realized log growth), the learned sizers (``edge``: :class:`EdgeSizer`;
    ``table``: calibrated-Kelly table; ``ppo`` / ``dqn``: stable-baselines3, trained on the
    training trades; ``ppo_online``: the online PPO sizer trained as the trainer trains it,
    :func:`online_ppo_multipliers`) and the achievable optimum:

    * synthetic data (true win probabilities known): fractional Kelly on the *true* net edge,
      with its one global fraction tuned on 50,000 fresh trades of the same process through the
      env (the best state-dependent policy of that family given the generating process);
    * real data: the hindsight-best multiplier per state bucket (regime x confidence tercile) on
      the test trades themselves, through the env, labelled as an upper bound (it peeks at the
      outcomes).

Metrics
    Log growth per 1,000 trades (primary), annualized Sharpe and max drawdown (secondary), the
    share of trades at the position cap (``cap%``) and of trades cut by the gross cap
    (``gross%``: open positions left less room than the sized trade), the mean multiplier. On synthetic data also the
    *expected* log growth per 1,000 trades: each trade's ``E[log(1 + r)]`` given the leverage the
    env applied and the true win probability (:func:`~research.rl_sizer.edge_sizer.expected_log_growth`),
    an unbiased estimate of the same expectation with each trade's outcome noise integrated out
    (the leverage is known at entry). The synthetic verdict uses it; the realized figure is shown
    beside it.

Uncertainty
    Synthetic: the A/B is repeated over independent data seeds (fresh training and test trades,
    fresh sizer fits), and each difference to Kelly gets the mean over seeds and a Student-t 95%
    interval across seeds. Real data: one trade set; intervals from the paired moving-block
    bootstrap of :func:`research.rl_sizer.evaluate.paired_difference`. The minimum detectable
    difference (two-sided 5% test, 80% power) is ``(z_0.975 + z_0.8) SE = 2.80 SE`` of a row's
    difference to Kelly.

The verdict and the plain-text table are :mod:`research.rl_sizer.growth_report`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from execution.metrics_normalizer import max_drawdown, sharpe_ratio
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.edge_sizer import (
    DEFAULT_FRACTIONS,
    EdgeSizer,
    cost_in_r,
    expected_log_growth,
    simulate,
    trade_states,
)
from research.rl_sizer.env import MAX_MULTIPLIER, MIN_MULTIPLIER, SizingEnv, kelly_fraction
from research.rl_sizer.growth_report import growth_verdict, share_known
from research.rl_sizer.signals import TradeSet, synthetic_trades

GROWTH_SIZERS: tuple[str, ...] = ("kelly", "const", "edge", "table", "ppo", "dqn", "ppo_online")
FAST_SIZERS: tuple[str, ...] = ("kelly", "const", "edge", "table")
CONST_GRID: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0)
Z_MDE = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.8))  # 2.80
OPTIMUM_TRADES = 50_000
"""Fresh synthetic trades the optimum's global fraction is tuned on."""


# --------------------------------------------------------------------------- policies
def best_constant(train: TradeSet, config: PilotConfig, grid: Sequence[float] = CONST_GRID) -> float:
    """The constant multiplier with the highest realized log growth on ``train`` through the env."""
    scores = {
        float(m): float(np.log1p(simulate(train, np.full(len(train), m), config)[0]).sum()) for m in grid
    }
    return max(scores, key=lambda m: scores[m])


def _to_multiplier(stake: np.ndarray, trades: TradeSet, config: PilotConfig) -> np.ndarray:
    base = config.kelly_fraction * kelly_fraction(trades.confidence, config.payoff_ratio)
    m = np.divide(stake, base, out=np.ones_like(stake), where=base > 0)
    return np.clip(m, MIN_MULTIPLIER, MAX_MULTIPLIER)


def true_full_kelly(trades: TradeSet, config: PilotConfig) -> np.ndarray:
    """Full-Kelly stake on the true net edge ``q (b + 1) - 1 - c_R`` over ``(b - c_R)(1 + c_R)``."""
    if not np.isfinite(trades.true_prob).all():
        raise ValueError("true_full_kelly needs trades with known true win probabilities (synthetic).")
    c = cost_in_r(trades.barrier, config.cost_bps)
    b = config.payoff_ratio
    mu = trades.true_prob * (b + 1.0) - 1.0 - c
    return mu / np.maximum((b - c) * (1.0 + c), 1e-9)


def optimum_multipliers(trades: TradeSet, config: PilotConfig, fraction: float) -> np.ndarray:
    """Multipliers of fractional Kelly on the true net edge."""
    return _to_multiplier(fraction * true_full_kelly(trades, config), trades, config)


def optimum_fraction(
    config: PilotConfig,
    *,
    n: int = OPTIMUM_TRADES,
    seed: int = 987_654,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> float:
    """Global fraction of the synthetic optimum: best expected log growth on ``n`` fresh trades."""
    fresh = synthetic_trades(n, rng=np.random.default_rng(seed))
    full = true_full_kelly(fresh, config)
    best, best_score = float(fractions[0]), -math.inf
    for f in fractions:
        _, lev = simulate(fresh, _to_multiplier(f * full, fresh, config), config)
        score = float(expected_log_growth(fresh, lev, fresh.true_prob, config).sum())
        if score > best_score:
            best, best_score = float(f), score
    return best


def state_buckets(trades: TradeSet, conf_edges: np.ndarray) -> np.ndarray:
    """Bucket id ``regime * (len(edges) + 1) + confidence bucket`` of each trade."""
    cb = np.searchsorted(conf_edges, trades.confidence, side="right")
    return trades.regime.astype(np.int64) * (len(conf_edges) + 1) + cb


def hindsight_multipliers(
    test: TradeSet, config: PilotConfig, *, conf_edges: np.ndarray, grid: Sequence[float] = CONST_GRID
) -> np.ndarray:
    """Upper bound for real data: per state bucket, the grid multiplier with the best realized log
    growth on the test trades themselves, through the env (one pass of coordinate ascent over the
    buckets, starting from Kelly; it peeks at the outcomes, so it is not achievable)."""
    ids = state_buckets(test, conf_edges)
    m = np.ones(len(test))
    for b in np.unique(ids):
        sel = ids == b
        best, best_score = 1.0, -math.inf
        for g in grid:
            m[sel] = g
            score = float(np.log1p(simulate(test, m, config)[0]).sum())
            if score > best_score:
                best, best_score = float(g), score
        m[sel] = best
    return m


def learned_multipliers(
    name: str, train: TradeSet, test: TradeSet, config: PilotConfig, *, seed: int, train_steps: int
) -> np.ndarray:
    """Multipliers a learned sizer (``edge``, ``table``, ``ppo``, ``dqn``) fitted on ``train`` gives ``test``."""
    if name == "edge":
        return EdgeSizer.from_config(config).fit_trades(train, config).trade_multipliers(test, config)
    from research.rl_sizer.agents import TableSizer, make_sizer
    from research.rl_sizer.rollout import run_episode

    if name == "table":
        return TableSizer(config, seed=seed).fit_trades(train).multiplier(test.confidence, test.regime)
    if name == "ppo_online":
        return online_ppo_multipliers(train, test, config, seed=seed)
    if name in ("ppo", "dqn"):
        sizer = make_sizer(name, config, seed=seed).learn(SizingEnv(trades=train, config=config), train_steps)
        env = SizingEnv(trades=test, config=config, terminate_on_drawdown=False)
        return run_episode(env, sizer, seed=seed, options={"length": None}).multipliers
    raise ValueError(
        f"The 'name' parameter must be one of {', '.join(GROWTH_SIZERS[2:])}. Got {name!r} instead."
    )


ONLINE_PPO_PASSES = 3
"""Passes of the online PPO sizer over the training trades (batches of 50, as the trainer)."""


def online_ppo_multipliers(
    train: TradeSet, test: TradeSet, config: PilotConfig, *, seed: int, passes: int = ONLINE_PPO_PASSES
) -> np.ndarray:
    """The fixed online PPO sizer (:class:`~research.rl_sizer.ppo_sizer.PPOSizer`) trained as the
    trainer trains it: batches of 50 trades in time order, multipliers sampled with their behaviour
    log-probs, reward = log growth of the sized trade minus Kelly's (each trade alone under the
    position cap); ``passes`` passes over the training trades; the test gets the mean multiplier."""
    import torch

    from research.rl_sizer.ppo_sizer import Batch, PPOSizer

    torch.set_num_threads(1)
    sizer = PPOSizer(3, seed=seed)
    x = trade_states(train)
    base = config.kelly_fraction * kelly_fraction(train.confidence, config.payoff_ratio)
    move = train.outcome_r * train.barrier - 2.0 * config.cost_bps / 1e4
    cap = config.max_position_leverage
    lev1 = np.minimum(base / train.barrier, cap)
    for _ in range(passes):
        for start in range(0, len(train), 50):
            sl = slice(start, start + 50)
            m, lp = sizer.sample_many(x[sl])
            lev = np.minimum(m * base[sl] / train.barrier[sl], cap)
            r = np.log1p(np.maximum(lev * move[sl], -0.99)) - np.log1p(np.maximum(lev1[sl] * move[sl], -0.99))
            sizer.update(Batch(x[sl], m, lp, r))
    with torch.no_grad():
        d = sizer.distribution(sizer._inputs(trade_states(test)))
        u = d.mean.double().numpy()
    return sizer.config.low + (sizer.config.high - sizer.config.low) * u


# --------------------------------------------------------------------------- metrics
def policy_metrics(test: TradeSet, m: np.ndarray, config: PilotConfig) -> dict[str, Any]:
    """Metrics of one policy on the test trades (module docstring), plus its per-trade log growth."""
    rets, lev = simulate(test, m, config)
    base = config.kelly_fraction * kelly_fraction(test.confidence, config.payoff_ratio)
    want = np.minimum(np.asarray(m) * base / test.barrier, config.max_position_leverage)
    t = len(test)
    lg = np.log1p(rets)
    out: dict[str, Any] = {
        "log_growth_1k": float(lg.sum() / t * 1000.0),
        "sharpe": float(sharpe_ratio(rets, periods_per_year=test.periods_per_year)),
        "max_drawdown": float(max_drawdown(rets)),
        "cap_share": float(np.mean(lev[np.abs(lev) > 0] >= config.max_position_leverage - 1e-12))
        if np.any(lev != 0)
        else 0.0,
        "gross_cap_share": float(np.mean(lev[want > 0] < want[want > 0] * (1 - 1e-9)))
        if np.any(want > 0)
        else 0.0,
        "mean_multiplier": float(np.mean(m)),
        "_log": lg,
        "_returns": rets,
    }
    if np.isfinite(test.true_prob).all():
        out["exp_log_growth_1k"] = float(
            expected_log_growth(test, lev, test.true_prob, config).sum() / t * 1000.0
        )
    return out


def edge_slopes(trades: TradeSet, config: PilotConfig) -> list[dict[str, float]]:
    """Realized-vs-claimed edge slope per regime: least squares through the origin of the net
    return per unit risk ``y`` on the claimed net edge ``x = p (b + 1) - 1 - c_R``, with its s.e.

    A calibrated signal has slope 1; 0 means the claim carries no information; < 0 that it points
    the wrong way. Also the mean of ``y`` (the realized net edge) with its s.e.
    """
    c = cost_in_r(trades.barrier, config.cost_bps)
    x = trades.confidence * (config.payoff_ratio + 1.0) - 1.0 - c
    y = trades.outcome_r - c
    rows = []
    for g in range(max(trades.n_regimes, int(trades.regime.max()) + 1 if len(trades) else 0)):
        sel = trades.regime == g
        n = int(sel.sum())
        if n < 3:
            continue
        xs, ys = x[sel], y[sel]
        sxx = float(xs @ xs)
        slope = float(xs @ ys) / sxx if sxx > 0 else float("nan")
        resid = ys - slope * xs
        se = math.sqrt(float(resid @ resid) / (n - 1) / sxx) if sxx > 0 else float("nan")
        rows.append({"regime": g, "trades": n, "slope": slope, "slope_se": se,
                     "net_edge": float(ys.mean()), "net_edge_se": float(ys.std(ddof=1) / math.sqrt(n))})  # fmt: skip
    return rows


def _t_interval(d: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, 95% Student-t interval and standard error of ``d`` (one value per seed)."""
    d = np.asarray(d, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    h = float(stats.t.ppf(0.975, len(d) - 1)) * se
    return mean, mean - h, mean + h, se


SEED_METRICS = (
    "exp_log_growth_1k",
    "log_growth_1k",
    "sharpe",
    "max_drawdown",
    "cap_share",
    "gross_cap_share",
    "mean_multiplier",
)


def run_synthetic_ab(
    *,
    config: PilotConfig | None = None,
    seeds: Sequence[int] = tuple(range(20)),
    n_train: int = 3000,
    n_test: int = 5000,
    agents: Sequence[str] = FAST_SIZERS,
    train_steps: int = 10_000,
    optimum_trades: int = OPTIMUM_TRADES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The A/B on synthetic regime data over independent data seeds (module docstring)."""
    cfg = config or PilotConfig()
    _check_agents(agents)
    if len(seeds) < 2:
        raise ValueError(f"The 'seeds' parameter of run_synthetic_ab needs >= 2 seeds. Got {list(seeds)}.")
    frac = optimum_fraction(cfg, n=optimum_trades)
    names = [*agents, "optimum"]
    per: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    slopes: list[list[dict[str, float]]] = []
    for s in seeds:
        if progress:
            progress(f"data seed {s}")
        train = synthetic_trades(n_train, rng=np.random.default_rng(int(s)))
        test = synthetic_trades(n_test, rng=np.random.default_rng(1_000_003 + int(s)))
        for name in names:
            m = _policy(name, train, test, cfg, seed=int(s), train_steps=train_steps, opt_fraction=frac)
            met = policy_metrics(test, m, cfg)
            met.pop("_log"), met.pop("_returns")
            per[name].append(met)
        slopes.append(edge_slopes(test, cfg))
    rows = []
    for name in names:
        row: dict[str, Any] = {"sizer": name, "seeds": len(seeds)}
        for key in SEED_METRICS:
            row[key] = float(np.mean([p[key] for p in per[name]]))
        if name != "kelly":
            for key in ("exp_log_growth_1k", "log_growth_1k", "sharpe", "max_drawdown"):
                d = np.array([p[key] - k[key] for p, k in zip(per[name], per["kelly"], strict=True)])
                mean, lo, hi, se = _t_interval(d)
                row[f"d_{key}"], row[f"d_{key}_ci"], row[f"mde_{key}"] = mean, [lo, hi], Z_MDE * se
        rows.append(row)
    _add_shares(rows, "exp_log_growth_1k")
    slope_rows = _mean_slopes(slopes)
    return {
        "kind": "synthetic",
        "label": f"synthetic-{len(seeds)}seeds",
        "train": {"trades": n_train},
        "test": {"trades": n_test},
        "seeds": [int(s) for s in seeds],
        "train_steps": int(train_steps),
        "optimum": f"fractional Kelly on the true net edge, fraction {frac:g} of full Kelly tuned on "
        f"{optimum_trades} fresh trades through the env",
        "optimum_fraction": frac,
        "primary": "exp_log_growth_1k",
        "rows": rows,
        "edge_slopes": slope_rows,
        "mde_log_growth_1k": next(r for r in rows if r["sizer"] == "optimum")["mde_exp_log_growth_1k"],
        "verdict": growth_verdict(rows, kind="synthetic", primary="exp_log_growth_1k"),
        "config": cfg.__dict__,
    }


def run_trades_ab(
    trades: TradeSet,
    *,
    config: PilotConfig | None = None,
    seeds: Sequence[int] = (0,),
    agents: Sequence[str] = FAST_SIZERS,
    train_steps: int = 10_000,
    n_boot: int = 1000,
    label: str = "ab",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The A/B on one trade set (real bars): time split, block-bootstrap intervals, hindsight bound."""
    from research.rl_sizer.ab_stats import paired_difference

    cfg = config or PilotConfig()
    _check_agents(agents)
    train, test = trades.split(cfg.train_frac)
    if len(train) < 10 or len(test) < 10:
        raise ValueError(
            f"run_trades_ab needs >= 10 training and test trades. Got {len(train)} and {len(test)}."
        )
    conf_edges = np.quantile(train.confidence, [1 / 3, 2 / 3])
    series: dict[str, list[dict[str, Any]]] = {}
    for name in agents:
        runs = []
        for s in seeds if name in ("ppo", "dqn") else seeds[:1]:
            if progress:
                progress(f"{name} seed {s}")
            m = _policy(name, train, test, cfg, seed=int(s), train_steps=train_steps, opt_fraction=1.0)
            runs.append(policy_metrics(test, m, cfg))
        series[name] = runs
    series["upper bound"] = [
        policy_metrics(test, hindsight_multipliers(test, cfg, conf_edges=conf_edges), cfg)
    ]
    rng = np.random.default_rng(12345)
    base = series["kelly"][0]["_returns"]
    t = len(test)
    rows = []
    for name, runs in series.items():
        row: dict[str, Any] = {"sizer": name, "seeds": len(runs)}
        for key in SEED_METRICS:
            if key in runs[0]:
                row[key] = float(np.mean([r[key] for r in runs]))
        if name != "kelly":
            a = np.stack([r["_returns"] for r in runs])
            for key, metric, scale in (("log_growth_1k", "log_growth", 1000.0 / t), ("sharpe", "sharpe", 1.0),
                                       ("max_drawdown", "max_drawdown", 1.0)):  # fmt: skip
                d, lo, hi = paired_difference(
                    a, base, metric=metric, periods_per_year=test.periods_per_year, n_boot=n_boot, rng=rng
                )
                row[f"d_{key}"], row[f"d_{key}_ci"] = d * scale, [lo * scale, hi * scale]
                row[f"mde_{key}"] = Z_MDE * (hi - lo) * scale / (2 * 1.959964)
        rows.append(row)
    _add_shares(rows, "log_growth_1k", optimum="upper bound")
    c = cost_in_r(test.barrier, cfg.cost_bps)
    y = test.outcome_r - c
    net = {"mean": float(y.mean()), "se": float(y.std(ddof=1) / math.sqrt(len(y)))}
    slope_rows = edge_slopes(test, cfg)
    return {
        "kind": "trades",
        "label": label,
        "train": train.window(),
        "test": test.window(),
        "seeds": [int(s) for s in seeds],
        "train_steps": int(train_steps),
        "optimum": "hindsight-best multiplier per (regime x confidence tercile) bucket on the test trades: "
        "an upper bound, not achievable",
        "primary": "log_growth_1k",
        "rows": rows,
        "edge_slopes": slope_rows,
        "net_edge": net,
        "mde_log_growth_1k": next(r for r in rows if r["sizer"] == "upper bound")["mde_log_growth_1k"],
        "verdict": growth_verdict(
            rows, kind="trades", primary="log_growth_1k", net_edge=net, slopes=slope_rows
        ),
        "config": cfg.__dict__,
    }


def _check_agents(agents: Sequence[str]) -> None:
    bad = [a for a in agents if a not in GROWTH_SIZERS]
    if bad or "kelly" not in agents:
        raise ValueError(
            f"The 'agents' parameter must include 'kelly' and only {', '.join(GROWTH_SIZERS)}. Got {list(agents)}."
        )


def _policy(
    name: str,
    train: TradeSet,
    test: TradeSet,
    cfg: PilotConfig,
    *,
    seed: int,
    train_steps: int,
    opt_fraction: float,
) -> np.ndarray:
    if name == "kelly":
        return np.ones(len(test))
    if name == "const":
        return np.full(len(test), best_constant(train, cfg))
    if name == "optimum":
        return optimum_multipliers(test, cfg, opt_fraction)
    return learned_multipliers(name, train, test, cfg, seed=seed, train_steps=train_steps)


def _add_shares(rows: list[dict[str, Any]], primary: str, optimum: str = "optimum") -> None:
    """``share_of_optimum`` (point) and ``share_known``: whether the verdict may state it."""
    opt = next(r for r in rows if r["sizer"] == optimum)
    g = opt[f"d_{primary}"]
    for r in rows:
        if r["sizer"] in ("kelly", optimum):
            continue
        r["share_of_optimum"] = r[f"d_{primary}"] / g if g > 0 else float("nan")
        r["share_known"] = share_known(r[f"d_{primary}_ci"], g, opt[f"d_{primary}_ci"][0])


def _mean_slopes(per_seed: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    by: dict[int, list[dict[str, float]]] = {}
    for rows in per_seed:
        for r in rows:
            by.setdefault(int(r["regime"]), []).append(r)
    out = []
    for g, rs in sorted(by.items()):
        sl = np.array([r["slope"] for r in rs])
        ne = np.array([r["net_edge"] for r in rs])
        out.append({"regime": g, "trades": int(sum(r["trades"] for r in rs)), "slope": float(sl.mean()),
                    "slope_se": float(sl.std(ddof=1) / math.sqrt(len(sl))) if len(sl) > 1 else float("nan"),
                    "net_edge": float(ne.mean()),
                    "net_edge_se": float(ne.std(ddof=1) / math.sqrt(len(ne))) if len(ne) > 1 else float("nan")})  # fmt: skip
    return out
