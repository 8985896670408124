"""Chains of shifts: the chain's clouds in order (what will be trained), and the quality on every target of
the chain against the training step, for each method, so what a later stage forgets of an earlier target
shows as a rising curve."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gft.viz.style import AXIS_RANGE, COLORS, MAX_CLOUD_POINTS, f32

TARGET_COLORS = ("#1f5fbf", "#d1495b", "#2a9d5c", "#8a4fbf", "#e08a1e", "#3aa7a3", "#7a7a7a", "#b5651d", "#c03a9b", "#4c6a2b")
DASHES = ("solid", "dash", "dot", "dashdot")


ONE_ROW = 5  # panels in one row at most; a longer chain (start + 5 or 6 targets) takes two rows


def chain_preview_figure(start: tuple[str, np.ndarray | None], stages: Sequence[tuple[str, np.ndarray | None]], height: int = 330) -> go.Figure:
    """The chain before training: the model it starts from, then each stage's target cloud in order.

    ``start`` and each stage are (title, points or None); a stage without points yet (a drawing not drawn,
    a file not uploaded) is an empty panel saying so. Stage ``j`` takes the colour of its curves in
    :func:`forgetting_figure`. ``height`` is the figure's with one row; two rows take 1.45 times it (smaller
    panels, so a long chain still fits the screen).
    """
    if not stages:
        raise ValueError("chain_preview_figure needs at least one stage")
    panels = [start, *stages]
    cols = len(panels) if len(panels) <= ONE_ROW else -(-len(panels) // 2)
    rows = -(-len(panels) // cols)
    titles = [f"start: {start[0]}"] + [f"{j + 1}. {title}" for j, (title, _) in enumerate(stages)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.08)
    colors = [COLORS["pretrained"]] + [TARGET_COLORS[j % len(TARGET_COLORS)] for j in range(len(stages))]
    for i, ((_, points), color) in enumerate(zip(panels, colors)):
        row, col = divmod(i, cols)
        if points is None:
            fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="text", text=["not given yet:<br>see below"], textfont=dict(size=12, color="#888"),
                                     hoverinfo="skip"), row=row + 1, col=col + 1)
            continue
        pts = f32(points)[:MAX_CLOUD_POINTS]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", marker=dict(size=2.5, color=color, opacity=0.6), hoverinfo="skip"),
                      row=row + 1, col=col + 1)
    for i in range(rows * cols):
        axis = "" if i == 0 else str(i + 1)
        fig.update_xaxes(range=list(AXIS_RANGE), autorange=False, showticklabels=False, zeroline=False, constrain="domain",
                         row=i // cols + 1, col=i % cols + 1)
        fig.update_yaxes(range=list(AXIS_RANGE), autorange=False, showticklabels=False, zeroline=False, scaleanchor=f"x{axis}",
                         row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(template="plotly_white", height=height if rows == 1 else int(1.45 * height), showlegend=False,
                      margin=dict(l=10, r=10, t=60, b=10))  # t=60: the toolbar (modebar) would cover the last panel's title
    return fig


def forgetting_figure(histories: Mapping[str, Sequence[dict]], targets: Sequence[str], stage_steps: int, height: int = 360) -> go.Figure:
    """W2 to each target (columns ``w2_t1``, ``w2_t2``, ...) against step; colour = target, dash = run."""
    if stage_steps < 1:
        raise ValueError(f"stage_steps must be >= 1, got {stage_steps}")
    data = []
    for r, (run, history) in enumerate(histories.items()):
        for j, target in enumerate(targets):
            rows = [h for h in history if h.get(f"w2_t{j + 1}") is not None]
            if not rows:
                continue
            data.append(go.Scatter(
                x=f32([h["step"] for h in rows]), y=f32([h[f"w2_t{j + 1}"] for h in rows]), mode="lines+markers",
                name=f"{run}: W2 to {target}", legendgroup=run,
                line=dict(color=TARGET_COLORS[j % len(TARGET_COLORS)], dash=DASHES[r % len(DASHES)], width=2), marker=dict(size=4),
            ))  # fmt: skip
    fig = go.Figure(data=data)
    for j, target in enumerate(targets):
        fig.add_vrect(x0=j * stage_steps, x1=(j + 1) * stage_steps, fillcolor=TARGET_COLORS[j % len(TARGET_COLORS)], opacity=0.06,
                      line_width=0, annotation_text=f"stage {j + 1}: {target}", annotation_position="top left")
    fig.update_layout(template="plotly_white", height=height, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title=dict(text="step (whole chain)")), yaxis=dict(title=dict(text="W2 to each target"), rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.2))
    return fig
