"""The sampling panel's figure: one panel per sampler, the same noise particles, their paths and where
they land, over the target cloud. Arrays in, a figure out."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import plotly.graph_objects as go

from gft.viz.style import COLORS, cloud, color_of, fix_square_axes, panel_row, square_ranges, trajectory_lines


def sampler_figure(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], target: np.ndarray | None, height: int = 420) -> go.Figure:
    """``panels`` maps a title to (samples (n, 2), paths (K + 1, m, 2)); the same axes in every panel."""
    if not panels:
        raise ValueError("sampler_figure needs at least one panel")
    titles = list(panels)
    fig = panel_row(titles, height=height)
    for i, title in enumerate(titles, start=1):
        samples, paths = panels[title]
        if target is not None:
            fig.add_trace(cloud(target, "target", COLORS["target"], 2.5), row=1, col=i)
        px, py = trajectory_lines(paths)
        fig.add_trace(go.Scatter(x=px, y=py, mode="lines", line=dict(width=1, color=COLORS["path"]), name="paths (t: 0 → 1)",
                                 hoverinfo="skip", showlegend=i == 1), row=1, col=i)
        fig.add_trace(cloud(samples, title, color_of(title), 3.0), row=1, col=i)
    xr, yr = square_ranges(target, *[s for s, _ in panels.values()])
    fix_square_axes(fig, xr, yr, panels=len(titles))
    return fig
