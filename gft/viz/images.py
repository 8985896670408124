"""Plotly figures of the Images page: grids of 8x8 digits, animated over training and over ODE time.

A grid of digits is one heatmap per panel (a *mosaic*: tiles with 1-pixel gaps), not one trace per
digit: a frame then costs a single ``z`` array per panel. Heatmap frames need ``redraw: True``
(plotly.js only restyles scatter-like traces in place), so the per-frame label can live in the
layout title, which a redraw applies.

Images arrive as the model sees them, numpy (n, 1, 8, 8) or (n, 8, 8) in [-1, 1] (snapshots carry
exactly that), and the colour scale does the rest: no conversion, no torch, here.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gft.viz.schedule_strip import STRIP_PX, curve_from_snapshots, strip_axes, strip_lines, strip_markers
from gft.viz.style import REDRAW_FRAME_MS, color_of, distinct_colors, f32, panel_row, play_controls, snapshot_label, sparse_ticks

# gft.data.digits.to_model_scale maps pixel 0 (paper) to -1 and 16 (ink) to +1; values beyond take the
# end colours, as the clamped pixels did.
IMAGE_RANGE = (-1.0, 1.0)
GAP = 1
RUN_TITLES = {"gft": "GFT (annealed τ)", "standard": "standard fine-tuning (τ = 0)"}


# ---- tiles -------------------------------------------------------------------------------------
def tiles(images: np.ndarray) -> np.ndarray:
    """Images (n, 1, h, w), (n, 3, h, w) or (n, h, w) as float32 (n, h, w): the one channel dropped,
    colour shown as the mean of its channels (a heatmap mosaic holds one value per pixel)."""
    a = f32(images)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[1] == 3:
        a = a.mean(axis=1)
    if a.ndim != 3:
        raise ValueError(f"images must have shape (n, 1, h, w), (n, 3, h, w) or (n, h, w), got {a.shape}")
    return a


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) of a near-square grid holding ``n`` tiles."""
    if n < 1:
        raise ValueError(f"a mosaic needs at least one image, got {n}")
    c = cols if cols is not None else math.ceil(math.sqrt(n))
    if c < 1:
        raise ValueError(f"cols must be >= 1, got {c}")
    return math.ceil(n / c), c


def mosaic(images: np.ndarray, cols: int | None = None, gap: int = GAP) -> np.ndarray:
    """Images (n, 1, h, w) or (n, h, w) as one (rows*(h+gap)-gap, cols*(w+gap)-gap) array; gaps and
    empty cells are NaN.

    NaN cells draw as background in a heatmap, so the tiles stay apart whatever the colour scale.
    """
    a = tiles(images)
    n, h, w = a.shape
    rows, c = grid_shape(n, cols)
    out = np.full((rows * (h + gap) - gap, c * (w + gap) - gap), np.nan, dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, c)
        out[r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = a[i]
    return out


# ---- figure pieces -----------------------------------------------------------------------------
def _heatmap(z: np.ndarray, showscale: bool = False) -> go.Heatmap:
    # Greys: paper white, ink black: the dataset's own reading of its pixels.
    return go.Heatmap(z=z, zmin=IMAGE_RANGE[0], zmax=IMAGE_RANGE[1], colorscale="Greys", showscale=showscale, hoverinfo="skip", xgap=0, ygap=0)


def _panels(names: Sequence[str], titles: Sequence[str], height: int, strip: bool = False) -> go.Figure:
    """Image panels side by side; with ``strip``, a schedule strip spanning them below (axes x{N+1}, y{N+1})."""
    if strip:
        cols = len(names)
        fig = make_subplots(rows=2, cols=cols, subplot_titles=list(titles), specs=[[{}] * cols, [{"colspan": cols}] + [None] * (cols - 1)],
                            row_heights=[0.8, 0.2], horizontal_spacing=0.04, vertical_spacing=0.08)
        fig.update_layout(height=height + STRIP_PX, showlegend=False, template="plotly_white")
    else:
        fig = panel_row(titles, height, spacing=0.04)
    for i in range(1, len(names) + 1):
        fig.update_xaxes(visible=False, constrain="domain", row=1, col=i)
        # Image convention: row 0 at the top; square pixels.
        fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=f"x{'' if i == 1 else i}", scaleratio=1, row=1, col=i)
    fig.update_layout(margin=dict(t=70), plot_bgcolor="rgb(235,235,240)", paper_bgcolor="white")
    return fig


def _titles(names: Sequence[str]) -> list[str]:
    return [RUN_TITLES.get(n, n) for n in names]


# ---- static grids ------------------------------------------------------------------------------
def grid_figure(panels: Mapping[str, np.ndarray], height: int = 330, cols: int | None = None) -> go.Figure:
    """Static side-by-side mosaics: ``panels`` maps a title to images (n, 1, 8, 8) in model scale."""
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


