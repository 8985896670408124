"""The explorer's pages 1-3 under Streamlit's AppTest: render, URL state, background runs, bad input.

AppTest never reruns by itself and timed fragments do not tick, so a run is followed by calling
``at.run()`` until the finished job's animation appears (with a timeout).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from gft.core.checkpoints import checkpoint_from_bytes
from gft.tasks.scenario_assets import load_scenario
from gft.tasks.scenarios import SCENARIOS
from gft.tasks.shipped import SHIPPED_2D, load_shipped, shipped_models

ROOT = Path(__file__).resolve().parents[1]
START, PRETRAIN, FINETUNE = "pages/1_start_here.py", "pages/2_pretrain.py", "pages/3_gradual_finetune.py"
# A run small enough for the default suite: 40 steps, 11 snapshots of 50 particles x 6 Euler steps.
SHORT_RUN = {"ft_steps": "40", "ft_particles": "50", "ft_euler": "6", "ft_frames": "10", "ft_coupling": "independent"}


def page(path: str, params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at


def animations(at: AppTest) -> list[dict]:
    """Specs of the Plotly charts that carry frames."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [s for s in specs if s.get("frames")]


def run_until_animation(at: AppTest, timeout: float = 120.0) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        found = animations(at)
        if found and any("The drift moving" in m.value or "Your model is ready" in m.value for m in list(at.subheader) + list(at.success)):
            return found
        time.sleep(0.3)
    raise AssertionError(f"no animation within {timeout} s; errors: {[e.value for e in at.error]}")


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# ---- shipped assets ----------------------------------------------------------------------------
def test_shipped_models_are_small_2d_checkpoints():
    models = shipped_models()
    assert set(SHIPPED_2D) <= set(models)
    for name in SHIPPED_2D:
        assert models[name].stat().st_size < 400_000
        ckpt = load_shipped(name)
        assert ckpt.data == name and ckpt.model.config.data_shape == (2,)
        assert ckpt.model.config.width == 128 and ckpt.model.config.depth == 3
        assert ckpt.extra["w2"] < 1.0  # it learned its distribution (8gaussians is the hardest, ~0.8)
    with pytest.raises(ValueError, match="no shipped model"):
        load_shipped("nope")


# ---- rendering -----------------------------------------------------------------------------------
def test_app_frame_and_each_page_render_without_exceptions():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert "λ = τ/(1+τ)" in sidebar
    assert "Gradual fine-tuning of flow models" in [t.value for t in at.title]
    assert "CPU" in sidebar or "GPU" in sidebar  # the device badge (a markdown badge)
    for path, title in ((PRETRAIN, "Pretrain a flow model"), (FINETUNE, "Gradual fine-tuning")):
        at.switch_page(path)
        at.run()
        assert not at.exception, (path, [e.value for e in at.exception])
        assert title in [t.value for t in at.title]
        assert not errors(at), errors(at)


def test_start_page_shows_the_blended_target_and_a_static_picture():
    at = page(START)
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "λ = τ / (1 + τ)" in text and "(1 − λ) y + λ f_pre" in text
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    # one thumbnail per gallery scenario and the demo's picture, nothing animated before a click
    assert len(specs) == len(SCENARIOS) + 1 and not any(s.get("frames") for s in specs)
    assert at.button(key="start_start").label == "Start"


# ---- the scenario gallery ------------------------------------------------------------------------
def test_gallery_cards_ask_their_questions_and_open_their_shipped_animation():
    at = page(START)
    at.run()
    captions = " ".join(c.value for c in at.caption)
    for sc in SCENARIOS:
        assert sc.question in captions
        assert at.button(key=f"open_{sc.key}").label == "Open"
    assert not animations(at)
    sc = SCENARIOS[0]
    at.button(key=f"open_{sc.key}").click()
    started = time.monotonic()
    at.run()
    opened_s = time.monotonic() - started
    assert not at.exception and not errors(at), errors(at)
    assert any(c.value.startswith(f"**{sc.title}** · shipped result: seed") for c in at.caption)
    (anim,) = animations(at)
    ship = load_scenario(sc.key)
    assert len(anim["frames"]) == len(ship.runs[0].snapshots)  # every shipped snapshot is a frame
    # a schedule marker per run moves with each frame: its x is the frame's step
    for frame, snap in zip(anim["frames"], ship.runs[0].snapshots):
        xs = [t["x"] for t in frame["data"] if t.get("mode", "").startswith("markers") and _len(t["x"]) == 1]
        assert len(xs) == len(sc.runs) and all(_first(x) == snap.step for x in xs)
    table = at.dataframe[0].value
    assert list(table["run"]) == [r.name for r in sc.runs]
    assert table["W2 at the end"].tolist() == [round(r.final_w2(), 3) for r in ship.runs]
    assert any("Lowest W2 at the end" in m.value for m in at.markdown)
    assert opened_s < 10  # from shipped results, not training (about 1 s idle; generous for a loaded machine)
    # while one is open the other scenarios are one click away, as buttons
    assert at.button(key=f"open_{SCENARIOS[1].key}").label == SCENARIOS[1].title
    at.button(key=f"close_{sc.key}").click()
    at.run()
    assert not animations(at) and not any(c.value.startswith(f"**{sc.title}** ·") for c in at.caption)
    assert at.button(key=f"open_{sc.key}").label == "Open"


