"""The scenario gallery of the Start page: cards (a question and a picture), a scenario opened from its
shipped results in about a second, and a "train it live" button that re-runs it in the background job.

Shipped results come from ``scripts/make_scenarios.py`` (:mod:`gft.tasks.scenario_assets`); a live
re-run builds the same trainers (:func:`gft.tasks.scenarios.scenario_trainer`) in a
:class:`gft.app.jobs.TrainingJob`, so both show the same figure.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from gft.app import widgets as w
from gft.app.jobs import TrainingJob
from gft.app.resources import shipped_payload
from gft.app.session import job_slot, user_errors
from gft.core.checkpoints import checkpoint_from_bytes
from gft.tasks.runs import best_point
from gft.tasks.scenario_assets import ShippedScenario, load_scenario
from gft.tasks.scenarios import SCENARIOS, Scenario, few_step_w2, scenario, scenario_trainer
from gft.viz import compare as figs
from gft.viz.style import distinct_colors

OWNER = "gallery"
OPEN = "gallery_open"  # session key: the scenario shown below the cards


@st.cache_resource(show_spinner=False, max_entries=16)
def shipped(key: str) -> ShippedScenario:
    """A scenario's shipped results, read once per process (read-only)."""
    return load_scenario(key)


@st.cache_resource(show_spinner=False, max_entries=16)
def shipped_animation(key: str):
    """The animation of a shipped scenario, built once per process: opening it again costs nothing."""
    sc = shipped(key)
    return animation({r.name: r.snapshots for r in sc.runs}, sc.target_cloud, sc.pre_cloud, sc.train_points, schedules(scenario(key)))


@st.cache_resource(show_spinner=False, max_entries=16)
def thumbnail(key: str):
    """Where each run of a shipped scenario ends: one small static panel per run."""
    sc = shipped(key)
    final = {r.name: r.snapshots[-1].trajectory[-1] for r in sc.runs}
    fig = figs.sample_panels(final, sc.target_cloud[:400], height=84, colors=distinct_colors(list(final)))
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0))
    fig.update_annotations(text="")  # run names do not fit a card; the colours match the opened animation's panels
    return fig


BACKDROP_POINTS = 500  # per static cloud and panel: SVG points cost the browser, and 500 show the shape


def animation(panels: dict, target_cloud: np.ndarray, pre_cloud: np.ndarray | None, train_points: np.ndarray | None,
              schedules: dict | None = None):
    # The static clouds repeat in every panel: with 1,000 points each, three panels took a loaded 2-core
    # machine's Chromium ~4 s to draw (measured); 500 halve it and still show each law's shape.
    pre = None if pre_cloud is None else pre_cloud[:BACKDROP_POINTS]
    return figs.training_animation(panels, target_cloud[:BACKDROP_POINTS], pre, paths=40, train_points=train_points,
                                   colors=distinct_colors(list(panels)), height=380, schedules=schedules)


def schedules(sc: Scenario) -> dict:
    """Each run's dense λ(step) curve (the strip under the animation draws the schedule, not only its snapshots)."""
    return {run.name: w.schedule_curve(sc.config_of(run)) for run in sc.runs}


def cards(compact: bool = False) -> None:
    """One card per scenario: its title, its question, a picture of how its runs end, and Open.

    Once a scenario is open (or with ``compact``, e.g. while the page shows a finished demo) the cards
    shrink to one row of buttons, so the animation, its controls and its explanation fit one screen.
    """
    current = st.session_state.get(OPEN)
    cols = st.columns(len(SCENARIOS))
    for col, sc in zip(cols, SCENARIOS):
        # on_click, not "if button: ...; st.rerun()": the callback runs before the script, so a click costs one
        # rerun instead of two (the first animation is on screen a rerun sooner).
        if current is not None or compact:
            col.button(sc.title, key=f"open_{sc.key}", type="primary" if current == sc.key else "secondary", width="stretch",
                       help=sc.question, on_click=_open, args=(sc.key,))
            continue
        with col.container(border=True):
            st.markdown(f"**{sc.title}**")
            st.caption(sc.question)
            with user_errors("No shipped result"):
                st.plotly_chart(thumbnail(sc.key), key=f"thumb_{sc.key}", config={"staticPlot": True})
            st.button("Open", key=f"open_{sc.key}", width="stretch", icon=":material/play_circle:", on_click=_open, args=(sc.key,))


