"""The temperature schedule under a training animation: λ against step, with a marker per run that the
animation's frames move, so play and scrub move the particles and the schedule together.

λ = τ / (1 + τ) (the weight of the pretrained drift) is drawn rather than τ: it lives in [0, 1] whatever
the schedule, and it is the number the blended target uses. The marker's hover text gives τ too.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from gft.viz.style import COLORS, f32

Curve = tuple[np.ndarray, np.ndarray]  # (steps, lambda)
STRIP_PX = 130  # the strip's height; the square panels above keep theirs


def curve_from_snapshots(snapshots: Sequence) -> Curve:
    """A run's λ(step) where only its snapshots are known (a dense schedule curve is better when there is one)."""
    return f32([s.step for s in snapshots]), f32([s.lam for s in snapshots])


def strip_lines(curves: Mapping[str, Curve], colors: Mapping[str, str], xaxis: str, yaxis: str) -> list[go.Scatter]:
    """The static λ(step) curves, one per run (a step line: schedules hold τ between changes)."""
    return [
        go.Scatter(x=f32(steps), y=f32(lam), mode="lines", line=dict(color=colors.get(name, COLORS["lambda"]), width=2, shape="hv"),
                   name=f"λ of {name}" if len(curves) > 1 else "λ = τ/(1+τ), the weight of f_pre", legendgroup="schedule",
                   showlegend=False, hoverinfo="skip", xaxis=xaxis, yaxis=yaxis)
        for name, (steps, lam) in curves.items()
    ]  # fmt: skip


def strip_markers(
    at: Mapping[str, tuple[int, float, float]], colors: Mapping[str, str], xaxis: str, yaxis: str, total_steps: int,
    with_text: bool = False,
) -> list[go.Scatter]:
    """One marker per run at (step, λ); ``at`` maps a run to (step, tau, lambda). These traces are the animated ones."""
    out = []
    for name, (step, tau, lam) in at.items():
        text = f"τ = {tau:.3g}, λ = {lam:.2f}"
        out.append(go.Scatter(
            x=f32([step]), y=f32([lam]), mode="markers+text" if with_text else "markers", text=[text],
            textposition="top right" if step < 0.6 * total_steps else "top left", textfont=dict(size=12, color=COLORS["text"]),
            marker=dict(size=12, color=colors.get(name, COLORS["lambda"]), line=dict(width=1.5, color="white")),
            showlegend=False, hovertext=[f"{name}: step {step}, {text}"], hoverinfo="text", xaxis=xaxis, yaxis=yaxis,
        ))  # fmt: skip
    return out


def strip_axes(total_steps: int, domain_y: Sequence[float], anchor_x: str, anchor_y: str) -> tuple[dict, dict]:
    """Layout of the strip's x (step, fixed range) and y (λ in [0, 1]) axes."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    # No axis title: the slider right under the strip already reads "step" by its ticks, and a title would sit on it.
    x = dict(range=[-0.02 * total_steps, 1.02 * total_steps], autorange=False, anchor=anchor_y, domain=[0, 1],
             tickfont=dict(size=10), showgrid=False, zeroline=False)
    y = dict(range=[-0.08, 1.6], autorange=False, anchor=anchor_x, domain=list(domain_y), tickvals=[0, 0.5, 1],
             title=dict(text="λ", font=dict(size=12, color=COLORS["lambda"])), tickfont=dict(size=10), zeroline=False,
             gridcolor="rgba(0,0,0,0.06)")
    return x, y