def _len(x) -> int:
    return len(x) if isinstance(x, list) else len(np.frombuffer(__import__("base64").b64decode(x["bdata"]), dtype=x["dtype"]))


def _first(x) -> float:
    if isinstance(x, list):
        return float(x[0])
    return float(np.frombuffer(__import__("base64").b64decode(x["bdata"]), dtype=x["dtype"])[0])


@pytest.mark.slow
def test_gallery_trains_a_scenario_live_and_shows_the_same_figure():
    at = page(START)
    at.run()
    at.button(key="open_sixteen_points").click()
    at.run()
    at.button(key="live_sixteen_points").click()
    at.run()
    assert not at.exception and not errors(at), errors(at)
    end = time.monotonic() + 400
    while time.monotonic() < end:
        at.run()
        assert not at.exception and not errors(at), errors(at)
        if animations(at):  # drawn once the live runs finish
            break
        time.sleep(1.0)
    (anim,) = animations(at)
    assert any(c.value.endswith("live re-run on this machine, seed 0") for c in at.caption)
    assert len(anim["frames"]) == 21
    # the validation pick of the run with a validation split, measured live
    assert "step" in at.dataframe[0].value["validation pick"].tolist()[1]


def test_url_parameters_seed_the_bound_widgets():
    at = page(FINETUNE, {"ft_steps": "123", "ft_seed": "7", "ft_fam": "cosine", "ft_taumax": "3.5", "ft_data": "circles",
                         "ft_method": "gft", "ft_lr": "0.005", "ft_base": "gaussian"})
    at.run()
    assert not at.exception
    assert at.number_input(key="ft_steps").value == 123
    assert at.number_input(key="ft_seed").value == 7
    assert at.number_input(key="ft_taumax").value == 3.5
    assert at.number_input(key="ft_lr").value == pytest.approx(0.005)
    assert at.selectbox(key="ft_fam").value == "cosine"
    assert at.selectbox(key="ft_data").value == "circles"
    assert at.selectbox(key="ft_base").value == "gaussian"
    pt = page(PRETRAIN, {"pt_mode": "train", "pt_steps": "77", "pt_data": "spirals"})
    pt.run()
    assert not pt.exception
    assert pt.number_input(key="pt_steps").value == 77 and pt.selectbox(key="pt_data").value == "spirals"


# ---- a real background run ---------------------------------------------------------------------
def test_short_finetune_run_completes_in_the_background_and_animates():
    at = page(FINETUNE, SHORT_RUN)
    at.run()
    assert not at.exception and not errors(at)
    at.button(key="finetune_start").click()
    found = run_until_animation(at)
    drift, scrub = found[0], found[1]
    assert len(drift["frames"]) == 40 // 4 + 1  # callback every 40 // 10 steps, plus step 0
    assert len(scrub["frames"]) == 6 + 1  # one per Euler step of the snapshot
    first, last = drift["frames"][0]["data"][2]["text"][0], drift["frames"][-1]["data"][2]["text"][0]
    assert first.startswith("step 0/40 · τ = 10") and last.startswith("step 40/40 · τ = 0")
    labels = [d.proto.label for d in at.get("download_button")]
    assert labels == ["Fine-tuned checkpoint (.pt)", "History (.csv)", "Animation (.html)"]
    # what GFT blends is drawn by default: f_pre, the target drift, their blend at the snapshot's lambda, the learned drift
    names = [t.get("name") or "" for t in scrub["data"]]
    assert "f_pre: pretrained drift" in names and "drift the particles follow" in names
    assert "target drift (estimated from 1500 target samples)" in names
    assert "blend (1 − λ)·target + λ·f_pre, λ = 0.00" in names  # the last snapshot: tau = 0
    assert len(scrub["frames"][0]["data"]) == 6  # particles, f_pre, target, blend, learned, label
    # the final model's velocity field adds one more arrow layer to every frame
    at.checkbox(key="ft_show_field").check()
    at.run()
    assert not at.exception
    scrub = animations(at)[1]
    assert len(scrub["frames"][0]["data"]) == 7
    # the drift animation is the same figure after an unrelated rerun (built once per job)
    assert animations(at)[0] == drift
    # the snapshot slider sits in a form: moving it asks the server nothing until "Show this snapshot"
    (snap_slider,) = [s for s in at.select_slider if s.key.startswith("ft_snap_")]
    snap_slider.set_value(0)
    at.run()
    assert animations(at)[1]["frames"][0]["data"][-1]["text"][0].endswith("step 40 · τ = 0 · λ = 0.000")
    (snap_slider,) = [s for s in at.select_slider if s.key.startswith("ft_snap_")]
    snap_slider.set_value(0)
    at.button(key=f"FormSubmitter:ft_snap_form_{snap_slider.key[len('ft_snap_'):]}-Show this snapshot").click()
    at.run()
    assert not at.exception
    assert animations(at)[1]["frames"][0]["data"][-1]["text"][0].endswith("step 0 · τ = 10 · λ = 0.909")


