"""Streamlit entry point: ``streamlit run dashboard/app.py``.

Only lays out the five tabs; each tab is a module under ``dashboard/`` with ``render()``.
Only the open tab runs; ``?tab=<label>`` in the URL opens a tab directly.
A tab that raises shows an error box naming the tab and the error, never a traceback, and the
other tabs still render.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import (  # noqa: E402
    chart_style,  # noqa: F401  (sets the shared plotly template before any figure is built)
    drift_view,
    firestore_status,
    learning_loop,
    ml_confidence,
    rl_pilot,
    router_health,
    tear_sheet,
)

log = logging.getLogger("dashboard")

TAB_KEY = "tab"
"""Query parameter (and widget key) naming the open tab by its label."""

TABS: list[tuple[str, Callable[[], None]]] = [
    ("Router Health 2.0", router_health.render),
    ("ML Confidence", ml_confidence.render),
    ("RL Pilot", rl_pilot.render),
    ("RL Learning Loop", learning_loop.render),
    ("Drift", drift_view.render),
    ("Tear Sheet", tear_sheet.render),
]


def main() -> None:
    st.set_page_config(page_title="Quant research monitor", layout="wide")
    st.title("Quant research monitor")
    firestore_status.render_status_line()
    # Lazy tabs: only the open tab's code runs (a five-tab page cost ~1 s per run when every tab
    # rendered), and the open tab is in the URL (?tab=Drift), so a link opens the right tab.
    tabs = st.tabs([label for label, _ in TABS], key=TAB_KEY, bind="query-params")
    for (label, render), tab in zip(TABS, tabs):
        if tab.open is False:
            continue
        with tab:
            try:
                render()
            except Exception as exc:  # one broken tab must not take the page down
                log.exception("tab %s failed", label)
                st.error(f"The {label} tab failed: {type(exc).__name__}: {exc}", icon=":material/block:")


main()
