"""The ML Confidence tab (placeholder until its issue lands: shows what is missing and how to make it)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require_artifact


def render() -> None:
    st.subheader("ML Confidence")
    require_artifact("ml_telemetry", command="python -m ml.telemetry")
