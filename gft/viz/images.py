"""Plotly figures of the Images page: grids of 8x8 digits, animated over training and over ODE time.

A grid of digits is one heatmap per panel (a *mosaic*: tiles with 1-pixel gaps), not one trace per
digit: a frame then costs a single ``z`` array per panel. Heatmap frames need ``redraw: True``
(plotly.js only restyles scatter-like traces in place), so the per-frame label can live in the
layout title, which a redraw applies. No Streamlit here.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from gft.tasks import digits as images
from gft.viz.training import COLORS, f32, snapshot_label

PIXEL_MAX = 16.0
GAP = 1
FRAME_MS = 250  # a redraw per frame: slower than the 2D scatter animations, still reads as motion
RUN_COLORS = {"gft": "rgb(25,60,160)", "standard": "rgb(230,120,40)"}
RUN_TITLES = {"gft": "GFT (annealed τ)", "standard": "standard fine-tuning (τ = 0)"}


# ---- pixels ------------------------------------------------------------------------------------
def pixels(x) -> np.ndarray:
    """Model-scale images (n, 1, 8, 8) (numpy or torch) -> pixel scale (n, 8, 8) float32 in [0, 16]."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.detach().cpu().float()
    return f32(images.to_pixels(t))


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of a near-square grid holding ``n`` tiles."""
    if n < 1:
        raise ValueError(f"a mosaic needs at least one image, got {n}")
    c = cols if cols is not None else math.ceil(math.sqrt(n))
    if c < 1:
        raise ValueError(f"cols must be >= 1, got {c}")
    return math.ceil(n / c), c


def mosaic(tiles: np.ndarray, cols: int | None = None, gap: int = GAP) -> np.ndarray:
    """Pixel images (n, h, w) as one (rows*(h+gap)-gap, cols*(w+gap)-gap) array; gaps and empty cells are NaN.

    NaN cells draw as background in a heatmap, so the tiles stay apart whatever the colour scale.
    """
    a = f32(tiles)
    if a.ndim != 3:
        raise ValueError(f"mosaic expects images of shape (n, h, w), got {a.shape}")
    n, h, w = a.shape
    rows, c = grid_shape(n, cols)
    out = np.full((rows * (h + gap) - gap, c * (w + gap) - gap), np.nan, dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, c)
        out[r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = a[i]
    return out


# ---- figure pieces -----------------------------------------------------------------------------
def _heatmap(z: np.ndarray, showscale: bool = False) -> go.Heatmap:
    # Greys: 0 (paper) white, 16 (ink) black: the dataset's own reading of its pixels.
    return go.Heatmap(z=z, zmin=0.0, zmax=PIXEL_MAX, colorscale="Greys", showscale=showscale, hoverinfo="skip", xgap=0, ygap=0)


def _panels(names: Sequence[str], titles: Sequence[str], height: int) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=list(titles), horizontal_spacing=0.04)
    for i in range(1, len(names) + 1):
        fig.update_xaxes(visible=False, constrain="domain", row=1, col=i)
        # Image convention: row 0 at the top; square pixels.
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{'' if i == 1 else i}", scaleratio=1, row=1, col=i)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=70, b=10), plot_bgcolor="rgb(235,235,240)", paper_bgcolor="white")
    return fig


def _controls(frame_names: Sequence[str], labels: Sequence[str], prefix: str, frame_ms: int) -> tuple[list, list]:
    """Play / pause and a slider whose current-value label names the frame (redraw: heatmaps)."""
    play = dict(mode="immediate", frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=0), fromcurrent=True)
    still = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    menus = [dict(
        type="buttons", direction="left", showactive=False, x=0.0, y=0.0, xanchor="left", yanchor="top", pad=dict(t=45, r=10),
        buttons=[
            dict(label="▶ Play", method="animate", args=[None, play]),
            dict(label="❚❚ Pause", method="animate", args=[[None], dict(still, frame=dict(duration=0, redraw=False))]),
        ],
    )]
    sliders = [dict(
        active=0, x=0.16, len=0.84, y=0.0, yanchor="top", pad=dict(t=35, b=0),
        steps=[dict(method="animate", label=lab, args=[[name], still]) for name, lab in zip(frame_names, labels)],
        currentvalue=dict(prefix=prefix, visible=True, font=dict(size=13, color="rgb(40,40,40)")),
        font=dict(color="rgba(0,0,0,0)", size=8),  # dozens of tick labels would overlap: the current value shows
        ticklen=3, minorticklen=0, transition=dict(duration=0),
    )]
    return menus, sliders


def _titles(names: Sequence[str]) -> list[str]:
    return [RUN_TITLES.get(n, n) for n in names]


# ---- static grids ------------------------------------------------------------------------------
def grid_figure(panels: Mapping[str, np.ndarray], height: int = 330, cols: int | None = None) -> go.Figure:
    """Static side-by-side mosaics: ``panels`` maps a title to pixel images (n, 8, 8)."""
    if not panels:
        raise ValueError("grid_figure needs at least one panel")
    names = list(panels)
    fig = _panels(names, names, height)
    for i, name in enumerate(names, start=1):
        fig.add_trace(_heatmap(mosaic(panels[name], cols)), row=1, col=i)
    return fig


# ---- animations --------------------------------------------------------------------------------
def _aligned(runs: Mapping[str, Sequence], reference: str) -> list[dict]:
    """Per frame of ``reference``: each run's snapshot at the same step (else the last one before it)."""
    ref = [s for s in runs[reference] if s.trajectory is not None]
    out = []
    for snap in ref:
        row = {}
        for name, snaps in runs.items():
            have = [s for s in snaps if s.trajectory is not None and s.step <= snap.step]
            row[name] = have[-1] if have else next(s for s in snaps if s.trajectory is not None)
        out.append(row)
    return out


