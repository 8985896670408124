"""Chains of shifts: fine-tune one 2D model on three or more targets in turn, with GFT and with standard
fine-tuning side by side, and watch what each keeps of the earlier targets."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app import layout
from gft.app import pickers as pick
from gft.app import widgets as w
from gft.app.jobs import TrainingJob
from gft.app.session import job_slot, page_defaults, user_errors
from gft.core.checkpoints import checkpoint_from_bytes
from gft.core.training import TrainConfig
from gft.data import DISTRIBUTIONS
from gft.tasks.chains import ChainTrainer, stage_metric
from gft.tasks.runs import Monitor
from gft.viz import compare as compare_figs
from gft.viz.chains import chain_preview_figure, forgetting_figure

OWNER = "chains"
DEFAULT_TARGETS = ["8gaussians", "circles", "checkerboard"]
# Stages of your own, picked in the same list as the presets (so they can sit anywhere in the chain); each
# at most once, given below the figure. Plain names: the bound multiselect puts them in the URL as shown.
DRAWING, POINTS_FILE, IMAGE = "your drawing", "your points file", "your image"
OWN = {DRAWING: pick.drawing_picker, POINTS_FILE: pick.points_file_picker, IMAGE: pick.image_picker}
BACKDROP_POINTS = 500  # of each stage's target, behind the animation
PREVIEW_HEIGHT = 330  # px: one row of the chain's clouds (two rows for a long chain: 1.45 times this)
ANIMATION_HEIGHT = 360  # px of panels; the schedule strip and the slider add about 130 px

w.ensure_app_frame()
layout.page_header(
    "Chains of shifts",
    "The target keeps moving: fine-tune on the first target, then that model on the next, and so on. GFT anneals again "
    "from the previous stage's model each time; standard fine-tuning just keeps training. What does each forget?",
)
controls = layout.key_controls()  # one row of settings, then the chain in words and Start (filled once every setting is read)
with controls:
    row = st.columns([1.3, 3, 1, 1])
    what_box, start_box = st.columns([2, 3])
figure_box = layout.main_figure()  # full width: the chain's clouds before a run, the forgetting curves live, the animation after

with row[0]:
    base = pick.base_picker("ch_base")
targets = row[1].multiselect(
    "Targets, in order (at least 3)", sorted(DISTRIBUTIONS) + list(OWN), default=DEFAULT_TARGETS, max_selections=6,
    key="ch_targets", bind="query-params",
    help=f"presets by name; {', '.join(repr(o) for o in OWN)} make a stage of your own target, drawn or uploaded below the figure",
)
steps = int(row[2].number_input("Steps per stage", 10, 20_000, page_defaults().chain_steps, 50, key="ch_steps", bind="query-params"))
every = max(1, steps // 10)  # a snapshot (and the Step button's stride) every tenth of a stage
seed = int(row[3].number_input("Seed", 0, 2**31 - 1, 0, 1, key="ch_seed", bind="query-params",
                               help="the same seed for both chains: the same noise, batches and initial weights"))

with st.expander("Run settings: batch, learning rate, GFT schedule, coupling"):
    c = st.columns(3)
    batch = int(c[0].number_input("Batch", 2, 4096, 256, 64, key="ch_batch", bind="query-params"))
    lr = float(c[1].number_input("Learning rate", 1e-5, 0.1, 3e-3, 5e-4, format="%.4f", key="ch_lr", bind="query-params"))
    schedule = c[2].text_input("GFT schedule per stage", "stages:4,0.5,3", key="ch_schedule", bind="query-params",
                               help="the same anneal on every stage (τ from 4, halved over 3 stages, then 0); standard fine-tuning trains at τ = 0")
    coupling, reg = pick.coupling_picker("ch_")

# Your own stages: each picker below the figure; a stage not given yet is None (the preview says so, Start refuses).
own = {}
for option in [t for t in targets if t in OWN]:
    i = targets.index(option)
    st.subheader(f"Stage {i + 1}: {option}")
    own[option] = OWN[option]("ch_", f"Stage {i + 1}")
stages: list[pick.DataChoice | None] = [own[t] if t in OWN else pick.DataChoice(label=t, spec=t, preset=t) for t in targets]

with what_box:
    names = [base.label.split(" ")[0] if base is not None else "?"] + [s.label if s is not None else t for s, t in zip(stages, targets)]
    st.markdown("**" + " → ".join(names) + "**")
    st.caption(f"{steps} steps on each target. Pick 'your drawing' (or a file) in the list to make a stage of your own.")


def configs() -> dict[str, TrainConfig]:
    common = dict(steps=steps, batch=batch, lr=lr, seed=seed, coupling=coupling, sinkhorn_reg=reg, callback_every=every, final_fraction=0.2)
    return {"gft": TrainConfig(method="gft", schedule=schedule, **common), "standard": TrainConfig(method="standard", **common)}


def monitor() -> Monitor:
    return Monitor(eval_every=every * 2, eval_points=300, particles=300, trajectory_steps=16)


def start(paused: bool) -> bool:
    if base is None:
        st.error("Pick a pretrained 2D model first.")
        return False
    if len(targets) < 3:
        st.error(f"A chain needs at least 3 targets, in order; {len(targets)} picked.")
        return False
    missing = [f"stage {i + 1} ({t})" for i, (t, s) in enumerate(zip(targets, stages)) if s is None]
    if missing:
        st.error(f"Give {', '.join(missing)} first: draw or upload it below the figure.")
        return False
    with user_errors("Cannot start the chains"):
        runs, mon, payload, key = configs(), monitor(), base.payload, base.key
        tasks = [s.task for s in stages]  # presets by name, drawings and uploads with their points: what each stage trains on

        def factory(config: TrainConfig):
            return lambda: ChainTrainer(checkpoint_from_bytes(payload, key).model, tasks, config, monitor=mon)

        job = TrainingJob({name: factory(config) for name, config in runs.items()}, max_frames=100)
        labels = [s.label for s in stages]
        params = {"targets": labels, "clouds": [s.preview(BACKDROP_POINTS) for s in stages], "steps": steps,
                  "configs": {n: cfg.to_dict() for n, cfg in runs.items()}, "base_label": base.label}
        w.launch(OWNER, job, params, paused=paused, label=f"chain {' → '.join(labels)}")
        return True
    return False


with start_box:
    w.job_controls(OWNER, start, step_size=every)
job = job_slot().for_page(OWNER)
params = job_slot().params_for(OWNER)
view = job.view() if job is not None else None
if view is None:
    start_box.caption("Press Start: both chains train side by side in the background; the figure below shows what each forgets as "
                      "they train, then the whole chain animated.")


def preview() -> None:
    """Before a run: the model the chain starts from and each stage's target, in order."""
    with user_errors("Cannot draw the chain"):
        start_cloud = (base.label, base.cloud()) if base is not None else ("no model", None)
        clouds = [(s.label if s is not None else t, s.preview() if s is not None else None) for s, t in zip(stages, targets)]
        if not clouds:
            st.info("Pick at least 3 targets, in order.")
            return
        st.plotly_chart(chain_preview_figure(start_cloud, clouds, height=PREVIEW_HEIGHT), key="ch_preview")
        st.caption("What the chain trains on, left to right: samples of the pretrained model, then each stage's target in order.")


