"""Images: GFT and standard fine-tuning on real 8x8 handwritten digits (or your own image file), side by side
on the same noise seeds."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app import gallery, layout
from gft.app import pickers as pick
from gft.app import resources as res
from gft.app import widgets as w
from gft.app.downloads import histories_csv, metrics_csv
from gft.app.jobs import TrainingJob
from gft.app.schedule_editor import edited_final_fraction, schedule_editor
from gft.app.session import job_slot, user_errors
from gft.core.checkpoints import checkpoint_from_bytes
from gft.core.training import TrainConfig, Trainer
from gft.data.digits import DATA_SHAPE as DIGITS_SHAPE
from gft.data.digits import parse_digits_spec
from gft.data.image_files import PREFIX as IMAGES_PREFIX
from gft.data.image_files import image_set_from_bytes, parse_image_spec
from gft.evaluation import probes
from gft.evaluation.images import evaluate_images
from gft.tasks.digits import DigitsTask
from gft.tasks.image_files import ImageFileTask
from gft.tasks.runs import Monitor, make_trainer
from gft.tasks.shipped import ASSET_DIR
from gft.viz import images as fi
from gft.viz import training as figures
from gft.viz.style import snapshot_label

OWNER = "images"
RUNS = ("gft", "standard")
LAST_MODEL = "im_last_model"  # {"payload", "data", "label"}: the GFT model of this page's last finished run

# Bound selectboxes put the displayed option in the URL: short plain names.
NEW, LIMITED, STYLE, CHAIN, OWN = "new classes", "limited data", "style shift", "style chain", "your images"
SCENARIOS = {
    NEW: "New classes: pretrained on digits 0-4, fine-tuned on 5-9 (631 training images).",
    LIMITED: "Limited data: pretrained on digits 0-4, fine-tuned on one class with 10, 50 or all of its ~125 training images.",
    STYLE: "Style shift: pretrained on all ten digits, fine-tuned on the same digits inverted (light strokes on a dark ground).",
    CHAIN: "Chain step: the GFT model of your last run on this page, fine-tuned on inverted and thickened digits.",
    OWN: "Your images: a .npy/.npz of N x H x W (grey) or N x C x H x W / N x H x W x C (colour) images, 8 to 64 pixels a side, "
         "as the target; 8x8 grey sets start from the shipped digits model, other sizes from a checkpoint you pretrained on them "
         "(python -m gft pretrain --data images:PATH ...).",
}
LIMITS = ("10", "50", "all")
PREVIEW_HEIGHT = 440  # px: two 5 x 5 mosaics side by side, under the row of key controls
ANIMATION_HEIGHT = 380  # px of digit panels: with the schedule strip (130 px) and the slider, one screen under the controls

w.ensure_app_frame()
layout.page_header(
    "Images: GFT on handwritten digits",
    "The same method on real data: 8×8 handwritten digits and a small convnet flow. GFT (τ annealed as scheduled) and "
    "standard fine-tuning (τ = 0 from the first step) start from the same checkpoint and turn the same noise seeds into digits.",
)
controls = layout.key_controls()  # one row of settings, then what trains and Start (filled once every setting is read)
with controls:
    settings_row = st.columns([2, 1, 1, 1, 1])
    what_box, start_box = st.columns([2, 3])
figure_box = layout.main_figure()  # full width: the preview before a run, the live grids while it trains, the animation after


@st.cache_data(show_spinner=False)
def shipped_digits_payload(name: str) -> bytes:
    path = ASSET_DIR / f"digits_pretrained_{name}.pt"
    if not path.is_file():
        raise ValueError(f"the pretrained digits model {path.name} is missing: run python scripts/make_digits_assets.py")
    return path.read_bytes()


@st.cache_data(show_spinner="Sampling the pretrained model ...", max_entries=16)
def pretrained_grid(key: str, _payload: bytes, n: int, seed: int):
    return probes.model_grid(res.payload_model(key, _payload), n, seed)


@st.cache_data(show_spinner=False, max_entries=16)
def target_grid(key: str, _task, limit: int | None, seed: int, n: int):
    # Pools list their classes one after another: spread the picks over the pool so that every class shows
    # (its first n images would all be the first class).
    pool = probes.as_numpy(_task.pool(seed, limit))
    return pool[np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)]


@st.cache_resource(show_spinner="Checking the image file ...", max_entries=4)
def uploaded_images(key: str, _payload: bytes, filename: str, arrays: str):
    """An uploaded image file, validated by the same code as files on disk (kept once per content)."""
    return image_set_from_bytes(_payload, filename, parse_image_spec(f"{IMAGES_PREFIX}{filename}{arrays}"))


def own_target() -> tuple[ImageFileTask, str]:
    """The task of the user's image file (an upload, or a path on this machine) and its cache key."""
    upload = st.file_uploader("Image file (.npy or .npz)", type=["npy", "npz"], key="im_upload",
                                help="within the app's upload limit; larger files: give their path instead")
    c = st.columns([3, 2])
    path = c[0].text_input("… or its path on this machine", key="im_path", placeholder="/data/mnist.npz")
    arrays = c[1].text_input("Arrays and classes", key="im_arrays", placeholder="#x,y:0-4",
                             help="for an .npz: #IMAGES, or #IMAGES,LABELS, optionally :CLASSES (labels needed); empty for a .npy")
    arrays = arrays.strip()
    if arrays and not arrays.startswith("#"):
        arrays = "#" + arrays
    if upload is not None:
        payload = upload.getvalue()
        key = res.payload_key(payload, "upload") + arrays
        data = uploaded_images(key, payload, upload.name, arrays.split(":")[0])
        return ImageFileTask(f"{IMAGES_PREFIX}{upload.name}{arrays}", upload=data), key
    if path.strip():
        spec = f"{IMAGES_PREFIX}{path.strip()}{arrays}"
        task = ImageFileTask(spec)
        task.parts()  # read and validate now: a bad file is a message here, not a failed run
        return task, spec
    raise ValueError("upload an image file or give its path")


