"""Plotly figures of the 2D explorer: clouds with trajectories, live progress, loss/W2 curves, the
temperature schedule, and the two animations (the drift moving over training, particles moving in ODE
time).

Arrays in, figures out: the model evaluations behind them live in :mod:`gft.evaluation.probes`, the
shared style (colours, timing, play controls, axes) in :mod:`gft.viz.style`. Per-frame text (step, tau,
lambda, ODE time) lives in an animated text trace, because plotly.js does not apply a frame's *layout*
without a full redraw.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gft.viz.schedule_strip import STRIP_PX, Curve, curve_from_snapshots, strip_axes, strip_lines, strip_markers
from gft.viz.style import (
    ANIMATED_PATH_VERTICES,
    AXIS_RANGE,
    COLORS,
    FRAME_MS,
    arrows_xy,
    cloud,
    color_of,
    f32,
    label_trace,
    play_controls,
    snapshot_label,
    sparse_ticks,
    square_layout,
    trajectory_lines,
)

BACKDROP_NAMES = ("pretrained model samples", "target data")  # legend names of the two static clouds
# Arrows per set and frame in the ODE-time view: four sets of 150 made that figure 2.2 MB (more than the drift
# animation), re-sent on every return to the page; 80 per set still cover the cloud, at 1.35 MB.
ARROWS = 80
PATH_POINTS = 4000  # animated path vertices per frame; with up to 2,000 particles, within the SVG budget


def path_budget(max_paths: int, points_per_path: int) -> int:
    """How many polylines of ``points_per_path`` vertices fit in :data:`PATH_POINTS`."""
    return max(1, min(max_paths, PATH_POINTS // max(points_per_path + 1, 1)))


def arrow_scale(*vector_sets: np.ndarray | None, length: float = 0.7) -> float:
    """One scale for every frame so arrow lengths compare: the 95th-percentile norm maps to ``length``."""
    norms = [np.linalg.norm(f32(v).reshape(-1, 2), axis=1) for v in vector_sets if v is not None and np.size(v)]
    if not norms:
        return 1.0
    ref = float(np.percentile(np.concatenate(norms), 95))
    return length / ref if ref > 1e-8 else 1.0


# ---- static figures ------------------------------------------------------------------------------
def clouds_figure(
    pretrained: np.ndarray | None = None,
    target: np.ndarray | None = None,
    trajectories: np.ndarray | None = None,
    n_paths: int = 60,
    title: str | None = None,
    height: int = 460,
    names: tuple[str, str] = BACKDROP_NAMES,
) -> go.Figure:
    """Pretrained and target clouds, with a few trajectories (K+1, n, 2) of a model drawn over them."""
    fig = go.Figure(data=_backdrop(pretrained, target, names))
    if trajectories is not None:
        x, y = trajectory_lines(trajectories, n_paths)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="trajectories (noise to data)", line=dict(width=1, color="rgba(40,90,200,0.45)"), hoverinfo="skip"))
        ends = f32(trajectories)[-1, :n_paths]
        fig.add_trace(go.Scatter(x=ends[:, 0], y=ends[:, 1], mode="markers", name="where they land", marker=dict(size=5, color=COLORS["particle"])))
    return square_layout(fig, height, title)


def _backdrop(pretrained: np.ndarray | None, target: np.ndarray | None, names: Sequence[str] = BACKDROP_NAMES) -> list[go.Scatter]:
    """The static pretrained and target clouds an animation moves over (either may be missing)."""
    traces = (cloud(pretrained, names[0], COLORS["pretrained"]), cloud(target, names[1], COLORS["target"]))
    return [t for t in traces if t is not None]


def _light_layout(height: int, **axes) -> dict:
    # No template and no make_subplots: both cost 30-100 ms per figure, and these are rebuilt every
    # poll of a live panel, holding the GIL the training thread needs.
    return dict(height=height, margin=dict(l=10, r=10, t=30, b=10), uirevision="keep", **axes)


def live_scatter(samples: np.ndarray | None, target: np.ndarray | None = None, max_points: int = 500, height: int = 330) -> go.Figure:
    """A light scatter for live progress: at most ``max_points`` per cloud, no frames."""
    data = []
    if target is not None:
        t = f32(target)[:max_points]
        data.append(dict(type="scatter", x=t[:, 0], y=t[:, 1], mode="markers", name="target", marker=dict(size=3, color=COLORS["target"]), hoverinfo="skip"))
    if samples is not None:
        s = f32(samples)[:max_points]
        data.append(dict(type="scatter", x=s[:, 0], y=s[:, 1], mode="markers", name="model samples now", marker=dict(size=4, color=COLORS["particle"]), hoverinfo="skip"))
    axis = dict(range=list(AXIS_RANGE), autorange=False, zeroline=False)
    layout = _light_layout(height, xaxis=dict(axis, constrain="domain"), yaxis=dict(axis, scaleanchor="x", scaleratio=1, constrain="domain"),
                           legend=dict(orientation="h", y=1.08, x=0), title=dict(text="samples now (t = 1)", font=dict(size=13)))
    return go.Figure(data=data, layout=layout)


def curves_figure(history: Sequence[dict], height: int = 300) -> go.Figure:
    """Training loss and W2-to-target against step, side by side (two axis pairs, one figure)."""
    data = []
    rows = [r for r in history if r.get("loss") is not None]
    if rows:
        data.append(dict(type="scatter", x=f32([r["step"] for r in rows]), y=f32([r["loss"] for r in rows]), mode="lines", name="loss", line=dict(color=COLORS["particle"])))
    w2 = [r for r in history if r.get("w2") is not None]
    if w2:
        data.append(dict(type="scatter", x=f32([r["step"] for r in w2]), y=f32([r["w2"] for r in w2]), mode="lines+markers", name="W2", line=dict(color=COLORS["f_pre"]), xaxis="x2", yaxis="y2"))
    layout = _light_layout(
        height, showlegend=False,
        xaxis=dict(domain=[0, 0.44], title=dict(text="step")), yaxis=dict(title=dict(text="loss"), rangemode="tozero"),
        xaxis2=dict(domain=[0.56, 1], anchor="y2", title=dict(text="step")), yaxis2=dict(anchor="x2", title=dict(text="W2 to the target"), rangemode="tozero"),
    )
    return go.Figure(data=data, layout=layout)


def runs_curves_figure(
    histories: Mapping[str, Sequence[dict]], metric: str = "w2", title: str = "W2 to held-out target", height: int = 300
) -> go.Figure:
    """Loss and the history's ``metric`` (``w2`` for points, ``fd`` for images) against step, one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["training loss (blended target)", title], horizontal_spacing=0.08)
    for name, hist in histories.items():
        color = color_of(name)
        loss = [r for r in hist if r.get("loss") is not None]
        w2 = [r for r in hist if r.get(metric) is not None]
        if loss:
            fig.add_trace(go.Scatter(x=f32([r["step"] for r in loss]), y=f32([r["loss"] for r in loss]), mode="lines", name=name,
                                     line=dict(color=color), legendgroup=name), row=1, col=1)
        if w2:
            fig.add_trace(go.Scatter(x=f32([r["step"] for r in w2]), y=f32([r[metric] for r in w2]), mode="lines+markers", name=name,
                                     line=dict(color=color), legendgroup=name, showlegend=not loss), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", legend=dict(orientation="h", y=-0.25))
    return fig


def schedule_figure(steps: np.ndarray, tau: np.ndarray, lam: np.ndarray, height: int = 260, current_step: int | None = None) -> go.Figure:
    """tau(step) and lambda(step) = tau / (1 + tau) on two y axes."""
    data = [
        dict(type="scatter", x=f32(steps), y=f32(tau), name="τ (temperature)", mode="lines", line=dict(color=COLORS["tau"], width=2, shape="hv")),
        dict(type="scatter", x=f32(steps), y=f32(lam), name="λ = τ/(1+τ), weight of f_pre", mode="lines", yaxis="y2",
             line=dict(color=COLORS["lambda"], width=2, dash="dot", shape="hv")),
    ]
    layout = _light_layout(
        height, legend=dict(orientation="h", y=1.15, x=0),
        xaxis=dict(title=dict(text="fine-tuning step")),
        yaxis=dict(title=dict(text="τ", font=dict(color=COLORS["tau"])), rangemode="tozero"),
        yaxis2=dict(title=dict(text="λ", font=dict(color=COLORS["lambda"])), overlaying="y", side="right", range=[0, 1.02], showgrid=False,
                    tickmode="array", tickvals=[0, 0.25, 0.5, 0.75, 1.0]),
    )
    fig = go.Figure(data=data, layout=layout)
    if current_step is not None:
        fig.add_vline(x=current_step, line=dict(color="rgba(0,0,0,0.4)", dash="dash"))
    return fig


# ---- animations ----------------------------------------------------------------------------------
def trajectory_animation(
    snapshots: Sequence,
    pretrained: np.ndarray | None = None,
    target: np.ndarray | None = None,
    max_particles: int = 2000,
    max_paths: int = 120,
    height: int = 560,
    frame_ms: int = FRAME_MS,
    title: str | None = None,
    names: tuple[str, str] = BACKDROP_NAMES,
    temperature: bool = True,
    schedule: Curve | None = None,
) -> go.Figure:
    """The drift moving during training: one frame per snapshot, same noise seeds in every frame.

    ``snapshots`` are :class:`gft.core.training.Snapshot`s carrying trajectories (K+1, n, 2). Each frame
    shows faint paths of ``max_paths`` particles and where ``max_particles`` land at t = 1, over
    static pretrained and target clouds; the step (and, with ``temperature``, tau and lambda) shows in
    the frame. With ``temperature``, a strip under the panel draws λ(step) (``schedule``, a dense
    (steps, lambda) curve, or the snapshots' own values) with a marker the frames move. Pretraining
    passes ``temperature=False``: it has no τ.
    """
    snaps = [s for s in snapshots if getattr(s, "trajectory", None) is not None]
    if not snaps:
        raise ValueError("no snapshot carries a trajectory: train with Monitor(particles > 0)")
    static = _backdrop(pretrained, target, names)
    total = snaps[-1].total_steps
    labels = [snapshot_label(s.step, s.tau, s.lam, s.total_steps, temperature) for s in snaps]
    frame_names = [f"step {s.step}" for s in snaps]
    max_paths = path_budget(max_paths, min(snaps[0].trajectory.shape[0], ANIMATED_PATH_VERTICES))
    run = "run"
    if temperature:
        static += strip_lines({run: schedule if schedule is not None else curve_from_snapshots(snaps)}, {}, "x2", "y2")

    def animated(snap, label: str) -> list[go.Scatter]:
        px, py = trajectory_lines(snap.trajectory, max_paths, ANIMATED_PATH_VERTICES)
        ends = f32(snap.trajectory[-1, :max_particles])
        out = [
            go.Scatter(x=px, y=py, mode="lines", name="trajectories (t: 0 → 1)", line=dict(width=1, color=COLORS["path"]), hoverinfo="skip"),
            go.Scatter(x=ends[:, 0], y=ends[:, 1], mode="markers", name="samples at t = 1", marker=dict(size=4, color=COLORS["particle"]), hoverinfo="skip"),
            label_trace(label),
        ]
        if temperature:
            out += strip_markers({run: (snap.step, snap.tau, snap.lam)}, {}, "x2", "y2", total, with_text=True)
        return out

    first = animated(snaps[0], labels[0])
    fig = go.Figure(data=static + first)
    moving = list(range(len(static), len(static) + len(first)))
    fig.frames = [go.Frame(name=n, data=animated(s, lab), traces=moving) for s, n, lab in zip(snaps, frame_names, labels)]
    menus, sliders = play_controls(frame_names, labels, frame_ms, show_current=False, ticks=sparse_ticks([s.step for s in snaps]))
    square_layout(fig, height + (STRIP_PX if temperature else 0), title)
    if temperature:
        share = STRIP_PX / (height + STRIP_PX)
        xaxis2, yaxis2 = strip_axes(max(total, 1), [0, share * 0.8], "x2", "y2")
        fig.update_layout(yaxis=dict(domain=[share + 0.04, 1]), xaxis2=xaxis2, yaxis2=yaxis2)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(b=100))
    return fig


