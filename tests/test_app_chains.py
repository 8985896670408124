"""The Chains of shifts page (AppTest): three targets in turn, GFT and standard side by side, one
animation across the whole chain and the quality on every target (what was forgotten)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from apptest_wait import drop_leftover_run, wait_for_results
from streamlit.testing.v1 import AppTest

from gft.app.resources import PREVIEW_POINTS
from gft.data.drawing import Drawing
from gft.viz.style import MAX_CLOUD_POINTS

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "8_chains.py"


def test_a_chain_of_three_targets_trains_animates_and_shows_forgetting():
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.query_params["ch_steps"] = "20"
    at.query_params["ch_coupling"] = "independent"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="ch_targets").value == ["8gaussians", "circles", "checkerboard"]
    at.button(key="chains_start").click()
    wait_for_results(at, heading="What each method keeps")
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    anim = [s for s in specs if s.get("frames")]
    assert len(anim) == 1 and "xaxis2" in anim[0]["layout"]  # one figure, GFT and standard panels
    # every snapshot of all three stages: 0, 2, ..., 60 (each stage boundary once: the shared slider keys by step)
    assert [f["name"] for f in anim[0]["frames"]] == [str(s) for s in range(0, 61, 2)]
    forgetting = [s for s in specs if any("W2 to circles" in d.get("name", "") for d in s["data"])]
    assert forgetting and {d["name"] for d in forgetting[-1]["data"]} >= {"gft: W2 to 8gaussians", "standard: W2 to checkerboard"}
    table = at.dataframe[-1].value
    assert list(table["method"]) == ["gft", "standard"] and list(table["steps"]) == [60, 60]
    assert table[[f"W2 to {t} (end)" for t in ("8gaussians", "circles", "checkerboard")]].notna().all().all()


def test_a_chain_needs_three_targets():
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run()
    at.multiselect(key="ch_targets").set_value(["moons", "circles"]).run()
    at.button(key="chains_start").click().run()
    assert not at.exception
    assert any("at least 3 targets" in e.value for e in at.error)


def _floats(v) -> np.ndarray:
    """A trace coordinate from a chart spec: a list, or Plotly's typed array {dtype, bdata}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).astype(np.float64)
    return np.asarray(v, dtype=np.float64)


def test_the_last_stage_can_be_a_drawing_and_the_chain_trains_on_it():
    # A small ring far up and right: no preset and not the moons model, so only training on it brings W2 down.
    a = np.linspace(0, 2 * np.pi, 40)
    drawing = Drawing((np.stack([3.0 + 0.6 * np.cos(a), 3.0 + 0.6 * np.sin(a)], 1),))
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.query_params["ch_steps"] = "20"
    at.query_params["ch_coupling"] = "independent"
    at.query_params["ch_targets"] = ["8gaussians", "circles", "your drawing"]
    at.query_params["ch_draw"] = drawing.encode()  # the drawing comes from the link, as a shared URL would bring it
    at.run()
    drop_leftover_run(at, "chains")
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    assert at.multiselect(key="ch_targets").value == ["8gaussians", "circles", "your drawing"]
    # The preview's last panel is stage 3, and its points are the drawn cloud (the page's default 2000 points, spread 0.15).
    (preview,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == "ch_preview"]
    titles = [a["text"] for a in preview["layout"]["annotations"]]
    assert titles == ["start: moons (shipped)", "1. 8gaussians", "2. circles", "3. drawing (1 stroke)"]
    drawn = drawing.points(2000, 0.15, seed=0)[:min(PREVIEW_POINTS, MAX_CLOUD_POINTS)]  # a static cloud draws at most this many
    last = preview["data"][-1]
    np.testing.assert_allclose(np.stack([_floats(last["x"]), _floats(last["y"])], 1), drawn, atol=1e-6)

    at.button(key="chains_start").click()
    wait_for_results(at, heading="What each method keeps")
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[-1].value
    assert list(table["steps"]) == [60, 60] and table["W2 to drawing (1 stroke) (end)"].notna().all()
    # W2 to the drawn cloud (measured against its points) falls during stage 3 in both chains: they trained on it.
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    forgetting = [s for s in specs if any("W2 to drawing" in d.get("name", "") for d in s["data"])][-1]
    for run in ("gft", "standard"):
        (curve,) = [d for d in forgetting["data"] if d["name"] == f"{run}: W2 to drawing (1 stroke)"]
        steps, w2 = _floats(curve["x"]), _floats(curve["y"])
        before = w2[steps <= 40][-1]  # the start of stage 3 (steps 40 to 60)
        assert w2[-1] < 0.5 * before, (run, before, w2[-1])
