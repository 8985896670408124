"""The Images page (pages/7_images.py) under AppTest, and the digit-grid figures it draws.

AppTest never reruns by itself and timed fragments do not tick: a run is followed by calling
``at.run()`` until the finished job's animation appears (with a timeout).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest_wait import drop_leftover_run, wait_for_results
from streamlit.testing.v1 import AppTest

from gft.app.downloads import metrics_csv
from gft.core.training import Snapshot
from gft.data.digits import to_model_scale
from gft.viz import images as fi

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/7_images.py"
ASSETS = [ROOT / "assets" / f"digits_pretrained_{n}.pt" for n in ("0-4", "0-9")]
needs_assets = pytest.mark.skipif(not all(p.is_file() for p in ASSETS), reason="run scripts/make_digits_assets.py first")
# 30 steps, 7 snapshots (every 5 steps, step 0 included) of 16 digits x 4 Euler steps, no training FD.
SHORT_RUN = {"im_steps": "30", "im_frames": "6", "im_grid": "16", "im_euler": "4", "im_fd_checks": "0", "im_eval_n": "20",
             "im_coupling": "independent", "im_batch": "32"}


# ---- figures --------------------------------------------------------------------------------------
def test_mosaic_places_tiles_with_nan_gaps():
    tiles = np.stack([np.full((8, 8), float(v)) for v in (0, 4, 8, 12, 16)]).astype(np.float32)
    m = fi.mosaic(tiles, cols=3)
    assert m.shape == (2 * 9 - 1, 3 * 9 - 1)
    assert np.nanmin(m) == 0.0 and np.nanmax(m) == 16.0
    # Tile i sits at row i // 3, column i % 3, with one NaN pixel between neighbours.
    assert np.all(m[9:17, 9:17] == 16.0) and np.all(m[0:8, 18:26] == 8.0)
    assert np.isnan(m[8, :]).all() and np.isnan(m[:, 8]).all()
    assert np.isnan(m[9:17, 18:26]).all()  # the sixth cell is empty
    assert fi.mosaic(tiles).shape == (17, 26)  # near-square default: 3 columns for 5 tiles
    with pytest.raises(ValueError):
        fi.mosaic(np.zeros((0, 8, 8)))


def test_images_draw_in_model_scale_with_the_channel_dropped():
    x = np.linspace(-3, 3, 4 * 64, dtype=np.float32).reshape(4, 1, 8, 8)
    t = fi.tiles(x)
    assert t.shape == (4, 8, 8) and t.dtype == np.float32
    np.testing.assert_array_equal(fi.mosaic(x), fi.mosaic(x[:, 0]))
    # The colour scale spans the model scale of gft.data.digits: pixel 0 (paper) to 16 (ink).
    paper, ink = to_model_scale(torch.tensor([0.0] * 64 + [16.0] * 64)).flatten()[[0, -1]].tolist()
    heat = fi.grid_figure({"x": x}).data[0]
    assert (heat.zmin, heat.zmax) == (paper, ink) == fi.IMAGE_RANGE
    with pytest.raises(ValueError, match="images must have shape"):
        fi.tiles(np.zeros((2, 2, 8, 8)))


def test_digits_draw_dark_ink_on_light_paper():
    # Model scale +1 is ink (pixel 16): it must take the dark end of the colour scale, paper (-1) the light end.
    scale = fi.grid_figure({"x": np.zeros((1, 1, 8, 8), dtype=np.float32)}).data[0].colorscale
    lightness = {pos: sum(int(v) for v in color[color.index("(") + 1 : -1].split(",")[:3]) for pos, color in scale}
    assert lightness[0] > 600 and lightness[1] < 100, scale


def _snaps(steps: list[int], n: int = 9, k: int = 5, seed: int = 0) -> list[Snapshot]:
    rng = np.random.default_rng(seed)
    return [Snapshot(s, steps[-1], 1.0, 0.5, 0.1, {"trajectory": rng.normal(size=(k + 1, n, 1, 8, 8)).astype(np.float32)}) for s in steps]


def test_digit_animation_has_one_frame_per_snapshot_and_redraws():
    runs = {"gft": _snaps([0, 10, 20, 30]), "standard": _snaps([0, 10, 30], seed=1)}
    fig = fi.digit_animation(runs)
    spec = fig.to_plotly_json()
    assert len(spec["frames"]) == 4
    # two heatmaps, then one schedule marker per run at the frame's step (play and scrub move the strip too)
    assert all(len(f["data"]) == 4 and f["data"][0]["type"] == "heatmap" for f in spec["frames"])
    for frame, step in zip(fig.frames, [0, 10, 20, 30]):
        assert [float(np.asarray(m.x)[0]) for m in frame.data[2:]] == [step, 10 if step == 20 else step]
    # Heatmaps only move with redraw: True (play button and every slider step).
    assert spec["layout"]["updatemenus"][0]["buttons"][0]["args"][1]["frame"]["redraw"] is True
    assert all(s["args"][1]["frame"]["redraw"] is True for s in spec["layout"]["sliders"][0]["steps"])
    # The standard run has no step-20 snapshot: frame 3 shows its step-10 grid.
    expected = fi.mosaic(runs["standard"][1].trajectory[-1])
    np.testing.assert_array_equal(np.asarray(fig.frames[2].data[1].z, dtype=np.float32), expected)
    assert "step 20" in spec["frames"][2]["layout"]["title"]["text"]
    with pytest.raises(ValueError):
        fi.digit_animation({"gft": [Snapshot(0, 1, 0.0, 0.0, None)]})


def test_time_scrub_has_one_frame_per_ode_time():
    snap = _snaps([30], k=6)[0]
    spec = fi.time_scrub_animation({"gft": snap, "standard": snap}).to_plotly_json()
    assert len(spec["frames"]) == 7
    labels = [s["label"] for s in spec["layout"]["sliders"][0]["steps"]]
    assert labels[0] == "0.000" and labels[-1] == "1.000"


def test_metrics_csv_has_a_row_per_run():
    m = {"fd": 1.5, "fd_null": {"mean": 0.5, "sd": 0.1, "pairs": 20, "n": 300}, "fd_by_steps": {"1": 9.0, "2": 5.0}, "class_fractions": {str(c): 0.1 for c in range(10)}}
    text = metrics_csv({"gft": m, "standard": dict(m, fd=2.5)}, {"scenario": "x"})
    lines = text.strip().split("\n")
    assert len(lines) == 3
    head = lines[0].split(",")
    assert head[:3] == ["scenario", "run", "fd"] and "fd_2_steps" in head and "class_9" in head
    assert lines[2].split(",")[2] == "2.5"
    assert head[3:5] == ["fd_null_mean", "fd_null_sd"] and lines[1].split(",")[3:5] == ["0.5", "0.1"]


# ---- the page -------------------------------------------------------------------------------------
def page(params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    return at


@needs_assets
def test_page_renders_fresh():
    at = page().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Images" in at.title[0].value
    assert not at.error
    assert at.selectbox(key="im_scenario").value == "new classes"
    assert any(b.label == "Start" for b in at.button)


@needs_assets
def test_url_params_seed_the_widgets():
    at = page({"im_scenario": "limited data", "im_class": "3", "im_images": "10", "im_steps": "250", "im_seed": "5"}).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="im_scenario").value == "limited data"
    assert at.selectbox(key="im_class").value == 3
    assert at.selectbox(key="im_images").value == "10"
    assert at.number_input(key="im_steps").value == 250
    assert at.number_input(key="im_seed").value == 5
    assert any("digits:3 (10 images)" in m.value for m in at.markdown)


@needs_assets
def test_chain_without_a_session_model_is_a_message_not_a_traceback():
    at = page({"im_scenario": "style chain"}).run()
    assert not at.exception
    # the message names every scenario whose GFT model starts the chain (each of them does: LAST_MODEL)
    assert any("'new classes', 'limited data' or 'style shift' first" in e.value for e in at.error)
    at.button(key="images_start").click().run()
    assert not at.exception
    assert any("No pretrained model" in e.value for e in at.error)


def _decode(z) -> np.ndarray:
    """A heatmap z from a chart spec: a nested list, or Plotly's typed array {dtype, bdata, shape}."""
    if isinstance(z, dict):
        import base64

        shape = [int(v) for v in str(z["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"])).reshape(shape)
    return np.asarray(z, dtype=np.float64)


