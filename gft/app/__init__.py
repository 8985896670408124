"""Streamlit-side helpers of the explorer (the only part of gft that imports Streamlit)."""
