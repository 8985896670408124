"""Streamlit building blocks shared by the explorer pages: data and model pickers, the schedule
editor, run controls, the live-progress fragment and the per-job figure memo.

Pages stay thin: they arrange these blocks and the figures of :mod:`gft.figures`. Everything that
trains runs in a :class:`gft.jobs.TrainingJob` (its factories are called in the job's thread); the
script thread only builds configs, reads job views and draws.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st
import torch

from gft import figures
from gft.app.session import job_slot, user_errors
from gft.assets import shipped_models
from gft.checkpoints import Checkpoint, checkpoint_bytes, checkpoint_from_bytes
from gft.couplings import COUPLINGS
from gft.data import DISTRIBUTIONS, points_from_bytes, sample_distribution, validate_points
from gft.jobs import PAUSED, RUNNING, JobView, TrainingJob
from gft.models import FlowModel, ModelConfig, build_model, build_seeded
from gft.schedules import FAMILIES, parse_schedule
from gft.training import Trainer, TrainConfig

POOL = 20_000  # training points drawn from a preset, as in the CLI
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out W2 reference, as in the CLI
PREVIEW_POINTS = 1500
SESSION_MODEL = "gft_session_pretrained"  # {"payload", "data", "label"}: this session's pretrained model
IMAGE_POINTS = 4000
IMAGE_HALF_WIDTH = 3.5


def ensure_app_frame() -> None:
    """Make sure this page runs inside app.py's navigation (call it first thing in a page).

    With a ``pages/`` folder, Streamlit starts in its legacy multipage mode and only switches to
    ``st.navigation`` once app.py has run. If the first request after a server start is a shared deep
    link (``/gradual_finetune?ft_steps=...``), the page would run alone: no frame, no device badge,
    no CPU thread setting. Switch the process to navigation mode and rerun once: app.py then runs and
    resolves this same page (and its URL parameters) by its path. Once per session, so a rerun can
    never swallow a button click.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory or not (Path(__file__).resolve().parents[2] / "app.py").is_file():
        return
    PagesManager.uses_pages_directory = False
    if not st.session_state.get("_gft_frame_checked"):
        st.session_state["_gft_frame_checked"] = True
        st.rerun()


# ---- read-only resources (shared by every session) ----------------------------------------------
@st.cache_resource(show_spinner="Loading a shipped model ...")
def shipped_checkpoint(name: str) -> Checkpoint:
    """A shipped checkpoint, loaded once per process. Read-only: training copies its weights."""
    return checkpoint_from_bytes(shipped_payload(name), f"assets/pretrained_{name}.pt")


@st.cache_data(show_spinner=False)
def shipped_payload(name: str) -> bytes:
    models = shipped_models()
    if name not in models:
        raise ValueError(f"no shipped model named {name!r}; available: {', '.join(models) or 'none'}")
    return models[name].read_bytes()


@st.cache_data(show_spinner=False)
def shipped_2d_names() -> list[str]:
    """Shipped models of 2D points (the digits models live in the same folder)."""
    return [n for n in shipped_models() if shipped_checkpoint(n).model.config.data_shape == (2,)]


@st.cache_resource(show_spinner=False, max_entries=16)
def payload_model(key: str, _payload: bytes) -> FlowModel:
    """The model of a checkpoint payload, for inference in the script thread (read-only)."""
    return checkpoint_from_bytes(_payload, key).model


@st.cache_data(show_spinner="Sampling the model ...", max_entries=32)
def model_cloud(key: str, _payload: bytes, n: int = PREVIEW_POINTS, seed: int = 0) -> np.ndarray:
    return figures.model_samples(payload_model(key, _payload), n, seed)


@st.cache_data(show_spinner="Integrating trajectories ...", max_entries=32)
def model_paths(key: str, _payload: bytes, n: int = 400, steps: int = 40, seed: int = 0) -> np.ndarray:
    return figures.model_trajectories(payload_model(key, _payload), n, seed, steps)


@st.cache_data(show_spinner=False, max_entries=64)
def preset_points(name: str, n: int = PREVIEW_POINTS, seed: int = 123_457) -> np.ndarray:
    return sample_distribution(name, n, seed).numpy()


def payload_key(payload: bytes, prefix: str = "session") -> str:
    return f"{prefix}:{hashlib.sha1(payload).hexdigest()[:12]}"


# ---- data ---------------------------------------------------------------------------------------
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

    def pool(self, seed: int) -> torch.Tensor:
        """The training pool (20,000 preset draws, or the uploaded points)."""
        if self.preset is not None:
            return sample_distribution(self.preset, POOL, seed)
        return torch.from_numpy(np.asarray(self.points, dtype=np.float32))

    def held_out(self, seed: int) -> torch.Tensor | None:
        """Independent draws for W2 (presets only; an upload is compared with itself)."""
        return sample_distribution(self.preset, 2000, seed + HELD_OUT_SEED_OFFSET) if self.preset else None

    def preview(self, n: int = PREVIEW_POINTS) -> np.ndarray:
        if self.preset is not None:
            return preset_points(self.preset, n)
        return np.asarray(self.points, dtype=np.float32)[:n]