def test_controls_pause_step_and_stop_a_run():
    at = page(FINETUNE, dict(SHORT_RUN, ft_steps="1000"))
    at.run()
    at.button(key="finetune_step").click().run()  # starts paused, advances one snapshot's worth
    end = time.monotonic() + 60
    while time.monotonic() < end:
        at.run()
        text = [p.proto.text for p in at.get("progress")]
        if text and "step 100/1000" in text[0]:
            break
        time.sleep(0.2)
    assert "paused" in text[0] and "step 100/1000" in text[0], text
    at.button(key="finetune_resume").click().run()
    time.sleep(0.5)
    at.button(key="finetune_stop").click()
    at.run()
    at.run()
    # Two reruns after Stop are enough: the run reads as stopped (how fast is the benchmarks' business).
    text = [p.proto.text for p in at.get("progress")][0]
    assert text.startswith("stopped"), text
    assert animations(at), "a stopped run still animates the snapshots it has"
    at.button(key="finetune_reset").click().run()
    assert not at.get("progress") and not animations(at)


def test_pretrain_page_trains_remembers_the_model_and_offers_it_as_a_base():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(PRETRAIN)
    at.run()
    at.radio(key="pt_mode").set_value("train").run()
    at.number_input(key="pt_steps").set_value(30)
    at.selectbox(key="pt_coupling").set_value("independent")
    at.selectbox(key="pt_width").set_value(64)
    at.run()
    assert not at.exception and not errors(at)
    at.button(key="pretrain_start").click()
    found = run_until_animation(at)
    assert len(found) == 2  # how the flow formed (snapshots) and its trajectories (t slider)
    assert len(found[0]["frames"]) == 31 and len(found[1]["frames"]) == 41
    # The cloud behind both is what the model was trained on, not a fine-tuning target.
    assert all([d.get("name") for d in f["data"] if d.get("mode") == "markers"][0] == "training data" for f in found)
    payload = at.session_state["gft_session_pretrained"]["payload"]
    ckpt = checkpoint_from_bytes(payload)
    assert ckpt.model.config.width == 64 and ckpt.data == "moons" and ckpt.train["steps"] == 30
    at.button(key="pt_use").click().run()  # "Fine-tune this model" opens page 3 with it selected
    assert not at.exception
    assert "Gradual fine-tuning" in [t.value for t in at.title]
    assert at.selectbox(key="ft_base").value == "my model"


def test_pretrain_page_shows_a_shipped_model_with_a_time_slider():
    at = page(PRETRAIN, {"pt_model": "circles"})
    at.run()
    assert not at.exception
    found = animations(at)
    assert len(found) == 1 and len(found[0]["frames"]) == 41
    assert found[0]["layout"]["xaxis"]["range"] == [-4.6, 4.6]
    assert found[0]["data"][0]["name"] == "training data"
    assert [d.proto.label for d in at.get("download_button")] == ["Checkpoint (.pt)"]


