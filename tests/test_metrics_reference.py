"""The vectorised metrics against plain per-column references and published formulas.

References here are deliberately naive: a Python loop over columns and windows, ``math.fsum``
two-pass moments, ``scipy.stats`` for skewness/kurtosis and the normal distribution, and Lo's
lag sum written out term by term. empyrical-reloaded is the cross-check where its definitions
match ours (Sharpe, Sortino, downside risk, volatility, max drawdown).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from execution import metrics_normalizer as mn

PPY = 365.0


def _present(col: np.ndarray) -> list[float]:
    return [float(v) for v in col if not math.isnan(v)]


def _mean_std(xs: list[float]) -> tuple[float, float]:
    m = math.fsum(xs) / len(xs)
    return m, math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def ref_sharpe(xs: list[float], ppy: float) -> float:
    m, s = _mean_std(xs)
    return m / s * math.sqrt(ppy)


def ref_sortino(xs: list[float], ppy: float, target: float) -> float:
    dd = math.sqrt(math.fsum(min(x - target, 0.0) ** 2 for x in xs) / len(xs))
    return math.fsum(x - target for x in xs) / len(xs) / dd * math.sqrt(ppy)


def ref_max_drawdown(xs: list[float]) -> float:
    wealth, peak, worst = 1.0, 1.0, 0.0
    for x in xs:
        wealth *= 1.0 + x
        peak = max(peak, wealth)
        worst = min(worst, wealth / peak - 1.0)
    return worst


def ref_bailey(xs: list[float]) -> dict[str, float]:
    """PSR, DSR and MinTRL straight from Bailey & Lopez de Prado (2012, 2014)."""
    x = np.asarray(xs)
    t = len(x)
    sr = x.mean() / x.std(ddof=1)
    g3 = stats.skew(x)
    g4 = stats.kurtosis(x, fisher=False)
    denom = math.sqrt(1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2)
    n, v = 25, 0.002
    emc = 0.5772156649015329
    sr0 = math.sqrt(v) * ((1 - emc) * stats.norm.ppf(1 - 1 / n) + emc * stats.norm.ppf(1 - 1 / (n * math.e)))
    return {
        "se": denom / math.sqrt(t - 1),
        "psr": stats.norm.cdf((sr - 0.0) * math.sqrt(t - 1) / denom),
        "psr_b": stats.norm.cdf((sr - 0.05) * math.sqrt(t - 1) / denom),
        "dsr": stats.norm.cdf((sr - sr0) * math.sqrt(t - 1) / denom),
        "mintrl": 1.0 + denom**2 * (stats.norm.ppf(0.95) / sr) ** 2,
    }


def ref_lo(col: np.ndarray, q: int, lags: int | None) -> float:
    """Lo (2002) eq. 16 with the sum written out; ``lags=None`` means AR(1) rho_k = rho_1**k.

    Autocorrelations keep the time grid: a pair (t, t-k) counts only when both are present.
    """
    x = np.asarray(_present(col))
    m = x.mean()
    den = math.fsum((v - m) ** 2 for v in x)
    acf = []
    for k in range(1, (lags or 1) + 1):
        pairs = [(col[t] - m) * (col[t - k] - m) for t in range(k, len(col))]
        acf.append(math.fsum(p for p in pairs if not math.isnan(p)) / den)
    total = 0.0
    for k in range(1, q):
        if lags is None:
            rho = acf[0] ** k
        else:
            rho = acf[k - 1] if k <= lags else 0.0
        total += (q - k) * rho
    return float(x.mean() / x.std(ddof=1) * q / math.sqrt(q + 2 * total))


@pytest.fixture(scope="module")
def panel() -> np.ndarray:
    rng = np.random.default_rng(20240601)
    x = rng.standard_t(df=4, size=(300, 6)) * 0.02 + np.array([0.001, -0.002, 0.0005, 0.003, 0.0, 0.001])
    x[:40, 1] = np.nan  # a column that starts late
    x[250:, 2] = np.nan  # one that stops early
    x[rng.random(300) < 0.05, 3] = np.nan  # scattered gaps
    x[:, 4] = np.cumsum(rng.normal(0, 0.01, 300)) * 0.1 + rng.normal(0, 0.01, 300)  # autocorrelated
    return x


def test_full_sample_metrics_match_per_column_reference(panel: np.ndarray) -> None:
    cols = [_present(panel[:, j]) for j in range(panel.shape[1])]
    np.testing.assert_allclose(
        mn.sharpe_ratio(panel, periods_per_year=PPY), [ref_sharpe(c, PPY) for c in cols], rtol=1e-12
    )
    np.testing.assert_allclose(
        mn.sortino_ratio(panel, periods_per_year=PPY, target=0.001),
        [ref_sortino(c, PPY, 0.001) for c in cols],
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        mn.annual_volatility(panel, periods_per_year=PPY),
        [_mean_std(c)[1] * math.sqrt(PPY) for c in cols],
        rtol=1e-12,
    )
    np.testing.assert_allclose(mn.max_drawdown(panel), [ref_max_drawdown(c) for c in cols], rtol=1e-12)
    np.testing.assert_allclose(
        mn.hit_rate(panel), [sum(x > 0 for x in c) / sum(x != 0 for x in c) for c in cols], rtol=1e-15
    )
    np.testing.assert_allclose(
        mn.profit_factor(panel),
        [math.fsum(x for x in c if x > 0) / -math.fsum(x for x in c if x < 0) for c in cols],
        rtol=1e-12,
    )


def test_psr_dsr_mintrl_match_published_formulas(panel: np.ndarray) -> None:
    cols = [_present(panel[:, j]) for j in range(panel.shape[1])]
    refs = [ref_bailey(c) for c in cols]
    np.testing.assert_allclose(mn.sharpe_standard_error(panel), [r["se"] for r in refs], rtol=1e-10)
    np.testing.assert_allclose(mn.probabilistic_sharpe_ratio(panel), [r["psr"] for r in refs], rtol=1e-10)
    np.testing.assert_allclose(
        mn.probabilistic_sharpe_ratio(panel, benchmark_sharpe=0.05), [r["psr_b"] for r in refs], rtol=1e-10
    )
    np.testing.assert_allclose(
        mn.deflated_sharpe_ratio(panel, n_trials=25, trials_sharpe_variance=0.002),
        [r["dsr"] for r in refs],
        rtol=1e-10,
    )
    got = mn.min_track_record_length(panel)
    sr = np.array([_mean_std(c)[0] for c in cols])
    for j, r in enumerate(refs):
        if sr[j] > 0:
            assert got[j] == pytest.approx(r["mintrl"], rel=1e-10)
        else:
            assert got[j] == np.inf
    annual = mn.sharpe_standard_error(panel, periods_per_year=PPY)
    np.testing.assert_allclose(annual, np.array([r["se"] for r in refs]) * math.sqrt(PPY), rtol=1e-10)


def test_mertens_variance_term_uses_non_excess_kurtosis() -> None:
    """For normal returns Var(SR) ~ (1 + SR^2 / 2) / T: (g4 - 1) / 4 with g4 = 3 gives 1/2."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.1, 1.0, 400_000)
    sr = x.mean() / x.std(ddof=1)
    se = mn.sharpe_standard_error(x)
    assert se == pytest.approx(math.sqrt((1 + sr**2 / 2) / (len(x) - 1)), rel=2e-3)


