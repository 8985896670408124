"""Chains of shifts: fine-tune one 2D model on three or more targets in turn, with GFT and with standard
fine-tuning side by side, and watch what each keeps of the earlier targets."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app import pickers as pick
from gft.app import resources as res
from gft.app import widgets as w
from gft.app.jobs import TrainingJob
from gft.app.session import job_slot, page_defaults, user_errors
from gft.core.checkpoints import checkpoint_from_bytes
from gft.core.training import TrainConfig
from gft.data import DISTRIBUTIONS
from gft.tasks.chains import ChainTrainer, stage_metric
from gft.tasks.runs import Monitor
from gft.viz import compare as compare_figs
from gft.viz.chains import forgetting_figure

OWNER = "chains"
RUNS = ("gft", "standard")
DEFAULT_TARGETS = ["8gaussians", "circles", "checkerboard"]

w.ensure_app_frame()
st.title("Chains of shifts")
st.caption(
    "The target keeps moving: fine-tune on the first target, then fine-tune that model on the second, and so on. "
    "GFT anneals from the previous stage's model each time (its f_pre is the model of the stage before); standard "
    "fine-tuning just keeps training. The chart shows the quality on every target as the chain goes on: a curve "
    "that rises after its stage is what the model forgot."
)

c1, c2 = st.columns(2)
with c1:
    base = pick.base_picker("ch_base")
with c2:
    targets = st.multiselect("Targets, in order (at least 3)", sorted(DISTRIBUTIONS), default=DEFAULT_TARGETS, max_selections=6,
                             key="ch_targets", bind="query-params")
c = st.columns(5)
steps = int(c[0].number_input("Steps per stage", 10, 20_000, page_defaults().chain_steps, 50, key="ch_steps", bind="query-params"))
batch = int(c[1].number_input("Batch", 2, 4096, 256, 64, key="ch_batch", bind="query-params"))
lr = float(c[2].number_input("Learning rate", 1e-5, 0.1, 3e-3, 5e-4, format="%.4f", key="ch_lr", bind="query-params"))
seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, 1, key="ch_seed", bind="query-params"))
schedule = c[4].text_input("GFT schedule per stage", "stages:4,0.5,3", key="ch_schedule", bind="query-params",
                           help="the same anneal on every stage; standard fine-tuning trains at τ = 0")
coupling, reg = pick.coupling_picker("ch_")


def configs() -> dict[str, TrainConfig]:
    every = max(1, steps // 10)
    common = dict(steps=steps, batch=batch, lr=lr, seed=seed, coupling=coupling, sinkhorn_reg=reg, callback_every=every, final_fraction=0.2)
    return {"gft": TrainConfig(method="gft", schedule=schedule, **common), "standard": TrainConfig(method="standard", **common)}


def monitor() -> Monitor:
    every = max(1, steps // 10)
    return Monitor(eval_every=every * 2, eval_points=300, particles=300, trajectory_steps=16)


def start(paused: bool) -> bool:
    if base is None:
        st.error("Pick a pretrained 2D model first.")
        return False
    if len(targets) < 3:
        st.error(f"A chain needs at least 3 targets, in order; {len(targets)} picked.")
        return False
    with user_errors("Cannot start the chains"):
        runs, chain, mon, payload, key = configs(), list(targets), monitor(), base.payload, base.key

        def factory(config: TrainConfig):
            return lambda: ChainTrainer(checkpoint_from_bytes(payload, key).model, chain, config, monitor=mon)

        job = TrainingJob({name: factory(config) for name, config in runs.items()}, max_frames=100)
        params = {"targets": chain, "steps": steps, "configs": {n: cfg.to_dict() for n, cfg in runs.items()}, "base_label": base.label}
        w.launch(OWNER, job, params, paused=paused, label=f"chain {' → '.join(chain)}")
        return True
    return False


st.subheader("Train both chains")
w.job_controls(OWNER, start, step_size=max(1, steps // 10))
job = job_slot().for_page(OWNER)
params = job_slot().params_for(OWNER)
if job is None:
    st.caption("Press Start: one background job trains the GFT chain and the standard chain side by side.")
    st.stop()
view = job.view()


@st.fragment(run_every=None if view.finished else w.CHART_POLL_S)
def live() -> None:
    now = job.view()
    st.caption(" · ".join(f"{r.name}: step {r.step}/{r.total_steps or '?'}" for r in now.runs))
    st.plotly_chart(forgetting_figure({r.name: r.history for r in now.runs}, params["targets"], params["steps"]), key="ch_live")


if not view.finished:
    live()
    st.stop()
if view.error:
    st.stop()

st.subheader("The drift across the whole chain")
backdrop = np.concatenate([res.preset_points(t, 500) for t in params["targets"]])
with user_errors("Animation"):
    anim = w.memo(OWNER, "anim", params["token"], lambda: compare_figs.training_animation({r.name: r.frames for r in view.runs}, backdrop))
    st.plotly_chart(anim, key="ch_anim")
    st.caption(f"One slider for both runs: the same step of the chain, the same noise particles. Orange: all {len(params['targets'])} "
               "targets; the stage (and the target being fitted) changes every "
               f"{params['steps']} steps, when GFT's τ jumps back up.")
st.subheader("What each method keeps of earlier targets")
st.plotly_chart(forgetting_figure({r.name: r.history for r in view.runs}, params["targets"], params["steps"]), key="ch_forgetting")
rows = []
for r in view.runs:
    last = {k: v for h in r.history for k, v in h.items() if k.startswith("w2_t") and v is not None}
    rows.append({"method": r.name, "steps": r.step} | {f"W2 to {t} (end)": last.get(stage_metric(j)) for j, t in enumerate(params["targets"])})
st.dataframe(rows, hide_index=True, key="ch_table")
st.caption("W2 after the whole chain (300 held-out points of each target; 50-step Euler samples). The last target is the "
           "one just fitted; the earlier columns show how much of each earlier target survived.")