def is_open() -> bool:
    """Whether a scenario is open (it then takes the page's main figure block)."""
    return st.session_state.get(OPEN) is not None


def _open(key: str | None) -> None:
    if key is None:
        st.session_state.pop(OPEN, None)
    else:
        st.session_state[OPEN] = key


END = "W2 at the end"  # short column names: the table sits in a narrow column beside the figure


def few_label(k: int) -> str:
    return f"W2, {k} steps"


def w2_table(histories: dict[str, list[dict]], best: dict[str, dict | None], diverged: dict[str, int | None],
             few: dict[str, float | None], k: int) -> list[dict]:
    """One row per run: its (50-step) W2 at the end and at its lowest, its W2 with ``k`` Euler steps, and its
    validation pick and divergence where any run has them."""
    rows = []
    for name, hist in histories.items():
        w2 = [r["w2"] for r in hist if r.get("w2") is not None]
        row = {"run": name, END: round(w2[-1], 3) if w2 else None, few_label(k): round(few[name], 3) if few.get(name) is not None else None,
               "lowest on the way": round(min(w2), 3) if w2 else None}
        if any(v is not None for v in best.values()):
            b = best.get(name)
            row["validation pick"] = f"step {b['step']}, τ = {b['tau']:.3g}, W2 {b['w2']:.3f}" if b and b.get("w2") is not None else "—"
        if any(v is not None for v in diverged.values()):
            row["diverged"] = f"at step {diverged[name]}" if diverged.get(name) is not None else "no"
        rows.append(row)
    return rows


def verdict(rows: list[dict], null: dict | None, column: str = END) -> str:
    """One sentence from the numbers: which run is lowest in ``column``, and whether the gap is above the noise."""
    ends = sorted((r[column], r["run"]) for r in rows if r.get(column) is not None)
    if len(ends) < 2:
        return ""
    (best, name), (second, other) = ends[0], ends[1]
    text = f"Lowest {column}: **{name}** ({best:.3f}; next: {other}, {second:.3f})."
    if null and math.isfinite(null.get("sd", math.nan)):
        # Two independent W2 values, each scattering by sd: their difference scatters by sd * sqrt(2).
        if second - best < 2 * math.sqrt(2) * null["sd"]:
            text += (f" That gap is within the noise: W2 on {null['n']} points scatters by ±{2 * null['sd']:.2f} even between two "
                     f"draws of the target itself, so call it a tie at this size.")
        else:
            text += f" That gap is beyond the noise of W2 on {null['n']} points (±{2 * null['sd']:.2f} between two target draws)."
    return text


def live_job(sc: Scenario) -> TrainingJob:
    """The scenario's runs as one background job (built in the job's thread, from the shipped base)."""
    payload = shipped_payload(sc.base)

    def factory(run):
        return lambda: scenario_trainer(sc, run, checkpoint_from_bytes(payload, f"assets/pretrained_{sc.base}.pt").model)

    return TrainingJob({run.name: factory(run) for run in sc.runs}, max_frames=sc.frames + 1)


def opened() -> None:
    """The opened scenario: its animation (shipped, or the live re-run once it finishes), numbers and controls."""
    key = st.session_state.get(OPEN)
    if key is None:
        return
    with user_errors("Cannot open this scenario"):
        sc = scenario(key)
        ship = shipped(key)
        slot = job_slot()
        live = slot.for_page(OWNER) is not None and slot.params_for(OWNER).get("scenario") == key
        c = st.columns([3, 1, 1, 1], vertical_alignment="center")
        versions = ship.meta.get("versions", {})
        c[0].caption(f"**{sc.title}** · " + (f"live re-run on this machine, seed {sc.runs[0].config.seed}" if live else
                     f"shipped result: seed {sc.runs[0].config.seed}, torch {versions.get('torch', '?')}, scripts/make_scenarios.py"))
        if c[1].button("Train it live", key=f"live_{key}", icon=":material/model_training:", width="stretch", disabled=live,
                       help=f"Re-run these {len(sc.runs)} runs here, in the background ({sc.steps} steps each, seed {sc.runs[0].config.seed})"):
            w.launch(OWNER, live_job(sc), {"scenario": key, "target_cloud": ship.target_cloud}, label=f"scenario: {sc.title}")
            st.rerun()
        if c[2].button("Shipped result", key=f"shipped_{key}", width="stretch", disabled=not live):
            slot.clear_page(OWNER)
            st.rerun()
        c[3].button("Close", key=f"close_{key}", icon=":material/close:", width="stretch", on_click=_open, args=(None,))
        if live:
            _live(sc, ship)
            return
        left, right = st.columns([5, 2])
        left.plotly_chart(shipped_animation(key), key=f"anim_{key}")
        with right:
            st.markdown(f"**{sc.question}** {sc.look_for}")
            _numbers(sc, ship, {r.name: list(r.history) for r in ship.runs}, {r.name: r.best for r in ship.runs},
                     {r.name: r.diverged_at for r in ship.runs}, {r.name: r.few_step_w2 for r in ship.runs})