# ---- scenario ---------------------------------------------------------------------------------------
scenario = settings_row[0].selectbox("Scenario", tuple(SCENARIOS), key="im_scenario", bind="query-params")
digit, limit = 7, None
if scenario == LIMITED:
    digit = int(settings_row[3].selectbox("Class", tuple(range(10)), index=7, key="im_class", bind="query-params"))
    n_images = settings_row[4].selectbox("Training images", LIMITS, index=1, key="im_images", bind="query-params")
    limit = None if n_images == "all" else int(n_images)
steps = int(settings_row[1].number_input("Steps", min_value=1, max_value=100_000, value=600, step=100, key="im_steps", bind="query-params"))
seed = int(settings_row[2].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="im_seed", bind="query-params",
                                        help="the same seed for both runs: the same noise, batches and initial weights"))
with what_box:
    st.caption(SCENARIOS[scenario])

    target_spec = {NEW: "digits:5-9", LIMITED: f"digits:{digit}", STYLE: "digits:0-9+invert", CHAIN: "digits:0-9+invert+thicken"}.get(scenario)
    target_task, target_key = (DigitsTask(target_spec), target_spec) if target_spec else (None, None)
    base = None  # {"key", "label", "data", "payload"}
    if scenario == OWN:
        with user_errors("Cannot use this image file"):
            target_task, target_key = own_target()
            target_spec = target_task.data
    with user_errors("No pretrained model"):
        if scenario == OWN:
            if target_task is None:
                raise ValueError("choose an image file first")
            if target_task.data_shape == DIGITS_SHAPE:
                base = {"key": "digits:0-9", "label": "shipped digits 0-9", "data": "digits:0-9", "payload": shipped_digits_payload("0-9")}
            else:
                up = st.file_uploader(f"Pretrained checkpoint for {' x '.join(map(str, target_task.data_shape))} images (.pt)", type=["pt"], key="im_base_upload")
                if up is None:
                    raise ValueError(f"no shipped model makes images of shape {target_task.data_shape}: pretrain one "
                                     f"(python -m gft pretrain --data {IMAGES_PREFIX}PATH ... --out base.pt) and upload it here")
                payload = up.getvalue()
                key = res.payload_key(payload, "base")
                target_task.check_model(res.payload_model(key, payload).config, f"the checkpoint {up.name}")
                base = {"key": key, "label": up.name, "data": checkpoint_from_bytes(payload, up.name).data, "payload": payload}
        elif scenario == CHAIN:
            last = st.session_state.get(LAST_MODEL)
            if last is None:
                # Any digits scenario's GFT model starts the chain (see where LAST_MODEL is set below); say so, not "style shift only".
                raise ValueError(f"no model of this session yet: finish a run of {NEW!r}, {LIMITED!r} or {STYLE!r} first; "
                                 "its GFT model is where the chain starts")
            base = {"key": res.payload_key(last["payload"], "images"), "label": last["label"], "data": last["data"], "payload": last["payload"]}
        else:
            name = "0-9" if scenario == STYLE else "0-4"
            base = {"key": f"digits:{name}", "label": f"shipped digits {name}", "data": f"digits:{name}", "payload": shipped_digits_payload(name)}
    target_label = f"{target_spec}" + ("" if limit is None else f" ({limit} images)")
    if base is not None and target_task is not None:
        st.markdown(f"**{base['label']}** → **{target_label}**")