@needs_assets
def test_target_preview_shows_every_target_class():
    from gft.data.digits import digit_set, parse_digits_spec

    at = page().run()  # new classes: digits 5-9, 25 digits in the grid
    assert not at.exception, [e.value for e in at.exception]
    drop_leftover_run(at, "images")  # the preview shows until a run's results take its place
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (preview,) = [s for s in specs if any("target:" in a.get("text", "") for a in s["layout"].get("annotations", []))]
    grid = _decode(preview["data"][1]["z"])
    tiles = np.stack([grid[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] for r in range(5) for c in range(5)]).reshape(25, 64)
    train = digit_set(parse_digits_spec("digits:5-9"), "train")
    pool = to_model_scale(train.pixels).reshape(len(train), 64).numpy()
    nearest = ((tiles[:, None, :] - pool[None]) ** 2).sum(-1).argmin(1)
    assert set(train.labels[nearest].tolist()) == {5, 6, 7, 8, 9}


def _animations(at: AppTest) -> list[dict]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [s for s in specs if s.get("frames")]


@needs_assets
def test_short_run_completes_in_the_background_and_animates():
    at = page(SHORT_RUN).run()
    assert not at.exception
    at.button(key="images_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    wait_for_results(at)
    assert not at.error, [e.value for e in at.error]
    anims = _animations(at)
    assert len(anims) == 2
    digits, scrub = anims
    assert len(digits["frames"]) == 7  # snapshots at steps 0, 5, ..., 30
    assert [t["type"] for t in digits["frames"][0]["data"]] == ["heatmap", "heatmap", "scatter", "scatter"]  # GFT and standard side by side, a schedule marker each
    assert len(scrub["frames"]) == 5  # Euler steps + 1 ODE times
    labels = [m.label for m in at.metric]
    assert labels.count("FD") == 2
