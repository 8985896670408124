"""Plotly figures of the comparison pages: couplings drawn, side-by-side training animations, curves
with spread, sample panels and the exact Gaussian annealing scene.

Animations follow the app's rules: SVG ``go.Scatter`` (``Scattergl`` freezes with ``redraw: False``),
float32 numpy arrays, fixed axis ranges, one figure with subplots and one shared slider.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gft.theory import gaussian as gauss

COLORS = {
    "independent": "#4C78A8",
    "ot": "#E45756",
    "sinkhorn": "#54A24B",
    "gft": "#E45756",
    "standard": "#4C78A8",
    "scratch": "#9D755D",
}
TARGET_COLOR = "rgba(245, 133, 24, 0.35)"
PRETRAINED_COLOR = "rgba(120, 120, 120, 0.30)"
FRAME_MS = 120


def color_of(name: str) -> str:
    return COLORS.get(name.split(" ")[0], "#4C78A8")


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def square_ranges(*clouds: np.ndarray, pad: float = 0.08, robust: bool = True) -> tuple[list[float], list[float]]:
    """Equal-span x and y ranges holding every point, or (``robust``) all but the farthest 0.5% each side."""
    pts = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in clouds if c is not None and len(c)])
    pts = pts[np.isfinite(pts).all(1)]
    if not len(pts):
        return [-4.0, 4.0], [-4.0, 4.0]
    q = 0.5 if robust else 0.0
    lo, hi = np.percentile(pts, q, axis=0), np.percentile(pts, 100 - q, axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.5) * (1 + pad)
    return [float(centre[0] - half), float(centre[0] + half)], [float(centre[1] - half), float(centre[1] + half)]


def _panels(titles: Sequence[str], height: int = 430) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=list(titles), horizontal_spacing=0.03)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, template="plotly_white")
    return fig


def _fix_axes(fig: go.Figure, n: int, xr: list[float], yr: list[float]) -> None:
    for i in range(1, n + 1):
        fig.update_xaxes(range=xr, autorange=False, showticklabels=False, zeroline=False, constrain="domain", row=1, col=i)
        anchor = "x" if i == 1 else f"x{i}"
        fig.update_yaxes(range=yr, autorange=False, showticklabels=False, zeroline=False, scaleanchor=anchor, row=1, col=i)


def _cloud(points: np.ndarray, color: str, size: float = 3.0, name: str = "") -> go.Scatter:
    p = _f32(points)
    return go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", marker=dict(size=size, color=color), name=name, hoverinfo="skip")


def _polylines(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths ``(n, k, 2)`` as one x and one y array with NaN gaps (a single trace draws them all)."""
    n, k, _ = paths.shape
    out = np.full((n, k + 1, 2), np.nan, dtype=np.float32)
    out[:, :k] = paths
    flat = out.reshape(-1, 2)
    return flat[:, 0].copy(), flat[:, 1].copy()


# ---- couplings ----------------------------------------------------------------------------
def coupling_figure(batches: Sequence, target_cloud: np.ndarray | None = None) -> go.Figure:
    """One panel per :class:`gft.app.comparisons.CoupledBatch`: a line from each x0 (noise) to its x1."""
    titles = [f"{b.kind}: Σ|x₀ − x₁|² = {b.total_cost:.0f}" for b in batches]
    fig = _panels(titles, height=380)
    for i, b in enumerate(batches, start=1):
        if target_cloud is not None:
            fig.add_trace(_cloud(target_cloud, TARGET_COLOR, 2.5, "target"), row=1, col=i)
        lx, ly = _polylines(np.stack([b.x0, b.x1], axis=1))
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(width=1, color=color_of(b.kind)), opacity=0.6, hoverinfo="skip"), row=1, col=i)
        fig.add_trace(_cloud(b.x0, "#333333", 5, "noise x0"), row=1, col=i)
        fig.add_trace(_cloud(b.x1, "#F58518", 6, "target x1"), row=1, col=i)
    xr, yr = square_ranges(*[b.x0 for b in batches], *[b.x1 for b in batches])
    _fix_axes(fig, len(batches), xr, yr)
    return fig


# ---- training animations ------------------------------------------------------------------
def _frame_label(step: int, tau: float, lam: float) -> str:
    return f"step {step} · τ {tau:.3g} · λ {lam:.2f}"


