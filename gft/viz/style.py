"""What every figure of the app shares, defined once: colours, frame timing, play controls, clouds,
polylines and arrows, square axes and the per-frame label text.

The rules the animations follow come from what a browser plays smoothly: SVG ``go.Scatter``
(``Scattergl`` stays frozen on frame 0 with ``redraw: False``), fixed axis ranges, contiguous float32
numpy arrays (Plotly sends them as compact binary), about 2,000 animated points per frame at most.
Heatmaps are the exception: plotly.js only restyles scatter-like traces in place, so they need
``redraw: True``. Numpy only here: callers hand over arrays, never tensors or models.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# ---- colours -----------------------------------------------------------------------------------
# Named hues (Vega's "tableau10"), so that a run, a cloud and an ellipse of the same kind match on every page.
BLUE, RED, GREEN, ORANGE = "#4C78A8", "#E45756", "#54A24B", "#F58518"
BROWN, PURPLE, GREY, INK = "#9D755D", "#B279A2", "#777777", "#333333"
TEAL, PINK, YELLOW = "#72B7B2", "#FF9DA6", "#EECA3B"

COLORS = {
    "pretrained": "rgba(120,120,135,0.45)",  # a pretrained model's samples, behind everything
    "target": "rgba(230,120,40,0.45)",  # target data, behind everything
    "path": "rgba(40,90,200,0.3)",
    "particle": "rgb(25,60,160)",
    "f_pre": "rgb(200,60,40)",
    "learned": "rgb(30,120,60)",
    "target_drift": "rgb(215,120,0)",  # the target drift: the target cloud's hue, darker so it reads over it
    "blend": "rgb(120,40,160)",  # the blend of f_pre (red) and the target drift (orange)
    "field": "rgba(90,90,90,0.55)",
    "tau": "rgb(160,40,120)",
    "lambda": "rgb(30,120,180)",
    "text": "rgb(40,40,40)",
}
# One colour per coupling and per method; a run named "gft / seed 3" takes its method's colour.
RUN_COLORS = {"independent": BLUE, "ot": RED, "sinkhorn": GREEN, "gft": RED, "standard": BLUE, "scratch": BROWN,
              "gft-stop": PURPLE, "gft-constant": PINK, "standard-slow": TEAL, "standard-ema": YELLOW, "l2sp": GREEN}


def color_of(name: str) -> str:
    """The colour of a run, by the first word of its name (blue for names the palette does not know)."""
    return RUN_COLORS.get(name.split(" ")[0].rstrip(",:;"), BLUE)


def distinct_colors(names: Sequence[str]) -> dict[str, str]:
    """Each run's :func:`color_of`, except that a colour already taken goes to the next free one of the palette."""
    spare = [c for c in (RED, BLUE, GREEN, BROWN, PURPLE, ORANGE, INK)]
    out: dict[str, str] = {}
    for name in names:
        color = color_of(name)
        if color in out.values():
            color = next((c for c in spare if c not in out.values()), color)
        out[name] = color
    return out


def with_alpha(hex_color: str, alpha: float) -> str:
    """``#RRGGBB`` as an ``rgba(...)`` string (bands and fills under a line of that colour)."""
    if len(hex_color) != 7 or not hex_color.startswith("#"):
        raise ValueError(f"hex_color must read #RRGGBB, got {hex_color!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# ---- timing -------------------------------------------------------------------------------------
FRAME_MS = 120  # per frame while playing: ~8 frames/s reads as motion without hiding the steps
REDRAW_FRAME_MS = 250  # heatmap frames redraw the whole figure: slower, still reads as motion
MAX_CLOUD_POINTS = 800  # static clouds behind an animation: the shape shows, and each point is an SVG node the browser redraws on every return to a page (1,500 cost about 0.3 s more there)


# ---- arrays -------------------------------------------------------------------------------------
def f32(a) -> np.ndarray:
    """Contiguous float32 numpy (what Plotly serialises as compact binary)."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def polylines(paths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paths ``(n, k, 2)`` as one x and one y array with NaN gaps (a single trace draws them all)."""
    p = f32(paths)
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"paths must have shape (n, k, 2), got {p.shape}")
    gap = np.full((p.shape[0], 1, 2), np.nan, dtype=np.float32)
    flat = np.concatenate([p, gap], axis=1).reshape(-1, 2)
    return flat[:, 0].copy(), flat[:, 1].copy()


