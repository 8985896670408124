"""Chains of shifts: the quality on every target of the chain against the training step, for each
method, so what a later stage forgets of an earlier target shows as a rising curve."""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from gft.viz.style import f32

TARGET_COLORS = ("#1f5fbf", "#d1495b", "#2a9d5c", "#8a4fbf", "#e08a1e", "#3aa7a3", "#7a7a7a", "#b5651d", "#c03a9b", "#4c6a2b")
DASHES = ("solid", "dash", "dot", "dashdot")


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
