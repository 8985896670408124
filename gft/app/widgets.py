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
from gft.core.manual_schedule import ManualSchedule
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
    base: BaseChoice, target: DataChoice, config: TrainConfig, monitor: Monitor, run_name: str = "gft", max_frames: int = 100,
    manual: ManualSchedule | None = None,
) -> TrainingJob:
    """A job that fine-tunes ``base`` on ``target`` (everything heavy happens in its thread).

    With ``manual`` the run trains at the τ a knob on the page sets (manual annealing) instead of the
    config's schedule: the trainer reads the schedule every step, so the next steps use a new value.
    """
    payload, task = base.payload, target.task

    def build() -> Trainer:
        pretrained = checkpoint_from_bytes(payload, base.key).model
        trainer = make_trainer(task, config, base=pretrained, monitor=monitor)
        if manual is not None:
            trainer.schedule = manual
        return trainer

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


def launch(owner: str, job: TrainingJob, params: dict, paused: bool = False, label: str = "") -> None:
    """Record ``job`` in the session's run history as ``owner``'s run and start it.

    The page's previous run is stopped but kept; other pages' runs are not touched.
    """
    params = dict(params, token=uuid.uuid4().hex, started_at=time.monotonic())
    if paused:
        job.start(paused=True)  # add()'s own start() is then a no-op
    job_slot().add(owner, job, params, label or owner)


POLL_S = 1.0  # the controls fragment: state, progress and buttons (cheap: no charts; clicks rerun it at once)
CHART_POLL_S = 2.0  # the live charts: each redraw costs the browser and the training thread CPU


def status_text(view: JobView, run_name: str | None = None, temperature: bool = True) -> str:
    """One line: state, progress (step, τ and λ of ``run_name`` when given) and elapsed time.

    ``temperature=False`` (pretraining) leaves τ and λ out: there is no anneal.
    """
    if run_name is None:
        return f"{view.state} · {len(view.runs)} runs · {view.progress:.0%} · {view.elapsed:.1f} s"
    run = view.run(run_name)  # every run exists from the job's start: a KeyError is a page bug, shown as one
    text = f"{view.state} · step {run.step}/{run.total_steps or '?'}"
    if run.latest is not None and temperature:
        text += f" · τ {run.latest.tau:.3g} · λ {run.latest.lam:.3f}"
    return text + f" · {view.elapsed:.1f} s"


def job_controls(owner: str, start: Callable[[bool], bool], step_size: int = 10, full: bool = True, run_name: str | None = None,
                 temperature: bool = True) -> None:
    """Start / Pause / Step / Stop / Reset and the run's status line, in one fragment.

    ``start(paused)`` builds and launches a job; False if refused (it shows why). The buttons live in a
    fragment and act through ``on_click`` callbacks, so Pause, Resume, Step and Stop only set an event
    on the job and redraw this small block: no full page rerun, whose figures would compete with the
    training thread for the CPU. Start, Reset and a finished run rerun the page (it draws results).
    """
    slot = job_slot()
    job = slot.for_page(owner)
    active = job is not None and not job.view().finished

    @st.fragment(run_every=POLL_S if active else None)
    def _controls() -> None:
        job = slot.for_page(owner)
        view = job.view() if job is not None else None
        state = view.state if view is not None else "idle"
        running = state in (RUNNING, PAUSED)
        cols = st.columns(5 if full else 3)
        start_clicked = cols[0].button("Start" if not running else "Restart", type="primary", icon=":material/play_arrow:",
                                       key=f"{owner}_start", width="stretch")
        step_clicked = False
        if full:
            if state == PAUSED:
                cols[1].button("Resume", icon=":material/resume:", key=f"{owner}_resume", width="stretch", on_click=job.resume)
            else:
                cols[1].button("Pause", icon=":material/pause:", key=f"{owner}_pause", disabled=state != RUNNING, width="stretch",
                               on_click=job.pause if job is not None else None)
            can_step = job is not None and state == PAUSED
            step_clicked = cols[2].button(
                f"Step +{step_size}", icon=":material/skip_next:", key=f"{owner}_step", disabled=state == RUNNING, width="stretch",
                help="Advance a paused run (or start one paused) by this many steps",
                on_click=(lambda: job.step(step_size)) if can_step else None,
            ) and not can_step
        cols[-2].button("Stop", icon=":material/stop:", key=f"{owner}_stop", disabled=not running, width="stretch",
                        on_click=job.stop if job is not None else None)
        reset_clicked = cols[-1].button("Reset", icon=":material/restart_alt:", key=f"{owner}_reset", disabled=job is None, width="stretch")
        if start_clicked:
            if start(False):
                st.rerun()
            return
        if step_clicked:  # no job to step (or a finished one): start a new one paused, then step it
            if start(True):
                slot.for_page(owner).step(step_size)
                st.rerun()
            return
        if reset_clicked:
            slot.clear_page(owner)
            st.rerun()
        if view is None:
            return
        if job.stopping and not view.finished:
            job.wait(1.0)  # the thread checks the stop event every step: this is a few ms, not a second
            view = job.view()
        st.progress(min(max(view.progress, 0.0), 1.0), text=status_text(view, run_name, temperature))
        if view.error:
            st.error(f"The run failed: {view.error}")
        if view.finished and active:
            st.rerun()  # once: the full rerun draws the results and stops this polling

    _controls()


def live_panel(owner: str, run_name: str, target_cloud: np.ndarray | None = None) -> JobView | None:
    """Loss and W2 curves and a light scatter, redrawn by a slow timed fragment while the job runs.

    Returns the job view at this script run (None without a job). The status line and the buttons are
    :func:`job_controls`' (a faster fragment); this one only draws, and only when new rows arrived.
    """
    job = job_slot().for_page(owner)
    if job is None:
        return None
    view = job.view()

    @st.fragment(run_every=None if view.finished else CHART_POLL_S)
    def _live() -> None:
        job_now = job_slot().for_page(owner)
        if job_now is None:
            return
        now = job_now.view()
        run = now.run(run_name)
        curves, scatter = _live_figures(owner, job_slot().params_for(owner).get("token"), run, target_cloud)
        # Once the run is over its results come next: the curves fold away so the results start on the first screen.
        box = st.expander("Loss, W2 and the last samples of this run", expanded=False) if now.finished else st.container()
        c1, c2 = box.columns([3, 2])
        c1.plotly_chart(curves, key=f"{owner}_live_curves")
        c2.plotly_chart(scatter, key=f"{owner}_live_scatter")

    _live()
    return view


def _live_figures(owner: str, token: str | None, run, target_cloud: np.ndarray | None):
    """The two live figures, rebuilt only when the run recorded a new row (same figure: no browser redraw)."""
    cache = st.session_state.setdefault(f"{owner}_live_figs", {})
    stamp = (token, len(run.history))
    if cache.get("stamp") != stamp:
        latest = run.latest
        cache["figs"] = (figures.curves_figure(run.history),
                         figures.live_scatter(latest.samples if latest is not None else None, target_cloud))
        cache["stamp"] = stamp
    return cache["figs"]


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
