"""Plotly figures of the explorer, plus the few model evaluations they need (no Streamlit here).

Animations follow what the browser can play smoothly: SVG ``go.Scatter`` (Scattergl stays frozen on
frame 0 with ``redraw: False``), fixed axis ranges, numpy float32 arrays (sent as compact binary),
about 2,000 animated points per frame at most. Per-frame text (step, tau, lambda, ODE time) lives in
an animated text trace and in the slider's current-value label, because plotly.js does not apply a
frame's *layout* without a full redraw.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode

AXIS_RANGE = (-4.6, 4.6)
COLORS = {
    "pretrained": "rgba(120,120,135,0.45)",
    "target": "rgba(230,120,40,0.45)",
    "path": "rgba(40,90,200,0.3)",
    "particle": "rgb(25,60,160)",
    "f_pre": "rgb(200,60,40)",
    "learned": "rgb(30,120,60)",
    "field": "rgba(90,90,90,0.55)",
    "tau": "rgb(160,40,120)",
    "lambda": "rgb(30,120,180)",
}
FRAME_MS = 120  # per frame while playing: ~8 frames/s reads as motion without hiding the steps
PATH_POINTS = 4000  # animated path vertices per frame; with up to 2,000 particles, within the SVG budget


def path_budget(max_paths: int, points_per_path: int) -> int:
    """How many polylines of ``points_per_path`` vertices fit in :data:`PATH_POINTS`."""
    return max(1, min(max_paths, PATH_POINTS // max(points_per_path + 1, 1)))


# ---- small helpers -----------------------------------------------------------------------------
def f32(a) -> np.ndarray:
    """Contiguous float32 numpy (what Plotly serialises as compact binary)."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def paths_xy(trajectory: np.ndarray, n_paths: int) -> tuple[np.ndarray, np.ndarray]:
    """Polylines of the first ``n_paths`` particles of a (K+1, n, 2) trajectory, NaN-separated."""
    traj = f32(trajectory)[:, :n_paths]  # (K+1, m, 2)
    per_path = np.transpose(traj, (1, 0, 2))  # (m, K+1, 2)
    gap = np.full((per_path.shape[0], 1, 2), np.nan, dtype=np.float32)
    flat = np.concatenate([per_path, gap], axis=1).reshape(-1, 2)
    return flat[:, 0].copy(), flat[:, 1].copy()