def time_scrub_figure(
    trajectory: np.ndarray,
    pretrained: np.ndarray | None = None,
    target: np.ndarray | None = None,
    drift_pre: np.ndarray | None = None,
    field: tuple[np.ndarray, np.ndarray] | None = None,
    learned_arrows: bool = False,
    max_particles: int = 2000,
    max_paths: int = 150,
    max_arrows: int = ARROWS,
    height: int = 560,
    frame_ms: int = FRAME_MS,
    title: str | None = None,
    caption: str = "",
    names: tuple[str, str] = BACKDROP_NAMES,
    drift_target: np.ndarray | None = None,
    drift_blend: np.ndarray | None = None,
    blend_lambda: float | None = None,
    target_source: str = "target samples",
) -> go.Figure:
    """Particles moving along one trajectory (K+1, n, 2) in ODE time: one frame per Euler step t_k.

    Optional arrows per frame: ``drift_pre`` (K+1, n, 2), the pretrained drift evaluated at the
    particles (where the fine-tuned path lives); ``learned_arrows``, the drift the trajectory itself
    followed (its Euler increments, exact for an Euler trajectory); ``field`` = (grid (G, 2),
    velocities (K+1, G, 2)), a velocity field on a grid. ``drift_target`` and ``drift_blend`` (K+1, n, 2):
    the target drift (estimated from ``target_source``) and GFT's blend (1 - λ)·target + λ·f_pre at
    ``blend_lambda``. Every arrow set shares one scale, so lengths compare across sets and frames.
    """
    traj = f32(trajectory)
    if traj.ndim != 3 or traj.shape[-1] != 2 or traj.shape[0] < 2:
        raise ValueError(f"trajectory must have shape (K+1 >= 2, n, 2), got {traj.shape}")
    k_steps = traj.shape[0] - 1
    times = np.linspace(0.0, 1.0, k_steps + 1)
    learned = (traj[1:] - traj[:-1]) * np.float32(k_steps) if learned_arrows else None
    grid, field_v = (f32(field[0]), f32(field[1])) if field is not None else (None, None)
    pre = f32(drift_pre) if drift_pre is not None else None
    tgt = f32(drift_target) if drift_target is not None else None
    mix = f32(drift_blend) if drift_blend is not None else None
    if mix is not None and blend_lambda is None:
        raise ValueError("drift_blend needs blend_lambda (the λ it was blended with), for its legend")
    scale = arrow_scale(*(a[:, :max_arrows] if a is not None else None for a in (pre, learned, tgt, mix)), field_v)

    static = _backdrop(pretrained, target, names)
    px, py = trajectory_lines(traj, path_budget(max_paths, traj.shape[0]))
    static.append(go.Scatter(x=px, y=py, mode="lines", name="paths", line=dict(width=1, color=COLORS["path"]), hoverinfo="skip"))

    def arrow_trace(points, vectors, name, color, width: float = 1.3) -> go.Scatter:
        if points is None or len(points) == 0:
            x = y = np.full(1, np.nan, dtype=np.float32)
        else:
            x, y = arrows_xy(points, vectors, scale)
        return go.Scatter(x=x, y=y, mode="lines", name=name, line=dict(width=width, color=color), hoverinfo="skip")

    def animated(k: int) -> list[go.Scatter]:
        pts = traj[k, :max_particles]
        out = [go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="particles at t", marker=dict(size=4, color=COLORS["particle"]), hoverinfo="skip")]
        arrow_pts = traj[k, :max_arrows]
        if pre is not None:
            out.append(arrow_trace(arrow_pts, pre[k, :max_arrows], "f_pre: pretrained drift", COLORS["f_pre"]))
        if tgt is not None:
            out.append(arrow_trace(arrow_pts, tgt[k, :max_arrows], f"target drift (estimated from {target_source})", COLORS["target_drift"]))
        if mix is not None:
            out.append(arrow_trace(arrow_pts, mix[k, :max_arrows], f"blend (1 − λ)·target + λ·f_pre, λ = {blend_lambda:.2f}", COLORS["blend"], 2.2))
        if learned is not None:
            kk = min(k, k_steps - 1)
            out.append(arrow_trace(arrow_pts if k < k_steps else None, learned[kk, :max_arrows], "drift the particles follow", COLORS["learned"]))
        if grid is not None:
            out.append(arrow_trace(grid, field_v[k], "velocity field", COLORS["field"]))
        out.append(label_trace(f"t = {times[k]:.2f}" + (f" · {caption}" if caption else "")))
        return out

    first = animated(0)
    fig = go.Figure(data=static + first)
    moving = list(range(len(static), len(static) + len(first)))
    names = [f"t={t:.3f}" for t in times]
    fig.frames = [go.Frame(name=n, data=animated(k), traces=moving) for k, n in enumerate(names)]
    menus, sliders = play_controls(names, [f"{t:.2f}" for t in times], frame_ms, prefix="ODE time t = ", show_current=False)
    square_layout(fig, height, title)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(b=90))
    return fig


def frame_count(spec: dict) -> int:
    """Frames in a figure spec (a dict from ``fig.to_plotly_json()`` or a chart's JSON)."""
    return len(spec.get("frames") or [])


def animation_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined (the app may have no network)."""
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False)