@st.fragment(run_every=None if view is None or view.finished else w.CHART_POLL_S)
def live() -> None:
    now = job.view()
    st.plotly_chart(forgetting_figure({r.name: r.history for r in now.runs}, params["targets"], params["steps"], height=420), key="ch_live")
    st.caption(" · ".join(f"{r.name}: step {r.step}/{r.total_steps or '?'}" for r in now.runs)
               + ". W2 to each target while both chains train: a curve that rises after its stage is what the model forgets.")
    if now.finished and not view.finished:
        st.rerun()  # once: the full rerun draws the results and stops this polling


def animation() -> None:
    backdrop = np.concatenate(params["clouds"])
    with user_errors("Animation"):
        anim = w.memo(OWNER, "anim", params["token"],
                      lambda: compare_figs.training_animation({r.name: r.frames for r in view.runs}, backdrop, height=ANIMATION_HEIGHT))
        st.plotly_chart(anim, key="ch_anim")
        st.caption(f"The drift across the whole chain. One slider for both runs: the same step, the same noise particles. Orange: all "
                   f"{len(params['targets'])} targets; the target being fitted changes every {params['steps']} steps, when GFT's τ jumps back up.")


with figure_box:
    if view is None:
        preview()
    elif not view.finished:
        live()
    elif view.error:
        st.error(f"The run failed: {view.error}")
        preview()
    else:
        animation()

if view is None or not view.finished or view.error:
    st.stop()

st.subheader("What each method keeps of earlier targets")
st.plotly_chart(forgetting_figure({r.name: r.history for r in view.runs}, params["targets"], params["steps"]), key="ch_forgetting")
rows = []
for r in view.runs:
    last = {k: v for h in r.history for k, v in h.items() if k.startswith("w2_t") and v is not None}
    rows.append({"method": r.name, "steps": r.step} | {f"W2 to {t} (end)": last.get(stage_metric(j)) for j, t in enumerate(params["targets"])})
st.dataframe(rows, hide_index=True, key="ch_table")
st.caption("W2 (Wasserstein-2): how far, on average, the model's samples must move to match a target; lower is closer. "
           "Measured after the whole chain on 300 held-out points of each target (50-step Euler samples). The last target "
           "is the one just fitted; the earlier columns show how much of each earlier target survived.")