def _play_controls(names: list[str], labels: list[str], y: float = -0.02) -> tuple[list, list]:
    still = {"frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}
    play = {"frame": {"duration": FRAME_MS, "redraw": False}, "fromcurrent": True, "mode": "immediate", "transition": {"duration": 0}}
    menus = [dict(
        type="buttons", direction="left", x=0.0, y=y, xanchor="left", yanchor="top", pad=dict(r=10, t=10), showactive=False,
        buttons=[dict(label="Play", method="animate", args=[None, play]), dict(label="Pause", method="animate", args=[[None], still])],
    )]  # fmt: skip
    sliders = [dict(
        active=0, x=0.16, y=y, len=0.84, xanchor="left", yanchor="top", pad=dict(t=10),
        currentvalue=dict(prefix="", font=dict(size=13, color="#333")),
        font=dict(color="rgba(0,0,0,0)"),  # long frame labels would pile up as tick labels: show the current one only
        steps=[dict(label=lab, method="animate", args=[[name], still]) for name, lab in zip(names, labels)],
    )]  # fmt: skip
    return menus, sliders


def training_animation(
    panels: dict[str, Sequence],
    target_cloud: np.ndarray,
    pretrained_cloud: np.ndarray | None = None,
    paths: int = 30,
    title_suffix: dict[str, str] | None = None,
) -> go.Figure:
    """Side-by-side animation over training snapshots: one panel per run, one shared slider.

    ``panels`` maps a run name to its snapshots (``step``, ``tau``, ``lam``, ``trajectory`` of shape
    ``(K + 1, n, 2)`` from the same noise in every run). Frames are the steps every run recorded; each
    shows the samples and ``paths`` of their trajectories (the drift the model has learned by then).
    """
    names = list(panels)
    common = sorted(set.intersection(*[{s.step for s in panels[n] if s.trajectory is not None} for n in names]))
    if not common:
        raise ValueError("the runs share no snapshot step with a trajectory; nothing to animate")
    by_step = {n: {s.step: s for s in panels[n] if s.trajectory is not None} for n in names}
    suffix = title_suffix or {}
    fig = _panels([f"{n} {suffix.get(n, '')}".strip() for n in names], height=470)
    animated: list[int] = []
    for i, n in enumerate(names, start=1):
        if pretrained_cloud is not None:
            fig.add_trace(_cloud(pretrained_cloud, PRETRAINED_COLOR, 2.5, "pretrained"), row=1, col=i)
        fig.add_trace(_cloud(target_cloud, TARGET_COLOR, 2.5, "target"), row=1, col=i)
    for i, n in enumerate(names, start=1):
        traj = by_step[n][common[0]].trajectory
        px, py = _polylines(np.swapaxes(traj[:, :paths], 0, 1))
        fig.add_trace(go.Scatter(x=px, y=py, mode="lines", line=dict(width=1, color=color_of(n)), opacity=0.45, hoverinfo="skip"), row=1, col=i)
        fig.add_trace(_cloud(traj[-1], color_of(n), 3.5, n), row=1, col=i)
        animated += [len(fig.data) - 2, len(fig.data) - 1]
    frames, labels = [], []
    for step in common:
        data = []
        for n in names:
            traj = by_step[n][step].trajectory
            px, py = _polylines(np.swapaxes(traj[:, :paths], 0, 1))
            data += [go.Scatter(x=px, y=py), go.Scatter(x=_f32(traj[-1][:, 0]), y=_f32(traj[-1][:, 1]))]
        snap = by_step[names[0]][step]
        frames.append(go.Frame(data=data, traces=animated, name=str(step)))
        labels.append(_frame_label(step, snap.tau, snap.lam))
    fig.frames = frames
    menus, sliders = _play_controls([f.name for f in frames], labels)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(l=10, r=10, t=40, b=90))
    clouds = [target_cloud, pretrained_cloud] + [by_step[n][s].trajectory[-1] for n in names for s in common]
    xr, yr = square_ranges(*clouds)
    _fix_axes(fig, len(names), xr, yr)
    return fig


def sample_panels(
    samples: dict[str, np.ndarray | None], target_cloud: np.ndarray, height: int = 340, colors: dict[str, str] | None = None
) -> go.Figure:
    """Static side-by-side scatter of samples over the target cloud (live view and final samples)."""
    names = list(samples)
    colors = colors or {}
    fig = _panels(names, height=height)
    for i, n in enumerate(names, start=1):
        fig.add_trace(_cloud(target_cloud, TARGET_COLOR, 2.5, "target"), row=1, col=i)
        if samples[n] is not None:
            fig.add_trace(_cloud(samples[n], colors.get(n, color_of(n)), 3.5, n), row=1, col=i)
    xr, yr = square_ranges(target_cloud, *[s for s in samples.values() if s is not None])
    _fix_axes(fig, len(names), xr, yr)
    return fig


