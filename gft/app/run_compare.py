"""Any two runs of the session side by side: their animations (one shared slider when they can share
one), their curves and a table of their numbers. Reads the run history only; nothing trains here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from gft.app.history import RunRecord
from gft.app.resources import preset_points
from gft.app.session import job_slot, user_errors
from gft.viz import compare as compare_figs
from gft.viz import training as figures


@dataclass(frozen=True)
class ShownRun:
    """One 2D run of one job in the history (a comparison job holds several)."""

    record: RunRecord
    run: str  # the run's name inside its job

    @property
    def key(self) -> str:
        return f"{self.record.number}:{self.run}"

    @property
    def title(self) -> str:
        return self.record.name if len(self.record.job.view().runs) == 1 else f"{self.record.name} · {self.run}"

    def target(self) -> tuple[str | None, np.ndarray | None]:
        """The target's spec and a cloud of it, from the settings the run was started with."""
        params = self.record.params
        if "target_cloud" in params:
            return params.get("target_spec"), params["target_cloud"]
        if "cloud" in params:  # a pretraining run: its training data
            return params.get("spec"), params["cloud"]
        settings = params.get("settings")
        if settings is not None and hasattr(settings, "target"):
            return settings.target, preset_points(settings.target)
        return None, None


def comparable_runs() -> list[ShownRun]:
    """Every finished 2D run of the history that recorded trajectories, newest first."""
    shown = []
    for record in reversed(job_slot().records()):
        view = record.job.view()
        if not view.finished:
            continue
        for run in view.runs:
            traj = run.frames[0].trajectory if run.frames else None
            if traj is not None and traj.ndim == 3 and traj.shape[-1] == 2:
                shown.append(ShownRun(record, run.name))
    return shown


def _final(history: tuple[dict, ...], column: str) -> float | None:
    values = [r[column] for r in history if r.get(column) is not None]
    return values[-1] if values else None


def comparison_table(runs: list[ShownRun]) -> list[dict]:
    """One row per run: where it came from, its settings and its last numbers."""
    rows = []
    for shown in runs:
        view = shown.record.job.view()
        run = view.run(shown.run)
        config = shown.record.params.get("config", {})
        result = run.result
        rows.append({
            "run": shown.title,
            "page": shown.record.owner,
            "method": config.get("method", shown.run),
            "schedule": config.get("schedule", ""),
            "coupling": config.get("coupling", ""),
            "target": shown.target()[0] or "",
            "steps": run.step,
            "stopped": bool(result.stopped) if result is not None else None,
            "steps/s": round(result.steps_per_second, 1) if result is not None else None,
            "final loss": _final(run.history, "loss"),
            "final W2": _final(run.history, "w2"),
        })  # fmt: skip
    return rows


def _animation(shown: ShownRun):
    run = shown.record.job.view().run(shown.run)
    _, target = shown.target()
    return figures.trajectory_animation(run.frames, None, target, height=460, title=shown.title)


def _shared_animation(left: ShownRun, right: ShownRun):
    """One figure, one slider, when both runs recorded the same steps on the same target; else None."""
    (spec_l, cloud), (spec_r, _) = left.target(), right.target()
    if spec_l is None or spec_l != spec_r or cloud is None:
        return None
    frames = {s.title: s.record.job.view().run(s.run).frames for s in (left, right)}
    if len(frames) < 2:
        return None
    steps = [{f.step for f in fr} for fr in frames.values()]
    if len(steps[0] & steps[1]) < 2:
        return None
    return compare_figs.training_animation(frames, cloud)


def _memo(name: str, build):
    """Figures of finished runs never change: build each once per session (bounded by the history)."""
    store = st.session_state.setdefault("gft_compare_memo", {})
    live = {s.key for s in comparable_runs()}
    for stale in [k for k in store if not set(k.split("|")[:-1]) <= live]:
        del store[stale]  # runs evicted from the history take their figures with them
    if name not in store:
        store[name] = build()
    return store[name]


def compare_section(prefix: str) -> None:
    """Pick two finished runs of this session and show them side by side."""
    runs = comparable_runs()
    if len(runs) < 2:
        st.caption("Finish two runs (on any 2D page) to compare them here side by side; the session keeps the last "
                   f"{job_slot().keep}.")
        return
    by_key = {s.key: s for s in runs}
    keys = list(by_key)
    c = st.columns(2)
    left_key = c[0].selectbox("Left", keys, index=1, key=f"{prefix}cmp_left", format_func=lambda k: by_key[k].title)
    right_key = c[1].selectbox("Right", keys, index=0, key=f"{prefix}cmp_right", format_func=lambda k: by_key[k].title)
    left, right = by_key[left_key], by_key[right_key]
    with user_errors("Cannot compare these runs"):
        shared = _memo(f"{left.key}|{right.key}|shared", lambda: _shared_animation(left, right))
        if shared is not None:
            st.plotly_chart(shared, key=f"{prefix}cmp_shared")
            st.caption("One slider drives both panels: the same training step, the same noise particles.")
        else:
            a, b = st.columns(2)
            a.plotly_chart(_memo(f"{left.key}|anim", lambda: _animation(left)), key=f"{prefix}cmp_anim_left")
            b.plotly_chart(_memo(f"{right.key}|anim", lambda: _animation(right)), key=f"{prefix}cmp_anim_right")
            st.caption("Two sliders: the runs recorded different steps or have different targets.")
        histories = {s.title: s.record.job.view().run(s.run).history for s in (left, right)}
        st.plotly_chart(figures.runs_curves_figure(histories), key=f"{prefix}cmp_curves")
        st.dataframe(comparison_table([left, right]), hide_index=True, key=f"{prefix}cmp_table")
