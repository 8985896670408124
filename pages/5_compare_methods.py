"""Compare methods: GFT and its variants against standard fine-tuning, the usual baselines and training from
scratch, same budget, several seeds, on the whole target pool or on a few points with validation-chosen checkpoints."""

from __future__ import annotations

import streamlit as st

from gft.app import comparisons as cmp
from gft.app import gallery, layout
from gft.app import pickers as pick
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
from gft.viz import training as figures
from gft.viz.style import color_of

OWNER = "compare_methods"
STEPS = (30, 100, 200, 300, 500, 800, 1000, 1500, 2000, 3000, 5000)
BATCHES = (64, 128, 256, 512)
LRS = (3e-4, 1e-3, 3e-3)
PARTICLES = 1000  # final samples per run: mode coverage and the sample panels
FIGURE_PX = 520  # the main figure beside the controls: inside one 900 px screen with the header


@st.cache_data(show_spinner="Measuring the null band (W2 between target draws) ...", max_entries=32)
def null_band(target: str, n: int, seed: int) -> tuple[float, float]:
    band = summaries.w2_null(target, n, seed)
    return band.mean, band.sd


w.ensure_app_frame()
layout.page_header(
    "Compare methods",
    "GFT against standard fine-tuning (τ = 0 from the pretrained weights), the usual baselines and training from "
    "scratch: same steps, several seeds. With few target points, hold some out to keep each run's best checkpoint.",
)

# ---- first screen: the key controls on the left, the main figure on the right -----------------------
left, right = st.columns([1.25, 2], gap="medium")  # 1.25: the four target sources fit one line
with right:
    sampled = st.container()  # an uploader or the drawing canvas, above the figure
    figure = layout.main_figure()
with left, layout.key_controls():
    base = pick.base_picker("pre")
    target = pick.data_picker("cmp_", "Target", preset_key="target", body=sampled)
    methods = st.multiselect(
        "Methods", list(VARIANTS), default=list(cmp.COMPARED_METHODS), key="methods", bind="query-params",
        help="; ".join(f"{k}: {v.about}" for k, v in VARIANTS.items()),  # no format_func: the URL keeps these short labels
    )  # fmt: skip
    c = st.columns([3, 2])
    steps = c[0].select_slider("Steps (every method)", STEPS, value=500, key="steps", bind="query-params")
    seeds = c[1].slider("Seeds", 1, 5, 3, key="seeds", bind="query-params", help="each method trains once per seed")
    points = st.selectbox("Target points", ["all", *cmp.LIMITS], key="points", bind="query-params",
                          help="Train on this many target samples (few data) instead of the whole pool")
    limit = None if points == "all" else int(points)
    start_row = st.container()

# ---- advanced settings ---------------------------------------------------------------------------
with st.expander("More run settings: first seed, coupling, batch, learning rate, validation share", expanded=False):
    a = st.columns(5)
    seed = a[0].number_input("First seed", 0, 1_000_000, 0, key="seed", bind="query-params")
    coupling = a[1].selectbox("Coupling (every method)", COUPLINGS, key="coupling", bind="query-params",
                              help="How noise and target batches are paired: independent, exact minibatch OT, or entropic OT")
    batch = a[2].select_slider("Batch", BATCHES, value=128, key="batch", bind="query-params")
    lr = a[3].select_slider("Learning rate", LRS, value=1e-3, key="lr", bind="query-params", format_func=lambda v: f"{v:g}")
    VAL_SHARES = {"none": 0.0, "25%": 0.25, "50%": 0.5}  # labels, not floats: a bound widget's URL holds the label
    val_share = VAL_SHARES[a[4].selectbox("Held out for validation", list(VAL_SHARES), key="val_share", bind="query-params",
                                          disabled=limit is None,
                                          help="With few target points: hold out this share and keep each run's best "
                                          "checkpoint by its validation energy (the energy distance to the held-out points)")]
with st.expander("GFT temperature schedule", expanded=False):
    schedule = schedule_editor("", int(steps))
if base is None or target is None or schedule is None or not pick.check_2d(base, "this page compares runs on 2D points"):
    st.stop()

settings = None
with user_errors("Settings"):
    settings = cmp.CompareSettings(
        pretrained=base.key, target=target.preset or cmp.points_spec(target.points), schedule=schedule,
        final_fraction=edited_final_fraction(""), steps=int(steps), batch=int(batch), lr=float(lr), seed=int(seed),
        coupling=coupling, sinkhorn_reg=1.0, device=str(app_device()), particles=PARTICLES, evaluations=15, eval_points=500,
        methods=tuple(methods), limit=limit, val_fraction=float(val_share) if limit is not None else 0.0,
    )  # fmt: skip
