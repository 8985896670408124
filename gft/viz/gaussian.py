"""Plotly figures of the exact Gaussian page: the blended flow at one weight lambda (drift arrows,
particles and the law at time t, the pretrained, target and terminal laws at 1 and 2 sigma) and the
curve lambda(tau). Everything comes from the closed form of :mod:`gft.theory.gaussian`.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from gft.theory import gaussian as gauss
from gft.viz.style import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    RED,
    arrows_xy,
    f32,
    fix_square_axes,
    play_controls,
    square_ranges,
    trajectory_lines,
    with_alpha,
)


# ---- the exact Gaussian scene -------------------------------------------------------------
def _ellipse(g: gauss.Gaussian, k: float, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    vals, vecs = np.linalg.eigh(g.cov)
    a = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(a), np.sin(a)], 1) * (k * np.sqrt(np.maximum(vals, 0)))
    pts = circle @ vecs.T + g.mean
    return f32(pts[:, 0]), f32(pts[:, 1])


def _ellipse_traces(g: gauss.Gaussian, color: str, name: str, dash: str = "solid", width: float = 2) -> list[go.Scatter]:
    out = []
    for k in (1, 2):
        x, y = _ellipse(g, k)
        out.append(go.Scatter(
            x=x, y=y, mode="lines", name=name, legendgroup=name, showlegend=k == 1, hoverinfo="skip",
            line=dict(color=color, dash=dash, width=width if k == 1 else width * 0.6),
        ))  # fmt: skip
    return out


def annealing_figure(
    pre: gauss.Gaussian,
    target: gauss.Gaussian,
    lam: float,
    times: int = 21,
    grid: int = 15,
    particles: int = 120,
    seed: int = 0,
    start_index: int | None = None,
    trail: list | None = None,
    height: int = 640,
) -> go.Figure:
    """The exact blended flow at weight ``lam``: drift arrows and particles at time t (Plotly slider over t),
    the law at t, and the pretrained, target and terminal Gaussians at 1 and 2 sigma.

    ``trail``: :class:`gft.theory.exact_annealing.TrailStop`s (hot to cold), drawn as faint 1σ ellipses and
    a line through their means labelled by τ: the path the annealing walks from the pretrained law to the target.
    """
    n_steps = 100
    x0 = np.random.default_rng(seed).standard_normal((particles, 2))
    traj = gauss.particle_trajectories(x0, pre, target, lam, n_steps)  # (n_steps + 1, particles, 2)
    terminal = gauss.terminal_law(pre, target, lam, 200)
    ts = np.linspace(0.0, 1.0, times)
    # RK4 on these smooth affine ODEs is accurate to ~1e-8 with 50 steps over [0, 1]; the figure needs far less.
    laws = [gauss.law_at(pre, target, lam, t, max(2, int(50 * t))) if t > 0 else gauss.Gaussian(np.zeros(2), np.eye(2)) for t in ts]
    # Every ellipse whole (the point of the picture); the particles' paths bar a few far tails.
    ellipses = np.concatenate([np.stack(_ellipse(g, 2.1), 1) for g in (pre, target, terminal, *[stop.law for stop in trail or ()])])
    flat = traj.reshape(-1, 2)
    paths = np.clip(flat, np.percentile(flat, 0.5, axis=0), np.percentile(flat, 99.5, axis=0))
    xr, yr = square_ranges(ellipses, paths, pad=0.05, robust=False)
    gx, gy = np.meshgrid(np.linspace(*xr, grid + 2)[1:-1], np.linspace(*yr, grid + 2)[1:-1])
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    fields = [gauss.blended_velocity(pts, pre, target, lam, t) for t in ts]
    spacing = (xr[1] - xr[0]) / (grid + 1)
    speeds = np.linalg.norm(np.stack(fields), axis=2)
    typical = float(np.median(speeds)) or 1.0
    scale = 0.9 * spacing / typical  # one scale for every t: arrow length shows speed
    cap = 1.3 * spacing / scale  # the fastest corners would hide their neighbours: clip, keep the direction
    fields = [f * np.minimum(1.0, cap / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)) for f in fields]

    fig = go.Figure()
    path_x, path_y = trajectory_lines(traj)
    fig.add_trace(go.Scatter(x=path_x, y=path_y, mode="lines", line=dict(width=0.7, color=with_alpha(BLUE, 0.25)), hoverinfo="skip", name="paths"))
    for tr in _ellipse_traces(pre, GREY, "pretrained", "dash"):
        fig.add_trace(tr)
    for tr in _ellipse_traces(target, ORANGE, "target", "dash"):
        fig.add_trace(tr)
    if trail:
        for i, stop in enumerate(trail):
            x, y = _ellipse(stop.law, 1.0)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=with_alpha(RED, 0.35), width=1), hoverinfo="skip",
                                     name="terminal laws as τ falls (1σ)", legendgroup="trail", showlegend=i == 0))
        means = np.stack([stop.law.mean for stop in trail])
        fig.add_trace(go.Scatter(
            x=f32(means[:, 0]), y=f32(means[:, 1]), mode="lines+markers+text", name="their means, τ = ∞ → 0", legendgroup="trail",
            text=["∞" if math.isinf(stop.tau) else f"{stop.tau:g}" for stop in trail], textposition="top center",
            textfont=dict(size=10, color=RED), marker=dict(size=6, color=RED), line=dict(color=with_alpha(RED, 0.6), width=1.5),
            hovertext=[f"τ = {stop.tau:g}, λ = {stop.lam:.2f}" for stop in trail], hoverinfo="text",
        ))  # fmt: skip
    for tr in _ellipse_traces(terminal, BLUE, "terminal law at this τ", width=3):
        fig.add_trace(tr)
    i0 = len(ts) // 2 if start_index is None else start_index

    def dynamic(i: int) -> list[go.Scatter]:
        ax, ay = arrows_xy(pts, fields[i], scale)
        k = int(round(ts[i] * n_steps))
        lx, ly = _ellipse(laws[i], 1.0)
        return [
            go.Scatter(x=ax, y=ay, mode="lines", line=dict(width=1.2, color=GREEN), name="drift at t", hoverinfo="skip"),
            go.Scatter(x=lx, y=ly, mode="lines", line=dict(width=1.5, color=PURPLE), name="law at t (1σ)", hoverinfo="skip"),
            go.Scatter(x=f32(traj[k, :, 0]), y=f32(traj[k, :, 1]), mode="markers", marker=dict(size=5, color=BLUE), name="particles at t"),
        ]

    first = len(fig.data)
    for tr in dynamic(i0):
        fig.add_trace(tr)
    animated = list(range(first, first + 3))
    fig.frames = [go.Frame(data=dynamic(i), traces=animated, name=f"{t:.2f}") for i, t in enumerate(ts)]
    # Below the tick labels, starting at frame i0 (the figure's initial state).
    menus, sliders = play_controls([f.name for f in fig.frames], [f"t = {t:.2f}" for t in ts], y=-0.07, gap=10, active=i0)
    fig.update_layout(
        updatemenus=menus, sliders=sliders, height=height, template="plotly_white",
        margin=dict(l=10, r=10, t=10, b=120), legend=dict(orientation="h", y=1.02, yanchor="bottom"),
    )  # fmt: skip
    fix_square_axes(fig, xr, yr, tick_labels=True)
    return fig


def setting_figure(pre: gauss.Gaussian, target: gauss.Gaussian, question: str = "", height: int = 560) -> go.Figure:
    """The question before its answer: the noise N(0, I) the flow starts from, the pretrained and target laws at 1
    and 2 sigma, and the segment between their means (where most answers lie). Nothing of the flow or of its
    terminal law, which :func:`annealing_figure` reveals."""
    source = gauss.Gaussian(np.zeros(2), np.eye(2))
    fig = go.Figure()
    for tr in _ellipse_traces(source, with_alpha(BLUE, 0.45), "noise N(0, I): where the flow starts (t = 0)", "dot", width=1.5):
        fig.add_trace(tr)
    for tr in _ellipse_traces(pre, GREY, "pretrained", "dash"):
        fig.add_trace(tr)
    for tr in _ellipse_traces(target, ORANGE, "target", "dash"):
        fig.add_trace(tr)
    means = np.stack([target.mean, pre.mean])
    fig.add_trace(go.Scatter(
        x=f32(means[:, 0]), y=f32(means[:, 1]), mode="lines+markers+text", name="the two means", text=["target mean", "pretrained mean"],
        textposition="bottom center", textfont=dict(size=11), marker=dict(size=8, color=[ORANGE, GREY]),
        line=dict(color=with_alpha(RED, 0.5), width=1.5, dash="dot"), hoverinfo="skip",
    ))  # fmt: skip
    xr, yr = square_ranges(*[np.stack(_ellipse(g, 2.1), 1) for g in (source, pre, target)], pad=0.1, robust=False)
    if question:
        fig.add_annotation(text=question, x=0.5, y=0.99, xref="paper", yref="paper", xanchor="center", yanchor="top", showarrow=False,
                           font=dict(size=14, color=RED), bgcolor="rgba(255,255,255,0.85)")
    fig.update_layout(height=height, template="plotly_white", margin=dict(l=10, r=10, t=10, b=10),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    fix_square_axes(fig, xr, yr, tick_labels=True)
    return fig


def lambda_curve(tau: float) -> go.Figure:
    """lambda = tau / (1 + tau) and lambda^2 (the path-space KL factor) over tau, marking ``tau``."""
    taus = np.concatenate([[0.0], np.logspace(-2, 2, 200)])
    lam = taus / (1 + taus)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=taus + 1e-2, y=lam, mode="lines", name="λ", line=dict(color=BLUE)))
    fig.add_trace(go.Scatter(x=taus + 1e-2, y=lam**2, mode="lines", name="λ² (path-space KL factor)", line=dict(color=RED, dash="dot")))
    if math.isfinite(tau):
        current = gauss.lambda_of_tau(tau)
        fig.add_trace(go.Scatter(x=[tau + 1e-2], y=[current], mode="markers", marker=dict(size=11, color=BLUE), name=f"τ = {tau:g}"))
    fig.update_layout(
        height=250, template="plotly_white", margin=dict(l=10, r=10, t=10, b=10), xaxis_type="log",
        xaxis_title="τ (+0.01, log scale)", legend=dict(orientation="h", y=-0.45), yaxis_range=[0, 1.02],
    )  # fmt: skip
    return fig