ANIMATED_PATH_VERTICES = 11  # per path in an animation frame: 10 segments of a smooth flow path look the same faint
# line as 30, and the paths were three quarters of an animation's bytes (a 61-frame fine-tune animation of 500 particles: 3.8 -> 1.8 MB,
# which the browser re-parses on every return to the page)


def trajectory_lines(trajectory: np.ndarray, n_paths: int | None = None, vertices: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Polylines of the first ``n_paths`` particles (all by default) of a (K+1, n, 2) trajectory, through at
    most ``vertices`` of its K+1 times (evenly spaced, first and last kept; all by default)."""
    traj = f32(trajectory)[:, :n_paths]
    if vertices is not None:
        if vertices < 2:
            raise ValueError(f"vertices must be >= 2 (a path needs both ends), got {vertices}")
        if traj.shape[0] > vertices:
            traj = traj[np.unique(np.linspace(0, traj.shape[0] - 1, vertices).round().astype(int))]
    return polylines(np.swapaxes(traj, 0, 1))


def arrows_xy(points: np.ndarray, vectors: np.ndarray, scale: float = 1.0, head: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
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


# ---- traces -------------------------------------------------------------------------------------
def cloud(points: np.ndarray | None, name: str, color: str, size: float = 3.0, max_points: int = MAX_CLOUD_POINTS) -> go.Scatter | None:
    """A static point cloud (None for no points), at most ``max_points`` of them."""
    if points is None:
        return None
    pts = f32(points)[:max_points]
    return go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name, marker=dict(size=size, color=color), hoverinfo="skip")


def snapshot_label(step: int, tau: float, lam: float, total_steps: int | None = None, temperature: bool = True) -> str:
    """The text naming a training snapshot, in frames, sliders and pickers alike.

    ``temperature=False`` for pretraining, which has no τ (a "τ = 0" there would suggest an anneal).
    """
    of = f"/{total_steps}" if total_steps is not None else ""
    return f"step {step}{of} · τ = {tau:.3g} · λ = {lam:.3f}" if temperature else f"step {step}{of}"


# ---- axes ---------------------------------------------------------------------------------------
AXIS_RANGE = (-4.6, 4.6)  # the explorer's fixed view: every preset distribution fits, frames never rescale


def square_ranges(*clouds: np.ndarray | None, pad: float = 0.08, robust: bool = True) -> tuple[list[float], list[float]]:
    """Equal-span x and y ranges holding every point, or (``robust``) all but the farthest 0.5% each side."""
    pts = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1, 2) for c in clouds if c is not None and len(c)] or [np.zeros((0, 2))])
    pts = pts[np.isfinite(pts).all(1)]
    if not len(pts):
        return [-4.0, 4.0], [-4.0, 4.0]
    q = 0.5 if robust else 0.0
    lo, hi = np.percentile(pts, q, axis=0), np.percentile(pts, 100 - q, axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 0.5) * (1 + pad)
    return [float(centre[0] - half), float(centre[0] + half)], [float(centre[1] - half), float(centre[1] + half)]


def fix_square_axes(fig: go.Figure, xr: Sequence[float], yr: Sequence[float], panels: int = 1, tick_labels: bool = False) -> None:
    """Fixed ranges (frames never rescale) and square units on each of ``panels`` side-by-side panels."""
    for i in range(1, panels + 1):
        where = dict(row=1, col=i) if panels > 1 else {}
        fig.update_xaxes(range=list(xr), autorange=False, showticklabels=tick_labels, zeroline=False, constrain="domain", **where)
        anchor = "x" if i == 1 else f"x{i}"
        fig.update_yaxes(range=list(yr), autorange=False, showticklabels=tick_labels, zeroline=False, scaleanchor=anchor, **where)


def square_layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    """One square panel over :data:`AXIS_RANGE`, legend on top, optional title."""
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


def label_trace(text: str) -> go.Scatter:
    """Per-frame text in the corner of :data:`AXIS_RANGE`: a trace, because a frame's layout needs a redraw."""
    lo, hi = AXIS_RANGE
    return go.Scatter(
        x=f32([lo + 0.15]), y=f32([hi - 0.1]), mode="text", text=[text], textposition="bottom right",
        textfont=dict(size=13, color=COLORS["text"]), showlegend=False, hoverinfo="skip",
    )


def panel_row(titles: Sequence[str], height: int, spacing: float = 0.03) -> go.Figure:
    """Side-by-side panels, one per title, on a white page (the comparison and image figures)."""
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=list(titles), horizontal_spacing=spacing)
    # t=60: the toolbar (modebar) takes the figure's top 30 px on the right; at t=40 it covered the last panel's title.
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10), showlegend=False, template="plotly_white")
    return fig