def digit_animation(runs: Mapping[str, Sequence], height: int = 470, cols: int | None = None, frame_ms: int = FRAME_MS) -> go.Figure:
    """The same noise seeds turning into digits as training goes on: one frame per snapshot.

    ``runs`` maps a run name to its :class:`gft.core.training.Snapshot`s (trajectories (K+1, n, 1, 8, 8));
    every panel shows the grid of t = 1 samples, and one shared slider moves all panels together. The
    frames follow the first run's snapshots; the others show their snapshot at the same step.
    """
    names = [n for n in runs if any(s.trajectory is not None for s in runs[n])]
    if not names:
        raise ValueError("no snapshot carries a trajectory: train with snapshot_particles > 0")
    rows = _aligned({n: runs[n] for n in names}, names[0])
    labels = [snapshot_label(r[names[0]].step, r[names[0]].total_steps, r[names[0]].tau, r[names[0]].lam) for r in rows]
    frame_names = [f"step {r[names[0]].step}" for r in rows]

    def traces(row: dict) -> list[go.Heatmap]:
        return [_heatmap(mosaic(pixels(row[n].trajectory[-1]), cols)) for n in names]

    fig = _panels(names, _titles(names), height)
    for i, tr in enumerate(traces(rows[0]), start=1):
        fig.add_trace(tr, row=1, col=i)
    idx = list(range(len(names)))
    fig.frames = [
        go.Frame(name=fn, data=traces(r), traces=idx, layout=dict(title=dict(text=lab)))
        for fn, r, lab in zip(frame_names, rows, labels)
    ]
    menus, sliders = _controls(frame_names, labels, "", frame_ms)
    fig.update_layout(updatemenus=menus, sliders=sliders, title=dict(text=labels[0], x=0.5, font=dict(size=14)), margin=dict(b=110))
    return fig


def time_scrub_animation(snapshots: Mapping[str, object], height: int = 470, cols: int | None = None, frame_ms: int = FRAME_MS) -> go.Figure:
    """Inside one snapshot: the grid at every ODE time t_k of its Euler trajectory, runs side by side."""
    names = [n for n, s in snapshots.items() if s is not None and s.trajectory is not None]
    if not names:
        raise ValueError("no snapshot carries a trajectory")
    trajs = {n: snapshots[n].trajectory for n in names}
    k = min(t.shape[0] for t in trajs.values())
    times = np.linspace(0.0, 1.0, k)
    frame_names = [f"t {i}" for i in range(k)]
    labels = [f"{t:.3f}" for t in times]

    def traces(i: int) -> list[go.Heatmap]:
        return [_heatmap(mosaic(pixels(trajs[n][i]), cols)) for n in names]

    fig = _panels(names, _titles(names), height)
    for i, tr in enumerate(traces(0), start=1):
        fig.add_trace(tr, row=1, col=i)
    idx = list(range(len(names)))
    fig.frames = [go.Frame(name=fn, data=traces(i), traces=idx) for i, fn in enumerate(frame_names)]
    menus, sliders = _controls(frame_names, labels, "ODE time t = ", frame_ms)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(b=110))
    return fig


