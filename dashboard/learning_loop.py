"""The RL Learning Loop tab (placeholder until its issue lands: shows what is missing and how to make it)."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require_artifact


def render() -> None:
    st.subheader("RL Learning Loop")
    require_artifact("learning_loop", command="python -m scripts.demo")
