"""Compare methods: GFT and its variants against standard fine-tuning, the usual baselines and training from
scratch, same budget, several seeds, on the whole target pool or on a few points with validation-chosen checkpoints."""

from __future__ import annotations

import streamlit as st

from gft.app import comparisons as cmp
from gft.app import gallery
from gft.app import pickers as pick
from gft.app import resources as res
from gft.app import widgets as w
from gft.app.jobs import TrainingJob
from gft.app.schedule_editor import edited_final_fraction, schedule_editor
from gft.app.session import app_device, job_slot, user_errors
from gft.core.couplings import COUPLINGS
from gft.data import MODES
from gft.evaluation import summaries
from gft.tasks.runs import VALIDATION, best_point
from gft.tasks.variants import VARIANTS
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
    "GFT with the chosen schedule against standard fine-tuning (tau = 0 from the pretrained weights), the baselines "
    "a reviewer asks for and training from scratch, on the same budget of steps, over several seeds. With few target "
    "points, hold some out to keep each run's best checkpoint: that is where stopping the anneal early can pay off."
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
c9, c10, c11 = st.columns([2, 1, 1])
methods = c9.multiselect(
    "Methods", list(VARIANTS), default=list(cmp.COMPARED_METHODS), key="methods", bind="query-params",
    help="; ".join(f"{k}: {v.about}" for k, v in VARIANTS.items()),  # no format_func: the URL keeps these short labels
)
points = c10.selectbox("Target points", ["all", *cmp.LIMITS], key="points", bind="query-params",
                       help="Train on this many target samples (few data) instead of the whole pool")
limit = None if points == "all" else int(points)
VAL_SHARES = {"none": 0.0, "25%": 0.25, "50%": 0.5}  # labels, not floats: a bound widget's URL holds the label
val_share = VAL_SHARES[c11.selectbox("Held out for validation", list(VAL_SHARES), key="val_share", bind="query-params",
                                     disabled=limit is None,
                                     help="With few points: hold out this share and keep each run's best checkpoint by its "
                                     "validation energy")]
with st.expander("GFT temperature schedule", expanded=False):
    schedule = schedule_editor("", int(steps))
if base is None or schedule is None or not pick.check_2d(base, "this page compares runs on 2D points"):
    st.stop()

settings = None
with user_errors("Settings"):
    settings = cmp.CompareSettings(
        pretrained=base.key, target=target, schedule=schedule, final_fraction=edited_final_fraction(""),
        steps=int(steps), batch=int(batch), lr=float(lr), seed=int(seed), coupling=coupling, sinkhorn_reg=1.0,
        device=str(app_device()), particles=PARTICLES, evaluations=15, eval_points=500, methods=tuple(methods),
        limit=limit, val_fraction=float(val_share) if limit is not None else 0.0,
    )  # fmt: skip
if settings is None:
    st.stop()
n_runs = len(settings.methods) * int(seeds)
st.caption(f"GFT schedule `{schedule}`; {n_runs} runs of {settings.steps} steps from {base.label}"
           + (f", on {limit} target points" if limit else "") + ".")


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
    st.info(f"Press Start to train {n_runs} runs ({len(settings.methods)} methods x {int(seeds)} seeds) in one background job.")
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
final = {m: float(c.mean[-1]) for m, c in curves.items() if len(c.steps)}
gallery.behind_note(final.get("gft"), final.get("standard"), "final mean W2", key="methods_behind")

coverage = {}
for r in view.runs:
    method, _ = summaries.parse_run_name(r.name)
    samples = r.latest.samples if r.latest is not None else None
    coverage.setdefault(method, []).append(summaries.final_coverage(samples, ran.target))
table = summaries.stability_table(curves, coverage if ran.target in MODES else None)
st.subheader("Stability and diversity")
st.dataframe(summaries.mean_pm_std(table), hide_index=True, key="stability")
st.caption(
    "Mean ± std over seeds. **Spearman**: does W2 fall steadily? (−1: every evaluation lower than the last; 0: no trend). "
    "**diff variance**: how much W2 jumps between evaluations (0: smooth). **largest rise**: the worst step backwards; "
    + ("mode coverage: share of the target's modes holding at least half their expected mass." if ran.target in MODES else "mode coverage: only for mixture targets.")
)
st.download_button("Download the table (CSV)", table.to_csv(index=False), "gft_methods.csv", "text/csv", on_click="ignore", key="download_csv")

if ran.val_fraction:
    st.subheader("Validation-chosen checkpoints")
    rows = []
    for r in view.runs:
        method, run_seed = summaries.parse_run_name(r.name)
        best = best_point(list(r.history))
        if best is not None:
            w2_rows = [h for h in r.history if h.get("w2") is not None and h["step"] == best["step"]]
            rows.append({"method": summaries.METHOD_LABELS.get(method, method), "seed": run_seed, "best step": best["step"],
                         "τ": best.get("tau"), "λ": best.get("lambda"), "validation energy": best[VALIDATION],
                         "W2 to the full law there": w2_rows[0]["w2"] if w2_rows else None})
    st.dataframe(rows, hide_index=True, key="best_table")
    st.caption(
        f"Each run held out {ran.val_fraction:.0%} of its {ran.limit} points and read their energy distance every "
        f"{ran.eval_every} steps; the row is where it was lowest. λ > 0 means the best checkpoint came from inside the "
        "anneal, before GFT reached the target alone: the pretrained drift acted as a regulariser."
    )

st.subheader("Final samples")
shown = st.radio("Seed", [s for s in range(ran.seed, ran.seed + slot.params_for(OWNER)["seeds"])], horizontal=True, key="shown_seed")
samples, colors = {}, {}
for method in ran.methods:
    run = view.run(summaries.run_name(method, shown))
    label = summaries.METHOD_LABELS.get(method, method)
    samples[label] = run.latest.samples if run.latest is not None else None
    colors[label] = color_of(method)
st.plotly_chart(figs.sample_panels(samples, res.preset_points(ran.target), height=380, colors=colors), key="samples")
st.caption(f"{PARTICLES} samples per method from the same noise (20 Euler steps), over the target (orange).")
