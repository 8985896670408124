"""Pretrain: load a shipped flow model or train one on a preset, your points or a drawing."""

from __future__ import annotations

import streamlit as st

from gft.app import pickers as pick
from gft.app import resources as res
from gft.app import widgets as w
from gft.app.sampler_panel import sampling_section
from gft.app.session import job_slot, page_defaults, user_errors
from gft.core.models import ModelConfig
from gft.core.training import TrainConfig
from gft.data import DISTRIBUTIONS
from gft.evaluation import probes
from gft.tasks.runs import Monitor
from gft.viz import training as figures

OWNER = "pretrain"
RUN = "pretrain"
MODES = ("shipped", "train")

w.ensure_app_frame()
st.title("Pretrain a flow model")
st.caption("Plain flow matching from N(0, I) noise (t = 0) to data (t = 1). The model you keep here becomes a base on the Gradual fine-tune page.")

mode = st.radio("Model", MODES, key="pt_mode", horizontal=True, bind="query-params",
                captions=["use a pretrained model from assets/", "train one here, in the background"])


def trajectories_section(key: str, payload: bytes, data_cloud, label: str) -> None:
    """The model's trajectories with a t slider (Plotly's own, no server round trip), plus an optional field."""
    show_field = st.checkbox("show the velocity field", key="pt_show_field")

    def build():
        paths = res.model_paths(key, payload, n=500, steps=40)
        field = probes.velocity_field(res.payload_model(key, payload), [i / 40 for i in range(41)]) if show_field else None
        return figures.time_scrub_figure(paths, target=data_cloud, field=field, caption=label, names=("", "training data"))

    fig = w.memo(f"{OWNER}_traj", f"field={show_field}", key, build)
    st.plotly_chart(fig, key="pt_traj")


def use_as_base_button(base_option: str) -> None:
    """Open the Gradual fine-tune page with this model selected as the base."""
    if st.button("Fine-tune this model →", key="pt_use", icon=":material/thermostat:"):
        # Through the URL: a plain switch_page would try to clear this page's bound parameters and fail.
        st.switch_page("pages/3_gradual_finetune.py", query_params={"ft_base": base_option})


if mode == "shipped":
    names = res.shipped_2d_names()
    if not names:
        st.error("No shipped models found in assets/: run scripts/make_assets.py.")
        st.stop()
    name = st.selectbox("Shipped model", names, index=names.index("moons") if "moons" in names else 0, key="pt_model", bind="query-params")
    base = pick.base_from_name(name)
    ckpt = res.shipped_checkpoint(name)
    w2 = ckpt.extra.get("w2")
    st.caption(
        f"Pretrained on **{ckpt.data}**: MLP width {ckpt.model.config.width}, depth {ckpt.model.config.depth}, "
        f"{ckpt.train.get('steps')} steps, {ckpt.train.get('coupling')} coupling, seed {ckpt.train.get('seed')}"
        + (f", W2 to held-out data {w2:.3f}." if w2 is not None else ".")
    )
    trajectories_section(base.key, base.payload, res.preset_points(ckpt.data) if ckpt.data in DISTRIBUTIONS else None, f"{name} (shipped)")
    c = st.columns(2)
    c[0].download_button("Checkpoint (.pt)", base.payload, file_name=f"pretrained_{name}.pt", mime="application/octet-stream",
                         icon=":material/download:", on_click="ignore")
    with c[1]:
        use_as_base_button(name)
    st.stop()

# ---- train a new one ------------------------------------------------------------------------------
source = pick.data_picker("pt_", "Source data", default="moons")
if source is not None:
    with st.expander("Source data", expanded=False):
        st.plotly_chart(figures.clouds_figure(target=source.preview(), height=360, names=("", source.label)), key="pt_src_fig")