def data_picker(prefix: str, label: str, default: str = "8gaussians", allow_image: bool = True) -> DataChoice | None:
    """Preset / points file / image; the preset name is bound to the URL. None (with a message) when unusable."""
    kinds = ["preset", "points file"] + (["image"] if allow_image else [])
    kind = st.radio(f"{label} from", kinds, key=f"{prefix}src", horizontal=True, bind="query-params")
    if kind == "preset":
        names = sorted(DISTRIBUTIONS)
        name = st.selectbox(label, names, index=names.index(default), key=f"{prefix}data", bind="query-params")
        return DataChoice(label=name, spec=name, preset=name)
    if kind == "points file":
        up = st.file_uploader(f"{label}: N x 2 points (.csv or .npy)", type=["csv", "npy"], key=f"{prefix}file")
        if up is None:
            st.info("Upload a .csv (two numeric columns, optional header) or a .npy array of shape (N, 2), N >= 8.")
            return None
        with user_errors("This file cannot be used"):
            pts = points_from_bytes(up.getvalue(), up.name)
            st.caption(f"{len(pts)} points from {up.name}")
            return DataChoice(label=f"upload: {up.name}", spec=f"file:{up.name}", points=pts)
        return None
    up = st.file_uploader(f"{label}: a drawing (PNG or JPEG); darker = denser", type=["png", "jpg", "jpeg"], key=f"{prefix}image")
    if up is None:
        st.info("Upload a PNG or JPEG: dark ink on a light background becomes a 2D density scaled to [-3.5, 3.5].")
        return None
    with user_errors("This image cannot be used"):
        pts = _image_points_cached(up.getvalue(), up.name, 0)
        st.caption(f"{len(pts)} points drawn from {up.name} (darker pixels are denser)")
        return DataChoice(label=f"image: {up.name}", spec=f"file:{up.name}", points=pts)
    return None


# ---- models ----------------------------------------------------------------------------------
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


# ---- schedules ----------------------------------------------------------------------------------
def _spec_defaults(spec: str) -> dict:
    s = parse_schedule(spec, 100)
    return {"fam": s.family, "taumax": float(s.tau_max), "ratio": float(s.ratio), "K": int(s.stages), "rate": float(s.rate)}


def _breakpoints_table(prefix: str, default_bp: str):
    import pandas as pd

    key_init = f"{prefix}bp_init"
    if key_init not in st.session_state:
        # A shared link carries the curve as ?{prefix}bp=P0/T0,P1/T1,...; read it once per session.
        st.session_state[key_init] = st.query_params.get(f"{prefix}bp", default_bp)
    rows = []
    for item in str(st.session_state[key_init]).split(","):
        p, _, t = item.partition("/")
        try:
            rows.append({"progress": float(p), "tau": float(t)})
        except ValueError:
            rows = [{"progress": 0.0, "tau": 10.0}, {"progress": 0.5, "tau": 2.0}, {"progress": 1.0, "tau": 0.0}]
            break
    st.caption("Draw τ as a piecewise-linear curve: rows of (progress through the annealed part in [0, 1], τ).")
    table = st.data_editor(
        pd.DataFrame(rows), num_rows="dynamic", key=f"{prefix}bp_table", hide_index=True,
        column_config={
            "progress": st.column_config.NumberColumn("progress", min_value=0.0, max_value=1.0, step=0.05, required=True),
            "tau": st.column_config.NumberColumn("τ", min_value=0.0, step=0.5, required=True),
        },
    )
    pairs = [(r["progress"], r["tau"]) for r in table.to_dict("records") if r.get("progress") is not None and r.get("tau") is not None]
    pairs = [(float(p), float(t)) for p, t in pairs if np.isfinite(p) and np.isfinite(t)]
    text = ",".join(f"{p:g}/{t:g}" for p, t in pairs)
    if text and st.query_params.get(f"{prefix}bp") != text:
        st.query_params[f"{prefix}bp"] = text
    return f"piecewise:{text}"


