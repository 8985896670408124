"""Compare methods: GFT against standard fine-tuning and training from scratch, same budget, several seeds."""

from __future__ import annotations

import streamlit as st

from gft.app import comparisons as cmp
from gft.app import pickers as pick
from gft.app import resources as res
from gft.app import widgets as w
from gft.app.jobs import TrainingJob
from gft.app.schedule_editor import edited_final_fraction, schedule_editor
from gft.app.session import app_device, job_slot, user_errors
from gft.core.couplings import COUPLINGS
from gft.data import MODES
from gft.evaluation import summaries
from gft.viz import compare as figs
from gft.viz.style import color_of

OWNER = "compare_methods"
STEPS = (30, 100, 200, 300, 500, 800, 1000, 1500, 2000, 3000, 5000)
BATCHES = (64, 128, 256, 512)
LRS = (3e-4, 1e-3, 3e-3)
PARTICLES = 1000  # final samples per run: mode coverage and the sample panels


@st.cache_data(show_spinner="Measuring the null band (W2 between target draws) ...", max_entries=32)
def null_band(target: str, n: int, seed: int) -> tuple[float, float]:
    band = summaries.w2_null(target, n, seed)
    return band.mean, band.sd


w.ensure_app_frame()
st.title("Compare methods")
st.caption(
    "GFT with the chosen schedule against standard fine-tuning (tau = 0 from the pretrained weights) and "
    "training from scratch, on the same budget of steps, over several seeds."
)

c1, c2, c3, c4 = st.columns(4)
with c1:
    base = pick.base_picker("pre")
target = pick.preset_select(c2, "Target", "target")
steps = c3.select_slider("Steps (every method)", STEPS, value=500, key="steps", bind="query-params")
seeds = c4.slider("Seeds", 1, 5, 3, key="seeds", bind="query-params")
c5, c6, c7, c8 = st.columns(4)
seed = c5.number_input("First seed", 0, 1_000_000, 0, key="seed", bind="query-params")
coupling = c6.selectbox("Coupling (every method)", COUPLINGS, key="coupling", bind="query-params")
batch = c7.select_slider("Batch", BATCHES, value=128, key="batch", bind="query-params")
lr = c8.select_slider("Learning rate", LRS, value=1e-3, key="lr", bind="query-params", format_func=lambda v: f"{v:g}")
with st.expander("GFT temperature schedule", expanded=False):
    schedule = schedule_editor("", int(steps))
if base is None or schedule is None or not pick.check_2d(base, "this page compares runs on 2D points"):
    st.stop()

settings = None
with user_errors("Settings"):
    settings = cmp.CompareSettings(
        pretrained=base.key, target=target, schedule=schedule, final_fraction=edited_final_fraction(""),
        steps=int(steps), batch=int(batch), lr=float(lr), seed=int(seed), coupling=coupling, sinkhorn_reg=1.0,
        device=str(app_device()), particles=PARTICLES, evaluations=15, eval_points=500,
    )  # fmt: skip
if settings is None:
    st.stop()
st.caption(f"GFT schedule `{schedule}`; {3 * int(seeds)} runs of {settings.steps} steps from {base.label}.")


def start(paused: bool) -> bool:
    with user_errors("Could not start"):
        job = TrainingJob(cmp.method_runs(base.model(), settings, int(seeds)), max_frames=2)
        w.launch(OWNER, job, {"settings": settings, "seeds": int(seeds)}, paused=paused, label=f"methods → {settings.target}")
        return True
    return False


w.job_controls(OWNER, start, full=False)
slot = job_slot()
job = slot.for_page(OWNER)
if job is None:
    st.info(f"Press Start to train {3 * int(seeds)} runs (3 methods x {int(seeds)} seeds) in one background job.")
    st.stop()

ran: cmp.CompareSettings = slot.params_for(OWNER)["settings"]
if ran != settings or slot.params_for(OWNER)["seeds"] != int(seeds):
    st.warning("The settings changed since this run: what follows is the previous run. Press Restart to train the new one.")
w2_null = null_band(ran.target, ran.eval_points, ran.seed)


def curves_figure(view):
    curves = summaries.method_curves({r.name: list(r.history) for r in view.runs})
    return figs.method_curves_figure(curves, summaries.METHOD_LABELS, w2_null), curves


@st.fragment(run_every=w.CHART_POLL_S)
def live() -> None:
    now = job.view()
    if now.finished:
        st.rerun()  # the full page shows the results (and this fragment stops)
    # The state and progress bar are job_controls' (a faster fragment).
    st.plotly_chart(curves_figure(now)[0], key="live_curves")


view = job.view()
if view.state == "failed":
    st.error(f"Training failed: {view.error}")
    st.stop()
if not view.finished:
    live()
    st.stop()
if view.state == "stopped":
    st.warning("Stopped early: curves are compared over the steps every seed reached.")

st.subheader("W2 against step")
fig, curves = curves_figure(view)
st.plotly_chart(fig, key="curves")
st.caption(
    f"W2 of 50-step Euler samples against {ran.eval_points} held-out target points every {ran.eval_every} steps; "
    "line: mean over seeds, band: min to max. Grey: the null band, W2 between two independent target draws of that "
    f"size (mean ± 2 sd over 20 pairs, {w2_null[0]:.3f} ± {2 * w2_null[1]:.3f}): a curve inside it is as close to the target "
    "as this sample size can tell; a dip below it is measurement noise, not a better model."
)

coverage = {}
for r in view.runs:
    method, _ = summaries.parse_run_name(r.name)
    samples = r.latest.samples if r.latest is not None else None
    coverage.setdefault(method, []).append(summaries.final_coverage(samples, ran.target))
table = summaries.stability_table(curves, coverage if ran.target in MODES else None)
st.subheader("Stability and diversity")
st.dataframe(summaries.mean_pm_std(table), hide_index=True, key="stability")
st.caption(
    "Mean ± std over seeds. Spearman: rank correlation of W2 with step (-1 is a steady descent); diff variance: "
    "variance of successive W2 differences; largest rise: the worst increase between two evaluations; "
    + ("mode coverage: share of the target's modes holding at least half their expected mass." if ran.target in MODES else "mode coverage: only for mixture targets.")
)
st.download_button("Download the table (CSV)", table.to_csv(index=False), "gft_methods.csv", "text/csv", on_click="ignore", key="download_csv")

st.subheader("Final samples")
shown = st.radio("Seed", [s for s in range(ran.seed, ran.seed + slot.params_for(OWNER)["seeds"])], horizontal=True, key="shown_seed")
samples, colors = {}, {}
for method in cmp.COMPARED_METHODS:
    run = view.run(summaries.run_name(method, shown))
    label = summaries.METHOD_LABELS[method]
    samples[label] = run.latest.samples if run.latest is not None else None
    colors[label] = color_of(method)
st.plotly_chart(figs.sample_panels(samples, res.preset_points(ran.target), height=380, colors=colors), key="samples")
st.caption(f"{PARTICLES} samples per method from the same noise (20 Euler steps), over the target (orange).")
