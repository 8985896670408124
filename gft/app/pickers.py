"""Pickers for what a run starts from and trains on: 2D data (preset, points file, drawing), the
pretrained model (shipped or this session's) and the coupling. Each returns a small frozen dataclass.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from gft.app.resources import (
    PREVIEW_POINTS,
    model_cloud,
    payload_key,
    payload_model,
    preset_points,
    shipped_2d_names,
    shipped_checkpoint,
    shipped_payload,
)
from gft.app.session import user_errors
from gft.core.couplings import COUPLINGS
from gft.core.models import FlowModel
from gft.core.training import TrainConfig
from gft.data import DISTRIBUTIONS, points_from_bytes, validate_points
from gft.data.drawing import MAX_POINTS, Drawing
from gft.tasks.points import PointsTask
from gft.viz.drawing import drawing_canvas

SESSION_MODEL = "gft_session_pretrained"  # {"payload", "data", "label"}: this session's pretrained model
IMAGE_POINTS = 4000
IMAGE_HALF_WIDTH = 3.5


def points_from_image(data: bytes, filename: str = "image", n: int = IMAGE_POINTS, seed: int = 0, max_side: int = 256) -> np.ndarray:
    """An image as a 2D density: ``n`` points drawn with probability proportional to darkness.

    The longer side spans [-3.5, 3.5] (aspect kept, y up); each point is jittered uniformly inside its
    pixel so the cloud has no grid. Seeded; raises ValueError for unreadable or blank images.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{filename}: not a readable PNG or JPEG image ({type(exc).__name__})") from None
    if img.mode in ("RGBA", "LA", "P"):
        # Transparent pixels count as paper, not ink.
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    gray = img.convert("L")
    gray.thumbnail((max_side, max_side))
    dark = 1.0 - np.asarray(gray, dtype=np.float64) / 255.0
    dark[dark < 0.05] = 0.0  # paper grain and JPEG noise are not part of the drawing
    if np.count_nonzero(dark) < 8:
        raise ValueError(f"{filename}: the image has (almost) no dark pixels; draw in dark ink on a light background")
    h, w = dark.shape
    rng = np.random.default_rng(seed)
    idx = rng.choice(dark.size, size=n, p=(dark / dark.sum()).ravel())
    rows, cols = np.divmod(idx, w)
    scale = 2 * IMAGE_HALF_WIDTH / max(h, w)
    x = (cols + rng.random(n) - w / 2) * scale
    y = (h / 2 - rows - rng.random(n)) * scale
    return validate_points(np.stack([x, y], axis=1), filename)


@st.cache_data(show_spinner="Reading the image ...", max_entries=8)
def _image_points_cached(data: bytes, filename: str, seed: int) -> np.ndarray:
    return points_from_image(data, filename, seed=seed)


@dataclass(frozen=True)
class DataChoice:
    """A 2D distribution picked on a page: a preset name, or uploaded points."""

    label: str
    spec: str  # what a checkpoint records as its data: the preset name or file:NAME
    preset: str | None = None
    points: np.ndarray | None = field(default=None, repr=False)

    @property
    def task(self) -> PointsTask:
        """What a run trains on: the preset's law, or the uploaded points (their own reference)."""
        return PointsTask(self.preset) if self.preset is not None else PointsTask(self.spec, self.points)

    def preview(self, n: int = PREVIEW_POINTS) -> np.ndarray:
        if self.preset is not None:
            return preset_points(self.preset, n)
        return np.asarray(self.points, dtype=np.float32)[:n]


def preset_select(container, label: str, key: str, default: str = "8gaussians") -> str:
    """A registered 2D distribution by name, bound to the URL under ``key`` (``container``: st or a column)."""
    names = sorted(DISTRIBUTIONS)
    return container.selectbox(label, names, index=names.index(default), key=key, bind="query-params")


def data_picker(prefix: str, label: str, default: str = "8gaussians", allow_image: bool = True, preset_key: str | None = None,
                body=None, drawing_area=None) -> DataChoice | None:
    """Preset / points file / image / drawing; the preset name is bound to the URL. None (with a message) when unusable.

    ``preset_key`` names the preset's widget (default ``{prefix}data``), so a page whose links already bind
    another key keeps them; ``body`` is where an uploader or the drawing canvas goes (default: under the
    radio), e.g. a full-width container when the radio sits in a narrow column; ``drawing_area`` is where the
    drawing canvas and its settings go (default: ``body``), e.g. the page's main figure, where a canvas has room.
    """
    kinds = ["preset", "points file"] + (["image"] if allow_image else []) + ["drawing"]
    kind = st.radio(f"{label} from", kinds, key=f"{prefix}src", horizontal=True, bind="query-params")
    if kind == "preset":
        name = preset_select(st, label, preset_key or f"{prefix}data", default)
        return DataChoice(label=name, spec=name, preset=name)
    with body if body is not None else contextlib.nullcontext():
        return _sampled_data(kind, prefix, label, drawing_area)


