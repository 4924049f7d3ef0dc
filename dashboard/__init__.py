"""Streamlit views. Reads artifacts and data; never writes; never imports torch, SB3 or sklearn."""
