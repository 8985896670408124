"""Plotly figures: drawing only (no Streamlit, no model evaluation)."""
