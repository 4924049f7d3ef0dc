"""Doctor checks of the input data: freshness of bars and trades, and per-route execution health."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from infra.contracts.ops_artifacts import DemoDataData
from scripts.doctor_checks.base import (
    DEMO_COMMAND,
    CheckResult,
    DoctorContext,
    age_text,
    fail,
    ok,
    register,
    warn,
)

ROUTE_WARN = 0.40
"""A route whose doctor confidence is below this is named in a WARN."""
SYMBOL_FAIL = 0.20
"""A symbol whose doctor confidence is below this is a FAIL (all its flow executes badly)."""


def _is_demo_data(ctx: DoctorContext) -> bool:
    """True when the ``demo_data`` artifact says the demo generator wrote ``DATA_DIR``."""
    res = ctx.store.read("demo_data")
    if not (res.usable and isinstance(res.typed, DemoDataData)):
        return False  # missing or bad: its own artifact check reports it
    return any(Path(p).parent == ctx.settings.data_dir for p in res.typed.files.values())


def _newest(path: Path, column: str) -> pd.Timestamp:
    frame = (
        pd.read_parquet(path, columns=[column])
        if path.suffix == ".parquet"
        else pd.read_csv(path, usecols=[column])
    )
    ts = pd.to_datetime(frame[column], utc=True)
    if ts.isna().all():
        raise ValueError(f"column {column!r} has no timestamps")
    return pd.Timestamp(ts.max())


@register("data_freshness", order=10)
def check_data_freshness(ctx: DoctorContext) -> list[CheckResult]:
    """Newest bar and newest trade against ``now`` (limit ``DOCTOR_DATA_MAX_AGE_H``).

    Demo data is historical, so on data the demo generator wrote a stale age is a WARN, not a FAIL.
    """
    results = []
    demo = _is_demo_data(ctx)
    for label, fname, column in (("bars", "bars.parquet", "ts"), ("trades", "trades.parquet", "closed_at")):
        name = f"data:{label}"
        path = ctx.settings.data_dir / fname
        if not path.exists():
            results.append(
                warn(name, f"{path} is missing.", f"run `{DEMO_COMMAND}` or set DATA_DIR", path=str(path))
            )
            continue
        try:
            newest = _newest(path, column)
        except Exception as exc:  # unreadable parquet, missing column
            results.append(
                fail(
                    name,
                    f"{path} is unreadable: {type(exc).__name__}: {exc}",
                    f"regenerate {path} (`{DEMO_COMMAND}`)",
                    path=str(path),
                )
            )
            continue
        age = (ctx.now - newest.to_pydatetime()).total_seconds()
        details: dict[str, Any] = {
            "path": str(path),
            "newest": newest.isoformat(),
            "age_s": age,
            "limit_s": ctx.data_max_age_s,
            "demo_data": demo,
        }
        if age <= ctx.data_max_age_s:
            results.append(
                ok(
                    name,
                    f"newest {label[:-1]} {newest:%Y-%m-%d %H:%M}Z is {age_text(max(age, 0.0))} old.",
                    **details,
                )
            )
        elif demo:
            results.append(
                warn(
                    name,
                    f"newest {label[:-1]} is {age_text(age)} old (demo data is historical; limit {age_text(ctx.data_max_age_s)}).",
                    "expected on demo data; raise DOCTOR_DATA_MAX_AGE_H to silence, or load live data",
                    **details,
                )
            )
        else:
            results.append(
                fail(
                    name,
                    f"newest {label[:-1]} is {age_text(age)} old (limit {age_text(ctx.data_max_age_s)}): the feed has stopped.",
                    "restart the data feed / trade export, or raise DOCTOR_DATA_MAX_AGE_H",
                    **details,
                )
            )
    return results


@register("route_health", order=60)
def check_route_health(ctx: DoctorContext) -> CheckResult:
    """Per symbol and route fill quality, slippage vs expectation, reject/error rate, drawdown.

    Stores the confidences in ``ctx.shared`` for the doctor artifact.
    """
    from execution.doctor_confidence import route_confidence, route_health_table, symbol_confidence

    name = "route_health"
    orders_path = ctx.settings.data_dir / "orders.parquet"
    trades_path = ctx.settings.data_dir / "trades.parquet"
    if not orders_path.exists():
        return warn(
            name,
            f"{orders_path} is missing: no route health and no doctor confidence.",
            f"run `{DEMO_COMMAND}` or export order attempts to {orders_path}",
            path=str(orders_path),
        )
    try:
        orders = pd.read_parquet(orders_path)
        trades = (
            pd.read_parquet(trades_path, columns=["symbol", "route", "closed_at", "pnl_usd", "size_usd"])
            if trades_path.exists()
            else None
        )
        table = route_health_table(orders, trades)
    except Exception as exc:
        return fail(
            name,
            f"cannot compute route health from {orders_path}: {type(exc).__name__}: {exc}",
            f"regenerate {orders_path} (`{DEMO_COMMAND}`)",
            path=str(orders_path),
        )
    sym_conf = symbol_confidence(table)
    pair_conf = route_confidence(table)
    ctx.shared["symbol_confidence"] = sym_conf
    ctx.shared["route_confidence"] = pair_conf
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in table.round(4).to_dict("records")
    ]
    details: dict[str, Any] = {
        "symbol_confidence": sym_conf,
        "route_confidence": pair_conf,
        "routes": rows,
        "trades_used": trades is not None,
    }
    if table.empty:
        return warn(name, f"{orders_path} has no order attempts.", f"run `{DEMO_COMMAND}`", **details)
    bad_syms = sorted(s for s, c in sym_conf.items() if c < SYMBOL_FAIL)
    bad_routes = sorted(((k, c) for k, c in pair_conf.items() if c < ROUTE_WARN), key=lambda kc: kc[1])
    if bad_syms:
        return fail(
            name,
            f"symbols executing badly on every route: {', '.join(bad_syms)} (confidence < {SYMBOL_FAIL}).",
            "halt or reroute these symbols; check the venues' status pages and API keys",
            **details,
        )
    if bad_routes:
        by_route: dict[str, int] = {}
        for k, _ in bad_routes:
            by_route[k.split("|", 1)[1]] = by_route.get(k.split("|", 1)[1], 0) + 1
        worst = ", ".join(f"{r} ({n} symbols)" for r, n in sorted(by_route.items(), key=lambda x: -x[1]))
        return warn(
            name,
            f"{len(bad_routes)} symbol/route pair(s) below confidence {ROUTE_WARN}: {worst}; worst {bad_routes[0][0]}={bad_routes[0][1]:.2f}.",
            "shift flow away from the named routes (`python -m scripts.doctor -v` lists each route's fill rate, "
            "slippage and latency; `--json` has every field)",
            **details,
        )
    return ok(
        name,
        f"{len(pair_conf)} symbol/route pairs healthy; lowest confidence {min(pair_conf.values()):.2f}.",
        **details,
    )
