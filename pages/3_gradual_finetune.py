"""Gradual fine-tune: anneal a pretrained flow toward a new target and watch the drift move."""

from __future__ import annotations

import streamlit as st

from gft.app import layout, run_compare
from gft.app import pickers as pick
from gft.app import resources as res
from gft.app import widgets as w
from gft.app.downloads import history_csv
from gft.app.sampler_panel import sampling_section
from gft.app.schedule_editor import edited_final_fraction, schedule_editor
from gft.app.session import job_slot, page_defaults, user_errors
from gft.app.tau_knob import TAU_STOPS, recorded_schedule, tau_knob
from gft.core.manual_schedule import ManualSchedule
from gft.core.training import TrainConfig
from gft.evaluation import probes
from gft.tasks.runs import Monitor
from gft.viz import training as figures
from gft.viz.style import snapshot_label

OWNER = "finetune"
RUN = "run"
METHOD_HELP = "gft: anneal τ as scheduled · standard: plain fine-tuning (τ = 0) from the pretrained weights · scratch: τ = 0 from fresh weights"
ANIMATION_HEIGHT = 360  # px of the square panel and its margins; the λ strip adds 130 (all on the first screen with the text under it)

w.ensure_app_frame()
DEFAULTS = page_defaults()  # larger on a GPU (the sidebar says so)
layout.page_header(
    "Gradual fine-tuning",
    "Fine-tune a pretrained flow on a new target. GFT regresses onto (1 − λ)·target + λ·f_pre (f_pre: the pretrained drift, "
    "λ = τ/(1+τ)) and lowers the temperature τ to 0, so the drift moves gradually to the target.",
)

# The page's run as this script run starts: it decides what the main figure shows (preview, live, results).
slot = job_slot()
params = slot.params_for(OWNER)
job = slot.for_page(OWNER)
view = job.view() if job is not None else None
show_results = view is not None and view.state in ("done", "stopped") and bool(params)
live = view is not None and not view.finished

# ---- key controls (left) and the main figure (right) ----------------------------------------------
left, right = st.columns([1, 2], gap="medium")
with right:
    main = layout.main_figure()
below = st.container()  # under both columns
with left:
    with layout.key_controls():
        base = pick.base_picker("ft_base")
        # A drawing's canvas needs room: the main figure's place until a run shows there, then under the columns.
        canvas_in_main = not (show_results or live)
        target = pick.data_picker("ft_", "Target", drawing_area=main if canvas_in_main else below)
        canvas_in_main = canvas_in_main and st.session_state.get("ft_src") == "drawing"
        c = st.columns(2)
        method = c[0].selectbox("Method", ("gft", "standard", "scratch"), key="ft_method", bind="query-params", help=METHOD_HELP)
        steps = int(c[1].number_input("Steps", min_value=1, max_value=200_000, value=DEFAULTS.finetune_steps, step=100, key="ft_steps",
                                      bind="query-params"))
        coupling, reg = pick.coupling_picker("ft_")
        start_row = st.container()  # Start / Pause / ...: drawn below, once every setting has been read

    # ---- advanced settings, folded under the key controls --------------------------------------------
    manual_tau = None  # manual annealing: the starting τ of a knob the user moves while it trains
    with st.expander("Temperature schedule τ(step)" if method == "gft" else "Temperature schedule (GFT only)"):
        if method == "gft":
            if st.toggle("Manual annealing: set τ yourself while it trains", key="ft_manual", bind="query-params",
                         help="the run starts at this τ; a knob under Start sets the τ of the next steps; what you did is recorded"):
                manual_tau = float(st.select_slider("Starting τ", TAU_STOPS, value=4.0, key="ft_manual_tau0", bind="query-params"))
                spec = f"constant:{manual_tau:g}"
            else:
                # Before a run the main figure previews the schedule; once it shows a run, the editor draws its own.
                spec = schedule_editor("ft_", total_steps=steps, preview=view is not None)
        else:
            st.info(f"Method {method!r} trains at τ = 0 throughout (the schedule applies to GFT only).")
            spec = "constant:0"
    final = edited_final_fraction("ft_")
    with st.expander("Batch, learning rate, seed"):
        c = st.columns(3)
        batch = int(c[0].number_input("Batch", min_value=2, max_value=65_536, value=256, step=64, key="ft_batch", bind="query-params",
                                      help="OT couplings accept at most 4096 (their cost grows as batch²)"))
        lr = float(c[1].number_input("Learning rate", min_value=1e-6, max_value=1.0, value=2e-3, step=5e-4, format="%.4f", key="ft_lr",
                                     bind="query-params"))
        seed = int(c[2].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="ft_seed", bind="query-params"))
    with st.expander("Animation settings"):
        particles = int(st.number_input("Particles (fixed noise seeds)", 50, 2000, DEFAULTS.particles, 50, key="ft_particles", bind="query-params",
                                        help="animated in every frame; about 2,000 is what a browser plays smoothly"))
        a = st.columns(2)
        euler = int(a[0].number_input("Euler steps per trajectory", 4, 100, 30, 2, key="ft_euler", bind="query-params"))
        frames = int(a[1].number_input("Frames (snapshots)", 10, 100, 60, 10, key="ft_frames", bind="query-params"))


