"""The session's run history in the app (AppTest): a new run keeps the previous one, two runs compare
side by side, and the sidebar says what trains and on which page.

AppTest gives every instance of a process the same session, so these tests count runs relative to
what earlier tests left in the history.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from apptest_wait import wait_for_results
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
FINETUNE = "pages/3_gradual_finetune.py"
SHORT_RUN = {"ft_steps": "40", "ft_particles": "50", "ft_euler": "6", "ft_frames": "10", "ft_coupling": "independent"}


def _page(params: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / FINETUNE), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at


def test_a_second_run_keeps_the_first_and_both_compare_side_by_side():
    at = _page(SHORT_RUN)
    at.run()
    at.button(key="finetune_start").click()
    wait_for_results(at)
    at.selectbox(key="ft_method").set_value("standard")
    at.number_input(key="ft_seed").set_value(3)
    at.run()
    at.button(key="finetune_start").click()
    wait_for_results(at)
    at.toggle(key="ft_compare").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    left, right = at.selectbox(key="ft_cmp_left"), at.selectbox(key="ft_cmp_right")
    # The newest two by default, numbered in the order they started: the first run was kept.
    newest, previous = int(right.value.split(":")[0]), int(left.value.split(":")[0])
    assert newest == previous + 1, (left.value, right.value)
    table = at.dataframe[-1].value
    assert list(table["method"]) == ["gft", "standard"] and list(table["steps"]) == [40, 40]
    assert not table["stopped"].any() and table["final W2"].notna().all()
    # Same target, same snapshot steps: one figure, two panels, one slider.
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    # two panels and the schedule strip under them (a single run has one panel and its strip: xaxis, xaxis2)
    both = [s for s in specs if s.get("frames") and "xaxis3" in s["layout"] and len(s["layout"].get("sliders", [])) == 1]
    assert len(both) == 1 and len(both[0]["frames"]) == 11


def test_the_sidebar_says_what_trains_and_where():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in dict(SHORT_RUN, ft_steps="200000").items():
        at.query_params[key] = value
    at.run()
    at.switch_page(FINETUNE)
    at.run()
    assert any("No run is training" in c.value for c in at.sidebar.caption)
    assert any(c.value.startswith("CPU defaults") for c in at.sidebar.caption)  # the badge says why (no GPU here)
    # (AppTest drops app.py's sidebar on a widget rerun after switch_page; a button's rerun keeps it.)
    at.button(key="finetune_start").click().run()
    try:
        captions = [c.value for c in at.sidebar.caption]
        assert any("running" in c and "Gradual fine-tune" in c for c in captions), captions
        assert "Training now" in [m.value.strip("*") for m in at.sidebar.markdown]
        assert [p.proto.label for p in at.sidebar.get("page_link")] == ["go to Gradual fine-tune"]
    finally:
        at.button(key="finetune_stop").click().run()
    assert not at.exception


def test_after_a_run_the_sde_and_few_step_samplers_show_beside_the_ode():
    at = _page(dict(SHORT_RUN, ft_seed="5"))
    at.run()
    at.button(key="finetune_start").click()
    wait_for_results(at)
    at.toggle(key="ft_samplers").set_value(True).run()
    assert at.selectbox(key="ft_sampler").options == ["euler", "midpoint", "dopri5", "sde"]  # independent coupling: SDE offered
    at.slider(key="ft_sampler_steps").set_value(4)
    at.selectbox(key="ft_sampler").set_value("midpoint").run()
    table = [d.value for d in at.dataframe][-1]
    assert list(table["NFE"])[1] == 8 and list(table["sampler"]) == ["dopri5 (adaptive)", "midpoint, 4 steps"]
    at.selectbox(key="ft_sampler").set_value("sde").run()
    at.slider(key="ft_sampler_g").set_value(1.5).run()
    assert not at.exception, [e.value for e in at.exception]
    table = [d.value for d in at.dataframe][-1]
    assert list(table["sampler"])[1] == "SDE, 4 steps, g = 1.5" and list(table["NFE"])[1] == 4
    assert table["W2 to target"].notna().all()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    panels = [s for s in specs if not s.get("frames") and "xaxis2" in s["layout"]]
    assert panels and sum(d.get("name") == "SDE, 4 steps, g = 1.5" for d in panels[-1]["data"]) == 1  # the ODE beside the SDE


def test_ot_runs_offer_no_sde_and_a_score_head_needs_the_independent_coupling():
    at = _page(dict(SHORT_RUN, ft_coupling="ot", ft_seed="6"))
    at.run()
    at.button(key="finetune_start").click()
    wait_for_results(at)
    at.toggle(key="ft_samplers").set_value(True).run()
    assert "sde" not in at.selectbox(key="ft_sampler").options
    pre = AppTest.from_file(str(ROOT / "pages" / "2_pretrain.py"), default_timeout=120)
    for key, value in {"pt_mode": "train", "pt_steps": "20", "pt_coupling": "ot", "pt_score": "true"}.items():
        pre.query_params[key] = value
    pre.run()
    pre.button(key="pretrain_start").click().run()
    assert any("score head needs the independent coupling" in e.value for e in pre.error), [e.value for e in pre.error]


def test_a_drawing_in_the_url_is_a_target_and_a_bad_one_is_a_message():
    import numpy as np

    from gft.data.drawing import Drawing

    text = Drawing.empty().add(np.array([[-2.0, -2.0], [2.0, 2.0]])).add(np.array([[-2.0, 2.0], [2.0, -2.0]])).encode()
    at = _page(dict(SHORT_RUN, ft_src="drawing", ft_draw=text, ft_draw_n="500", ft_draw_spread="0.1"))
    at.run()
    assert not at.exception and not [e.value for e in at.error]
    assert any("2 strokes → 500 points" in c.value for c in at.caption)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    canvas = [s for s in specs if s["layout"].get("dragmode") == "lasso"]
    assert len(canvas) == 1 and any(d.get("name") == "your strokes" for d in canvas[0]["data"])
    at.button(key="finetune_start").click()
    wait_for_results(at)
    assert any("drawing (2 strokes)" in m.value for m in at.markdown)
    assert at.query_params["ft_draw"] in (text, [text])  # still shareable

    bad = _page(dict(SHORT_RUN, ft_src="drawing", ft_draw="yMg"))
    bad.run()
    assert not bad.exception
    assert any("drawing in this link cannot be used" in e.value and "outside" in e.value for e in bad.error), [e.value for e in bad.error]


def test_manual_annealing_follows_the_knob_and_records_a_replayable_schedule():
    at = _page(dict(SHORT_RUN, ft_steps="200", ft_frames="10", ft_manual="true", ft_manual_tau0="4"))
    at.run()
    assert not at.exception and not [e.value for e in at.error]
    at.button(key="finetune_step").click().run()  # starts paused, 20 steps
    deadline = time.monotonic() + 60
    while "step 20/200" not in at.get("progress")[0].proto.text and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert "paused" in at.get("progress")[0].proto.text
    at.select_slider(key="ft_tau_now").set_value(0.5).run()
    assert "τ 0.5 from step 20" in [c.value for c in at.caption if c.value.startswith("Your schedule")][0]
    at.button(key="finetune_resume").click().run()
    wait_for_results(at)
    assert not at.exception
    code = [c.value for c in at.code][-1]
    assert code.startswith("piecewise:0/4,") and code.endswith("/0.5,1/0.5") and "0.1/0.5" in code  # the jump at step 20 of 200
    from gft.core.schedules import parse_schedule

    replay = parse_schedule(code, 200, 0.0)
    assert [replay.tau(s) for s in (0, 19, 20, 199)] == [4.0, 4.0, 0.5, 0.5]