with st.expander("Run settings: batch, learning rate, coupling, animation and evaluation"):
    c = st.columns(2)
    batch = int(c[0].number_input("Batch", min_value=2, max_value=4096, value=128, step=32, key="im_batch", bind="query-params"))
    lr = float(c[1].number_input("Learning rate", min_value=1e-6, max_value=1.0, value=1e-3, step=5e-4, format="%.4f", key="im_lr", bind="query-params"))
    coupling, reg = pick.coupling_picker("im_", default="ot")
    a = st.columns(5)
    grid = int(a[0].selectbox("Digits in the grid", (16, 25), index=1, key="im_grid", bind="query-params",
                              help="the same noise seeds in every frame, for both runs"))
    frames = int(a[1].number_input("Frames (snapshots)", 4, 60, 30, 2, key="im_frames", bind="query-params"))
    euler = int(a[2].number_input("Euler steps per trajectory", 2, 40, 16, 2, key="im_euler", bind="query-params",
                                  help="the ODE times the second animation scrubs through"))
    fd_checks = int(a[3].number_input("FD checks during training", 0, 20, 5, 1, key="im_fd_checks", bind="query-params",
                                      help="each costs about 5,000 network evaluations (256 samples × 20 Euler steps) per run; 0 = none"))
    eval_n = int(a[4].number_input("Samples for the final metrics", 20, 2000, 300, 50, key="im_eval_n", bind="query-params",
                                   help="each run is sampled this many times (50 Euler steps) after training; more is steadier and slower"))

with st.expander("Temperature schedule (GFT run): how τ falls from its start to 0"):
    spec = schedule_editor("im_", total_steps=steps)
    final = edited_final_fraction("im_")


def preview() -> None:
    """Before a run: samples of the pretrained model (the seeds the animation will follow) beside the target's images."""
    if base is None and target_task is None:
        st.info("Pick a scenario with a pretrained model and a target (see the messages on the left).")
        return
    with user_errors("Cannot draw the preview"):
        panels = {}
        if base is not None:
            panels[f"pretrained: {base['label']} (the seeds animated)"] = pretrained_grid(base["key"], base["payload"], grid, seed)
        if target_task is not None:
            panels[f"target: {target_label} (training images)"] = target_grid(target_key, target_task, limit, seed, grid)
        st.plotly_chart(fi.grid_figure(panels, height=PREVIEW_HEIGHT), key="im_preview")
        st.caption("Before training. Press Start: both runs train in the background and this figure becomes the same noise "
                   "seeds turning into digits as each run trains.")


