"""Compare couplings: independent, exact OT and Sinkhorn GFT from one pretrained model, side by side."""

from __future__ import annotations

import streamlit as st

from gft.app import comparisons as cmp
from gft.app import evaluation_task, layout
from gft.app import pickers as pick
from gft.app import widgets as w
from gft.app.jobs import TrainingJob
from gft.app.schedule_editor import edited_final_fraction, schedule_editor
from gft.app.session import app_device, job_slot, user_errors
from gft.core.couplings import COUPLINGS
from gft.evaluation import probes, summaries
from gft.viz import compare as figs
from gft.viz import training as figures

OWNER = "compare_couplings"
REGS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
STEPS = (20, 50, 100, 200, 300, 500, 800, 1000, 1500, 2000, 3000, 5000)
BATCHES = (64, 128, 256, 512)
LRS = (3e-4, 1e-3, 3e-3)
PAIRS = 64  # pairs drawn per coupling
FIGURE_PX = 420  # the three square panels: with the header and one row of controls, one 900 px screen
ANIMATION_PX = 330  # the animation's panels; its schedule strip and slider come on top


@st.cache_data(show_spinner=False, max_entries=32)
def coupling_fig(target: str, seed: int, reg: float):
    batches = [probes.coupled_batch(kind, target, PAIRS, seed, reg) for kind in COUPLINGS]
    return figs.coupling_figure(batches, cmp.target_cloud(target)).update_layout(height=FIGURE_PX)


w.ensure_app_frame()
layout.page_header(
    "Compare couplings",
    "Three GFT runs from the same pretrained model, seed and τ schedule; only the pairing of noise and target batches "
    "differs: independent, exact minibatch OT, or entropic OT (Sinkhorn).",
)

# ---- what to train, first screen: key controls above the full-width figure -----------------------
controls = layout.key_controls()
with controls:
    c = st.columns([1, 1.5, 1.1, 0.6])
    sampled = st.container()  # an uploader or the drawing canvas: full width, under this row
    with c[0]:
        base = pick.base_picker("pre")
    with c[1]:
        choice = pick.data_picker("cmp_", "Target", preset_key="target", body=sampled)
    steps = c[2].select_slider("Steps", STEPS, value=300, key="steps", bind="query-params")
    seed = c[3].number_input("Seed", 0, 1_000_000, 0, key="seed", bind="query-params",
                             help="the noise, the batches and the weights' updates: the same in the three runs")
    start_row = st.container()
figure = layout.main_figure()

# ---- advanced settings ---------------------------------------------------------------------------
with st.expander("More run settings: Sinkhorn blur, batch, learning rate", expanded=False):
    a = st.columns(3)
    reg = a[0].select_slider(
        "Sinkhorn regularisation", REGS, value=1.0, key="reg", bind="query-params",
        help="Entropic blur of the Sinkhorn plan: small values approach exact OT and take longer to solve.",
    )  # fmt: skip
    batch = a[1].select_slider("Batch", BATCHES, value=128, key="batch", bind="query-params")
    lr = a[2].select_slider("Learning rate", LRS, value=1e-3, key="lr", bind="query-params", format_func=lambda v: f"{v:g}")
with st.expander("Temperature schedule (shared by the three runs)", expanded=False):
    schedule = schedule_editor("", int(steps))
if base is None or choice is None or schedule is None or not pick.check_2d(base, "this page compares runs on 2D points"):
    st.stop()

settings = None
with user_errors("Settings"):
    settings = cmp.CompareSettings(
        pretrained=base.key, target=choice.preset or cmp.points_spec(choice.points), schedule=schedule,
        final_fraction=edited_final_fraction(""), steps=int(steps), batch=int(batch), lr=float(lr), seed=int(seed),
        sinkhorn_reg=float(reg), device=str(app_device()),
        evaluations=10,  # W2 of the live curves: the costliest part of a snapshot
    )  # fmt: skip
if settings is None:
    st.stop()


def start(paused: bool) -> bool:
    with user_errors("Could not start"):
        job = TrainingJob(cmp.coupling_runs(base.model(), settings), max_frames=100)
        w.launch(OWNER, job, {"settings": settings, "label": base.label, "target_label": choice.label}, paused=paused,
                 label=f"couplings → {choice.label}")
        return True
    return False


with start_row:
    w.job_controls(OWNER, start)
slot = job_slot()
job = slot.for_page(OWNER)


def show_coupling(settings: cmp.CompareSettings) -> None:
    with user_errors("Coupling"):
        st.plotly_chart(coupling_fig(settings.target, settings.seed, settings.sinkhorn_reg), key="coupling_fig")
    st.caption(
        f"One batch: {PAIRS} noise points (black) paired with {PAIRS} target points (orange), seed {settings.seed}. "
        "Exact OT minimises the total squared length of the lines; Sinkhorn blurs that plan. Press Start to train "
        "the three runs."
    )


if job is None:
    with figure:
        show_coupling(settings)
    st.caption(f"Schedule `{schedule}` over {settings.steps} steps, from {base.label} to {choice.label}.")
    st.stop()