def schedule_editor(prefix: str, total_steps: int = 1000, default: str = "stages:10,0.5,5", preview: bool = True) -> str | None:
    """Temperature-schedule widgets (bound to the URL) with a live tau/lambda preview.

    Returns the schedule spec string, or None after showing an error when the schedule is impossible.
    The final tau = 0 share is read with :func:`edited_final_fraction` (same ``prefix``).
    """
    d = _spec_defaults(default)
    fam = st.selectbox("Schedule family", FAMILIES, index=FAMILIES.index(d["fam"]), key=f"{prefix}fam", bind="query-params",
                       help="constant: one intermediate objective; the others anneal τ to 0 and then hold τ = 0 for the final fraction")
    cols = st.columns(3)
    if fam == "piecewise":
        spec = _breakpoints_table(prefix, "0/10,0.5/2,1/0")
    else:
        tau = cols[0].number_input("τ" if fam == "constant" else "τ max", min_value=0.0, value=d["taumax"], step=1.0, key=f"{prefix}taumax", bind="query-params")
        if fam == "stages":
            ratio = cols[1].number_input("ratio per stage", min_value=0.0, value=d["ratio"], step=0.1, key=f"{prefix}ratio", bind="query-params")
            k = cols[2].number_input("stages K", min_value=1, value=d["K"], step=1, key=f"{prefix}K", bind="query-params")
            spec = f"stages:{tau:g},{ratio:g},{int(k)}"
        elif fam == "exponential":
            rate = cols[1].number_input("rate", min_value=0.0, value=d["rate"], step=0.5, key=f"{prefix}rate", bind="query-params")
            spec = f"exponential:{tau:g},{rate:g}"
        else:
            spec = f"{fam}:{tau:g}"
    final = 0.2
    if fam != "constant":
        final = st.slider("final fraction at τ = 0", 0.0, 0.9, 0.2, 0.05, key=f"{prefix}final", bind="query-params",
                          help="share of the steps trained at τ = 0 (plain flow matching on the target) after the annealing")
    with user_errors("Impossible schedule"):
        schedule = parse_schedule(spec, int(total_steps), final)
        if preview:
            steps, taus, lams = schedule.curve(300)
            st.plotly_chart(figures.schedule_figure(steps, taus, lams), key=f"{prefix}sched_preview")
        return schedule.spec()
    return None


def edited_final_fraction(prefix: str) -> float:
    """The share of steps held at tau = 0 after the annealing, as set in :func:`schedule_editor` (0.2 by default)."""
    if st.session_state.get(f"{prefix}fam") == "constant":
        return 0.2  # unused by a constant schedule; keeps TrainConfig's default
    return float(st.session_state.get(f"{prefix}final", 0.2))


# ---- jobs -----------------------------------------------------------------------------------------
EVAL_POINTS = 500  # W2 on 500 samples: an exact OT solve of ~0.1 s, so ten of them barely slow a run