def _sampled_data(kind: str, prefix: str, label: str, drawing_area=None) -> DataChoice | None:
    """A target known only through points: an uploaded file, an image or a drawing."""
    if kind == "points file":
        return points_file_picker(prefix, label)
    if kind == "drawing":
        return drawing_picker(prefix, label, drawing_area)
    return image_picker(prefix, label)


def points_file_picker(prefix: str, label: str) -> DataChoice | None:
    """An uploaded N x 2 points file (.csv or .npy, key ``{prefix}file``); None (with a message) until usable."""
    up = st.file_uploader(f"{label}: N x 2 points (.csv or .npy)", type=["csv", "npy"], key=f"{prefix}file")
    if up is None:
        st.info("Upload a .csv (two numeric columns, optional header) or a .npy array of shape (N, 2), N >= 8.")
        return None
    with user_errors("This file cannot be used"):
        pts = points_from_bytes(up.getvalue(), up.name)
        st.caption(f"{len(pts)} points from {up.name}")
        return DataChoice(label=f"upload: {up.name}", spec=f"file:{up.name}", points=pts)
    return None


def image_picker(prefix: str, label: str) -> DataChoice | None:
    """An uploaded PNG or JPEG (key ``{prefix}image``) as a density, darker = denser; None (with a message) until usable."""
    up = st.file_uploader(f"{label}: a drawing (PNG or JPEG); darker = denser", type=["png", "jpg", "jpeg"], key=f"{prefix}image")
    if up is None:
        st.info("Upload a PNG or JPEG: dark ink on a light background becomes a 2D density scaled to [-3.5, 3.5].")
        return None
    with user_errors("This image cannot be used"):
        pts = _image_points_cached(up.getvalue(), up.name, 0)
        st.caption(f"{len(pts)} points drawn from {up.name} (darker pixels are denser)")
        return DataChoice(label=f"image: {up.name}", spec=f"file:{up.name}", points=pts)
    return None


def _lasso_strokes(state) -> list[np.ndarray]:
    """The lasso paths in a plotly chart's selection state (Streamlit's ``selection.lasso``)."""
    try:
        lassos = state["selection"]["lasso"]
        return [np.stack([np.asarray(a["x"], dtype=np.float64), np.asarray(a["y"], dtype=np.float64)], axis=1) for a in lassos]
    except (KeyError, TypeError, ValueError):
        return []


def drawing_picker(prefix: str, label: str, area=None) -> DataChoice | None:
    """Draw a target with lasso strokes; they become ``n`` points with a chosen spread.

    The strokes live in the session and, encoded (:meth:`Drawing.encode`), in the URL under
    ``{prefix}draw``, so a link shares the drawing. Each new lasso adds a stroke; Undo and Clear edit them.
    ``area``: the container to draw the canvas and its settings in (default: here).
    """
    key, url_key, seen_key, canvas_key = f"{prefix}drawing", f"{prefix}draw", f"{prefix}lasso_seen", f"{prefix}canvas"
    if key not in st.session_state:
        drawing = Drawing.empty()
        text = st.query_params.get(url_key)
        if text:
            try:
                drawing = Drawing.decode(text)
            except ValueError as exc:
                st.error(f"The drawing in this link cannot be used: {exc}")
        st.session_state[key] = drawing
    # A new lasso since the last run becomes a stroke (the chart keeps reporting the last one).
    for stroke in _lasso_strokes(st.session_state.get(canvas_key)):
        sig = stroke.round(3).tobytes()
        if sig != st.session_state.get(seen_key):
            st.session_state[seen_key] = sig
            with user_errors("This stroke cannot be added"):
                st.session_state[key] = st.session_state[key].add(stroke)
    drawing: Drawing = st.session_state[key]
    left, right = (area if area is not None else st).columns([3, 2])
    with right:
        n = int(st.number_input("Points", 100, MAX_POINTS, 2000, 100, key=f"{prefix}draw_n", bind="query-params",
                                help="how many target points the strokes become"))
        spread = float(st.slider("Spread", 0.0, 1.0, 0.15, 0.01, key=f"{prefix}draw_spread", bind="query-params",
                                 help="standard deviation of the Gaussian jitter around the strokes"))
        b = st.columns(2)
        b[0].button("Undo stroke", key=f"{prefix}draw_undo", disabled=not drawing.strokes, width="stretch",
                    on_click=lambda: st.session_state.__setitem__(key, st.session_state[key].undo()))
        b[1].button("Clear", key=f"{prefix}draw_clear", disabled=not drawing.strokes, width="stretch",
                    on_click=lambda: st.session_state.__setitem__(key, Drawing.empty()))
        st.caption("Pick the lasso (the default tool) and drag a path on the canvas: each path is one stroke. "
                   "Points spread along all strokes by length.")
    drawing = st.session_state[key]
    if drawing.strokes:
        st.query_params[url_key] = drawing.encode()
    elif url_key in st.query_params:
        del st.query_params[url_key]
    points = None
    if drawing.strokes:
        with user_errors("This drawing cannot be used"):
            points = validate_points(drawing.points(n, spread, seed=0), "drawing")
    left.plotly_chart(drawing_canvas(drawing.strokes, points), on_select="rerun", selection_mode=("lasso",), key=canvas_key)
    if points is None:
        if not drawing.strokes:
            right.info("Nothing drawn yet.")
        return None
    strokes = f"{len(drawing.strokes)} stroke" + ("s" if len(drawing.strokes) != 1 else "")
    right.caption(f"{strokes} → {len(points)} points")
    return DataChoice(label=f"drawing ({strokes})", spec="file:drawing", points=points)