if settings is None:
    st.stop()
n_runs = len(settings.methods) * int(seeds)


def start(paused: bool) -> bool:
    with user_errors("Could not start"):
        job = TrainingJob(cmp.method_runs(base.model(), settings, int(seeds)), max_frames=2)
        w.launch(OWNER, job, {"settings": settings, "seeds": int(seeds), "target_label": target.label}, paused=paused,
                 label=f"methods → {target.label}")
        return True
    return False


with start_row:
    w.job_controls(OWNER, start, full=False)
    st.caption(f"GFT schedule `{schedule}`; {n_runs} runs of {settings.steps} steps from {base.label}"
               + (f", on {limit} target points" if limit else "") + ".")
slot = job_slot()
job = slot.for_page(OWNER)
if job is None:
    with figure:
        st.plotly_chart(
            figures.clouds_figure(base.cloud(), cmp.target_cloud(settings.target), height=FIGURE_PX,
                                  names=(f"samples of {base.label}", f"target: {target.label}")),
            key="preview",
        )  # fmt: skip
        st.info(f"Press Start to train {n_runs} runs ({len(settings.methods)} methods x {int(seeds)} seeds) in one background job: "
                "the figure becomes W2 against step.")
    st.stop()

ran: cmp.CompareSettings = slot.params_for(OWNER)["settings"]
ran_label = slot.params_for(OWNER).get("target_label", ran.target)
if ran != settings or slot.params_for(OWNER)["seeds"] != int(seeds):
    with start_row:
        st.warning("The settings changed since this run: what the page shows is the previous run. Press Restart to train the new one.")
w2_null = null_band(ran.target, ran.eval_points, ran.seed)


def curves_figure(view):
    curves = summaries.method_curves({r.name: list(r.history) for r in view.runs})
    fig = figs.method_curves_figure(curves, summaries.METHOD_LABELS, w2_null).update_layout(height=FIGURE_PX)
    return fig, curves


CURVES_CAPTION = (
    f"W2: how far 50-step Euler samples are from {ran.eval_points} held-out target points ({ran_label}; lower is closer). "
    "Line: mean over seeds; band: min to max. Grey: the null band, W2 between two target draws of that size: a curve "
    "inside it is as close to the target as this sample size can tell."
)


@st.fragment(run_every=w.CHART_POLL_S)
def live() -> None:
    now = job.view()
    if now.finished:
        st.rerun()  # the full page shows the results (and this fragment stops)
    # The state and progress bar are job_controls' (a faster fragment).
    st.plotly_chart(curves_figure(now)[0], key="live_curves")
    st.caption(CURVES_CAPTION)


view = job.view()
if view.state == "failed":
    st.error(f"Training failed: {view.error}")
    st.stop()
if not view.finished:
    with figure:
        live()
    st.stop()

fig, curves = curves_figure(view)
with figure:
    st.plotly_chart(fig, key="curves")
    st.caption(CURVES_CAPTION)
if view.state == "stopped":
    st.warning("Stopped early: curves are compared over the steps every seed reached.")
st.caption(
    f"The null band: mean ± 2 sd of W2 over 20 pairs of independent target draws, {w2_null[0]:.3f} ± {2 * w2_null[1]:.3f}; "
    "a dip below it is measurement noise, not a better model."
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
        f"Each run held out {ran.val_fraction:.0%} of its {ran.limit} points and read their energy distance (0: the "
        f"samples match them) every {ran.eval_every} steps; the row is where it was lowest. λ > 0 means the best "
        "checkpoint came from inside the anneal, before GFT reached the target alone: the pretrained drift acted as a "
        "regulariser."
    )

st.subheader("Final samples")
shown = st.radio("Seed", [s for s in range(ran.seed, ran.seed + slot.params_for(OWNER)["seeds"])], horizontal=True, key="shown_seed")
samples, colors = {}, {}
for method in ran.methods:
    run = view.run(summaries.run_name(method, shown))
    label = summaries.METHOD_LABELS.get(method, method)
    samples[label] = run.latest.samples if run.latest is not None else None
    colors[label] = color_of(method)
st.plotly_chart(figs.sample_panels(samples, cmp.target_cloud(ran.target), height=380, colors=colors), key="samples")
st.caption(f"{PARTICLES} samples per method from the same noise (20 Euler steps), over the target (orange).")