def digit_animation(runs: Mapping[str, Sequence], height: int = 470, cols: int | None = None, frame_ms: int = REDRAW_FRAME_MS) -> go.Figure:
    """The same noise seeds turning into digits as training goes on: one frame per snapshot.

    ``runs`` maps a run name to its :class:`gft.core.training.Snapshot`s (trajectories (K+1, n, 1, 8, 8));
    every panel shows the grid of t = 1 samples, and one shared slider moves all panels together. The
    frames follow the first run's snapshots; the others show their snapshot at the same step.
    """
    names = [n for n in runs if any(s.trajectory is not None for s in runs[n])]
    if not names:
        raise ValueError("no snapshot carries a trajectory: train with Monitor(particles > 0)")
    rows = _aligned({n: runs[n] for n in names}, names[0])
    labels = [snapshot_label(r[names[0]].step, r[names[0]].tau, r[names[0]].lam, r[names[0]].total_steps) for r in rows]
    frame_names = [f"step {r[names[0]].step}" for r in rows]

    def traces(row: dict) -> list[go.Heatmap]:
        return [_heatmap(mosaic(row[n].trajectory[-1], cols)) for n in names]

    fig = _panels(names, _titles(names), height, strip=True)
    for i, tr in enumerate(traces(rows[0]), start=1):
        fig.add_trace(tr, row=1, col=i)
    # The schedule strip: each run's λ(step) and a marker per run that the frames move (play and scrub move both).
    sx, sy = f"x{len(names) + 1}", f"y{len(names) + 1}"
    palette = distinct_colors(names)
    total = max(r[names[0]].total_steps for r in rows) or 1
    for line in strip_lines({n: curve_from_snapshots([s for s in runs[n] if s.trajectory is not None]) for n in names}, palette, sx, sy):
        fig.add_trace(line)

    def markers(row: dict) -> list[go.Scatter]:
        return strip_markers({n: (row[n].step, row[n].tau, row[n].lam) for n in names}, palette, sx, sy, total)

    first_markers = markers(rows[0])
    for tr in first_markers:
        fig.add_trace(tr)
    idx = list(range(len(names))) + list(range(len(fig.data) - len(first_markers), len(fig.data)))
    fig.frames = [
        go.Frame(name=fn, data=traces(r) + markers(r), traces=idx, layout=dict(title=dict(text=lab)))
        for fn, r, lab in zip(frame_names, rows, labels)
    ]
    menus, sliders = play_controls(frame_names, labels, frame_ms, redraw=True, gap=35, show_current=False,
                                   ticks=sparse_ticks([r[names[0]].step for r in rows]))
    fig.update_layout(updatemenus=menus, sliders=sliders, title=dict(text=labels[0], x=0.5, font=dict(size=14)), margin=dict(b=110))
    xs, ys = strip_axes(total, fig.layout[f"yaxis{len(names) + 1}"].domain, sx, sy)
    xs.pop("domain")
    fig.update_layout({f"xaxis{len(names) + 1}": xs, f"yaxis{len(names) + 1}": ys})
    return fig


def time_scrub_animation(snapshots: Mapping[str, object], height: int = 470, cols: int | None = None, frame_ms: int = REDRAW_FRAME_MS) -> go.Figure:
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
        return [_heatmap(mosaic(trajs[n][i], cols)) for n in names]

    fig = _panels(names, _titles(names), height)
    for i, tr in enumerate(traces(0), start=1):
        fig.add_trace(tr, row=1, col=i)
    idx = list(range(len(names)))
    fig.frames = [go.Frame(name=fn, data=traces(i), traces=idx) for i, fn in enumerate(frame_names)]
    menus, sliders = play_controls(frame_names, labels, frame_ms, redraw=True, prefix="ODE time t = ", gap=35)
    fig.update_layout(updatemenus=menus, sliders=sliders, margin=dict(b=110))
    return fig


# ---- metrics --------------------------------------------------------------------------
def class_bars(fractions: Mapping[str, Mapping[str, float]], target_classes: Sequence[int] = (), height: int = 300) -> go.Figure:
    """Share of samples the classifier assigns to each digit, one bar group per run."""
    digits = [str(c) for c in range(10)]
    fig = go.Figure()
    for name, frac in fractions.items():
        fig.add_trace(go.Bar(x=digits, y=f32([frac.get(d, 0.0) for d in digits]), name=name, marker_color=color_of(name)))
    for c in target_classes:
        fig.add_vrect(x0=c - 0.5, x1=c + 0.5, fillcolor="rgba(60,160,60,0.10)", line_width=0)
    fig.update_layout(
        height=height, barmode="group", margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12, x=0),
        xaxis=dict(title=dict(text="digit (green: the target's classes)"), type="category"),
        yaxis=dict(title=dict(text="share of samples"), range=[0, 1]),
    )
    return fig