def current_config() -> tuple[TrainConfig, Monitor]:
    every, eval_every = w.snapshot_plan(steps, frames)
    config = TrainConfig(
        method=method, steps=steps, batch=batch, lr=lr, seed=seed, schedule=spec or "constant:0", final_fraction=final,
        coupling=coupling, sinkhorn_reg=reg, callback_every=every,
    )
    return config, Monitor(eval_every=eval_every, eval_points=w.EVAL_POINTS, particles=particles, trajectory_steps=euler)


def start(paused: bool) -> bool:
    if base is None or target is None:
        st.error("Pick a pretrained model and a usable target first.")
        return False
    if spec is None:
        st.error("Fix the temperature schedule first (see the message under “Temperature schedule τ(step)”).")
        return False
    with user_errors("Cannot start this run"):
        config, monitor = current_config()
        params = {
            "config": config.to_dict(), "particles": monitor.particles, "base_key": base.key, "base_label": base.label, "base_data": base.data,
            "base_payload": base.payload, "target_label": target.label, "target_spec": target.spec,
            "pre_cloud": base.cloud(), "target_cloud": target.preview(),
            "manual": ManualSchedule(config.steps, manual_tau) if manual_tau is not None else None,
        }
        w.launch(OWNER, w.finetune_job(base, target, config, monitor, RUN, manual=params["manual"]), params, paused=paused,
                 label=f"{config.method} {base.label.split(' ')[0]} → {target.label}")
        return True
    return False