ran: cmp.CompareSettings = slot.params_for(OWNER)["settings"]
token = slot.params_for(OWNER)["token"]
ran_label = slot.params_for(OWNER).get("target_label", ran.target)
target_cloud = cmp.target_cloud(ran.target)
if ran != settings:
    st.warning("The settings changed since this run: the figures show the previous run. Press Restart to train the new one.")


def evaluation(view) -> evaluation_task.EvaluationTask:
    """The finished models' metrics, computed once per job in a background thread (seconds per model)."""

    def build():
        models = {r.name: job.model(r.name) for r in view.runs}
        models = {k: m for k, m in models.items() if m is not None}
        return evaluation_task.EvaluationTask(models, ran.target, n=evaluation_task.EVALUATION_POINTS, seed=ran.seed, device=ran.device).start()

    return w.memo(OWNER, "evaluation", token, build)


view = job.view()
if view.state == "failed":
    st.error(f"Training failed: {view.error}")
    st.stop()


@st.fragment(run_every=w.CHART_POLL_S)
def live_training() -> None:
    """Polls while the runs train: their samples in the figure's place, the curves under them."""
    now = job.view()
    if now.finished:
        st.rerun()  # the full page starts the evaluation and draws the animation
    latest = {r.name: (r.latest.samples if r.latest is not None else None) for r in now.runs}
    st.plotly_chart(figs.sample_panels(latest, target_cloud, height=FIGURE_PX), key="live_samples")
    st.caption(", ".join(f"{r.name} {r.step}/{r.total_steps}" for r in now.runs)
               + " steps. Each panel: the same noise particles through the model trained so far, over the target (orange).")
    st.plotly_chart(figures.runs_curves_figure({r.name: r.history for r in now.runs}), key="live_curves")


if not view.finished:
    with figure:
        live_training()
    st.stop()

task = evaluation(view)
fig = None
with figure, user_errors("Animation"):

    def build_animation():
        panels = {r.name: r.frames for r in view.runs}
        first = view.runs[0].frames[0].samples if view.runs[0].frames else None
        suffix = {"sinkhorn": f"(reg {ran.sinkhorn_reg:g})"}
        return figs.training_animation(panels, target_cloud, first, title_suffix=suffix, height=ANIMATION_PX)

    fig = w.memo(OWNER, "animation", token, build_animation)  # built once: a new spec restarts playback
    st.plotly_chart(fig, key="animation")
if fig is not None:
    st.caption(
        f"Play or drag the slider: each frame is one training snapshot (step, τ, λ), the same noise particles in the "
        f"three runs. Grey: the pretrained samples; orange: the target ({ran_label})."
    )
if view.state == "stopped":
    st.warning("Stopped early: the results below are for the steps each run reached.")


@st.fragment(run_every=w.CHART_POLL_S)
def evaluating() -> None:
    """Polls the evaluation of the trained models; a full rerun draws the table when it ends."""
    ev = task.view()
    if ev.done:
        st.rerun()
    st.progress(ev.progress, text=f"Evaluating the trained models ({len(ev.results)}/{ev.total}) ...")


if not task.view().done:
    evaluating()

with st.expander("Loss and W2 against step", expanded=False):
    st.plotly_chart(figures.runs_curves_figure({r.name: r.history for r in view.runs}), key="final_curves")
    st.caption(
        "The loss regresses onto the blended target (1 − λ)·y + λ·f_pre: it is small while λ is near 1 and grows as τ "
        "falls, most for the independent coupling, whose conditional targets vary most. W2 is what to compare."
    )
with st.expander("The coupling itself: one batch of pairs", expanded=False):
    show_coupling(ran)
if fig is not None:
    st.download_button(
        "Download the animation (HTML, works offline)",
        data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
        file_name="gft_couplings.html",
        mime="text/html",
        on_click="ignore",
        key="download_html",
    )

ev = task.view()
if ev.error:
    st.error(f"Evaluation failed: {ev.error}")
if not ev.done or ev.error:
    st.stop()
st.subheader("Metrics")
table = summaries.coupling_table({r.name: r.result for r in view.runs if r.result is not None}, ev.results)
st.dataframe(
    table,
    hide_index=True,
    key="metrics",
    column_config={c: st.column_config.NumberColumn(format="%.3f") for c in summaries.COUPLING_COLUMNS[2:10]}
    | {"train s": st.column_config.NumberColumn(format="%.1f"), "steps/s": st.column_config.NumberColumn(format="%.0f"),
       "OT ms/batch": st.column_config.NumberColumn(format="%.1f")},
)  # fmt: skip
st.caption(
    f"W2: how far adaptive (dopri5) samples are from {evaluation_task.EVALUATION_POINTS} held-out target points (lower "
    "is closer). W2 null top: the top of the null band (mean + 2 sd of W2 between two independent target draws of that "
    "size, 20 pairs): a W2 below it cannot be told from the target at this size. Path length: how far a sample travels "
    "from noise to data. **Straightness**: how much a path bends away from the straight line between its ends (0: "
    "perfectly straight, so even one Euler step lands right). Both along 100-step Euler paths. W2 @k: samples from k "
    "Euler steps (few-step quality). OT ms/batch: time of the pairing solve."
)
st.download_button(
    "Download the metrics (CSV)", table.to_csv(index=False), "gft_couplings.csv", "text/csv", on_click="ignore", key="download_csv"
)