# ---- play controls ------------------------------------------------------------------------------
PLAY_BUTTONS_PX = 150  # the width the ▶ Play and ❚❚ Pause buttons take, left of every slider


def play_controls(
    frame_names: Sequence[str],
    labels: Sequence[str],
    frame_ms: int = FRAME_MS,
    redraw: bool = False,
    prefix: str = "",
    show_current: bool = True,
    y: float = 0.0,
    gap: int = 20,
    active: int = 0,
    ticks: Sequence[str] | None = None,
) -> tuple[list, list]:
    """A play/pause menu and a slider over the frames, ``gap`` pixels below the plot.

    ``ticks`` (one short text per frame, most of them empty: see :func:`sparse_ticks`) are shown under
    the slider; without them the tick labels are hidden (30 to 100 full labels would overlap).
    ``show_current`` shows the current frame's label by the slider, which figures drawing the label
    inside the plot turn off. ``redraw`` must be True for heatmaps and False for scatters.
    """
    if len(frame_names) != len(labels):
        raise ValueError(f"labels must have one entry per frame: {len(frame_names)} frames, {len(labels)} labels")
    if ticks is not None and len(ticks) != len(frame_names):
        raise ValueError(f"ticks must have one entry per frame: {len(frame_names)} frames, {len(ticks)} ticks")
    if not 0 <= active < max(len(frame_names), 1):
        raise ValueError(f"active must be in [0, {len(frame_names) - 1}], got {active}")
    still = dict(mode="immediate", frame=dict(duration=0, redraw=redraw), transition=dict(duration=0))
    # Play queues the frames after the ones already queued ("afterall"): "immediate" would interrupt an empty
    # queue and plotly.js reports that as an unhandled promise rejection ("undefined" in the console).
    play = dict(frame=dict(duration=frame_ms, redraw=redraw), transition=dict(duration=0), fromcurrent=True)
    pause = dict(still, frame=dict(duration=0, redraw=False))  # stopping never needs a redraw
    menus = [dict(
        type="buttons", direction="left", showactive=False, x=0.0, y=y, xanchor="left", yanchor="top", pad=dict(t=gap + 8, r=10),
        buttons=[dict(label="▶ Play", method="animate", args=[None, play]), dict(label="❚❚ Pause", method="animate", args=[[None], pause])],
    )]  # fmt: skip
    sliders = [dict(
        # A fixed PLAY_BUTTONS_PX right of the buttons, whatever the figure's width: a share of the width (x=0.2)
        # put the slider's first position under ❚❚ Pause in the narrow columns of the 2D pages.
        active=active, x=0.0, len=1.0, y=y, xanchor="left", yanchor="top", pad=dict(t=gap, b=0, l=PLAY_BUTTONS_PX),
        steps=[dict(method="animate", label=lab, args=[[name], still]) for name, lab in zip(frame_names, ticks or labels)],
        currentvalue=dict(prefix=prefix, visible=show_current and ticks is None, font=dict(size=13, color=COLORS["text"])),
        font=dict(color=COLORS["text"], size=11) if ticks is not None else dict(color="rgba(0,0,0,0)", size=8),
        ticklen=3, minorticklen=0, transition=dict(duration=0),
    )]  # fmt: skip
    return menus, sliders


def sparse_ticks(values: Sequence[str], count: int = 6) -> list[str]:
    """``values`` at about ``count`` evenly spaced frames (first and last included), empty elsewhere:
    tick labels a person can read under a slider of 20 to 100 frames."""
    if count < 2:
        raise ValueError(f"count must be >= 2, got {count}")
    n = len(values)
    keep = {round(i * (n - 1) / (count - 1)) for i in range(count)} if n > count else set(range(n))
    return [str(v) if i in keep else "" for i, v in enumerate(values)]
