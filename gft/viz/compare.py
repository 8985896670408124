"""Plotly figures of the comparison pages: couplings drawn, side-by-side training animations, curves
with spread and sample panels. One figure with subplots and one shared slider per animation; the shared
style (colours, timing, play controls, axes) lives in :mod:`gft.viz.style`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gft.viz.schedule_strip import STRIP_PX, Curve, curve_from_snapshots, strip_axes, strip_lines, strip_markers
from gft.viz.style import (
    ANIMATED_PATH_VERTICES,
    COLORS,
    GREY,
    INK,
    ORANGE,
    cloud,
    color_of,
    distinct_colors,
    f32,
    fix_square_axes,
    panel_row,
    play_controls,
    polylines,
    snapshot_label,
    sparse_ticks,
    square_ranges,
    trajectory_lines,
    with_alpha,
)


# ---- couplings ----------------------------------------------------------------------------
def coupling_figure(batches: Sequence, target_cloud: np.ndarray | None = None) -> go.Figure:
    """One panel per :class:`gft.evaluation.probes.CoupledBatch`: a line from each x0 (noise) to its x1."""
    titles = [f"{b.kind}: Σ|x₀ − x₁|² = {b.total_cost:.0f}" for b in batches]
    fig = panel_row(titles, height=380)
    for i, b in enumerate(batches, start=1):
        if target_cloud is not None:
            fig.add_trace(cloud(target_cloud, "target", COLORS["target"], 2.5), row=1, col=i)
        lx, ly = polylines(np.stack([b.x0, b.x1], axis=1))
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(width=1, color=color_of(b.kind)), opacity=0.6, hoverinfo="skip"), row=1, col=i)
        fig.add_trace(cloud(b.x0, "noise x0", INK, 5), row=1, col=i)
        fig.add_trace(cloud(b.x1, "target x1", ORANGE, 6), row=1, col=i)
    xr, yr = square_ranges(*[b.x0 for b in batches], *[b.x1 for b in batches])
    fix_square_axes(fig, xr, yr, panels=len(batches))
    return fig


# ---- training animations ------------------------------------------------------------------
def training_animation(
    panels: dict[str, Sequence],
    target_cloud: np.ndarray,
    pretrained_cloud: np.ndarray | None = None,
    paths: int = 30,
    title_suffix: dict[str, str] | None = None,
    schedules: dict[str, Curve] | None = None,
    train_points: np.ndarray | None = None,
    colors: dict[str, str] | None = None,
    height: int = 470,
) -> go.Figure:
    """Side-by-side animation over training snapshots: one panel per run, one shared slider, and under
    them the schedule strip (λ against step) with one marker per run that moves with the frames.

    ``panels`` maps a run name to its snapshots (``step``, ``tau``, ``lam``, ``trajectory`` of shape
    ``(K + 1, n, 2)`` from the same noise in every run). Frames are the steps every run recorded; each
    shows the samples and ``paths`` of their trajectories (the drift the model has learned by then).
    ``schedules`` gives dense λ(step) curves (else the snapshots' values are joined); ``train_points``
    are drawn large when the runs saw only those few target samples.
    """
    names = list(panels)
    common = sorted(set.intersection(*[{s.step for s in panels[n] if s.trajectory is not None} for n in names]))
    if not common:
        raise ValueError("the runs share no snapshot step with a trajectory; nothing to animate")
    by_step = {n: {s.step: s for s in panels[n] if s.trajectory is not None} for n in names}
    suffix = title_suffix or {}
    palette = dict(distinct_colors(names), **(colors or {}))
    cols = len(names)
    # Snapshot-like objects without total_steps (a test's, a shipped one) end at their last common step.
    total = max(getattr(by_step[n][common[-1]], "total_steps", 0) or 0 for n in names) or common[-1] or 1
    fig = make_subplots(
        rows=2, cols=cols, subplot_titles=[f"{n} {suffix.get(n, '')}".strip() for n in names],
        specs=[[{}] * cols, [{"colspan": cols}] + [None] * (cols - 1)], row_heights=[0.8, 0.2],
        horizontal_spacing=0.03, vertical_spacing=0.1,
    )  # fmt: skip
    strip_x, strip_y = f"x{cols + 1}", f"y{cols + 1}"
    for i, n in enumerate(names, start=1):
        if pretrained_cloud is not None:
            fig.add_trace(cloud(pretrained_cloud, "pretrained", COLORS["pretrained"], 2.5), row=1, col=i)
        fig.add_trace(cloud(target_cloud, "target", COLORS["target"], 2.5), row=1, col=i)
        if train_points is not None:
            fig.add_trace(cloud(train_points, f"the {len(train_points)} training points", INK, 8), row=1, col=i)
    curves = {n: (schedules or {}).get(n) or curve_from_snapshots([by_step[n][s] for s in common]) for n in names}
    for trace in strip_lines(curves, palette, strip_x, strip_y):
        fig.add_trace(trace)
    animated: list[int] = []
    for i, n in enumerate(names, start=1):
        traj = by_step[n][common[0]].trajectory
        px, py = trajectory_lines(traj, paths, ANIMATED_PATH_VERTICES)
        fig.add_trace(go.Scatter(x=px, y=py, mode="lines", line=dict(width=1, color=palette[n]), opacity=0.45, hoverinfo="skip"), row=1, col=i)
        fig.add_trace(cloud(traj[-1], n, palette[n], 3.5), row=1, col=i)
        animated += [len(fig.data) - 2, len(fig.data) - 1]

    def markers(step: int) -> list[go.Scatter]:
        """The strip's animated traces: one marker per run at (step, λ) and the frame's label above the strip."""
        at = {n: (step, by_step[n][step].tau, by_step[n][step].lam) for n in names}
        shared = len({v[1:] for v in at.values()}) == 1
        _, tau, lam = at[names[0]]
        text = f"step {step}/{total}" + (f" · τ = {tau:.3g} · λ = {lam:.3f}" if shared else " · each run's λ on its curve (hover for τ)")
        label = go.Scatter(x=f32([0.0]), y=f32([1.4]), mode="text", text=[text], textposition="middle right", showlegend=False,
                           hoverinfo="skip", textfont=dict(size=12, color=COLORS["text"]), xaxis=strip_x, yaxis=strip_y, cliponaxis=False)
        return [*strip_markers(at, palette, strip_x, strip_y, total), label]

    first_markers = markers(common[0])
    for trace in first_markers:
        fig.add_trace(trace)
    animated += list(range(len(fig.data) - len(first_markers), len(fig.data)))
    frames, labels = [], []
    for step in common:
        data = []
        for n in names:
            traj = by_step[n][step].trajectory
            px, py = trajectory_lines(traj, paths, ANIMATED_PATH_VERTICES)
            data += [go.Scatter(x=px, y=py), go.Scatter(x=f32(traj[-1][:, 0]), y=f32(traj[-1][:, 1]))]
        frames.append(go.Frame(data=data + markers(step), traces=animated, name=str(step)))
        snap = by_step[names[0]][step]
        labels.append(snapshot_label(step, snap.tau, snap.lam))
    fig.frames = frames
    menus, sliders = play_controls([f.name for f in frames], labels, y=-0.02, gap=10, ticks=sparse_ticks(common), show_current=False)
    fig.update_layout(height=height + STRIP_PX, showlegend=False, template="plotly_white", updatemenus=menus, sliders=sliders,
                      margin=dict(l=10, r=10, t=60, b=90))  # t=60: the toolbar stays above the panel titles
    clouds = [target_cloud, pretrained_cloud] + [by_step[n][s].trajectory[-1] for n in names for s in common]
    xr, yr = square_ranges(*clouds)
    fix_square_axes(fig, xr, yr, panels=cols)
    xs, ys = strip_axes(total, fig.layout[f"yaxis{cols + 1}"].domain, strip_x, strip_y)
    xs.pop("domain")
    fig.update_layout({f"xaxis{cols + 1}": xs, f"yaxis{cols + 1}": ys})
    return fig


def sample_panels(
    samples: dict[str, np.ndarray | None], target_cloud: np.ndarray, height: int = 340, colors: dict[str, str] | None = None
) -> go.Figure:
    """Static side-by-side scatter of samples over the target cloud (live view and final samples)."""
    names = list(samples)
    colors = colors or {}
    fig = panel_row(names, height=height)
    for i, n in enumerate(names, start=1):
        fig.add_trace(cloud(target_cloud, "target", COLORS["target"], 2.5), row=1, col=i)
        if samples[n] is not None:
            fig.add_trace(cloud(samples[n], n, colors.get(n, color_of(n)), 3.5), row=1, col=i)
    xr, yr = square_ranges(target_cloud, *[s for s in samples.values() if s is not None])
    fix_square_axes(fig, xr, yr, panels=len(names))
    return fig


# ---- curves -------------------------------------------------------------------------------
SEED_DASHES = ("dot", "dash", "dashdot", "longdash", "longdashdot")
def method_curves_figure(curves: dict, labels: dict[str, str] | None = None, null: tuple[float, float] | None = None) -> go.Figure:
    """Mean W2 against step per method with a min-max band over seeds (``gft.evaluation.summaries.MethodCurves``)."""
    labels = labels or {}
    fig = go.Figure()
    for method, c in curves.items():
        if not len(c.steps):
            continue
        col = color_of(method)
        x = np.concatenate([c.steps, c.steps[::-1]]).astype(np.float64)
        band = np.concatenate([c.high, c.low[::-1]])
        fig.add_trace(go.Scatter(
            x=x, y=band, fill="toself", fillcolor=with_alpha(col, 0.18), line=dict(width=0),
            hoverinfo="skip", showlegend=False, legendgroup=method,
        ))  # fmt: skip
        name = f"{labels.get(method, method)} (mean of {len(c.seeds)}, band min-max)"
        fig.add_trace(go.Scatter(x=c.steps, y=c.mean, mode="lines+markers", name=name, line=dict(color=col, width=2), legendgroup=method))
        if len(c.seeds) > 1:
            # Each seed its own thin line and legend entry: the method's colour, one dash per seed, so a reader can
            # tell a seed that wobbles from a band that is merely wide (and match it to the seed of the final samples).
            for i, (seed, w2) in enumerate(zip(c.seeds, c.w2)):
                fig.add_trace(go.Scatter(
                    x=c.steps, y=w2, mode="lines", name=f"{labels.get(method, method)}, seed {seed}", legendgroup=method,
                    line=dict(color=with_alpha(col, 0.7), width=1, dash=SEED_DASHES[i % len(SEED_DASHES)]),
                ))  # fmt: skip
    steps = [s for c in curves.values() for s in c.steps]
    if null is not None and all(math.isfinite(v) for v in null) and steps:
        # The null band (mean +- 2 sd of W2 between two target draws of the same size): a curve inside it
        # is as close as the target itself can be measured; below it is noise, not a better model.
        mean, sd = null
        lo, hi, xs = max(mean - 2 * sd, 1e-6), mean + 2 * sd, [min(steps), max(steps)]
        fig.add_trace(go.Scatter(
            x=xs + xs[::-1], y=[hi, hi, lo, lo], fill="toself", fillcolor=with_alpha(GREY, 0.15), line=dict(width=0),
            name="null band: W2 between two target draws (mean ± 2 sd)", hoverinfo="skip",
        ))  # fmt: skip
    fig.update_layout(
        height=380, template="plotly_white", margin=dict(l=10, r=10, t=30, b=10), xaxis_title="step",
        yaxis_title="W2 to held-out target (log)", yaxis_type="log", legend=dict(orientation="h", y=-0.2),
    )  # fmt: skip
    return fig
