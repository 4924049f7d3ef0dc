"""What may be claimed from a log-growth A/B result: the verdict line and the plain-text table.

:mod:`research.rl_sizer.growth_ab` computes the rows; this module turns them into words.

Verdict
    A sizer beats (or loses to) Kelly when its interval excludes 0. Its share of the optimum's
    gain is stated only when the interval half-width of its gain is at most 10% of the optimum's
    gain (and the optimum's gain is itself distinguishable from 0); otherwise the verdict says
    "cannot tell". On real data it says "no edge" when the signal's realized net return per unit
    risk on the test trades has an interval below or around 0 and every regime's realized-vs-
    claimed slope is <= 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def share_known(ci: Sequence[float], gain: float, gain_lo: float) -> bool:
    """True when a share of the optimum's ``gain`` may be claimed: the optimum's gain is above 0
    (interval) and the row's interval half-width is at most 10% of it.

    >>> share_known([0.20, 0.24], 0.25, 0.2), share_known([0.1, 0.3], 0.25, 0.2), share_known([0.2, 0.21], 0.25, -0.1)
    (True, False, False)
    """
    lo, hi = ci
    half = (hi - lo) / 2.0
    return bool(gain > 0 and gain_lo > 0 and math.isfinite(half) and half <= 0.1 * gain)


def growth_verdict(
    rows: list[dict[str, Any]],
    *,
    kind: str,
    primary: str,
    net_edge: dict[str, float] | None = None,
    slopes: list[dict[str, float]] | None = None,
) -> str:
    """One honest line (module docstring: "Verdict")."""
    unit = (
        "expected log growth per 1,000 trades" if primary.startswith("exp") else "log growth per 1,000 trades"
    )
    opt_name = "optimum" if kind == "synthetic" else "upper bound"
    opt = next((r for r in rows if r["sizer"] == opt_name), None)
    learned = [r for r in rows if r["sizer"] not in ("kelly", opt_name)]
    if opt is None or not learned:
        return "Only Kelly was evaluated: nothing to compare."
    parts = []
    if kind == "trades" and net_edge is not None:
        hi = net_edge["mean"] + 1.96 * net_edge["se"]
        if hi <= 0 or (net_edge["mean"] <= 0 and all(s["slope"] <= 0 for s in slopes or [])):
            lo = net_edge["mean"] - 1.96 * net_edge["se"]
            parts.append(
                f"No edge: the signal's realized net return per unit risk is {net_edge['mean']:+.3f} "
                f"[{lo:+.3f}, {hi:+.3f}] per trade"
                + (
                    " and every regime's realized-vs-claimed slope is <= 0"
                    if slopes and all(s["slope"] <= 0 for s in slopes)
                    else ""
                )
                + "; no multiplier in [0.5, 2] can make it grow"
            )
    g = opt[f"d_{primary}"]
    glo, ghi = opt[f"d_{primary}_ci"]
    opt_txt = f"{opt_name} {g:+.3f} [{glo:+.3f}, {ghi:+.3f}]"
    for r in learned:
        d = r[f"d_{primary}"]
        lo, hi = r[f"d_{primary}_ci"]
        name = r["sizer"].upper()
        if not (math.isfinite(lo) and math.isfinite(hi)):
            sig = "no interval"
        elif lo > 0:
            sig = "beats Kelly"
        elif hi < 0:
            sig = "worse than Kelly"
        else:
            sig = "no difference from Kelly shown"
        half = (hi - lo) / 2.0
        if share_known((lo, hi), g, glo):
            share = f"{100.0 * d / g:.0f}% of the {opt_name}'s gain"
        else:
            share = f"cannot tell its share of the {opt_name}'s gain (CI half-width {half:.3f} vs 10% of {g:+.3f})"
        parts.append(f"{name} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]: {sig}; {share}")
    return f"Δ {unit} vs static Kelly ({opt_txt}): " + "; ".join(parts) + "."


def format_growth_table(result: dict[str, Any]) -> str:
    """A plain-text table of a log-growth A/B result."""
    primary = result.get("primary", "log_growth_1k")
    exp = primary.startswith("exp")
    head = (
        f"A/B {result['label']}: {result['train']['trades']} training / {result['test']['trades']} test trades, "
        f"seeds {len(result['seeds'])}; optimum: {result['optimum']}"
    )
    cols = (
        f"{'sizer':<12}"
        + (f"{'ElogG/1k':>9}" if exp else "")
        + f"{'logG/1k':>9}{'Sharpe':>8}{'maxDD':>8}{'cap%':>6}{'gross%':>7}{'mult':>6}"
    )
    cols += f"  {'d ' + ('ElogG' if exp else 'logG') + '/1k [95% CI]':>28}{'MDE':>7}{'dSharpe [95% CI]':>24}{'dmaxDD [95% CI]':>24}{'share':>7}"
    lines = [head, cols]
    for r in result["rows"]:
        cells = f"{r['sizer']:<12}"
        cells += f"{r['exp_log_growth_1k']:>9.3f}" if exp else ""
        cells += (f"{r['log_growth_1k']:>9.3f}{r['sharpe']:>8.2f}{r['max_drawdown']:>8.3f}"
                  f"{100 * r['cap_share']:>6.1f}{100 * r['gross_cap_share']:>7.1f}{r['mean_multiplier']:>6.2f}")  # fmt: skip
        if f"d_{primary}" in r:
            lo, hi = r[f"d_{primary}_ci"]
            cells += f"  {r[f'd_{primary}']:>+8.3f} [{lo:+.3f}, {hi:+.3f}]".ljust(30)[:30].rjust(30)
            cells += f"{r[f'mde_{primary}']:>7.3f}"
            for key in ("sharpe", "max_drawdown"):
                lo, hi = r[f"d_{key}_ci"]
                cells += f"{r[f'd_{key}']:>+7.3f} [{lo:+.3f},{hi:+.3f}]".rjust(24)
            share = r.get("share_of_optimum")
            if share is None:
                cells += f"{'-':>7}"
            else:
                cells += f"{100 * share:>6.0f}%" if r.get("share_known") else f"{'?':>7}"
        else:
            cells += "  (baseline)"
        lines.append(cells)
    lines.append("Realized-vs-claimed net edge per regime (slope 1 = calibrated, 0 = no information):")
    for s in result.get("edge_slopes", []):
        lines.append(
            f"  regime {s['regime']}: slope {s['slope']:+.2f} ± {s['slope_se']:.2f}, realized net edge "
            f"{s['net_edge']:+.3f} ± {s['net_edge_se']:.3f} per unit risk ({s['trades']} trades)"
        )
    lines.append(
        f"Minimum detectable difference (5% two-sided, 80% power) of the primary metric at this test size: "
        f"{result['mde_log_growth_1k']:.3f} per 1,000 trades."
    )
    lines.append("Verdict: " + result["verdict"])
    return "\n".join(lines)
