"""The Drift tab (placeholder until its issue lands: shows what is missing and how to make it)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require_artifact


def render() -> None:
    st.subheader("Drift")
    require_artifact("drift", command="python -m scripts.demo")
