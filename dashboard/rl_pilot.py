"""The RL Pilot tab (placeholder until its issue lands: shows what is missing and how to make it)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require_artifact


def render() -> None:
    st.subheader("RL Pilot")
    require_artifact("rl_pilot", command="python -m research.rl_sizer.runner --episodes 10 --dry-run")