@pytest.mark.parametrize("q", [12, 52, 365])
def test_lo_matches_explicit_lag_sum(panel: np.ndarray, q: int) -> None:
    np.testing.assert_allclose(
        mn.lo_sharpe_ratio(panel, periods_per_year=q),
        [ref_lo(panel[:, j], q, None) for j in range(panel.shape[1])],
        rtol=1e-9,
    )
    got = mn.lo_sharpe_ratio(panel, periods_per_year=q, method="truncated", max_lag=5)
    want = [ref_lo(panel[:, j], q, 5) for j in range(panel.shape[1])]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_lo_equals_plain_sharpe_without_autocorrelation_and_drops_with_positive() -> None:
    rng = np.random.default_rng(11)
    e = rng.normal(0.0005, 0.01, 5000)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for t in range(1, len(e)):  # AR(1) with rho = 0.5 around the same mean
        ar[t] = 0.0005 + 0.5 * (ar[t - 1] - 0.0005) + (e[t] - 0.0005)
    plain = mn.sharpe_ratio(ar, periods_per_year=365)
    lo = mn.lo_sharpe_ratio(ar, periods_per_year=365)
    # eta(q) -> sqrt(q (1 - rho) / (1 + rho)) for large q: about sqrt(1/3) of the naive scaling
    assert lo / plain == pytest.approx(math.sqrt(1 / 3), rel=0.08)
    iid = mn.lo_sharpe_ratio(e, periods_per_year=365)
    assert iid / mn.sharpe_ratio(e, periods_per_year=365) == pytest.approx(1.0, abs=0.05)


def _rolling_ref(x: np.ndarray, w: int, f) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.full(len(x), np.nan)
    for t in range(w - 1, len(x)):
        win = x[t - w + 1 : t + 1]
        if not np.isnan(win).any():
            out[t] = f(win)
    return out