c = st.columns(5)
steps = int(c[0].number_input("Steps", 1, 200_000, page_defaults().pretrain_steps, 500, key="pt_steps", bind="query-params"))
batch = int(c[1].number_input("Batch", 2, 65_536, 256, 64, key="pt_batch", bind="query-params", help="OT couplings accept at most 4096"))
lr = float(c[2].number_input("Learning rate", 1e-6, 1.0, 1e-3, 5e-4, format="%.4f", key="pt_lr", bind="query-params"))
seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, 1, key="pt_seed", bind="query-params"))
width = int(c[4].selectbox("Width", (64, 128, 256), index=1, key="pt_width", bind="query-params"))
coupling, reg = pick.coupling_picker("pt_", default="ot")
score_head = st.toggle("Score head", key="pt_score", bind="query-params",
                       help="also learn the score ∇log p_t, so the SDE sampler can use it; needs the independent coupling "
                            "(with σ = 0 the OT pairing has no conditional score)")


def start(paused: bool) -> bool:
    if source is None:
        st.error("Pick usable source data first.")
        return False
    with user_errors("Cannot start pretraining"):
        every, eval_every = w.snapshot_plan(steps, 50)
        config = TrainConfig(
            method="pretrain", steps=steps, batch=batch, lr=lr, seed=seed, coupling=coupling, sinkhorn_reg=reg,
            callback_every=every,
        )
        monitor = Monitor(eval_every=eval_every, eval_points=w.EVAL_POINTS, particles=min(2000, page_defaults().particles), trajectory_steps=24)
        if score_head and coupling != "independent":
            raise ValueError(f"a score head needs the independent coupling here (got {coupling}): with σ = 0, OT pairs have no conditional score")
        model_config = ModelConfig(width=width, depth=3, score_head=score_head)
        params = {"config": config.to_dict(), "model": model_config.to_dict(), "spec": source.spec, "label": source.label, "cloud": source.preview()}
        w.launch(OWNER, w.pretrain_job(source, config, model_config, monitor, RUN), params, paused=paused, label=f"pretrain on {source.label}")
        return True
    return False


st.subheader("Train")
w.job_controls(OWNER, start, step_size=max(1, steps // 50), run_name=RUN, temperature=False)
slot = job_slot()
params = slot.params_for(OWNER)
view = w.live_panel(OWNER, RUN, params.get("cloud"))
if view is None:
    st.caption("Training runs in the background; you can change settings or switch pages meanwhile.")

if view is not None and view.state in ("done", "stopped") and params:
    run = view.run(RUN)
    token = params["token"]
    config = params["config"]
    extra = {"parent": None, "history": list(run.history)}
    payload = w.finished_checkpoint(OWNER, RUN, token, params["spec"], config, extra)
    if payload is None:
        st.warning("The run stopped before it trained anything worth keeping.")
        st.stop()
    label = f"pretrained on {params['label']} (seed {config['seed']}, {run.step} steps)"
    w.memo(OWNER, "remembered", token, lambda: pick.remember_session_model(payload, params["spec"], label) or True)
    st.success(f"Your model is ready and available as a base on the Gradual fine-tune page: {label}.")
    if run.frames:
        st.subheader("How the flow formed during training")
        anim = w.memo(OWNER, "anim", token, lambda: figures.trajectory_animation(run.frames, None, params["cloud"], names=("", "training data"),
                                                                               temperature=False))  # pretraining has no τ
        st.plotly_chart(anim, key="pt_anim")
    st.subheader("Its trajectories")
    trajectories_section(res.payload_key(payload), payload, params["cloud"], label)
    st.subheader("Sample it another way")
    if st.toggle("Compare samplers: Euler or midpoint with k steps, dopri5, the SDE", key="pt_samplers"):
        sampling_section("pt_", OWNER, token, job_slot().for_page(OWNER).model(RUN), config, params["cloud"], seed=config["seed"])
    c = st.columns(2)
    c[0].download_button("Checkpoint (.pt)", payload, file_name=f"pretrained_{params['spec'].replace('file:', '')}_seed{config['seed']}.pt",
                         mime="application/octet-stream", icon=":material/download:", on_click="ignore")
    with c[1]:
        use_as_base_button(pick.MINE)
