"""The Chains of shifts page (AppTest): three targets in turn, GFT and standard side by side, one
animation across the whole chain and the quality on every target (what was forgotten)."""

from __future__ import annotations

import json
from pathlib import Path

from apptest_wait import wait_for_results
from streamlit.testing.v1 import AppTest

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
