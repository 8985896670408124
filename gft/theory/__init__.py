"""Closed forms: GFT between Gaussians, exactly, and the numbers the teaching page shows."""