@dataclass(frozen=True)
class BaseChoice:
    """A pretrained model picked on a page: shipped, or pretrained in this session."""

    key: str  # cache key: "shipped:moons" or "session:<hash>"
    label: str
    data: str  # what it was pretrained on
    payload: bytes = field(repr=False)

    def model(self) -> FlowModel:
        """The shared read-only model (for drawing); jobs build their own copy from ``payload``."""
        return payload_model(self.key, self.payload)

    def cloud(self, n: int = PREVIEW_POINTS) -> np.ndarray:
        return model_cloud(self.key, self.payload, n)


def remember_session_model(payload: bytes, data: str, label: str) -> None:
    st.session_state[SESSION_MODEL] = {"payload": payload, "data": data, "label": label}


def session_model() -> dict | None:
    return st.session_state.get(SESSION_MODEL)


def base_from_name(name: str) -> BaseChoice:
    ckpt = shipped_checkpoint(name)
    return BaseChoice(f"shipped:{name}", f"{name} (shipped)", ckpt.data, shipped_payload(name))


MINE = "my model"  # the option naming this session's pretrained model (URL-friendly: no format_func)


def check_2d(base: BaseChoice, why: str) -> bool:
    """True for a model of 2D points; otherwise say so (with ``why`` the page needs 2D) and return False."""
    if base.model().config.data_shape == (2,):
        return True
    st.error(f"{base.label} is not a 2D model: {why}. Pick a shipped 2D model.")
    return False


def base_picker(key: str, label: str = "Pretrained model", default: str = "moons") -> BaseChoice | None:
    """Shipped 2D models plus the one pretrained in this session (option ``MINE``); bound to the URL.

    Bound widgets put their *displayed* option in the URL, so options are plain names.
    """
    names = shipped_2d_names()
    mine = session_model()
    options = names + ([MINE] if mine else [])
    if not options:
        st.error("No pretrained model available: run scripts/make_assets.py or pretrain one on the Pretrain page.")
        return None
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]
    # A value put in session_state by another page (e.g. "Fine-tune this model") wins over the default.
    preset = {} if key in st.session_state else {"index": options.index(default) if default in options else 0}
    choice = st.selectbox(label, options, key=key, bind="query-params", help=f"shipped models by name; '{MINE}' is the one you pretrained on the Pretrain page", **preset)
    if choice == MINE and mine:
        st.caption(f"{MINE}: {mine['label']}")
        return BaseChoice(payload_key(mine["payload"]), f"{MINE} ({mine['label']})", mine["data"], mine["payload"])
    return base_from_name(choice)


def coupling_picker(prefix: str, default: str = "ot") -> tuple[str, float]:
    """The coupling and, for Sinkhorn, its regularisation (in units of the squared cost, as in the CLI)."""
    cols = st.columns(2)
    coupling = cols[0].selectbox("Coupling", COUPLINGS, index=COUPLINGS.index(default), key=f"{prefix}coupling", bind="query-params",
                                 help="How noise and target batches are paired: independent, exact minibatch OT, or entropic OT")
    reg = TrainConfig.sinkhorn_reg
    if coupling == "sinkhorn":
        reg = cols[1].number_input("Sinkhorn reg", min_value=0.0, value=reg, step=0.05, format="%.3f", key=f"{prefix}reg", bind="query-params",
                                   help="entropic regularisation in units of the squared cost (2D toys: mean cost about 10); smaller is sharper and slower")
    return coupling, float(reg)
