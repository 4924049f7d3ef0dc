"""The Router Health 2.0 tab (placeholder until its issue lands: shows what is missing and how to make it)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require_artifact


def render() -> None:
    st.subheader("Router Health 2.0")
    require_artifact("doctor", command="python -m scripts.demo")