def arrows_xy(points: np.ndarray, vectors: np.ndarray, scale: float, head: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Quiver as line segments with two-stroke heads: one NaN-separated polyline for a whole field."""
    p = f32(points)
    v = f32(vectors) * np.float32(scale)
    tip = p + v
    # Head strokes: the arrow direction rotated by +-150 degrees, scaled to a share of its length.
    c, s = np.float32(np.cos(np.deg2rad(150))), np.float32(np.sin(np.deg2rad(150)))
    left = np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], axis=1) * head
    right = np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], axis=1) * head
    gap = np.full_like(p, np.nan)
    seq = np.stack([p, tip, gap, tip + left, tip, tip + right, gap], axis=1).reshape(-1, 2)
    return seq[:, 0].copy(), seq[:, 1].copy()


def arrow_scale(*vector_sets: np.ndarray, length: float = 0.7) -> float:
    """One scale for every frame so arrow lengths compare: the 95th-percentile norm maps to ``length``."""
    norms = [np.linalg.norm(f32(v).reshape(-1, 2), axis=1) for v in vector_sets if v is not None and np.size(v)]
    if not norms:
        return 1.0
    ref = float(np.percentile(np.concatenate(norms), 95))
    return length / ref if ref > 1e-8 else 1.0


def _square_axes(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    axis = dict(range=list(AXIS_RANGE), autorange=False, zeroline=False, showgrid=True, gridcolor="rgba(0,0,0,0.06)", fixedrange=False)
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=10, r=10, t=70 if title else 40, b=10),
        xaxis=dict(axis, constrain="domain"),
        yaxis=dict(axis, scaleanchor="x", scaleratio=1, constrain="domain"),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0, xanchor="left", font=dict(size=11)),
        title=dict(text=title, font=dict(size=14), y=0.99, yanchor="top") if title else None,
        uirevision="keep",
    )
    return fig


def _cloud(points: np.ndarray | None, name: str, color: str, n: int = 1500) -> go.Scatter | None:
    if points is None:
        return None
    pts = f32(points)[:n]
    return go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name, marker=dict(size=3, color=color), hoverinfo="skip")


def _label_trace(text: str) -> go.Scatter:
    lo, hi = AXIS_RANGE
    return go.Scatter(
        x=f32([lo + 0.15]), y=f32([hi - 0.1]), mode="text", text=[text], textposition="bottom right",
        textfont=dict(size=13, color="rgb(40,40,40)"), showlegend=False, hoverinfo="skip",
    )


def _play_controls(frame_names: Sequence[str], labels: Sequence[str], prefix: str, frame_ms: int) -> tuple[list, list]:
    """A play/pause menu and a slider over the frames (tick labels hidden; the current label shows)."""
    anim = dict(mode="immediate", frame=dict(duration=frame_ms, redraw=False), transition=dict(duration=0))
    menus = [dict(
        type="buttons", direction="left", showactive=False, x=0.0, y=0.0, xanchor="left", yanchor="top", pad=dict(t=28, r=10),
        buttons=[
            dict(label="▶ Play", method="animate", args=[None, dict(anim, fromcurrent=True)]),
            dict(label="❚❚ Pause", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))]),
        ],
    )]
    steps = [
        dict(method="animate", label=label, args=[[name], dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))])
        for name, label in zip(frame_names, labels)
    ]
    sliders = [dict(
        active=0, steps=steps, x=0.2, len=0.8, y=0.0, yanchor="top", pad=dict(t=20, b=0),
        # The frame's own label is drawn inside the plot (a text trace), so the slider shows no copy.
        currentvalue=dict(prefix=prefix, font=dict(size=13, color="rgb(40,40,40)"), visible=False),
        font=dict(color="rgba(0,0,0,0)", size=8),  # 30 to 100 tick labels would overlap: hide them
        ticklen=3, minorticklen=0, transition=dict(duration=0),
    )]
    return menus, sliders


# ---- static figures ------------------------------------------------------------------------------
def clouds_figure(
    pretrained: np.ndarray | None = None,
    target: np.ndarray | None = None,
    trajectories: np.ndarray | None = None,
    n_paths: int = 60,
    title: str | None = None,
    height: int = 460,
    names: tuple[str, str] = ("pretrained model samples", "target data"),
) -> go.Figure:
    """Pretrained and target clouds, with a few trajectories (K+1, n, 2) of a model drawn over them."""
    fig = go.Figure()
    for trace in (_cloud(pretrained, names[0], COLORS["pretrained"]), _cloud(target, names[1], COLORS["target"])):
        if trace is not None:
            fig.add_trace(trace)
    if trajectories is not None:
        x, y = paths_xy(trajectories, n_paths)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="trajectories (noise to data)", line=dict(width=1, color="rgba(40,90,200,0.45)"), hoverinfo="skip"))
        ends = f32(trajectories)[-1, :n_paths]
        fig.add_trace(go.Scatter(x=ends[:, 0], y=ends[:, 1], mode="markers", name="where they land", marker=dict(size=5, color=COLORS["particle"])))
    return _square_axes(fig, height, title)


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
def snapshot_label(step: int, total_steps: int, tau: float, lam: float) -> str:
    return f"step {step}/{total_steps} · τ = {tau:.3g} · λ = {lam:.3f}"


def trajectory_animation(
    snapshots: Sequence,
    pretrained: np.ndarray | None = None,
    target: np.ndarray | None = None,
    max_particles: int = 2000,
    max_paths: int = 120,
    height: int = 560,
    frame_ms: int = FRAME_MS,
    title: str | None = None,
) -> go.Figure:
    """The drift moving during training: one frame per snapshot, same noise seeds in every frame.

    ``snapshots`` are :class:`gft.core.training.Snapshot`s carrying trajectories (K+1, n, 2). Each frame
    shows faint paths of ``max_paths`` particles and where ``max_particles`` land at t = 1, over
    static pretrained and target clouds; the step, tau and lambda show in the frame and the slider.
    """
    snaps = [s for s in snapshots if getattr(s, "trajectory", None) is not None]
    if not snaps:
        raise ValueError("no snapshot carries a trajectory: train with snapshot_particles > 0")
    static = [t for t in (_cloud(pretrained, "pretrained model samples", COLORS["pretrained"]), _cloud(target, "target data", COLORS["target"])) if t is not None]
    labels = [snapshot_label(s.step, s.total_steps, s.tau, s.lam) for s in snaps]
    names = [f"step {s.step}" for s in snaps]
    max_paths = path_budget(max_paths, snaps[0].trajectory.shape[0])

    def animated(snap, label: str) -> list[go.Scatter]:
        px, py = paths_xy(snap.trajectory, max_paths)
        ends = f32(snap.trajectory[-1, :max_particles])
        return [
            go.Scatter(x=px, y=py, mode="lines", name="trajectories (t: 0 → 1)", line=dict(width=1, color=COLORS["path"]), hoverinfo="skip"),
            go.Scatter(x=ends[:, 0], y=ends[:, 1], mode="markers", name="samples at t = 1", marker=dict(size=4, color=COLORS["particle"]), hoverinfo="skip"),
            _label_trace(label),
        ]

    fig = go.Figure(data=static + animated(snaps[0], labels[0]))
    moving = list(range(len(static), len(static) + 3))
    fig.frames = [go.Frame(name=n, data=animated(s, lab), traces=moving) for s, n, lab in zip(snaps, names, labels)]
    menus, sliders = _play_controls(names, labels, "", frame_ms)
    _square_axes(fig, height, title)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(b=90))
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
    max_arrows: int = 150,
    height: int = 560,
    frame_ms: int = FRAME_MS,
    title: str | None = None,
    caption: str = "",
) -> go.Figure:
    """Particles moving along one trajectory (K+1, n, 2) in ODE time: one frame per Euler step t_k.

    Optional arrows per frame: ``drift_pre`` (K+1, n, 2), the pretrained drift evaluated at the
    particles (where the fine-tuned path lives); ``learned_arrows``, the drift the trajectory itself
    followed (its Euler increments, exact for an Euler trajectory); ``field`` = (grid (G, 2),
    velocities (K+1, G, 2)), a velocity field on a grid.
    """
    traj = f32(trajectory)
    if traj.ndim != 3 or traj.shape[-1] != 2 or traj.shape[0] < 2:
        raise ValueError(f"trajectory must have shape (K+1 >= 2, n, 2), got {traj.shape}")
    k_steps = traj.shape[0] - 1
    times = np.linspace(0.0, 1.0, k_steps + 1)
    learned = (traj[1:] - traj[:-1]) * np.float32(k_steps) if learned_arrows else None
    grid, field_v = (f32(field[0]), f32(field[1])) if field is not None else (None, None)
    pre = f32(drift_pre) if drift_pre is not None else None
    scale = arrow_scale(
        pre[:, :max_arrows] if pre is not None else None,
        learned[:, :max_arrows] if learned is not None else None,
        field_v,
    )

    static = [t for t in (_cloud(pretrained, "pretrained model samples", COLORS["pretrained"]), _cloud(target, "target data", COLORS["target"])) if t is not None]
    px, py = paths_xy(traj, path_budget(max_paths, traj.shape[0]))
    static.append(go.Scatter(x=px, y=py, mode="lines", name="paths", line=dict(width=1, color=COLORS["path"]), hoverinfo="skip"))

    def arrow_trace(points, vectors, name, color) -> go.Scatter:
        if points is None or len(points) == 0:
            x = y = np.full(1, np.nan, dtype=np.float32)
        else:
            x, y = arrows_xy(points, vectors, scale)
        return go.Scatter(x=x, y=y, mode="lines", name=name, line=dict(width=1.3, color=color), hoverinfo="skip")

    def animated(k: int) -> list[go.Scatter]:
        pts = traj[k, :max_particles]
        out = [go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="particles at t", marker=dict(size=4, color=COLORS["particle"]), hoverinfo="skip")]
        arrow_pts = traj[k, :max_arrows]
        if pre is not None:
            out.append(arrow_trace(arrow_pts, pre[k, :max_arrows], "pretrained drift f_pre at the particles", COLORS["f_pre"]))
        if learned is not None:
            kk = min(k, k_steps - 1)
            out.append(arrow_trace(arrow_pts if k < k_steps else None, learned[kk, :max_arrows], "drift the particles follow", COLORS["learned"]))
        if grid is not None:
            out.append(arrow_trace(grid, field_v[k], "velocity field", COLORS["field"]))
        out.append(_label_trace(f"t = {times[k]:.2f}" + (f" · {caption}" if caption else "")))
        return out

    first = animated(0)
    fig = go.Figure(data=static + first)
    moving = list(range(len(static), len(static) + len(first)))
    names = [f"t={t:.3f}" for t in times]
    fig.frames = [go.Frame(name=n, data=animated(k), traces=moving) for k, n in enumerate(names)]
    menus, sliders = _play_controls(names, [f"{t:.2f}" for t in times], "ODE time t = ", frame_ms)
    _square_axes(fig, height, title)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(b=90))
    return fig


def frame_count(spec: dict) -> int:
    """Frames in a figure spec (a dict from ``fig.to_plotly_json()`` or a chart's JSON)."""
    return len(spec.get("frames") or [])


def animation_html(fig: go.Figure) -> str:
    """A standalone HTML page with plotly.js inlined (the app may have no network)."""
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False)


# ---- model evaluations the figures need ----------------------------------------------------------
def _model_device(model: FlowModel) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def model_trajectories(model: FlowModel, n: int, seed: int, steps: int = 40) -> np.ndarray:
    """Euler trajectories (steps+1, n, *shape) of ``n`` seeded noise draws, float32 numpy."""
    device = _model_device(model)
    x0 = noise(n, model.config.data_shape, seed, device)
    return f32(sample_ode(model, x0, "euler", steps, keep_trajectory=True).trajectory)


def model_samples(model: FlowModel, n: int, seed: int, steps: int = 50) -> np.ndarray:
    """``n`` samples from ``steps`` Euler steps, float32 numpy."""
    device = _model_device(model)
    return f32(sample_ode(model, noise(n, model.config.data_shape, seed, device), "euler", steps).x)


@torch.no_grad()
def drift_along(model: FlowModel, trajectory: np.ndarray, times: Sequence[float] | None = None) -> np.ndarray:
    """The model's velocity at every point of a (K+1, n, d) array, row k at time ``times[k]``.

    ``times`` defaults to the Euler grid t_k = k / K of a trajectory.
    """
    traj = f32(trajectory)
    k1, n = traj.shape[:2]
    ts = np.linspace(0, 1, k1, dtype=np.float32) if times is None else f32(times)
    if ts.shape != (k1,):
        raise ValueError(f"need one time per row: {k1} rows, {ts.size} times")
    device = _model_device(model)
    x = torch.from_numpy(np.ascontiguousarray(traj.reshape(k1 * n, *traj.shape[2:]))).to(device)
    t = torch.from_numpy(np.repeat(ts, n)).to(device)
    was_training = model.training
    model.eval()
    try:
        v = model(x, t)
    finally:
        model.train(was_training)
    return f32(v).reshape(traj.shape)


def grid_points(n: int = 15, lim: float = 4.0) -> np.ndarray:
    """An n x n grid over [-lim, lim]^2, (n*n, 2) float32."""
    axis = np.linspace(-lim, lim, n, dtype=np.float32)
    gx, gy = np.meshgrid(axis, axis)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def velocity_field(model: FlowModel, times: Iterable[float], n: int = 15, lim: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """The model's velocity on an n x n grid at each time: (grid (n*n, 2), velocities (T, n*n, 2))."""
    grid = grid_points(n, lim)
    ts = f32(list(times))
    return grid, drift_along(model, np.broadcast_to(grid, (len(ts), *grid.shape)), ts)


# ---- exports ------------------------------------------------------------------------------------
HISTORY_COLUMNS = ("step", "tau", "lambda", "loss", "w2")


def history_csv(history: Sequence[dict], extra_columns: dict | None = None) -> str:
    """The run history as CSV (blank cells where a row has no W2); ``extra_columns`` repeat per row."""
    buf = io.StringIO()
    extra = extra_columns or {}
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*extra, *HISTORY_COLUMNS])
    for row in history:
        writer.writerow([*extra.values(), *("" if row.get(c) is None else row[c] for c in HISTORY_COLUMNS)])
    return buf.getvalue()
