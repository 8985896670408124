"""Images: GFT and standard fine-tuning on real 8x8 handwritten digits (or your own image file), side by side
on the same noise seeds."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app import gallery
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

w.ensure_app_frame()
st.title("Images: GFT on handwritten digits")
st.caption(
    "The same method on real data: 8×8 handwritten digits (scikit-learn's 1,797 images) and a small convnet flow. "
    "Two runs start from the same pretrained checkpoint with the same seed: GFT anneals τ as scheduled, standard "
    "fine-tuning trains at τ = 0 from the first step. Watch the same noise seeds turn into digits in both."
)


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
    c = st.columns([2, 2, 1])
    upload = c[0].file_uploader("Image file (.npy or .npz)", type=["npy", "npz"], key="im_upload",
                                help="within the app's upload limit; larger files: give their path instead")
    path = c[1].text_input("… or its path on this machine", key="im_path", placeholder="/data/mnist.npz")
    arrays = c[2].text_input("Arrays and classes", key="im_arrays", placeholder="#x,y:0-4",
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
st.subheader("Scenario")
c = st.columns([2, 1, 1])
scenario = c[0].selectbox("Scenario", tuple(SCENARIOS), key="im_scenario", bind="query-params")
digit, limit = 7, None
if scenario == LIMITED:
    digit = int(c[1].selectbox("Class", tuple(range(10)), index=7, key="im_class", bind="query-params"))
    n_images = c[2].selectbox("Training images", LIMITS, index=1, key="im_images", bind="query-params")
    limit = None if n_images == "all" else int(n_images)
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

# ---- how ------------------------------------------------------------------------------------------
st.subheader("Run settings")
c = st.columns(4)
steps = int(c[0].number_input("Steps", min_value=1, max_value=100_000, value=600, step=100, key="im_steps", bind="query-params"))
batch = int(c[1].number_input("Batch", min_value=2, max_value=4096, value=128, step=32, key="im_batch", bind="query-params"))
lr = float(c[2].number_input("Learning rate", min_value=1e-6, max_value=1.0, value=1e-3, step=5e-4, format="%.4f", key="im_lr", bind="query-params"))
seed = int(c[3].number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="im_seed", bind="query-params"))
coupling, reg = pick.coupling_picker("im_", default="ot")
with st.expander("Animation and evaluation settings"):
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

st.subheader("Temperature schedule (GFT run)")
spec = schedule_editor("im_", total_steps=steps)
final = edited_final_fraction("im_")

if base is not None and target_task is not None:
    with st.expander("Before training: the pretrained model and the target", expanded=False), user_errors("Cannot draw the preview"):
        st.plotly_chart(
            fi.grid_figure({
                f"pretrained: {base['label']} (the seeds animated below)": pretrained_grid(base["key"], base["payload"], grid, seed),
                f"target: {target_label} (training images)": target_grid(target_key, target_task, limit, seed, grid),
            }, height=360),
            key="im_preview",
        )


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
st.subheader("Train")
w.job_controls(OWNER, start, step_size=max(1, steps // frames))
slot = job_slot()
job = slot.for_page(OWNER)
params = slot.params_for(OWNER)
view = job.view() if job is not None else None


def live() -> None:
    """Progress of both runs, loss and FD curves and the latest grids, polled while the job runs."""

    @st.fragment(run_every=None if view.finished else w.CHART_POLL_S)
    def _live() -> None:
        job_now = job_slot().for_page(OWNER)
        if job_now is None:
            return
        v = job_now.view()
        cols = st.columns(len(v.runs))
        for col, run in zip(cols, v.runs):
            text = f"{run.name}: {v.state} · step {run.step}/{run.total_steps or '?'}"
            if run.latest is not None:
                text += f" · τ {run.latest.tau:.3g} · λ {run.latest.lam:.3f}"
            col.caption(text)  # the state and progress bar are job_controls' (a faster fragment)
        st.caption(f"{v.elapsed:.1f} s elapsed · FD = Fréchet distance of classifier features to held-out digits "
                   "(256 samples, 20 Euler steps: cheap, read it against itself)")
        left, right = st.columns([3, 2])
        left.plotly_chart(figures.runs_curves_figure({r.name: r.history for r in v.runs}, "fd", "FD to held-out digits (cheap)"), key="im_live_curves")
        latest = {r.name: r.latest.samples for r in v.runs if r.latest is not None and r.latest.samples is not None}
        if latest:
            right.plotly_chart(fi.grid_figure(latest, height=300), key="im_live_grid")
        if v.error:
            st.error(f"The run failed: {v.error}")
        if v.finished and not view.finished:
            st.rerun()  # once: the full rerun draws the results and stops this polling

    _live()


if view is None:
    st.caption("Press Start to train both runs in the background; changing settings later never interrupts a run.")
else:
    live()
    try:
        changed = {n: current_config(n).to_dict() for n in RUNS} != params.get("configs")
    except ValueError:
        changed = True
    if changed and not view.finished:
        st.caption("The settings above changed since this run started; they apply to the next Start.")


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


def results() -> None:
    token = params["token"]
    runs = {name: view.run(name) for name in RUNS}
    if not all(r.frames for r in runs.values()):
        st.warning("The run ended before its first snapshot; nothing to animate.")
        return
    configs = params["configs"]
    cfg = configs["gft"]
    st.subheader("Noise turning into digits")
    st.caption(
        f"**{params['base_label']} → {params['target_label']}**, schedule `{cfg['schedule']}` (GFT), {cfg['coupling']} coupling, "
        f"seed {cfg['seed']}. One frame per training snapshot: the same {params['particles']} noise seeds, integrated to t = 1 "
        "by the model as it was at that step. Press ▶ Play or drag the slider; the title gives step, τ and λ of the GFT run."
    )
    with user_errors("Cannot draw the animation"):
        anim = w.memo(OWNER, "anim", token, lambda: fi.digit_animation({n: r.frames for n, r in runs.items()}))
        st.plotly_chart(anim, key="im_anim")

    st.subheader("Image metrics")
    key = f"metrics:{eval_n}"
    with user_errors("Cannot evaluate the models"), st.spinner(f"Evaluating both models on {eval_n} samples ..."):
        metrics = w.memo(OWNER, key, token, lambda: evaluate_runs(eval_n))
        show_metrics(metrics)
        gallery.behind_note(metrics.get("gft", {}).get("fd"), metrics.get("standard", {}).get("fd"), "FD", key="images_behind")

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
            col.metric("FD", f"{m['fd']:.2f}", help=f"null band (real train subsets vs held-out images): {_band(m['fd_null'])}")
            if m.get("target_fraction") is not None:  # labelled data only
                col.metric("share in target classes", f"{m['target_fraction']:.0%}")
                col.metric("class entropy", f"{m['class_entropy']:.2f} nats")
            col.metric("diversity", f"{m['diversity']:.1f}", help=f"real held-out images: {m['diversity_real']:.1f}")
            col.metric("NN distance ratio", f"{m['nn_distance_ratio']:.2f}", help="≪ 1: samples copy training images; ≈ 1: as far as fresh real images")
        first = next(iter(metrics.values()))
        st.caption(f"FD null band (real train subsets vs held-out images, mean ± 2 sd): {_band(first['fd_null'])} · {first['n_samples']} samples per model, "
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


if view is not None and view.state in ("done", "stopped") and params:
    results()