# ---- curves -------------------------------------------------------------------------------
def live_curves(histories: dict[str, Sequence[dict]], height: int = 300) -> go.Figure:
    """Loss and W2 against step, one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["training loss (blended target)", "W2 to held-out target"], horizontal_spacing=0.08)
    for n, hist in histories.items():
        loss = [(r["step"], r["loss"]) for r in hist if r.get("loss") is not None]
        w2 = [(r["step"], r["w2"]) for r in hist if r.get("w2") is not None]
        c = color_of(n)
        if loss:
            s, v = zip(*loss)
            fig.add_trace(go.Scatter(x=s, y=v, mode="lines", name=n, line=dict(color=c), legendgroup=n), row=1, col=1)
        if w2:
            s, v = zip(*w2)
            fig.add_trace(go.Scatter(x=s, y=v, mode="lines+markers", name=n, line=dict(color=c), legendgroup=n, showlegend=not loss), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", legend=dict(orientation="h", y=-0.25))
    return fig


def method_curves_figure(curves: dict, labels: dict[str, str] | None = None, floor: float | None = None) -> go.Figure:
    """Mean W2 against step per method with a min-max band over seeds (``gft.app.comparisons.MethodCurves``)."""
    labels = labels or {}
    fig = go.Figure()
    for method, c in curves.items():
        if not len(c.steps):
            continue
        col = color_of(method)
        x = np.concatenate([c.steps, c.steps[::-1]]).astype(np.float64)
        band = np.concatenate([c.high, c.low[::-1]])
        rgb = tuple(int(col[i : i + 2], 16) for i in (1, 3, 5))
        fig.add_trace(go.Scatter(
            x=x, y=band, fill="toself", fillcolor=f"rgba({rgb[0]},{rgb[1]},{rgb[2]},0.18)", line=dict(width=0),
            hoverinfo="skip", showlegend=False, legendgroup=method,
        ))  # fmt: skip
        name = f"{labels.get(method, method)} (mean of {len(c.seeds)}, band min-max)"
        fig.add_trace(go.Scatter(x=c.steps, y=c.mean, mode="lines+markers", name=name, line=dict(color=col, width=2), legendgroup=method))
    steps = [s for c in curves.values() for s in c.steps]
    if floor is not None and math.isfinite(floor) and steps:
        # A trace, not add_hline: hline annotations land in the wrong place on a log axis.
        fig.add_trace(go.Scatter(
            x=[min(steps), max(steps)], y=[floor, floor], mode="lines", line=dict(dash="dot", color="#777"),
            name="W2 floor (two target draws)", hoverinfo="skip",
        ))  # fmt: skip
    fig.update_layout(
        height=380, template="plotly_white", margin=dict(l=10, r=10, t=30, b=10), xaxis_title="step",
        yaxis_title="W2 to held-out target (log)", yaxis_type="log", legend=dict(orientation="h", y=-0.2),
    )  # fmt: skip
    return fig


# ---- the exact Gaussian scene -------------------------------------------------------------
def _ellipse(g: gauss.Gaussian, k: float, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    vals, vecs = np.linalg.eigh(g.cov)
    a = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(a), np.sin(a)], 1) * (k * np.sqrt(np.maximum(vals, 0)))
    pts = circle @ vecs.T + g.mean
    return _f32(pts[:, 0]), _f32(pts[:, 1])


def _ellipse_traces(g: gauss.Gaussian, color: str, name: str, dash: str = "solid", width: float = 2) -> list[go.Scatter]:
    out = []
    for k in (1, 2):
        x, y = _ellipse(g, k)
        out.append(go.Scatter(
            x=x, y=y, mode="lines", name=name, legendgroup=name, showlegend=k == 1, hoverinfo="skip",
            line=dict(color=color, dash=dash, width=width if k == 1 else width * 0.6),
        ))  # fmt: skip
    return out


def _arrows(points: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shaft and two head strokes per arrow, as one NaN-separated polyline."""
    tips = points + vectors
    back = -vectors * 0.3
    c, s = math.cos(0.45), math.sin(0.45)
    left = tips + np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], 1)
    right = tips + np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], 1)
    gap = np.full_like(points, np.nan)
    seq = np.stack([points, tips, gap, left, tips, right, gap], 1).reshape(-1, 2)
    return _f32(seq[:, 0]), _f32(seq[:, 1])