# ---- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, content, message",
    [
        ("nan.csv", b"x,y\n" + b"\n".join(b"%d,%d" % (i, i * i) for i in range(10)) + b"\nnan,1\n", "NaN"),
        ("three.csv", b"\n".join(b"%d,%d,%d" % (i, i, i) for i in range(10)), "N x 2"),
        ("junk.npy", b"not an npy file", "not a valid .npy"),
    ],
)
def test_bad_uploads_show_an_error_not_an_exception(name, content, message):
    at = page(FINETUNE, {"ft_src": "points file"})
    at.run()
    at.file_uploader(key="ft_file").set_value((name, content, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(message in e for e in errors(at)), errors(at)
    at.button(key="finetune_start").click().run()
    assert not at.exception
    assert any("usable target" in e for e in errors(at))


def test_good_upload_and_a_drawn_image_are_accepted():
    from PIL import Image

    at = page(FINETUNE, {"ft_src": "points file"})
    at.run()
    pts = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, pts)
    at.file_uploader(key="ft_file").set_value(("mine.npy", buf.getvalue(), "application/octet-stream"))
    at.run()
    assert not at.exception and not errors(at)
    assert any("200 points from mine.npy" in c.value for c in at.caption)

    img = Image.new("L", (60, 40), 255)
    img.paste(0, (10, 10, 20, 30))
    png = io.BytesIO()
    img.save(png, format="PNG")
    at = page(FINETUNE, {"ft_src": "image"})
    at.run()
    at.file_uploader(key="ft_image").set_value(("box.png", png.getvalue(), "image/png"))
    at.run()
    assert not at.exception and not errors(at)
    at.file_uploader(key="ft_image").set_value(("blank.png", _blank_png(), "image/png"))
    at.run()
    assert any("no dark pixels" in e for e in errors(at))


def _blank_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (255, 255, 255)).save(buf, format="PNG")
    return buf.getvalue()


def test_image_points_follow_the_ink_and_fill_the_box():
    from PIL import Image

    from gft.app.pickers import points_from_image

    img = Image.new("L", (100, 50), 255)
    img.paste(0, (0, 0, 50, 50))  # left half black: every point must land at x < 0
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    pts = points_from_image(buf.getvalue(), "half.png", n=2000, seed=1)
    assert pts.shape == (2000, 2) and pts.dtype == np.float32
    assert (pts[:, 0] < 0).all() and pts[:, 0].min() >= -3.5 and np.abs(pts[:, 1]).max() <= 1.75
    np.testing.assert_array_equal(pts, points_from_image(buf.getvalue(), "half.png", n=2000, seed=1))
    with pytest.raises(ValueError, match="not a readable"):
        points_from_image(b"\x89PNG garbage", "bad.png")


def test_impossible_schedules_and_oversized_ot_batches_are_refused_with_messages():
    at = page(FINETUNE, {"ft_ratio": "1.0"})
    at.run()
    assert not at.exception
    assert any("Impossible schedule" in e and "ratio" in e for e in errors(at)), errors(at)
    at.button(key="finetune_start").click().run()
    assert not at.exception and any("Fix the temperature schedule" in e for e in errors(at))
    assert not at.get("progress")

    at = page(FINETUNE, {"ft_fam": "linear", "ft_taumax": "0"})
    at.run()
    assert any("tau_max must be > 0" in e for e in errors(at)), errors(at)

    at = page(FINETUNE, {"ft_batch": "5000", "ft_coupling": "ot"})
    at.run()
    assert not errors(at)
    at.button(key="finetune_start").click().run()
    assert not at.exception
    assert any("4096" in e for e in errors(at)), errors(at)
    assert not at.get("progress")


def test_drawn_piecewise_schedule_is_read_from_the_url_and_validated():
    at = page(FINETUNE, {"ft_fam": "piecewise", "ft_bp": "0/6,0.5/1,1/0"})
    at.run()
    assert not at.exception and not errors(at)
    at = page(FINETUNE, {"ft_fam": "piecewise", "ft_bp": "0.2/6,0.1/1,1/0"})
    at.run()
    assert not at.exception
    assert any("rise strictly" in e for e in errors(at)), errors(at)


@pytest.mark.slow
def test_demo_animation_is_ready_after_one_click():
    """The one-click demo: Start, and the 31-frame animation appears (default settings: a full demo run).

    Its cost (CPU seconds from Start to the animation, under 20 on an idle 2-core machine) is measured
    by the benchmarks, not asserted here: a timing bound in a test fails on a busy machine.
    """
    at = page(START)
    at.run()
    at.button(key="start_start").click()
    end = time.monotonic() + 300
    while time.monotonic() < end:
        at.run()
        if animations(at):
            break
        time.sleep(0.5)
    found = animations(at)
    assert found and len(found[0]["frames"]) == 31
def test_the_private_streamlit_switch_behind_deep_links_still_exists():
    # gft.app.widgets.ensure_app_frame flips this attribute (no public API does, Streamlit 1.67.0) so a
    # deep link that is the server's first request still runs inside app.py's navigation. If a Streamlit
    # upgrade removes it, deep links would silently lose the app frame: fail here instead.
    from streamlit.runtime.pages_manager import PagesManager

    assert isinstance(getattr(PagesManager, "uses_pages_directory", None), (bool, type(None)))
    assert "uses_pages_directory" in vars(PagesManager)