# ---- curves and metrics --------------------------------------------------------------------------
def curves_figure(histories: Mapping[str, Sequence[dict]], height: int = 300) -> go.Figure:
    """Loss and the training FD (the history's ``fd`` key) against step, every run in its colour."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    for name, hist in histories.items():
        color = RUN_COLORS.get(name, COLORS["particle"])
        rows = [r for r in hist if r.get("loss") is not None]
        if rows:
            fig.add_trace(go.Scatter(x=f32([r["step"] for r in rows]), y=f32([r["loss"] for r in rows]), mode="lines", name=f"{name} loss",
                                     line=dict(color=color), legendgroup=name), row=1, col=1)
        fd = [r for r in hist if r.get("fd") is not None]
        if fd:
            fig.add_trace(go.Scatter(x=f32([r["step"] for r in fd]), y=f32([r["fd"] for r in fd]), mode="lines+markers", name=f"{name} FD",
                                     line=dict(color=color, dash="dot"), legendgroup=name), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="FD to held-out digits (cheap)", rangemode="tozero", row=1, col=2)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12, x=0))
    return fig


def class_bars(fractions: Mapping[str, Mapping[str, float]], target_classes: Sequence[int] = (), height: int = 300) -> go.Figure:
    """Share of samples the classifier assigns to each digit, one bar group per run."""
    digits = [str(c) for c in range(10)]
    fig = go.Figure()
    for name, frac in fractions.items():
        fig.add_trace(go.Bar(x=digits, y=f32([frac.get(d, 0.0) for d in digits]), name=name, marker_color=RUN_COLORS.get(name)))
    for c in target_classes:
        fig.add_vrect(x0=c - 0.5, x1=c + 0.5, fillcolor="rgba(60,160,60,0.10)", line_width=0)
    fig.update_layout(
        height=height, barmode="group", margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12, x=0),
        xaxis=dict(title=dict(text="digit (green: the target's classes)"), type="category"),
        yaxis=dict(title=dict(text="share of samples"), range=[0, 1]),
    )
    return fig


METRIC_COLUMNS = ("fd", "fd_floor", "target_fraction", "class_entropy", "diversity", "diversity_real", "nn_distance_ratio", "nfe", "n_samples", "n_train")


def metrics_csv(metrics: Mapping[str, dict], extra_columns: Mapping[str, object] | None = None) -> str:
    """One row per run: the scalar metrics, FD at 1/2/4/8 Euler steps and the class fractions."""
    extra = dict(extra_columns or {})
    steps = sorted({k for m in metrics.values() for k in m.get("fd_by_steps", {})}, key=int)
    header = [*extra, "run", *METRIC_COLUMNS, *(f"fd_{k}_steps" for k in steps), *(f"class_{c}" for c in range(10))]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for name, m in metrics.items():
        writer.writerow([
            *extra.values(), name, *(m.get(c, "") for c in METRIC_COLUMNS),
            *(m.get("fd_by_steps", {}).get(k, "") for k in steps),
            *(m.get("class_fractions", {}).get(str(c), "") for c in range(10)),
        ])
    return buf.getvalue()


# ---- model evaluations the page needs ------------------------------------------------------------
SNAPSHOT_NOISE_OFFSET = 7  # gft.core.training.Trainer draws its snapshot particles from noise(n, shape, seed + 7)


@torch.no_grad()
def model_grid(model, n: int, seed: int, steps: int = 20) -> np.ndarray:
    """Pixel images (n, 8, 8) of ``model`` from the noise seeds a run with ``seed`` animates (Euler)."""
    from gft.core.sampling import noise, sample_ode

    device = next(model.parameters()).device
    x0 = noise(n, model.config.data_shape, seed + SNAPSHOT_NOISE_OFFSET, device)
    return pixels(sample_ode(model, x0, "euler", steps).x)