def _two_pass_windows(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-window two-pass reference: every window's mean, then its deviations from that mean."""
    v = np.lib.stride_tricks.sliding_window_view(x, w)
    mean = v.mean(axis=1)
    return mean, v - mean[:, None]


def _pad(values: np.ndarray, w: int) -> np.ndarray:
    return np.concatenate([np.full(w - 1, np.nan), values])


def test_rolling_agrees_with_two_pass_reference_on_large_mean_series() -> None:
    """10,000 periods with a mean 1,000 standard deviations from zero: 1e-9 relative agreement."""
    rng = np.random.default_rng(7)
    x = 1_000.0 + rng.normal(0.0, 1.0, 10_000) + 0.0001 * np.arange(10_000)  # large mean, slow drift
    w = 63
    mean, dev = _two_pass_windows(x, w)
    std = np.sqrt((dev * dev).sum(axis=1) / (w - 1))
    sharpe = mn.rolling_sharpe_ratio(x, window=w, periods_per_year=252)
    np.testing.assert_allclose(sharpe, _pad(mean / std * math.sqrt(252), w), rtol=1e-9)
    vol = mn.rolling_annual_volatility(x, window=w, periods_per_year=252)
    np.testing.assert_allclose(vol, _pad(std * math.sqrt(252), w), rtol=1e-9)
    target = 1_000.5  # about a third of the periods fall below target
    sortino = mn.rolling_sortino_ratio(x, window=w, periods_per_year=252, target=target)
    np.testing.assert_allclose(
        sortino, _rolling_ref(x, w, lambda v: ref_sortino(list(v), 252, target)), rtol=1e-9
    )
    m2, m3, m4 = ((dev**p).mean(axis=1) for p in (2, 3, 4))
    sr = mean / std
    g3, g4 = m3 / m2**1.5, m4 / m2**2
    se = np.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (w - 1) * 252)
    got_se = mn.rolling_sharpe_standard_error(x, window=w, periods_per_year=252)
    np.testing.assert_allclose(got_se, _pad(se, w), rtol=1e-9)
    # spot-check the vectorised reference itself against scipy on a few windows
    for t in (62, 5_000, 9_999):
        win = x[t - w + 1 : t + 1]
        assert g3[t - w + 1] == pytest.approx(stats.skew(win), rel=1e-9)
        assert g4[t - w + 1] == pytest.approx(stats.kurtosis(win, fisher=False), rel=1e-9)


@pytest.mark.parametrize("jump", [10.0, 1_000.0])
def test_rolling_stays_accurate_across_a_level_shift(jump: float) -> None:
    """A mean that jumps by ``jump`` standard deviations inside a block pair (documented limit)."""
    rng = np.random.default_rng(1)
    x = 1_000.0 + rng.normal(0.0, 1.0, 5_000)
    x[2_500:] += jump
    mean, dev = _two_pass_windows(x, 63)
    std = np.sqrt((dev * dev).sum(axis=1) / 62)
    got = mn.rolling_sharpe_ratio(x, window=63, periods_per_year=1)
    np.testing.assert_allclose(got, _pad(mean / std, 63), rtol=1e-9)


def test_rolling_on_frame_with_gaps_matches_reference(panel: np.ndarray) -> None:
    frame = pd.DataFrame(panel, columns=list("abcdef"), index=pd.date_range("2024", periods=300, tz="UTC"))
    got = mn.rolling_sharpe_ratio(frame, window=20, periods_per_year=PPY)
    assert isinstance(got, pd.DataFrame) and got.shape == frame.shape
    assert got.index.equals(frame.index) and list(got.columns) == list("abcdef")
    for j, c in enumerate(frame.columns):
        ref = _rolling_ref(panel[:, j], 20, lambda v: v.mean() / v.std(ddof=1) * math.sqrt(PPY))
        np.testing.assert_allclose(got[c].to_numpy(), ref, rtol=1e-10)
    # pandas' own rolling gives the same windows (same NaN rule: min_periods = window)
    pd_roll = frame.rolling(20).mean() / frame.rolling(20).std() * math.sqrt(PPY)
    np.testing.assert_allclose(got.to_numpy(), pd_roll.to_numpy(), rtol=1e-8)


# --------------------------------------------------------------------------- empyrical-reloaded
def test_cross_check_against_empyrical(panel: np.ndarray) -> None:
    ep = pytest.importorskip("empyrical")
    dense = panel[:, [0, 4, 5]]
    np.testing.assert_allclose(
        mn.sharpe_ratio(dense, periods_per_year=252), ep.sharpe_ratio(dense, annualization=252), rtol=1e-12
    )
    np.testing.assert_allclose(
        mn.sortino_ratio(dense, periods_per_year=252, target=0.001),
        ep.sortino_ratio(dense, required_return=0.001, annualization=252),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        mn.downside_deviation(dense, periods_per_year=252),
        ep.downside_risk(dense, annualization=252),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        mn.annual_volatility(dense, periods_per_year=252),
        ep.annual_volatility(dense, annualization=252),
        rtol=1e-12,
    )
    np.testing.assert_allclose(mn.max_drawdown(dense), ep.max_drawdown(dense), rtol=1e-12)
    # empyrical's rolling output starts at the first full window (1-D input)
    ours = mn.rolling_sharpe_ratio(dense[:, 0], window=30, periods_per_year=252)
    theirs = ep.roll_sharpe_ratio(dense[:, 0], 30, annualization=252)
    np.testing.assert_allclose(ours[29:], theirs, rtol=1e-10)
    s = pd.Series(dense[:, 1])
    assert mn.sharpe_ratio(s, periods_per_year=252) == pytest.approx(
        ep.sharpe_ratio(s, annualization=252), rel=1e-12
    )