def _numbers(sc: Scenario, ship: ShippedScenario, histories: dict, best: dict, diverged: dict, few: dict) -> None:
    rows = w2_table(histories, best, diverged, few, sc.trajectory_steps)
    st.dataframe(rows, hide_index=True)
    st.caption("W2: how far the model's samples are from fresh target draws (lower is better), with 50 Euler steps, "
               "or as few as the column says.")
    text = verdict(rows, ship.null_w2, few_label(sc.trajectory_steps) if sc.judge_few_steps else END)
    if text:
        st.markdown(text)


def _live(sc: Scenario, ship: ShippedScenario) -> None:
    def restart(paused: bool) -> bool:
        w.launch(OWNER, live_job(sc), {"scenario": sc.key, "target_cloud": ship.target_cloud}, paused=paused,
                 label=f"scenario: {sc.title}")
        return True

    # The status line, Stop, and the rerun that draws the animation once the runs finish are job_controls'.
    w.job_controls(OWNER, restart, full=False, run_name=sc.runs[0].name)
    params = job_slot().params_for(OWNER)
    view = w.live_panel(OWNER, sc.runs[0].name, params.get("target_cloud"))
    if view is None or not view.finished:
        st.caption("Training all runs side by side; the animation appears when they finish. The panel follows the first run.")
        return
    runs = {r.name: r for r in view.runs}
    if not all(r.frames for r in runs.values()):
        st.warning("The live run ended before its first snapshot.")
        return
    with user_errors("Cannot draw the live run"):
        anim = w.memo(OWNER, "anim", params["token"], lambda: animation({n: r.frames for n, r in runs.items()}, ship.target_cloud,
                                                                         ship.pre_cloud, ship.train_points, schedules(sc)), spinner="Building the animation ...")
        left, right = st.columns([5, 2])
        left.plotly_chart(anim, key=f"live_anim_{sc.key}")
        with right:
            st.markdown(f"**{sc.question}** {sc.look_for}")
            job = job_slot().for_page(OWNER)
            few = w.memo(OWNER, "few", params["token"], lambda: {
                run.name: few_step_w2(sc, run, job.model(run.name)) if job is not None and job.model(run.name) is not None else None
                for run in sc.runs}, spinner="Measuring the few-step samples ...")
            _numbers(sc, ship, {n: list(r.history) for n, r in runs.items()}, {n: best_point(list(r.history)) for n, r in runs.items()},
                     {n: None for n in runs}, few)


HELPS = "sixteen_points"  # the scenario where keeping part of the pretrained drift pays off


def behind_note(gft: float | None, baseline: float | None, metric: str, baseline_name: str = "standard fine-tuning",
                key: str = "behind") -> bool:
    """When GFT ends behind a baseline (a higher ``metric``), say why in one sentence and link the scenario
    where it helps. Returns whether the note was shown."""
    if gft is None or baseline is None or not gft > baseline:
        return False
    with st.container(border=True):
        st.markdown(
            f"**Why GFT is behind here** ({metric} {gft:.3g} against {baseline:.3g} for {baseline_name}): it spends most of "
            "its steps annealing, pulled towards the pretrained drift while λ > 0, so at an equal budget it has had fewer "
            "steps on the target itself. It pays off where the pretrained drift is worth keeping, e.g. with few target samples."
        )
        if st.button(f"Open “{scenario(HELPS).title}” on Start here", key=f"{key}_open", icon=":material/arrow_forward:"):
            st.session_state[OPEN] = HELPS
            st.switch_page("pages/1_start_here.py")
    return True
