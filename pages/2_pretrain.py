"""Pretrain: load a shipped flow model or train one on a preset, your points or a drawing."""

from __future__ import annotations

import streamlit as st

from gft.app import layout
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
TRAJECTORIES_TEXT = ("Each faint line is one particle's path under the model's drift, from noise (t = 0) to a sample (t = 1); "
                     "press Play or drag t to move the particles. Orange: the data it was trained on.")

w.ensure_app_frame()
layout.page_header(
    "Pretrain a flow model",
    "Plain flow matching from N(0, I) noise (t = 0) to data (t = 1). The model you keep here becomes a base on the Gradual fine-tune page.",
)


def trajectories_figure(key: str, payload: bytes, data_cloud, label: str, show_field: bool):
    """The model's trajectories with a t slider (Plotly's own, no server round trip), plus an optional velocity field."""
    def build():
        paths = res.model_paths(key, payload, n=500, steps=40)
        field = probes.velocity_field(res.payload_model(key, payload), [i / 40 for i in range(41)]) if show_field else None
        return figures.time_scrub_figure(paths, target=data_cloud, field=field, caption=label, names=("", "training data"),
                                         height=layout.FIGURE_HEIGHT)

    return w.memo(f"{OWNER}_traj", f"field={show_field}", key, build)


def field_checkbox() -> bool:
    return st.checkbox("show the velocity field", key="pt_show_field", help="the drift the model learned, on a grid, at each t")


def use_as_base_button(base_option: str) -> None:
    """Open the Gradual fine-tune page with this model selected as the base."""
    if st.button("Fine-tune this model →", key="pt_use", icon=":material/thermostat:", width="stretch"):
        # Through the URL: a plain switch_page would try to clear this page's bound parameters and fail.
        st.switch_page("pages/3_gradual_finetune.py", query_params={"ft_base": base_option})


left, right = st.columns([1, 2], gap="medium")
with left:
    controls = layout.key_controls()  # re-entered below: one block, filled as the mode needs
with right:
    main = layout.main_figure()
below = st.container()  # under both columns
with controls:
    mode = st.radio("Model", MODES, key="pt_mode", horizontal=True, bind="query-params",
                    captions=["use a pretrained model from assets/", "train one here, in the background"])


# ---- a shipped model: its trajectories are the main figure ----------------------------------------
def shipped() -> None:
    names = res.shipped_2d_names()
    if not names:
        with controls:
            st.error("No shipped models found in assets/: run scripts/make_assets.py.")
        with main:
            st.plotly_chart(figures.clouds_figure(height=layout.FIGURE_HEIGHT), key="pt_traj")
        return
    with controls:
        name = st.selectbox("Shipped model", names, index=names.index("moons") if "moons" in names else 0, key="pt_model", bind="query-params")
        base = pick.base_from_name(name)
        ckpt = res.shipped_checkpoint(name)
        w2 = ckpt.extra.get("w2")
        st.caption(
            f"Pretrained on **{ckpt.data}**: MLP width {ckpt.model.config.width}, depth {ckpt.model.config.depth}, "
            f"{ckpt.train.get('steps')} steps, {ckpt.train.get('coupling')} coupling, seed {ckpt.train.get('seed')}"
            + (f", W2 to held-out data {w2:.3f} (how far its samples are from the data; 0: on it)." if w2 is not None else ".")
        )
        show_field = field_checkbox()
        use_as_base_button(name)
        st.download_button("Checkpoint (.pt)", base.payload, file_name=f"pretrained_{name}.pt", mime="application/octet-stream",
                           icon=":material/download:", on_click="ignore", width="stretch")
    data_cloud = res.preset_points(ckpt.data) if ckpt.data in DISTRIBUTIONS else None
    with main:
        st.plotly_chart(trajectories_figure(base.key, base.payload, data_cloud, f"{name} (shipped)", show_field), key="pt_traj")
        st.caption(TRAJECTORIES_TEXT)