def current_config(method: str) -> TrainConfig:
    return TrainConfig(
        method=method, steps=steps, batch=batch, lr=lr, seed=seed, schedule=spec or "constant:0", final_fraction=final,
        coupling=coupling, sinkhorn_reg=reg, callback_every=max(1, steps // frames),
    )


def current_monitor() -> Monitor:
    # The training FD costs ~5k network evaluations, about 50 training steps' worth: a few per run at most.
    return Monitor(eval_every=max(1, steps // fd_checks) if fd_checks else 0, particles=grid, trajectory_steps=euler)


def images_job(payload: bytes, key: str, task, limit_: int | None, configs: dict[str, TrainConfig], monitor: Monitor) -> TrainingJob:
    """Both runs from the same checkpoint; everything heavy happens in the job's thread."""

    def factory(config: TrainConfig):
        def build() -> Trainer:
            return make_trainer(task, config, base=checkpoint_from_bytes(payload, key).model, limit=limit_, monitor=monitor)
        return build

    return TrainingJob({name: factory(cfg) for name, cfg in configs.items()}, max_frames=60)


def start(paused: bool) -> bool:
    if base is None or target_task is None:
        st.error("No pretrained model or no target for this scenario (see the messages above).")
        return False
    if spec is None:
        st.error("Fix the temperature schedule first (see the message above).")
        return False
    with user_errors("Cannot start this run"):
        configs = {name: current_config(name) for name in RUNS}
        params = {
            "configs": {n: c.to_dict() for n, c in configs.items()}, "particles": grid, "scenario": scenario, "target_spec": target_spec,
            "target_task": target_task,
            "target_label": target_label, "limit": limit, "base_key": base["key"], "base_label": base["label"], "base_data": base["data"],
        }
        w.launch(OWNER, images_job(base["payload"], base["key"], target_task, limit, configs, current_monitor()), params, paused=paused,
                 label="images")
        return True
    return False


# ---- train ----------------------------------------------------------------------------------------
with start_box:
    w.job_controls(OWNER, start, step_size=max(1, steps // frames))
slot = job_slot()
job = slot.for_page(OWNER)
params = slot.params_for(OWNER)
view = job.view() if job is not None else None
FD_MEANING = ("FD (Fréchet distance): how far the features of generated digits are from real held-out digits, "
              "as a digit classifier sees them; lower is closer")


def live() -> None:
    """The latest grids of both runs and their FD curves, polled while the job runs (in the main figure's place)."""

    @st.fragment(run_every=None if view.finished else w.CHART_POLL_S)
    def _live() -> None:
        job_now = job_slot().for_page(OWNER)
        if job_now is None:
            return
        v = job_now.view()
        latest = {r.name: r.latest.samples for r in v.runs if r.latest is not None and r.latest.samples is not None}
        if latest:
            st.plotly_chart(fi.grid_figure(latest, height=360), key="im_live_grid")
        st.caption(" · ".join(f"{r.name}: step {r.step}/{r.total_steps or '?'}" + (f", τ {r.latest.tau:.3g}" if r.latest is not None else "")
                              for r in v.runs) + f" · {v.elapsed:.1f} s. The latest samples of each run, from the same noise seeds.")
        st.plotly_chart(figures.runs_curves_figure({r.name: r.history for r in v.runs}, "fd", "FD to held-out digits (cheap)"), key="im_live_curves")
        st.caption(FD_MEANING + " (256 samples, 20 Euler steps: cheap, read it against itself).")
        if v.error:
            st.error(f"The run failed: {v.error}")
        if v.finished and not view.finished:
            st.rerun()  # once: the full rerun draws the results and stops this polling

    _live()


if view is None:
    start_box.caption("Press Start to train both runs in the background; changing settings later never interrupts a run.")
else:
    try:
        changed = {n: current_config(n).to_dict() for n in RUNS} != params.get("configs")
    except ValueError:
        changed = True
    if changed and not view.finished:
        start_box.caption("The settings changed since this run started; they apply to the next Start.")


# ---- results -------------------------------------------------------------------------------------
def evaluate_runs(n: int) -> dict[str, dict]:
    cfg = params["configs"]["gft"]
    out = {}
    for name in RUNS:
        model = job.model(name)
        if model is None:
            continue
        if params["scenario"] == OWN:
            evaluation = params["target_task"].evaluate(model, n=n, seed=cfg["seed"], limit=params["limit"], train_seed=cfg["seed"])
        else:
            evaluation = evaluate_images(model, params["target_spec"], n=n, seed=cfg["seed"], limit=params["limit"], train_seed=cfg["seed"], steps=50)
        out[name] = evaluation.to_dict()
    return out


def has_results() -> bool:
    return view is not None and view.state in ("done", "stopped") and bool(params) and all(view.run(n).frames for n in RUNS)


def animation() -> None:
    """The run's main result, in the main figure's place: the same noise seeds turning into digits as training went on."""
    runs = {name: view.run(name) for name in RUNS}
    cfg = params["configs"]["gft"]
    with user_errors("Cannot draw the animation"):
        anim = w.memo(OWNER, "anim", params["token"], lambda: fi.digit_animation({n: r.frames for n, r in runs.items()}, height=ANIMATION_HEIGHT))
        st.plotly_chart(anim, key="im_anim")
    st.caption(
        f"**{params['base_label']} → {params['target_label']}**, GFT schedule `{cfg['schedule']}`, {cfg['coupling']} coupling, seed {cfg['seed']}: "
        f"the same {params['particles']} noise seeds, integrated to t = 1 by each model at each step. Press ▶ Play or drag the slider."
    )


def results() -> None:
    token = params["token"]
    runs = {name: view.run(name) for name in RUNS}
    configs = params["configs"]
    st.subheader("Image metrics")
    key = f"metrics:{eval_n}"
    with user_errors("Cannot evaluate the models"), st.spinner(f"Evaluating both models on {eval_n} samples ..."):
        metrics = w.memo(OWNER, key, token, lambda: evaluate_runs(eval_n))
        show_metrics(metrics)
        gallery.behind_note(metrics.get("gft", {}).get("fd"), metrics.get("standard", {}).get("fd"), "FD", key="images_behind")
    with st.expander("FD during training"):
        st.plotly_chart(figures.runs_curves_figure({r.name: r.history for r in runs.values()}, "fd", "FD to held-out digits (cheap)"),
                        key="im_curves")
        st.caption(FD_MEANING + " (256 samples, 20 Euler steps: cheap, read it against itself).")

    st.subheader("Inside one snapshot: scrub ODE time")
    snaps = runs["gft"].frames
    idx = st.select_slider(
        "Snapshot", options=list(range(len(snaps))), value=len(snaps) - 1, key="im_snap",
        format_func=lambda i: snapshot_label(snaps[i].step, snaps[i].tau, snaps[i].lam, snaps[i].total_steps),
    )
    step = snaps[idx].step
    pair = {}
    for name, run in runs.items():
        have = [s for s in run.frames if s.step <= step] or list(run.frames)
        pair[name] = have[-1]
    st.caption("Play moves the chosen snapshot's samples from noise (t = 0) to digits (t = 1) along its Euler steps, both runs on the same seeds.")
    with user_errors("Cannot draw this snapshot"):
        st.plotly_chart(w.memo(OWNER, f"scrub:{idx}", token, lambda: fi.time_scrub_animation(pair)), key="im_scrub")

    st.subheader("Take it away")
    d = st.columns(4)
    hist = {n: list(r.history) for n, r in runs.items()}
    for col, name in zip(d[:2], RUNS):
        extra = {"parent": params["base_key"], "base_data": params["base_data"], "history": hist[name], "limit": params["limit"],
                 "output": params["target_task"].output_info()}
        payload = w.finished_checkpoint(OWNER, name, token, params["target_spec"], configs[name], extra)
        if payload is None:
            col.caption(f"No {name} checkpoint: the run did not finish.")
            continue
        col.download_button(f"{name} checkpoint (.pt)", payload, file_name=f"gft_images_{name}_{params['target_spec'].split('/')[-1].replace(':', '_').replace('#', '_')}.pt",
                            mime="application/octet-stream", icon=":material/download:", on_click="ignore", key=f"im_dl_{name}")
        if name == "gft" and view.state == "done" and params["scenario"] != OWN:  # the chain continues digit styles
            st.session_state[LAST_MODEL] = {"payload": payload, "data": params["target_spec"], "label": f"your GFT model of {params['target_label']}"}
    metrics = st.session_state.get(f"{OWNER}_memo", {}).get(key)
    if metrics:
        d[2].download_button("Metrics (.csv)", metrics_csv(metrics, {"scenario": params["scenario"], "target": params["target_spec"]}),
                             file_name="gft_images_metrics.csv", mime="text/csv", icon=":material/table:", on_click="ignore", key="im_dl_metrics")
    d[3].download_button("History (.csv)", histories_csv(hist), file_name="gft_images_history.csv", mime="text/csv",
                         icon=":material/timeline:", on_click="ignore", key="im_dl_hist")
    if view.state == "done" and params["scenario"] != OWN:  # only digits runs feed the chain (LAST_MODEL above)
        st.caption("The GFT model of this run is now the start of the **style chain** scenario.")


def _band(null: dict) -> str:
    return f"{null['mean']:.2f} ± {2 * null['sd']:.2f}"


def show_metrics(metrics: dict[str, dict]) -> None:
    if not metrics:
        st.info("No finished model to evaluate.")
        return
    left, right = st.columns([3, 2])
    with left:
        cols = st.columns(len(metrics))
        for col, (name, m) in zip(cols, metrics.items()):
            col.markdown(f"**{fi.RUN_TITLES.get(name, name)}**")
            col.metric("FD", f"{m['fd']:.2f}", help=f"{FD_MEANING}. Null band (real train subsets vs held-out images): {_band(m['fd_null'])}")
            if m.get("target_fraction") is not None:  # labelled data only
                col.metric("share in target classes", f"{m['target_fraction']:.0%}", help="the share of samples a digit classifier puts in the target's classes")
                col.metric("class entropy", f"{m['class_entropy']:.2f} nats",
                           help="how evenly the samples spread over the classes: higher is more even (ln 5 = 1.61 for five equal classes)")
            col.metric("diversity", f"{m['diversity']:.1f}", help=f"the average distance between two samples (higher: more varied); real held-out images: {m['diversity_real']:.1f}")
            col.metric("NN distance ratio", f"{m['nn_distance_ratio']:.2f}", help="≪ 1: samples copy training images; ≈ 1: as far as fresh real images")
        first = next(iter(metrics.values()))
        st.caption(f"{FD_MEANING}. FD null band (real train subsets vs held-out images, mean ± 2 sd): {_band(first['fd_null'])} · {first['n_samples']} samples per model, "
                   f"{first['nfe']} Euler steps · " + " · ".join(first.get("notes", [])))
        st.markdown("**FD with few Euler steps** (same noise)")
        st.dataframe({"Euler steps": list(first["fd_by_steps"]), **{n: [round(v, 2) for v in m["fd_by_steps"].values()] for n, m in metrics.items()}},
                     hide_index=True)
    if first.get("class_fractions") is None:
        return
    with right:
        if params["scenario"] == OWN:
            classes = parse_image_spec(params["target_spec"]).classes or [int(c) for c in first["class_fractions"]]
        else:
            classes = parse_digits_spec(params["target_spec"]).classes
        st.plotly_chart(fi.class_bars({n: m["class_fractions"] for n, m in metrics.items()}, classes), key="im_class_bars")


with figure_box:
    if has_results():
        animation()
    elif view is not None and not view.finished:
        live()
    else:
        if view is not None and view.error:
            st.error(f"The run failed: {view.error}")
        elif view is not None and view.state in ("done", "stopped"):
            st.warning("The run ended before its first snapshot; nothing to animate.")
        preview()
if has_results():
    results()