def snapshot_plan(steps: int, frames: int = 60) -> tuple[int, int]:
    """(callback_every, eval_every) giving about ``frames`` snapshots and at most about 10 W2 evaluations."""
    every = max(1, steps // frames)
    return every, every * max(1, -(-frames // 10))


def finetune_job(base: BaseChoice, target: DataChoice, config: TrainConfig, run_name: str = "gft", max_frames: int = 100) -> TrainingJob:
    """A job that fine-tunes a copy of ``base`` on ``target`` (everything heavy happens in its thread)."""
    payload, points = base.payload, target

    def build() -> Trainer:
        pretrained = checkpoint_from_bytes(payload, base.key).model  # the job's own copy
        model = build_model(pretrained.config)
        return Trainer(model, points.pool(config.seed), config, pretrained=pretrained, eval_target=points.held_out(config.seed))

    return TrainingJob({run_name: build}, max_frames=max_frames)


def pretrain_job(source: DataChoice, config: TrainConfig, model_config: ModelConfig, run_name: str = "pretrain", max_frames: int = 100) -> TrainingJob:
    def build() -> Trainer:
        model = build_seeded(model_config, config.seed)  # initial weights from the run's seed
        return Trainer(model, source.pool(config.seed), config, eval_target=source.held_out(config.seed))

    return TrainingJob({run_name: build}, max_frames=max_frames)


def launch(owner: str, job: TrainingJob, params: dict, paused: bool = False) -> None:
    """Install ``job`` as this session's job (stopping any other) and start it."""
    params = dict(params, token=uuid.uuid4().hex, started_at=time.monotonic())
    if paused:
        job.start(paused=True)  # replace()'s own start() is then a no-op
    job_slot().replace(owner, job, params)


def job_controls(owner: str, start: Callable[[bool], bool], step_size: int = 10, full: bool = True) -> None:
    """Start / Pause / Step / Stop / Reset. ``start(paused)`` builds and launches a job; False if refused."""
    slot = job_slot()
    job = slot.for_page(owner)
    view = job.view() if job is not None else None
    state = view.state if view is not None else "idle"
    active = state in (RUNNING, PAUSED)
    cols = st.columns(5 if full else 3)
    clicked = None
    if cols[0].button("Start" if not active else "Restart", type="primary", icon=":material/play_arrow:", key=f"{owner}_start", width="stretch"):
        clicked = "start"
    if full:
        if state == PAUSED:
            if cols[1].button("Resume", icon=":material/resume:", key=f"{owner}_resume", width="stretch"):
                clicked = "resume"
        elif cols[1].button("Pause", icon=":material/pause:", key=f"{owner}_pause", disabled=state != RUNNING, width="stretch"):
            clicked = "pause"
        if cols[2].button(f"Step +{step_size}", icon=":material/skip_next:", key=f"{owner}_step", disabled=state == RUNNING, width="stretch",
                          help="Advance a paused run (or start one paused) by this many steps"):
            clicked = "step"
    if cols[-2].button("Stop", icon=":material/stop:", key=f"{owner}_stop", disabled=not active, width="stretch"):
        clicked = "stop"
    if cols[-1].button("Reset", icon=":material/restart_alt:", key=f"{owner}_reset", disabled=job is None, width="stretch"):
        clicked = "reset"
    if clicked is None:
        return
    if clicked == "start" and not start(False):
        return
    if clicked == "pause":
        job.pause()
    elif clicked == "resume":
        job.resume()
    elif clicked == "step":
        if job is None or view.finished:
            if not start(True):
                return
            job = slot.for_page(owner)
        job.step(step_size)
    elif clicked == "stop":
        job.stop()
        job.wait(1.0)
    elif clicked == "reset":
        slot.clear()
    st.rerun()


def live_panel(owner: str, run_name: str, target_cloud: np.ndarray | None = None) -> JobView | None:
    """Progress bar, loss and W2 curves and a light scatter, polled by a timed fragment while the job runs.

    Returns the job view at this script run (None without a job). The fragment stops polling at the
    next full rerun after the job finishes; it triggers that rerun itself.
    """
    job = job_slot().for_page(owner)
    if job is None:
        return None
    view = job.view()
    every = None if view.finished else 1.0  # 1 s: each poll redraws two charts, which costs the training thread

    @st.fragment(run_every=every)
    def _live() -> None:
        job_now = job_slot().for_page(owner)
        if job_now is None:
            return
        v = job_now.view()
        try:
            run = v.run(run_name)
        except KeyError:
            return
        latest = run.latest
        text = f"{v.state} · step {run.step}/{run.total_steps or '?'}"
        if latest is not None:
            text += f" · τ {latest.tau:.3g} · λ {latest.lam:.3f}"
        text += f" · {v.elapsed:.1f} s"
        st.progress(min(max(run.progress, 0.0), 1.0), text=text)
        c1, c2 = st.columns([3, 2])
        c1.plotly_chart(figures.curves_figure(run.history), key=f"{owner}_live_curves")
        c2.plotly_chart(figures.live_scatter(latest.samples if latest is not None else None, target_cloud), key=f"{owner}_live_scatter")
        if v.error:
            st.error(f"The run failed: {v.error}")
        if v.finished and not view.finished:
            st.rerun()  # once: the full rerun draws the results and stops this polling

    _live()
    return view


def memo(owner: str, name: str, token: str, build: Callable[[], object], spinner: str | None = None):
    """Build once per job token (e.g. an animation figure) and keep it in the session.

    A rebuilt figure would restart a playing animation, so figures live here, not in the script.
    """
    store = st.session_state.setdefault(f"{owner}_memo", {})
    if store.get("token") != token:
        store.clear()
        store["token"] = token
    if name not in store:
        if spinner:
            with st.spinner(spinner):
                store[name] = build()
        else:
            store[name] = build()
    return store[name]


def finished_checkpoint(owner: str, run_name: str, token: str, data: str, train: dict, extra: dict) -> bytes | None:
    """Checkpoint bytes of the finished run (built once per job)."""
    job = job_slot().for_page(owner)
    model = job.model(run_name) if job is not None else None
    if model is None:
        return None
    return memo(owner, f"ckpt:{run_name}", token, lambda: checkpoint_bytes(model, data, train, extra))


def elapsed_since_start(params: dict) -> float | None:
    started = params.get("started_at")
    return None if started is None else time.monotonic() - started


def coupling_picker(prefix: str, default: str = "ot") -> tuple[str, float]:
    cols = st.columns(2)
    coupling = cols[0].selectbox("Coupling", COUPLINGS, index=COUPLINGS.index(default), key=f"{prefix}coupling", bind="query-params",
                                 help="How noise and target batches are paired: independent, exact minibatch OT, or entropic OT")
    reg = 0.05
    if coupling == "sinkhorn":
        reg = cols[1].number_input("Sinkhorn reg", min_value=0.0, value=0.05, step=0.01, format="%.3f", key=f"{prefix}reg", bind="query-params")
    return coupling, float(reg)
