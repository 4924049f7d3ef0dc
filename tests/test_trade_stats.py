"""Trade statistics from fills: a hand-computed table, tie-breaking, errors, and a brute-force loop."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from execution.trade_stats import ALL, STAT_COLUMNS, trade_stats, trade_stats_levels

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _frame(rows: list[tuple[str, str, float, float, float, float]]) -> pd.DataFrame:
    """rows: (symbol, route, opened hour, closed hour, pnl, size)."""
    return pd.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "route": [r[1] for r in rows],
            "opened_at": [T0 + pd.Timedelta(hours=r[2]) for r in rows],
            "closed_at": [T0 + pd.Timedelta(hours=r[3]) for r in rows],
            "pnl_usd": [r[4] for r in rows],
            "size_usd": [r[5] for r in rows],
        }
    )


# Group A|r1 in closing order: W W L L L scratch W (the frame is shuffled below).
FIXTURE = [
    ("A", "r1", 0.0, 1.0, 10.0, 100.0),
    ("A", "r1", 0.5, 2.0, 20.0, 400.0),
    ("A", "r1", 2.0, 3.0, -5.0, 50.0),
    ("A", "r1", 1.0, 4.0, -15.0, 100.0),
    ("A", "r1", 4.0, 5.0, -10.0, 200.0),
    ("A", "r1", 5.0, 6.0, 0.0, 100.0),
    ("A", "r1", 6.0, 7.0, 30.0, 300.0),
    ("B", "r1", 0.5, 1.0, 5.0, 100.0),
    ("B", "r1", 1.5, 2.0, 7.0, 100.0),
    ("B", "r2", 0.0, 2.0, -4.0, 80.0),
    ("C", "r1", 0.0, 1.0, 0.0, 10.0),
]

INF, NAN = math.inf, math.nan
# Hand-computed (see the comments) -- columns in STAT_COLUMNS order.
EXPECTED = {
    # A|r1: wins 10, 20, 30 (ret .1, .05, .1); losses 5, 15, 10 (ret .1, .15, .05); one scratch.
    # win rate 3/6; avg win 60/3 = 20; avg loss 30/3 = 10; payoff 2; per risk (0.25/3)/(0.3/3) = 5/6;
    # PF 60/30; expectancy 30/7 USD, (0.25 - 0.3)/7 per risk; Kelly 0.5 - 0.5/(5/6) = -0.1;
    # hold (1 + 1.5 + 1 + 3 + 1 + 1 + 1)/7 h; streaks W W | L L L | 0 | W -> 2 and 3.
    ("A", "r1"): [7, 3, 3, 1, 0.5, 20.0, 10.0, 2.0, 5 / 6, 2.0, 30 / 7, -0.05 / 7, -0.1, 9.5 / 7, 2, 3,
                  30.0, 60.0, 30.0],
    # B|r1: two wins, no loss: payoff and PF +inf, Kelly 1 (p = 1).
    ("B", "r1"): [2, 2, 0, 0, 1.0, 6.0, NAN, INF, INF, INF, 6.0, 0.06, 1.0, 0.5, 2, 0, 12.0, 12.0, 0.0],
    # B|r2: one loss, no win: payoff and PF 0, Kelly -inf (p = 0, b = 0).
    ("B", "r2"): [1, 0, 1, 0, 0.0, NAN, 4.0, 0.0, 0.0, 0.0, -4.0, -0.05, -INF, 2.0, 0, 1, -4.0, 0.0, 4.0],
    # C|r1: one scratch trade: every ratio undefined.
    ("C", "r1"): [1, 0, 0, 1, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, 0.0, NAN, 1.0, 0, 0, 0.0, 0.0, 0.0],
}  # fmt: skip


def _close(a: float, b: float, tol: float = 1e-12) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


def test_hand_computed_table_to_1e_12() -> None:
    trades = _frame(FIXTURE).sample(frac=1.0, random_state=3).reset_index(drop=True)
    got = trade_stats(trades)
    assert list(got.columns) == ["symbol", "route", *STAT_COLUMNS]
    assert [tuple(k) for k in got[["symbol", "route"]].to_numpy()] == list(EXPECTED)
    for i, (key, want) in enumerate(EXPECTED.items()):
        row = got.iloc[i]
        for col, w in zip(STAT_COLUMNS, want):
            assert _close(float(row[col]), float(w)), (key, col, row[col], w)


def test_levels_include_symbol_route_and_book_rows() -> None:
    trades = _frame(FIXTURE)
    lv = trade_stats_levels(trades)
    book = lv[(lv.symbol == ALL) & (lv.route == ALL)].iloc[0]
    # book: wins 10 20 30 5 7 (gross 72), losses 5 15 10 4 (gross 34)
    assert book.n_trades == 11 and book.n_wins == 5 and book.n_losses == 4 and book.n_scratch == 2
    assert _close(book.profit_factor, 72 / 34) and _close(book.win_rate, 5 / 9)
    sym_b = lv[(lv.symbol == "B") & (lv.route == ALL)].iloc[0]
    assert sym_b.n_trades == 3 and _close(sym_b.profit_factor, 12 / 4)
    route_r2 = lv[(lv.symbol == ALL) & (lv.route == "r2")].iloc[0]
    assert route_r2.n_trades == 1 and route_r2.kelly == -INF
    assert len(lv) == 1 + 3 + 2 + 4


def test_streak_ties_are_broken_by_opening_time() -> None:
    # closed together at 01:00: the loss opened first, so the order is L W W (win streak 2), not W L W.
    trades = _frame(
        [("D", "r", 0.5, 1.0, 3.0, 10.0), ("D", "r", 0.0, 1.0, -1.0, 10.0), ("D", "r", 1.0, 2.0, 2.0, 10.0)]
    )
    got = trade_stats(trades, by="symbol").iloc[0]
    assert got.max_win_streak == 2 and got.max_loss_streak == 1


def test_empty_book_gives_one_undefined_row() -> None:
    trades = _frame([]).astype({"pnl_usd": float, "size_usd": float})
    trades["opened_at"] = pd.to_datetime(trades["opened_at"], utc=True)
    trades["closed_at"] = pd.to_datetime(trades["closed_at"], utc=True)
    got = trade_stats(trades, by=())
    assert len(got) == 1 and got.n_trades.iloc[0] == 0 and math.isnan(got.profit_factor.iloc[0])
    assert len(trade_stats(trades)) == 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.assign(size_usd=t.size_usd.where(t.index != 2, 0.0)), "'size_usd' must be > 0; row 2"),
        (
            lambda t: t.assign(pnl_usd=t.pnl_usd.where(t.index != 1, np.nan)),
            "'pnl_usd' must be finite; row 1",
        ),
        (
            lambda t: t.assign(closed_at=t.closed_at.dt.tz_localize(None)),
            "'closed_at' must be timezone-aware",
        ),
        (lambda t: t.drop(columns="opened_at"), "lacks required column(s) ['opened_at']"),
        (lambda t: t.assign(opened_at=t.closed_at + pd.Timedelta(hours=1)), "row 0 closed before it opened"),
    ],
)
def test_bad_input_names_field_and_row(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError) as err:
        trade_stats(mutate(_frame(FIXTURE)))
    assert message in str(err.value)


# --------------------------------------------------------------------------- brute force
def _brute(
    rows: list[tuple[str, str, float, float, float, float]],
) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key in sorted({(r[0], r[1]) for r in rows}):
        g = [(r, i) for i, r in enumerate(rows) if (r[0], r[1]) == key]
        wins = [r[4] for r, _ in g if r[4] > 0]
        losses = [-r[4] for r, _ in g if r[4] < 0]
        wins_r = [r[4] / r[5] for r, _ in g if r[4] > 0]
        losses_r = [-r[4] / r[5] for r, _ in g if r[4] < 0]
        p = len(wins) / (len(wins) + len(losses)) if wins or losses else NAN
        if wins and losses:
            payoff = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
            payoff_r = (sum(wins_r) / len(wins_r)) / (sum(losses_r) / len(losses_r))
            pf = sum(wins) / sum(losses)
            kelly = p - (1 - p) / payoff_r
        elif wins:
            payoff = payoff_r = pf = INF
            kelly = 1.0
        elif losses:
            payoff = payoff_r = pf = 0.0
            kelly = -INF
        else:
            payoff = payoff_r = pf = kelly = NAN
        best_w = best_l = cur_w = cur_l = 0
        for r, _ in sorted(g, key=lambda x: (x[0][3], x[0][2], x[1])):
            cur_w = cur_w + 1 if r[4] > 0 else 0
            cur_l = cur_l + 1 if r[4] < 0 else 0
            best_w, best_l = max(best_w, cur_w), max(best_l, cur_l)
        out[key] = {
            "n_trades": len(g), "win_rate": p, "payoff_ratio": payoff, "payoff_ratio_per_risk": payoff_r,
            "profit_factor": pf, "kelly": kelly, "expectancy_usd": sum(r[4] for r, _ in g) / len(g),
            "expectancy_per_risk": sum(r[4] / r[5] for r, _ in g) / len(g),
            "avg_hold_hours": sum(r[3] - r[2] for r, _ in g) / len(g),
            "max_win_streak": best_w, "max_loss_streak": best_l,
        }  # fmt: skip
    return out


_row = hs.tuples(
    hs.sampled_from(["A", "B", "C"]),
    hs.sampled_from(["x", "y"]),
    hs.integers(0, 20),  # opened hour
    hs.integers(0, 6),  # holding hours (ties in closing time are common)
    hs.sampled_from([-30.0, -7.5, -1.0, 0.0, 0.25, 2.0, 11.0, 40.0]),
    hs.sampled_from([10.0, 50.0, 125.0, 1000.0]),
).map(lambda r: (r[0], r[1], float(r[2]), float(r[2] + r[3]), r[4], r[5]))


@settings(max_examples=150, deadline=None)
@given(hs.lists(_row, min_size=1, max_size=40))
def test_matches_a_brute_force_loop(rows: list[tuple[str, str, float, float, float, float]]) -> None:
    got = trade_stats(_frame(rows))
    want = _brute(rows)
    assert [tuple(k) for k in got[["symbol", "route"]].to_numpy()] == list(want)
    for i, w in enumerate(want.values()):
        for col, value in w.items():
            assert _close(float(got.iloc[i][col]), float(value), 1e-9), (col, got.iloc[i][col], value)