# ---- train a new one: the data as the main figure, then the live panel, then how the flow formed ---------
def train() -> None:
    slot = job_slot()
    params = slot.params_for(OWNER)
    job = slot.for_page(OWNER)
    view = job.view() if job is not None else None
    idle = view is None or (view.finished and not (view.state in ("done", "stopped") and params))  # no run to show
    with controls:
        # A drawing's canvas needs room: the main figure's place until a run shows there, then under the columns.
        source = pick.data_picker("pt_", "Source data", default="moons", drawing_area=main if idle else below)
        canvas_in_main = idle and st.session_state.get("pt_src") == "drawing"
        steps = int(st.columns(2)[0].number_input("Steps", 1, 200_000, page_defaults().pretrain_steps, 500, key="pt_steps", bind="query-params"))
        coupling, reg = pick.coupling_picker("pt_", default="ot")
        start_row = st.container()  # Start / Pause / ...: drawn below, once every setting has been read
        after_run = st.container()  # a finished run's "Fine-tune this model" and checkpoint download
    with left, st.expander("Batch, learning rate, seed, width"):
        c = st.columns(2)
        batch = int(c[0].number_input("Batch", 2, 65_536, 256, 64, key="pt_batch", bind="query-params", help="OT couplings accept at most 4096"))
        lr = float(c[1].number_input("Learning rate", 1e-6, 1.0, 1e-3, 5e-4, format="%.4f", key="pt_lr", bind="query-params"))
        seed = int(c[0].number_input("Seed", 0, 2**31 - 1, 0, 1, key="pt_seed", bind="query-params"))
        width = int(c[1].selectbox("Width", (64, 128, 256), index=1, key="pt_width", bind="query-params", help="hidden units per layer of the MLP"))
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

    with start_row:
        w.job_controls(OWNER, start, step_size=max(1, steps // 50), run_name=RUN, temperature=False)

    if view is not None and view.state in ("done", "stopped") and params:
        finished(view, params, after_run)
        return
    with main:
        if view is not None and not view.finished:
            w.live_panel(OWNER, RUN, params.get("cloud"))
            return
        if not canvas_in_main:  # (a drawing's canvas above already shows the data)
            cloud = source.preview() if source is not None else None
            st.plotly_chart(figures.clouds_figure(target=cloud, height=layout.FIGURE_HEIGHT - 40, names=("", source.label if source else "")),
                            key="pt_src_fig")
        st.caption("The data the model will learn to reach from noise. Press Start: it trains in the background (you can "
                   "change settings or switch pages meanwhile), and how the flow formed replaces this picture.")
    if view is not None:  # a failed run: its curves
        w.live_panel(OWNER, RUN, params.get("cloud"))


def finished(view, params: dict, actions) -> None:
    """The finished run: how the flow formed (main figure), then its trajectories, other samplers, the checkpoint."""
    run = view.run(RUN)
    token = params["token"]
    config = params["config"]
    extra = {"parent": None, "history": list(run.history)}
    payload = w.finished_checkpoint(OWNER, RUN, token, params["spec"], config, extra)
    with main:
        if payload is None:
            st.warning("The run stopped before it trained anything worth keeping.")
            st.plotly_chart(figures.clouds_figure(target=params["cloud"], height=layout.FIGURE_HEIGHT - 40, names=("", params["label"])),
                            key="pt_src_fig")
            return
        label = f"pretrained on {params['label']} (seed {config['seed']}, {run.step} steps)"
        w.memo(OWNER, "remembered", token, lambda: pick.remember_session_model(payload, params["spec"], label) or True)
        st.success(f"Your model is ready, {label}: a base on the Gradual fine-tune page now.")
        if run.frames:
            anim = w.memo(OWNER, "anim", token, lambda: figures.trajectory_animation(
                run.frames, None, params["cloud"], names=("", "training data"), height=layout.FIGURE_HEIGHT - 70,
                temperature=False))  # pretraining has no τ
            st.plotly_chart(anim, key="pt_anim")
            st.caption("How the flow formed: each frame is one training snapshot, the same noise seeds carried by the drift "
                       "learned so far (faint lines) to where they land (dots), over the training data (orange).")
    with actions:
        use_as_base_button(pick.MINE)
        st.download_button("Checkpoint (.pt)", payload, file_name=f"pretrained_{params['spec'].replace('file:', '')}_seed{config['seed']}.pt",
                           mime="application/octet-stream", icon=":material/download:", on_click="ignore", width="stretch")
    w.live_panel(OWNER, RUN, params["cloud"])  # its loss and W2 curves, folded
    st.subheader("Its trajectories")
    show_field = field_checkbox()
    st.plotly_chart(trajectories_figure(res.payload_key(payload), payload, params["cloud"], label, show_field), key="pt_traj")
    st.caption(TRAJECTORIES_TEXT)
    st.subheader("Sample it another way")
    if st.toggle("Compare samplers: Euler or midpoint with k steps, dopri5, the SDE", key="pt_samplers"):
        sampling_section("pt_", OWNER, token, job_slot().for_page(OWNER).model(RUN), config, params["cloud"], seed=config["seed"])


if mode == "shipped":
    shipped()
else:
    train()
