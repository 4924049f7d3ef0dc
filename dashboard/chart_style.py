"""One look for the dashboard's plotly figures: white template, legend above the plot, fixed heights.

Figures carry no in-figure title (the tab writes a bold header above and a caption below), so a
horizontal legend above the plot never collides with a title; plotly's auto-margin makes room for a
legend that wraps onto several rows. Time axes are drawn from naive-UTC values (plotly.js shows a
timestamp's wall time and ignores offsets) and titled "(UTC)".
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

TEMPLATE = "plotly_white"
# Set once for the process: every figure then serialises with this template. Passing
# ``template=...`` per figure instead builds a full Template object each time (~20 ms a figure,
# about a second of a five-tab page).
pio.templates.default = TEMPLATE
HEIGHT = 340
SMALL_HEIGHT = 300
MARGIN = {"l": 60, "r": 20, "t": 30, "b": 50}
LEGEND = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}


def style(fig: go.Figure, *, x_title: str, y_title: str, height: int = HEIGHT, **layout: Any) -> go.Figure:
    """Apply the shared legend, margins and axis titles to ``fig`` (in place; returned).

    The shared template comes from ``plotly.io.templates.default``, set when this module is imported.

    Parameters
    ----------
    fig : go.Figure
        The figure to style.
    x_title, y_title : str
        Axis titles with their units, e.g. ``"closed at (UTC)"``, ``"cumulative PnL (USD)"``.
    height : int
        Figure height in pixels.
    **layout
        Further ``update_layout`` arguments (e.g. ``yaxis2``); they override the defaults.
    """
    base: dict[str, Any] = {
        "height": height,
        "margin": MARGIN,
        "legend": LEGEND,
        "xaxis_title": x_title,
        "yaxis_title": y_title,
        "hovermode": "closest",
    }
    fig.update_layout(**{**base, **layout})
    return fig


def utc_naive(values: Any) -> Any:
    """Timestamps as naive UTC datetime64 values (tz-aware input is converted to UTC first)."""
    ts = pd.to_datetime(pd.Series(values), utc=True)
    return ts.dt.tz_localize(None).to_numpy()