def annealing_figure(
    pre: gauss.Gaussian,
    target: gauss.Gaussian,
    lam: float,
    times: int = 21,
    grid: int = 15,
    particles: int = 120,
    seed: int = 0,
    start_index: int | None = None,
) -> go.Figure:
    """The exact blended flow at weight ``lam``: drift arrows and particles at time t (Plotly slider over t),
    the law at t, and the pretrained, target and terminal Gaussians at 1 and 2 sigma."""
    n_steps = 100
    x0 = np.random.default_rng(seed).standard_normal((particles, 2))
    traj = gauss.particle_trajectories(x0, pre, target, lam, n_steps)  # (n_steps + 1, particles, 2)
    terminal = gauss.terminal_law(pre, target, lam, 200)
    ts = np.linspace(0.0, 1.0, times)
    # RK4 on these smooth affine ODEs is accurate to ~1e-8 with 50 steps over [0, 1]; the figure needs far less.
    laws = [gauss.law_at(pre, target, lam, t, max(2, int(50 * t))) if t > 0 else gauss.Gaussian(np.zeros(2), np.eye(2)) for t in ts]
    # Every ellipse whole (the point of the picture); the particles' paths bar a few far tails.
    ellipses = np.concatenate([np.stack(_ellipse(g, 2.1), 1) for g in (pre, target, terminal)])
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
    path_x, path_y = _polylines(np.swapaxes(traj, 0, 1))
    fig.add_trace(go.Scatter(x=path_x, y=path_y, mode="lines", line=dict(width=0.7, color="rgba(76,120,168,0.25)"), hoverinfo="skip", name="paths"))
    for tr in _ellipse_traces(pre, "#777777", "pretrained", "dash"):
        fig.add_trace(tr)
    for tr in _ellipse_traces(target, "#F58518", "target", "dash"):
        fig.add_trace(tr)
    for tr in _ellipse_traces(terminal, "#4C78A8", "terminal law at this τ", width=3):
        fig.add_trace(tr)
    i0 = len(ts) // 2 if start_index is None else start_index

    def dynamic(i: int) -> list[go.Scatter]:
        ax, ay = _arrows(pts, fields[i] * scale)
        k = int(round(ts[i] * n_steps))
        lx, ly = _ellipse(laws[i], 1.0)
        return [
            go.Scatter(x=ax, y=ay, mode="lines", line=dict(width=1.2, color="#54A24B"), name="drift at t", hoverinfo="skip"),
            go.Scatter(x=lx, y=ly, mode="lines", line=dict(width=1.5, color="#B279A2"), name="law at t (1σ)", hoverinfo="skip"),
            go.Scatter(x=_f32(traj[k, :, 0]), y=_f32(traj[k, :, 1]), mode="markers", marker=dict(size=5, color="#4C78A8"), name="particles at t"),
        ]

    first = len(fig.data)
    for tr in dynamic(i0):
        fig.add_trace(tr)
    animated = list(range(first, first + 3))
    fig.frames = [go.Frame(data=dynamic(i), traces=animated, name=f"{t:.2f}") for i, t in enumerate(ts)]
    menus, sliders = _play_controls([f.name for f in fig.frames], [f"t = {t:.2f}" for t in ts], y=-0.07)  # below the tick labels
    sliders[0]["active"] = i0
    fig.update_layout(
        updatemenus=menus, sliders=sliders, height=640, template="plotly_white",
        margin=dict(l=10, r=10, t=10, b=120), legend=dict(orientation="h", y=1.02, yanchor="bottom"),
    )  # fmt: skip
    fig.update_xaxes(range=xr, autorange=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=yr, autorange=False, zeroline=False, scaleanchor="x")
    return fig


def lambda_curve(tau: float) -> go.Figure:
    """lambda = tau / (1 + tau) and lambda^2 (the path-space KL factor) over tau, marking ``tau``."""
    taus = np.concatenate([[0.0], np.logspace(-2, 2, 200)])
    lam = taus / (1 + taus)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=taus + 1e-2, y=lam, mode="lines", name="λ", line=dict(color="#4C78A8")))
    fig.add_trace(go.Scatter(x=taus + 1e-2, y=lam**2, mode="lines", name="λ² (path-space KL factor)", line=dict(color="#E45756", dash="dot")))
    if math.isfinite(tau):
        current = gauss.lambda_of_tau(tau)
        fig.add_trace(go.Scatter(x=[tau + 1e-2], y=[current], mode="markers", marker=dict(size=11, color="#4C78A8"), name=f"τ = {tau:g}"))
    fig.update_layout(
        height=250, template="plotly_white", margin=dict(l=10, r=10, t=10, b=10), xaxis_type="log",
        xaxis_title="τ (+0.01, log scale)", legend=dict(orientation="h", y=-0.45), yaxis_range=[0, 1.02],
    )  # fmt: skip
    return fig
