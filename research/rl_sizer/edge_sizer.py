"""The edge sizer: fractional Kelly on a learned, shrunk model of the net edge per unit risk.

Why this file is long: much of it is the derivation below; the estimator, the fold-wise tuning of
its Kelly fraction and the simulation helpers it is tuned with are one model.

Why not a policy gradient
    Sizing is a full-information problem: a trade's size does not change its outcome, so every
    closed trade shows what *every* multiplier would have earned. There is nothing to explore;
    the sizer only has to know the expected net return per unit risk ``mu(x)`` of a trade with
    state ``x``, and Kelly turns that into a stake. This is a regression, learnable from a few
    thousand trades, where a policy gradient on the same data needs 10^5 - 10^6 (issue 20).

The target
    A trade staked ``s`` (fraction of equity at risk; notional ``s / d`` for a stop distance
    ``d``) returns ``s * y`` to the account with ``y = outcome_r - c / d`` (``c``: round-trip
    cost as a fraction of notional, ``c / d`` the cost in R-multiples, :class:`SizingEnv`). ``y`` is
    the *net* return per unit risk; the model is ``mu(x) = E[y | x]``.

The prior (Kelly on the claim)
    A signal claiming win probability ``p`` at payoff ``b`` (win ``+b R``, loss ``-1 R``)
    claims ``E[y] = p b - (1 - p) - c_R = e - c_R`` with ``e = p (b + 1) - 1`` (the claimed gross
    edge, which is also ``b`` times Kelly's ``f* = e / b``). Static Kelly is this prior taken at
    face value.

The model (pooled, shrunk toward the prior: a Bayesian ridge on the residual)
    ``y_i - (e_i - c_i) = z_i' beta + eps_i``, ``eps ~ (0, sigma^2)``, with the features
    ``z = [e, e 1{g = 0}, ..., e 1{g = R-1}]`` (``g``: regime): a calibration slope of the claimed
    edge shared by all states and a per-regime deviation of it, i.e. ``mu = (1 + beta_0 +
    beta_g) e - c``. The structure is multiplicative calibration through the origin (a signal
    claiming no edge has none; its claim is off by a factor that depends on the regime), which is
    how the synthetic source is generated and the least a real signal's calibration can be off
    by. Options add a pooled intercept (``fit_intercept``: an edge independent of the claim) and a
    volatility tilt ``v e`` with ``v = log(vol / median training vol)`` (``use_volatility``). Each
    extra term costs variance: on the synthetic regime source the intercept-and-slope-per-regime
    model needs about three times the trades of the slope model for the same share of the
    optimum (``bench/bench_sizer.py``). With the Gaussian prior ``beta_j ~ N(0, sigma^2 /
    lambda_j)`` the posterior mean is the ridge solution ``beta = (Z'Z + Lambda)^-1 Z' r`` and the
    posterior covariance ``sigma^2 (Z'Z + Lambda)^-1`` (Hastie, Tibshirani & Friedman, *Elements of
    Statistical Learning*, 3.4.1 and ex. 3.6; Gelman et al., *Bayesian Data Analysis*, 14.8). We
    set ``lambda_j = k * mean(z_j^2)``: the prior on each term ``z_j beta_j`` is worth ``k``
    pseudo-trades (``prior_strength``) whatever the scale of the feature, so a regime seen in few
    trades keeps close to the pooled slope and the pooled slope close to the claim; with ``n``
    trades in a regime its own slope gets weight about ``n / (n + k)`` (the empirical-Bayes
    shrinkage of group means, Efron & Morris 1975). ``sigma^2`` is the residual variance.
    Exposure and drawdown are *not* features: they are functions of the account's past (of our
    own sizing), not of the signal, and do not change a trade's outcome; the position caps that
    make them matter are applied by the env/governor, and the global fraction below is tuned
    through them.

The stake
    For a two-outcome bet winning ``W`` and losing ``L`` per unit stake, Kelly's growth-optimal
    stake is ``f* = (p W - q L) / (W L) = mu / (W L)`` (Thorp 2006, eq. 2.3 generalised; with
    ``W = b - c_R`` and ``L = 1 + c_R``), so ``f(x) = mu(x) / kappa`` with
    ``kappa = (b - c_R)(1 + c_R)``. (For outcomes between the barriers, e.g. time-barrier exits,
    this is the two-point approximation.) The sizer stakes the global fraction ``fraction_`` of
    it and expresses it as a multiplier on the base stake ``kelly_fraction * f*(p)`` that the
    governor/env already applies::

        m = clip(fraction_ * f(x) / (kelly_fraction * f*(p)), min_multiplier, max_multiplier)

    ``fraction_`` is one number for all states, tuned on the training trades by simulating the
    account through :class:`SizingEnv` (position cap, gross cap, costs) for each fraction on a
    grid and keeping the one with the highest log growth. Two objectives (``tune``):
    ``'expected'`` (default) scores each simulated path by the expected log growth of its trades
    under the fitted model's own win probabilities (:func:`expected_log_growth`); the expected
    log growth of a binary bet is linear in the win probability, so under the posterior the
    growth-optimal stake is Kelly on the posterior mean and the fraction only has to absorb what
    the caps and overlapping positions do, which this objective measures without the outcome
    noise. ``'realized'`` scores walk-forward stakes (block ``k`` of ``n_folds`` time blocks sized
    by the model fitted on blocks ``< k``) by the realized log growth: robust to a misspecified
    model, but noisy (the fraction it picks from 3,000 trades varies between 0.2 and 1.25 on the
    synthetic source). Where the learned net edge is ``<= 0`` the output says so (``no_edge``);
    the multiplier is then the lower clamp (a governor configured with a lower bound of 0 would
    not trade).

Conventions follow scikit-learn: keyword-only hyperparameters, :meth:`EdgeSizer.fit` returns
``self``, :meth:`EdgeSizer.predict` returns the fitted target (the learned net edge), fitted
attributes end in ``_``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 4000
>>> X = np.column_stack([np.full(n, 0.6), np.full(n, 0.5), np.zeros(n)])  # conf, vol, regime
>>> y = np.where(rng.random(n) < 0.6, 1.0, -1.0)
>>> sizer = EdgeSizer(prior_strength=10.0).fit(X, y)
>>> round(float(sizer.predict(X[:1])[0]), 1)  # net edge per unit risk: 2 * 0.6 - 1
0.2
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infra.validate import check_choice, check_int, check_real
from research.rl_sizer.config import PilotConfig
from research.rl_sizer.env import SizingEnv, action_from_multiplier, kelly_fraction
from research.rl_sizer.signals import TradeSet

DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25)
"""Grid of global Kelly fractions tried by :meth:`EdgeSizer.fit_trades`."""


def claimed_edge(confidence: np.ndarray, payoff_ratio: float) -> np.ndarray:
    """Claimed gross edge per unit risk ``e = p (b + 1) - 1`` (``p b - (1 - p)``).

    >>> [round(float(v), 6) for v in claimed_edge(np.array([0.6, 0.5]), 2.0)]
    [0.8, 0.5]
    """
    return np.asarray(confidence, dtype=np.float64) * (payoff_ratio + 1.0) - 1.0


def cost_in_r(barrier: np.ndarray, cost_bps: float) -> np.ndarray:
    """Round-trip cost in R-multiples: ``2 cost_bps / 1e4 / d`` for stop distance ``d`` (see the env)."""
    return 2.0 * cost_bps / 1e4 / np.asarray(barrier, dtype=np.float64)


def net_outcome(trades: TradeSet, cost_bps: float) -> np.ndarray:
    """Net return per unit risk ``y = outcome_r - c_R`` of each trade."""
    return trades.outcome_r - cost_in_r(trades.barrier, cost_bps)


def trade_states(trades: TradeSet) -> np.ndarray:
    """``(n, 3)`` state matrix ``[confidence, volatility, regime]`` of a trade set."""
    return np.column_stack([trades.confidence, trades.volatility, trades.regime.astype(np.float64)])


@dataclass(frozen=True)
class EdgeDecision:
    """One sizing decision of the edge sizer."""

    multiplier: float
    """Multiplier on the base (fractional Kelly on the claim), clamped."""
    edge: float
    """Learned net edge per unit risk ``mu(x)``."""
    edge_se: float
    """Posterior standard deviation of ``mu(x)``."""
    no_edge: bool
    """True when the learned net edge is ``<= 0`` (the sizer would not bet)."""


class EdgeSizer:
    """Fractional Kelly on a learned net edge (see the module docstring).

    Parameters
    ----------
    payoff_ratio : float
        ``b``: a win pays ``b`` R, a loss costs 1 R.
    kelly_fraction : float
        The base stake's fraction of Kelly (the env/governor's), i.e. what multiplier 1 means.
    min_multiplier, max_multiplier : float
        Clamp of the multiplier (the plan's safety range [0.5, 2.0]).
    prior_strength : float
        ``k``: pseudo-trades of the prior on each feature term.
    fraction : float or None
        Global Kelly fraction of the learned stake; ``None`` starts at ``kelly_fraction`` (so an
        unfitted or unchanged model gives multiplier 1) until :meth:`fit_trades` tunes it.
    n_regimes : int or None
        Regimes ``0 .. R-1``; ``None`` takes ``max(regime) + 1`` of the first fit.
    use_volatility : bool
        Add the volatility tilt ``v e``.
    fit_intercept : bool
        Add a pooled intercept (an edge that does not scale with the claim).

    Attributes
    ----------
    coef_ : ndarray
        Posterior mean of ``beta``.
    cov_ : ndarray
        Posterior covariance ``sigma^2 (Z'Z + Lambda)^-1``.
    sigma2_ : float
        Residual variance.
    vol_ref_ : float
        Median training volatility (the reference of ``v``).
    n_regimes_ : int
    fraction_ : float
        Global Kelly fraction (of the learned full-Kelly stake).
    n_trades_ : int
        Trades the model was fitted on.
    fraction_scores_ : dict[float, float]
        Walk-forward log growth of each fraction tried (after :meth:`fit_trades`).
    """

    def __init__(
        self,
        *,
        payoff_ratio: float = 1.0,
        kelly_fraction: float = 0.5,
        min_multiplier: float = 0.5,
        max_multiplier: float = 2.0,
        prior_strength: float = 20.0,
        fraction: float | None = None,
        n_regimes: int | None = None,
        use_volatility: bool = False,
        fit_intercept: bool = False,
    ) -> None:
        for name, v in (("payoff_ratio", payoff_ratio), ("kelly_fraction", kelly_fraction),
                        ("prior_strength", prior_strength)):  # fmt: skip
            check_real(v, param=name, func="EdgeSizer", positive=True)
        if not (0 <= min_multiplier <= max_multiplier and math.isfinite(max_multiplier)):
            raise ValueError(
                "The 'min_multiplier' and 'max_multiplier' parameters of EdgeSizer must satisfy "
                f"0 <= min <= max < inf. Got {min_multiplier!r} and {max_multiplier!r} instead."
            )
        if fraction is not None:
            check_real(fraction, param="fraction", func="EdgeSizer", positive=True)
        if n_regimes is not None:
            check_int(n_regimes, param="n_regimes", func="EdgeSizer", minimum=1)
        self.payoff_ratio = float(payoff_ratio)
        self.kelly_fraction = float(kelly_fraction)
        self.min_multiplier = float(min_multiplier)
        self.max_multiplier = float(max_multiplier)
        self.prior_strength = float(prior_strength)
        self.fraction = fraction
        self.n_regimes = n_regimes
        self.use_volatility = use_volatility
        self.fit_intercept = fit_intercept

    @classmethod
    def from_config(cls, config: PilotConfig, **kw: Any) -> EdgeSizer:
        """An edge sizer with the payoff and Kelly fraction of a :class:`PilotConfig`."""
        return cls(payoff_ratio=config.payoff_ratio, kelly_fraction=config.kelly_fraction, **kw)

    # ------------------------------------------------------------------ features
    def _check_x(self, X: np.ndarray, where: str) -> np.ndarray:
        x = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if x.ndim != 2 or x.shape[1] < 3:
            raise ValueError(
                f"The 'X' parameter of EdgeSizer.{where} must have columns [confidence, volatility, regime]. "
                f"Got shape {np.shape(X)} instead."
            )
        bad = ~np.isfinite(x[:, :3]).all(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"The 'X' parameter of EdgeSizer.{where} has a non-finite value in row {i}: {x[i, :3]!r}."
            )
        return x

    def _design(self, x: np.ndarray) -> np.ndarray:
        e = claimed_edge(x[:, 0], self.payoff_ratio)
        g = np.clip(np.rint(x[:, 2]).astype(np.int64), 0, self.n_regimes_ - 1)
        onehot = np.zeros((len(x), self.n_regimes_))
        onehot[np.arange(len(x)), g] = 1.0
        cols = [e, *(onehot * e[:, None]).T]
        if self.use_volatility:
            cols.append(np.log(np.maximum(x[:, 1], 1e-12) / self.vol_ref_) * e)
        if self.fit_intercept:
            cols.append(np.ones(len(x)))
        return np.column_stack(cols)

    @property
    def n_features_(self) -> int:
        """Length of ``coef_``."""
        return 1 + self.n_regimes_ + int(self.use_volatility) + int(self.fit_intercept)

    def _prior(self, x: np.ndarray, cost_r: np.ndarray | None) -> np.ndarray:
        e = claimed_edge(x[:, 0], self.payoff_ratio)
        return e if cost_r is None else e - np.asarray(cost_r, dtype=np.float64)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: np.ndarray, y: np.ndarray, *, cost_r: np.ndarray | None = None) -> EdgeSizer:
        """Fit the edge model on closed trades (the global fraction is kept; see :meth:`fit_trades`).

        Parameters
        ----------
        X : array, shape (n, >= 3)
            ``[confidence, volatility, regime, ...]`` at entry (extra columns are ignored).
        y : array, shape (n,)
            Net return per unit risk of each trade (``outcome_r`` minus costs in R).
        cost_r : array or None
            Costs in R of each trade, known at entry; the prior is ``e - cost_r``. ``None``: the
            prior ignores costs (the intercept learns them).
        """
        x = self._check_x(X, "fit")
        yy = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(yy) != len(x) or len(x) < 1:
            raise ValueError(f"EdgeSizer.fit needs one y per row of X (>= 1). Got {len(yy)} and {len(x)}.")
        if not np.isfinite(yy).all():
            i = int(np.flatnonzero(~np.isfinite(yy))[0])
            raise ValueError(f"The 'y' parameter of EdgeSizer.fit is not finite at row {i}: {yy[i]!r}.")
        if not hasattr(self, "n_regimes_"):
            self.n_regimes_ = self.n_regimes or int(max(np.rint(x[:, 2]).max(), 0)) + 1
            pos = x[:, 1][x[:, 1] > 0]
            self.vol_ref_ = float(np.median(pos)) if len(pos) else 1.0
        z = self._design(x)
        r = yy - self._prior(x, cost_r)
        lam = self.prior_strength * np.maximum((z * z).mean(axis=0), 1e-12)
        a = z.T @ z + np.diag(lam)
        self.coef_ = np.linalg.solve(a, z.T @ r)
        resid = r - z @ self.coef_
        self.sigma2_ = (
            float(max(np.mean(resid * resid), 1e-12)) if len(r) > 1 else float(np.mean(yy * yy) or 1.0)
        )
        self.cov_ = self.sigma2_ * np.linalg.inv(a)
        self.n_trades_ = len(x)
        if not hasattr(self, "fraction_"):
            self.fraction_ = self.fraction if self.fraction is not None else self.kelly_fraction
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("EdgeSizer is not fitted yet: call fit() or fit_trades() first.")

    def predict(self, X: np.ndarray, *, cost_r: np.ndarray | None = None) -> np.ndarray:
        """Learned net edge per unit risk ``mu(x)`` of each row."""
        return self.predict_edge(X, cost_r=cost_r)[0]

    def predict_edge(
        self, X: np.ndarray, *, cost_r: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, se)``: learned net edge and its posterior standard deviation per row."""
        self._check_fitted()
        x = self._check_x(X, "predict")
        z = self._design(x)
        mu = self._prior(x, cost_r) + z @ self.coef_
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, self.cov_, z), 0.0))
        return mu, se

    def full_kelly(self, X: np.ndarray, *, cost_r: np.ndarray | None = None) -> np.ndarray:
        """Full-Kelly stake on the learned edge, ``mu / ((b - c_R)(1 + c_R))`` (may be <= 0)."""
        c = np.zeros(len(np.atleast_2d(X))) if cost_r is None else np.asarray(cost_r, dtype=np.float64)
        kappa = np.maximum((self.payoff_ratio - c) * (1.0 + c), 1e-9)
        return self.predict(X, cost_r=cost_r) / kappa

    def multipliers(
        self, X: np.ndarray, *, cost_r: np.ndarray | None = None, fraction: float | None = None
    ) -> np.ndarray:
        """Clamped multipliers on the base stake ``kelly_fraction * f*(p)`` (module docstring)."""
        x = np.atleast_2d(np.asarray(X, dtype=np.float64))
        frac = self.fraction_ if fraction is None else fraction
        stake = frac * self.full_kelly(x, cost_r=cost_r)
        base = self.kelly_fraction * kelly_fraction(x[:, 0], self.payoff_ratio)
        m = np.divide(stake, base, out=np.ones_like(stake), where=base > 0)
        return np.clip(m, self.min_multiplier, self.max_multiplier)

    def decide(self, state: Sequence[float] | np.ndarray, *, cost_r: float | None = None) -> EdgeDecision:
        """Multiplier, learned edge, its uncertainty and the no-edge flag for one state."""
        x = np.atleast_2d(np.asarray(state, dtype=np.float64))
        c = None if cost_r is None else np.array([cost_r])
        mu, se = self.predict_edge(x, cost_r=c)
        m = float(self.multipliers(x, cost_r=c)[0])
        return EdgeDecision(multiplier=m, edge=float(mu[0]), edge_se=float(se[0]), no_edge=bool(mu[0] <= 0))

    def get_multiplier(self, state: Sequence[float] | np.ndarray) -> float:
        """The governor's interface: the clamped multiplier for ``[confidence, volatility, regime]``."""
        return self.decide(state).multiplier

    def explain(self, state: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """What the governor shows next to the multiplier: learned edge, its s.e., ``no_edge``."""
        d = self.decide(state)
        return {"edge": d.edge, "edge_se": d.edge_se, "no_edge": d.no_edge}

    # ------------------------------------------------------------------ trades + env
    def fit_trades(
        self,
        trades: TradeSet,
        config: PilotConfig,
        *,
        n_folds: int = 5,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        tune: str = "expected",
    ) -> EdgeSizer:
        """Fit on training trades and tune ``fraction_`` through the env (module docstring)."""
        if len(trades) < 2:
            raise ValueError(f"EdgeSizer.fit_trades needs at least 2 trades. Got {len(trades)} instead.")
        check_choice(tune, param="tune", func="EdgeSizer.fit_trades", choices=("expected", "realized"))
        check_int(n_folds, param="n_folds", func="EdgeSizer.fit_trades", minimum=2)
        x = trade_states(trades)
        c = cost_in_r(trades.barrier, config.cost_bps)
        y = trades.outcome_r - c
        self.n_regimes_ = self.n_regimes or max(trades.n_regimes, int(trades.regime.max()) + 1)
        pos = trades.volatility[trades.volatility > 0]
        self.vol_ref_ = float(np.median(pos)) if len(pos) else 1.0
        bounds = np.linspace(0, len(trades), n_folds + 1).astype(int)
        full = np.empty(len(trades))
        for k in range(n_folds):
            lo, hi = bounds[k], bounds[k + 1]
            if hi <= lo:
                continue
            if k == 0:
                kappa = np.maximum((self.payoff_ratio - c[lo:hi]) * (1.0 + c[lo:hi]), 1e-9)
                full[lo:hi] = self._prior(x[lo:hi], c[lo:hi]) / kappa
            else:
                part = self._clone_unfitted().fit(x[:lo], y[:lo], cost_r=c[:lo])
                full[lo:hi] = part.full_kelly(x[lo:hi], cost_r=c[lo:hi])
        self.fit(x, y, cost_r=c)
        if tune == "expected":
            full = self.full_kelly(x, cost_r=c)
        q_hat = np.clip((self.predict(x, cost_r=c) + 1.0 + c) / (self.payoff_ratio + 1.0), 0.0, 1.0)
        base = self.kelly_fraction * kelly_fraction(trades.confidence, self.payoff_ratio)
        scores: dict[float, float] = {}
        for f in fractions:
            m = np.divide(f * full, base, out=np.ones_like(full), where=base > 0)
            m = np.clip(m, self.min_multiplier, self.max_multiplier)
            rets, lev = simulate(trades, m, config)
            if tune == "realized":
                scores[float(f)] = float(np.sum(np.log1p(rets)))
            else:
                scores[float(f)] = float(np.sum(expected_log_growth(trades, lev, q_hat, config)))
        self.fraction_scores_ = scores
        self.fraction_ = max(scores, key=lambda f: scores[f])
        return self

    def _clone_unfitted(self) -> EdgeSizer:
        twin = EdgeSizer(
            payoff_ratio=self.payoff_ratio, kelly_fraction=self.kelly_fraction,
            min_multiplier=self.min_multiplier, max_multiplier=self.max_multiplier,
            prior_strength=self.prior_strength, fraction=self.fraction, n_regimes=self.n_regimes,
            use_volatility=self.use_volatility, fit_intercept=self.fit_intercept,
        )  # fmt: skip
        twin.n_regimes_ = self.n_regimes_
        twin.vol_ref_ = self.vol_ref_
        return twin

    def trade_multipliers(self, trades: TradeSet, config: PilotConfig) -> np.ndarray:
        """Multipliers for the trades of a trade set (their costs in R are known at entry)."""
        return self.multipliers(trade_states(trades), cost_r=cost_in_r(trades.barrier, config.cost_bps))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters and fitted state (for checkpoints)."""
        self._check_fitted()
        return {
            "params": {
                "payoff_ratio": self.payoff_ratio, "kelly_fraction": self.kelly_fraction,
                "min_multiplier": self.min_multiplier, "max_multiplier": self.max_multiplier,
                "prior_strength": self.prior_strength, "fraction": self.fraction,
                "n_regimes": self.n_regimes, "use_volatility": self.use_volatility,
                "fit_intercept": self.fit_intercept,
            },
            "coef_": self.coef_.tolist(), "cov_": self.cov_.tolist(), "sigma2_": self.sigma2_,
            "vol_ref_": self.vol_ref_, "n_regimes_": self.n_regimes_, "fraction_": self.fraction_,
            "n_trades_": self.n_trades_,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EdgeSizer:
        """Rebuild a fitted sizer from :meth:`to_dict` output."""
        try:
            s = cls(**d["params"])
            s.coef_ = np.asarray(d["coef_"], dtype=np.float64)
            s.cov_ = np.asarray(d["cov_"], dtype=np.float64)
            s.sigma2_ = float(d["sigma2_"])
            s.vol_ref_ = float(d["vol_ref_"])
            s.n_regimes_ = int(d["n_regimes_"])
            s.fraction_ = float(d["fraction_"])
            s.n_trades_ = int(d["n_trades_"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an EdgeSizer state: {type(exc).__name__}: {exc}") from exc
        k = s.n_features_
        if s.coef_.shape != (k,) or s.cov_.shape != (k, k):
            raise ValueError(
                f"EdgeSizer state has coef_ {s.coef_.shape} / cov_ {s.cov_.shape}; expected ({k},)."
            )
        return s


def simulate(trades: TradeSet, multipliers: np.ndarray, config: PilotConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-trade account returns and leverages of sizing ``trades`` with fixed ``multipliers``.

    One :class:`SizingEnv` episode over all trades, drawdown stop off, so every policy trades the
    same trades with the env's position cap, gross cap and costs. The leverage (notional over
    equity) is what the env applied after its caps.
    """
    m = np.asarray(multipliers, dtype=np.float64).reshape(-1)
    if len(m) != len(trades):
        raise ValueError(f"simulate needs one multiplier per trade ({len(trades)}). Got {len(m)}.")
    acts = action_from_multiplier(m)
    env = SizingEnv(trades=trades, config=config, terminate_on_drawdown=False)
    env.reset(seed=0, options={"length": None})
    rets = np.zeros(len(m))
    step = env.step
    for i in range(len(m)):
        _, _, term, trunc, info = step(acts[i : i + 1])
        rets[i] = info["account_return"]
        if term or trunc:
            break
    move = trades.outcome_r * trades.barrier - 2.0 * config.cost_bps / 1e4
    lev = np.divide(rets, move, out=np.zeros_like(rets), where=move != 0)
    return rets, lev


def simulate_returns(trades: TradeSet, multipliers: np.ndarray, config: PilotConfig) -> np.ndarray:
    """Per-trade account returns of :func:`simulate`."""
    return simulate(trades, multipliers, config)[0]


def expected_log_growth(
    trades: TradeSet, leverage: np.ndarray, win_prob: np.ndarray, config: PilotConfig
) -> np.ndarray:
    """Per-trade expected log growth given the leverage taken and a win probability.

    For a trade with stop distance ``d`` at payoff ``b`` and cost ``c``, leverage ``l`` returns
    ``l (b d - c)`` with probability ``q`` and ``-l (d + c)`` otherwise, so
    ``E[log(1 + r)] = q log(1 + l (b d - c)) + (1 - q) log(1 - l (d + c))``. The leverage depends
    only on what happened before the trade's entry, so summing these conditional expectations
    over a realized path is an unbiased estimate of the expected log growth with the outcome
    noise of each trade integrated out (Rao-Blackwellisation; Casella & Robert 1996). Used where
    ``q`` is known (synthetic) or for a model's own estimate.
    """
    c = 2.0 * config.cost_bps / 1e4
    d = trades.barrier
    lev = np.asarray(leverage, dtype=np.float64)
    up = np.log1p(np.maximum(lev * (config.payoff_ratio * d - c), -0.99))
    down = np.log1p(np.maximum(-lev * (d + c), -0.99))
    q = np.asarray(win_prob, dtype=np.float64)
    return q * up + (1.0 - q) * down


def cap_share(trades: TradeSet, multipliers: np.ndarray, config: PilotConfig) -> float:
    """Share of trades (with a positive base) whose position the position cap binds."""
    base = config.kelly_fraction * kelly_fraction(trades.confidence, config.payoff_ratio)
    lev = np.asarray(multipliers) * base / trades.barrier
    live = base > 0
    return float(np.mean(lev[live] >= config.max_position_leverage)) if live.any() else 0.0