with start_row:
    w.job_controls(OWNER, start, step_size=max(1, steps // frames), run_name=RUN)
    if params.get("manual") is not None:
        tau_knob("ft_", slot.for_page(OWNER), RUN, params["manual"])
    if view is not None and not view.finished:
        try:
            changed = current_config()[0].to_dict() != params.get("config")
        except ValueError:
            changed = True
        if changed:
            st.caption("The settings above changed since this run started; they apply to the next Start.")


# ---- the main figure: a preview before a run, the live panel while it trains, the drift moving after --
def preview() -> None:
    """What a run will train: the pretrained model's samples, the target and the schedule λ(step) it will follow."""
    if not canvas_in_main:  # (a drawing's canvas above already shows the target)
        pre_name = f"samples of {base.label}" if base is not None else ""
        target_name = f"target: {target.label}" if target is not None else ""
        st.plotly_chart(
            figures.clouds_figure(base.cloud() if base is not None else None, target.preview() if target is not None else None,
                                  height=400, names=(pre_name, target_name)),
            key="ft_clouds",
        )
    curve = None
    if spec is not None:
        try:
            curve = current_config()[0].make_schedule().curve(300)
        except ValueError:  # e.g. an OT batch over 4096: Start says why
            curve = None
    if spec is None:
        st.warning("No schedule to preview: it is impossible as set (the message is under “Temperature schedule τ(step)”).")
    if curve is not None:
        fig = figures.schedule_figure(*curve, height=190)
        # On a short panel the legend would hide the first stage (τ max sits on the top edge): put it above the axes.
        fig.update_layout(legend=dict(y=1.02, yanchor="bottom"), margin=dict(t=36))
        st.plotly_chart(fig, key="ft_sched_main")
    curve = ("τ stays at the starting τ until you move the knob under Start" if manual_tau is not None
             else f"τ = 0 from the first step ({method}: no pull toward the pretrained drift)" if method != "gft"
             else "τ and λ, the weight GFT gives the pretrained drift, falling to 0 over the steps")
    clouds = "Orange: the target you draw above." if canvas_in_main else "Grey: samples of the pretrained model. Orange: the target."
    st.caption(f"{clouds} Below: {curve}. Press Start: it trains in the background, and the drift moving replaces this preview.")


def drift_animation():
    """The run's drift animation with its short reading beside it; None when the run has no snapshot."""
    run = view.run(RUN)
    if not run.frames:
        return None
    config = run_config()
    st.subheader("The drift moving")
    anim = w.memo(OWNER, "anim", params["token"], lambda: beside_legend(figures.trajectory_animation(
        run.frames, params["pre_cloud"], params["target_cloud"], height=ANIMATION_HEIGHT, schedule=w.schedule_curve(config))),
        spinner="Building the animation ...")
    st.plotly_chart(anim, key="ft_anim")
    st.markdown(f":small[**{params['base_label']} → {params['target_label']}**: {config['method']}, schedule {config['schedule']}, "
                f"{config['coupling']} coupling, seed {config['seed']}.]")
    st.caption(f"Each frame is one snapshot: {params['particles']} fixed noise seeds follow the drift learned so far to the blue dots; "
               "the strip marks λ, the pretrained drift's weight. W2: how far the samples are from the target (0: on it).")
    hist = list(run.history)
    w2 = [r["w2"] for r in hist if r.get("w2") is not None]
    m = st.columns(4)
    m[0].metric("W2 to target", f"{w2[-1]:.3f}" if w2 else "n/a", delta=f"{w2[-1] - w2[0]:+.3f} since step 0" if len(w2) > 1 else None,
                delta_color="inverse", help="Wasserstein-2 distance from the model's samples to held-out target points: 0 means on the target")
    if run.result is not None:
        m[1].metric("steps (stopped early)" if run.result.stopped else "steps", f"{run.result.steps}")
        m[2].metric("steps / s", f"{run.result.steps_per_second:.0f}")
        m[3].metric("OT time / batch", f"{run.result.ot_seconds_per_batch * 1e3:.1f} ms" if config["coupling"] != "independent" else "n/a",
                    help="time to pair each noise batch with a target batch by optimal transport")
    return anim


def beside_legend(fig):
    """The legend right of the square panel: in this column a legend on top wraps to four rows and shrinks the panel."""
    # and less margin: the play controls need about 75 px under the strip, not 100.
    return fig.update_layout(legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"), margin=dict(t=10, b=75))


def run_config() -> dict:
    """The finished run's config; a manual run's schedule is what the knob recorded (replayable)."""
    config = params["config"]
    if params.get("manual") is not None:
        config = dict(config, schedule=params["manual"].spec(), final_fraction=0.0)
    return config


anim = None
with main:
    if show_results:
        anim = drift_animation()
        if anim is None:
            st.warning("The run ended before its first snapshot; nothing to animate.")
            preview()
    elif live:
        w.live_panel(OWNER, RUN, params.get("target_cloud"))
    else:
        preview()
if view is not None and view.finished:  # the loss and W2 curves of the finished run, folded
    w.live_panel(OWNER, RUN, params.get("target_cloud"))


# ---- below the first screen: one snapshot in ODE time, other samplers, downloads -------------------
def results() -> None:
    run = view.run(RUN)
    token = params["token"]
    config = run_config()
    hist = list(run.history)

    # A fragment: moving the snapshot slider (each arrow-key press is one rerun) or a checkbox reruns this
    # section only, not the page with its animation of several MB.
    @st.fragment
    def snapshot_section() -> None:
        st.subheader("Inside one snapshot: scrub ODE time")
        snaps = run.frames
        left, right = st.columns([3, 2])
        with right:
            # In a form: dragging or pressing arrow keys moves the slider in the browser only, and "Show" asks the
            # server once (each key press used to queue its own rerun, and the arrows are model evaluations).
            with st.form(f"ft_snap_form_{token[:8]}", border=False):
                idx = st.select_slider(
                    "Snapshot", options=list(range(len(snaps))), value=len(snaps) - 1, key=f"ft_snap_{token[:8]}",  # fresh per run
                    format_func=lambda i: snapshot_label(snaps[i].step, snaps[i].tau, snaps[i].lam, snaps[i].total_steps),
                )
                st.form_submit_button("Show this snapshot", icon=":material/visibility:")
            last = idx == len(snaps) - 1 and run.result is not None and not run.result.stopped
            s = snaps[idx]
            show_blend = st.checkbox(
                f"what GFT blends at this λ ({s.lam:.2f}): f_pre, the target drift and their blend", value=True, key="ft_show_blend",
                help="red f_pre, orange the target drift (a kernel estimate from the target samples shown), purple the blend "
                     "(1 − λ)·target + λ·f_pre that this snapshot regresses onto, green the drift the model follows",
            )
            show_field = st.checkbox("velocity field of the fine-tuned model (grid)", key="ft_show_field", disabled=not last,
                                     help="available for the final snapshot of a completed run") and last
            st.caption(
                "Play moves the particles of the chosen snapshot through ODE time t (no server round trip). "
                "GFT regresses onto the purple blend: at large λ it points with f_pre (red), as τ falls it turns to the "
                "target drift (orange). Green is what the model has learned; all arrows share one scale."
            )

        def scrub():
            traj = snaps[idx].trajectory
            s = snaps[idx]
            arrows = None
            if show_blend:
                base_model = res.payload_model(params["base_key"], params["base_payload"])
                arrows = probes.blend_arrows(base_model, params["target_cloud"], traj, s.lam, n=figures.ARROWS)
            field = None
            if show_field:
                model = job_slot().for_page(OWNER).model(RUN)
                field = probes.velocity_field(model, [i / (traj.shape[0] - 1) for i in range(traj.shape[0])]) if model is not None else None
            return figures.time_scrub_figure(
                traj, params["pre_cloud"], params["target_cloud"], field=field, learned_arrows=show_blend,
                drift_pre=arrows.f_pre if arrows else None, drift_target=arrows.target if arrows else None,
                drift_blend=arrows.blend if arrows else None, blend_lambda=s.lam,
                target_source=f"{len(params['target_cloud'])} target samples", caption=snapshot_label(s.step, s.tau, s.lam),
            )

        with left, user_errors("Cannot draw this snapshot"):
            st.plotly_chart(w.memo(OWNER, f"scrub:{idx}:{show_blend}:{show_field}", token, scrub, spinner="Evaluating the drifts ..."), key="ft_scrub")

    snapshot_section()

    st.subheader("Sample it another way")
    model = job_slot().for_page(OWNER).model(RUN)
    if model is None:
        st.caption("The run did not finish: no trained model to sample.")
    elif st.toggle("Compare samplers: Euler or midpoint with k steps, dopri5, the SDE", key="ft_samplers"):
        sampling_section("ft_", OWNER, token, model, config, params["target_cloud"], seed=config["seed"])

    st.subheader("Take it away")
    if params.get("manual") is not None:
        recorded_schedule("ft_", params["manual"])
    d = st.columns(3)
    extra = {"parent": params["base_key"], "base_data": params["base_data"], "history": hist}
    payload = w.finished_checkpoint(OWNER, RUN, token, params["target_spec"], config, extra)
    if payload is not None:
        d[0].download_button("Fine-tuned checkpoint (.pt)", payload, file_name=f"gft_{config['method']}_{params['target_spec'].replace('file:', '')}.pt",
                             mime="application/octet-stream", icon=":material/download:", on_click="ignore")
    else:
        d[0].caption("No checkpoint: the run did not finish.")
    d[1].download_button("History (.csv)", history_csv(hist), file_name="gft_history.csv", mime="text/csv",
                         icon=":material/table:", on_click="ignore")
    d[2].download_button("Animation (.html)", lambda: figures.animation_html(anim), file_name="gft_drift_animation.html",
                         mime="text/html", icon=":material/movie:", on_click="ignore")


if show_results and anim is not None:
    results()


st.subheader("Compare two runs")
if st.toggle("Show any two finished runs of this session side by side", key="ft_compare"):
    run_compare.compare_section("ft_")
