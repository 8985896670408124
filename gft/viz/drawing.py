"""The drawing canvas: a square of faint dots to lasso over (Plotly reports a lasso only when it catches
points), the strokes drawn so far and the point cloud they make."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from gft.viz.style import COLORS, cloud, f32, square_layout

PAPER_STEP = 0.25  # spacing of the dots a lasso can catch


def paper_dots(limit: float = 4.0, step: float = PAPER_STEP) -> np.ndarray:
    ticks = np.arange(-limit, limit + step / 2, step)
    xx, yy = np.meshgrid(ticks, ticks)
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)


def drawing_canvas(strokes: Sequence[np.ndarray], points: np.ndarray | None, height: int = 440) -> go.Figure:
    """Lasso mode on by default; the cloud (orange) over the strokes (dark lines)."""
    dots = paper_dots()
    data = [go.Scatter(x=dots[:, 0], y=dots[:, 1], mode="markers", name="paper", showlegend=False, hoverinfo="skip",
                       marker=dict(size=3, color="rgba(0,0,0,0.08)"))]
    if points is not None:
        data.append(cloud(points, "target points", COLORS["target"], 3.0))
    if strokes:
        x, y = _ragged(strokes)
        data.append(go.Scatter(x=x, y=y, mode="lines+markers", name="your strokes", line=dict(color="rgba(30,30,30,0.8)", width=2),
                               marker=dict(size=3), hoverinfo="skip"))
    fig = square_layout(go.Figure(data=[d for d in data if d is not None]), height)
    fig.update_layout(meta="gft-drawing-canvas")  # how tests find the canvas
    fig.update_layout(dragmode="lasso", clickmode="none", newselection=dict(line=dict(color="rgba(30,30,30,0.6)")))
    return fig


def _ragged(strokes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Strokes of different lengths as one NaN-separated line."""
    parts = [np.vstack([f32(s), np.full((1, 2), np.nan, dtype=np.float32)]) for s in strokes]
    joined = np.vstack(parts)
    return joined[:, 0], joined[:, 1]
