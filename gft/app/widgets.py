"""Run controls shared by the explorer pages: the app frame, building and launching a background job,
Start/Pause/Step/Stop/Reset, the live-progress fragment and the per-job memo of figures.

Pages stay thin: they arrange these blocks, the pickers of :mod:`gft.app.pickers`, the schedule editor
of :mod:`gft.app.schedule_editor` and the figures of :mod:`gft.viz.training`. Everything that trains runs in
a :class:`gft.app.jobs.TrainingJob` (its factories are called in the job's thread); the script thread only
builds configs, reads job views and draws.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import streamlit as st

from gft.app.jobs import PAUSED, RUNNING, JobView, TrainingJob
from gft.app.pickers import BaseChoice, DataChoice
from gft.app.session import job_slot
from gft.core.checkpoints import checkpoint_bytes, checkpoint_from_bytes
from gft.core.models import ModelConfig
from gft.core.training import TrainConfig, Trainer
from gft.tasks.runs import Monitor, make_trainer
from gft.viz import training as figures


def ensure_app_frame() -> None:
    """Make sure this page runs inside app.py's navigation (call it first thing in a page).

    With a ``pages/`` folder, Streamlit starts in its legacy multipage mode and only switches to
    ``st.navigation`` once app.py has run. If the first request after a server start is a shared deep
    link (``/gradual_finetune?ft_steps=...``), the page would run alone: no frame, no device badge,
    no CPU thread setting. Switch the process to navigation mode and rerun once: app.py then runs and
    resolves this same page (and its URL parameters) by its path. Once per session, so a rerun can
    never swallow a button click.
    """
    # Private API, checked against Streamlit 1.67.0: no public call leaves the legacy pages/ mode, and the
    # project layout keeps pages/ (tests/test_app_pages.py fails loudly if this attribute goes away).
    from streamlit.runtime.pages_manager import PagesManager

    if not PagesManager.uses_pages_directory or not (Path(__file__).resolve().parents[2] / "app.py").is_file():
        return
    PagesManager.uses_pages_directory = False
    if not st.session_state.get("_gft_frame_checked"):
        st.session_state["_gft_frame_checked"] = True
        st.rerun()


EVAL_POINTS = 500  # W2 on 500 samples: an exact OT solve of ~0.1 s, so ten of them barely slow a run


def snapshot_plan(steps: int, frames: int = 60) -> tuple[int, int]:
    """(callback_every, eval_every) giving about ``frames`` snapshots and at most about 10 W2 evaluations."""
    every = max(1, steps // frames)
    return every, every * max(1, -(-frames // 10))


def finetune_job(
    base: BaseChoice, target: DataChoice, config: TrainConfig, monitor: Monitor, run_name: str = "gft", max_frames: int = 100
) -> TrainingJob:
    """A job that fine-tunes ``base`` on ``target`` (everything heavy happens in its thread)."""
    payload, task = base.payload, target.task

    def build() -> Trainer:
        pretrained = checkpoint_from_bytes(payload, base.key).model
        return make_trainer(task, config, base=pretrained, monitor=monitor)

    return TrainingJob({run_name: build}, max_frames=max_frames)


def pretrain_job(
    source: DataChoice, config: TrainConfig, model_config: ModelConfig, monitor: Monitor, run_name: str = "pretrain", max_frames: int = 100
) -> TrainingJob:
    task = source.task

    def build() -> Trainer:
        return make_trainer(task, config, model_config=model_config, monitor=monitor)

    return TrainingJob({run_name: build}, max_frames=max_frames)


def schedule_curve(config: TrainConfig | dict) -> tuple[np.ndarray, np.ndarray]:
    """(steps, lambda) of a run's schedule from step 0 to its last step: the strip under its animation."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**config)
    schedule = cfg.make_schedule()
    steps, _, lam = schedule.curve(400)  # ends one step short of the last: the strip runs to the end
    return np.append(steps, cfg.steps), np.append(lam, schedule.lam(cfg.steps))


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


def live_panel(owner: str, run_name: str, target_cloud: np.ndarray | None = None, temperature: bool = True) -> JobView | None:
    """Progress bar, loss and W2 curves and a light scatter, polled by a timed fragment while the job runs.

    ``temperature=False`` (pretraining) leaves τ and λ out of the progress text: there is no anneal.

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
        run = v.run(run_name)  # every run exists from the job's start: a KeyError is a page bug, shown as one
        latest = run.latest
        text = f"{v.state} · step {run.step}/{run.total_steps or '?'}"
        if latest is not None and temperature:
            text += f" · τ {latest.tau:.3g} · λ {latest.lam:.3f}"
        text += f" · {v.elapsed:.1f} s"
        st.progress(min(max(run.progress, 0.0), 1.0), text=text)
        # Once the run is over its results come next: the curves fold away so the results start on the first screen.
        box = st.expander("Loss, W2 and the last samples of this run", expanded=False) if v.finished else st.container()
        c1, c2 = box.columns([3, 2])
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
