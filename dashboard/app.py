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
    components,
    drift_view,
    firestore_status,
    learning_loop,
    ml_confidence,
    rl_pilot,
    router_health,
    tear_sheet,
)

log = logging.getLogger("dashboard")

# Query parameter (and widget key) naming the open tab by its label. A comment, not a bare string:
# Streamlit's "magic" would print a bare string literal at the top of the page.
TAB_KEY = "tab"

TABS: list[tuple[str, Callable[[], None]]] = [
    ("Router Health 2.0", router_health.render),
    ("ML Confidence", ml_confidence.render),
    ("RL Pilot", rl_pilot.render),
    ("RL Learning Loop", learning_loop.render),
    ("Drift", drift_view.render),
    ("Tear Sheet", tear_sheet.render),
]


def resolve_tab(requested: str | None, labels: list[str]) -> tuple[str | None, str | None]:
    """The tab label ``?tab=`` names (case- and space-insensitive) and a note when it names none.

    Returns ``(label, note)``: ``label`` is None when nothing or an unknown name was requested
    (the first tab opens), ``note`` is a sentence for the reader when the name is unknown.

    >>> resolve_tab("drift", ["Router Health 2.0", "Drift"])
    ('Drift', None)
    >>> resolve_tab("router  health 2.0", ["Router Health 2.0", "Drift"])
    ('Router Health 2.0', None)
    >>> resolve_tab("Drfit", ["Router Health 2.0", "Drift"])[1]
    "No tab is named 'Drfit'; showing Router Health 2.0. Tabs: Router Health 2.0, Drift."
    """
    if requested is None or requested == "":
        return None, None

    def norm(text: str) -> str:
        return " ".join(text.split()).casefold()

    for label in labels:
        if norm(label) == norm(requested):
            return label, None
    shown = requested if len(requested) <= 40 else requested[:40] + "…"
    return None, f"No tab is named {shown!r}; showing {labels[0]}. Tabs: {', '.join(labels)}."


def main() -> None:
    st.set_page_config(page_title="Quant research monitor", layout="wide")
    st.title("Quant research monitor")
    firestore_status.render_status_line()
    labels = [label for label, _ in TABS]
    label, note = resolve_tab(st.query_params.get(TAB_KEY), labels)
    if note is not None:
        del st.query_params[TAB_KEY]
        st.session_state.pop(TAB_KEY, None)
        st.warning(components.md_text(note), icon=":material/tab_unselected:")  # user text, escaped
    elif label is not None and st.query_params.get(TAB_KEY) != label:
        st.query_params[TAB_KEY] = label  # ?tab=drift opens Drift and the URL says so
        st.session_state[TAB_KEY] = label
    # Lazy tabs: only the open tab's code runs (a five-tab page cost ~1 s per run when every tab
    # rendered), and the open tab is in the URL (?tab=Drift), so a link opens the right tab.
    tabs = st.tabs(labels, key=TAB_KEY, bind="query-params")
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
