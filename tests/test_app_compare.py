"""Pages 4-6 of the explorer under streamlit.testing.v1.AppTest: render, URL state, a real short run, reveal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from apptest_wait import drop_leftover_run
from streamlit.testing.v1 import AppTest

from gft.app import evaluation_task
from gft.theory import exact_annealing as annealing
from gft.theory import gaussian as gauss

PAGES = Path(__file__).resolve().parents[1] / "pages"
COUPLINGS_PAGE = str(PAGES / "4_compare_couplings.py")
METHODS_PAGE = str(PAGES / "5_compare_methods.py")
ANNEALING_PAGE = str(PAGES / "6_annealing_exactly.py")


def _app(path: str, **params: str) -> AppTest:
    at = AppTest.from_file(path, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _axes(spec: dict) -> set[str]:
    return {k for k in spec["layout"] if k.startswith("xaxis")}


def _run_until(at: AppTest, done, timeout: float) -> None:
    """AppTest never reruns by itself and timed fragments do not tick: rerun until ``done(at)``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(2.0)  # each rerun redraws the live charts, which takes CPU from the training thread
        at.run()
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        if done(at):
            return
    pytest.fail(f"the page did not finish within {timeout} s: {[p.proto.text for p in at.get('progress')]}")


def _stop_job(at: AppTest, owner: str) -> None:
    stop = at.button(key=f"{owner}_stop")
    if not stop.disabled:
        stop.click().run()


# ---- page 4 ------------------------------------------------------------------------------------
def test_couplings_page_renders_fresh():
    at = _app(COUPLINGS_PAGE)
    assert not at.error
    assert at.session_state["steps"] == 300 and at.session_state["reg"] == 1.0 and at.session_state["seed"] == 0
    panels = [s for s in _specs(at) if "xaxis2" in s["layout"]]
    assert len(panels) == 1 and _axes(panels[0]) == {"xaxis", "xaxis2", "xaxis3"}  # the couplings, one panel each
    assert any("Press Start" in c.value for c in at.caption)  # under the coupling figure, the page's first picture


def test_couplings_page_reads_the_url_and_reports_bad_schedules():
    at = _app(COUPLINGS_PAGE, pre="circles", target="moons", seed="5", reg="0.2", steps="50", fam="stages", ratio="1.5")
    assert at.session_state["pre"] == "circles" and at.session_state["target"] == "moons"
    assert at.session_state["seed"] == 5 and at.session_state["reg"] == 0.2 and at.session_state["steps"] == 50
    assert len(at.error) == 1 and "ratio must be in (0, 1)" in at.error[0].value
    assert not [s for s in _specs(at) if "xaxis3" in s["layout"]]  # nothing below a bad setting


def test_couplings_short_run_through_the_background_job(monkeypatch):
    monkeypatch.setattr(evaluation_task, "EVALUATION_POINTS", 200)  # the page reads it at run time
    at = _app(COUPLINGS_PAGE, steps="20", batch="64", reg="5.0", seed="1")
    at.button(key="compare_couplings_start").click().run()
    assert not at.exception, at.exception
    try:
        _run_until(at, lambda a: len(a.dataframe) > 0, timeout=240)
    finally:
        _stop_job(at, "compare_couplings")
    animations = [s for s in _specs(at) if s.get("frames")]
    assert len(animations) == 1
    anim = animations[0]
    assert len(anim["frames"]) == 21  # a snapshot at step 0 and after each of the 20 steps
    assert _axes(anim) == {"xaxis", "xaxis2", "xaxis3", "xaxis4"}  # three panels and the schedule strip under them
    assert len(anim["layout"]["sliders"]) == 1 and len(anim["layout"]["sliders"][0]["steps"]) == 21
    assert anim["layout"]["sliders"][0]["steps"][-1]["label"] == "20"  # readable ticks: step numbers
    labels = [t["text"][0] for t in anim["frames"][-1]["data"] if t.get("mode") == "text"]
    assert labels and labels[0].startswith("step 20/20 · τ")  # the frame's step, τ and λ above the strip
    table = at.dataframe[0].value
    assert list(table["coupling"]) == ["independent", "ot", "sinkhorn"]
    assert (table["steps"] == 20).all() and (table["W2"] > 0).all()
    assert table.loc[table["coupling"] == "independent", "OT ms/batch"].item() == 0
    assert (table.loc[table["coupling"] != "independent", "OT ms/batch"] > 0).all()


def test_couplings_train_on_a_drawn_target_and_measure_w2_against_it(monkeypatch):
    from gft.app import comparisons as cmp
    from gft.data import DataSpec
    from gft.data.drawing import Drawing
    from gft.evaluation.points import null_bands

    monkeypatch.setattr(evaluation_task, "EVALUATION_POINTS", 200)
    drawing = Drawing.empty().add(np.array([[-2.5, -2.0], [2.5, -2.0], [0.0, 2.5], [-2.5, -2.0]])).add(np.array([[0.0, -3.0], [0.0, 0.5]]))
    text = drawing.encode()
    at = _app(COUPLINGS_PAGE, cmp_src="drawing", cmp_draw=text, cmp_draw_n="400", cmp_draw_spread="0.1",
              steps="20", batch="64", reg="5.0", seed="2")
    drop_leftover_run(at, "compare_couplings")
    assert not at.error, [e.value for e in at.error]
    drawn = drawing.points(400, 0.1, seed=0)  # what the picker makes of the strokes
    spec = cmp.points_spec(drawn)  # named by its content: the page's spec for the same points
    np.testing.assert_array_equal(DataSpec(spec).points(0, 0).numpy(), drawn)
    # Before a run: the coupling pairs noise with rows of the drawn cloud.
    (coupling,) = [s for s in _specs(at) if "xaxis3" in s["layout"] and not s.get("frames")]
    pairs = [t for t in coupling["data"] if t.get("name") == "target x1"]
    assert len(pairs) == 3
    x1 = np.stack([_floats(pairs[0]["x"]), _floats(pairs[0]["y"])], axis=1)
    assert len(x1) == 64 and all(np.isclose(drawn, p, atol=1e-6).all(axis=1).any() for p in x1)

    at.button(key="compare_couplings_start").click().run()
    try:
        _run_until(at, lambda a: len(a.dataframe) > 0, timeout=240)
    finally:
        _stop_job(at, "compare_couplings")
    (anim,) = [s for s in _specs(at) if s.get("frames")]
    target = [t for t in anim["data"] if t.get("name") == "target"][0]  # the orange cloud under every panel
    np.testing.assert_allclose(np.stack([_floats(target["x"]), _floats(target["y"])], axis=1), drawn, atol=1e-6)
    # W2 was measured against the drawing: the table's null band is the drawn cloud's (an 8gaussians one is far larger).
    band = null_bands(DataSpec(spec), 200, 2)["w2"]
    table = at.dataframe[0].value
    assert table["W2 null top"].to_numpy() == pytest.approx(band.mean + 2 * band.sd)
    assert band.mean + 2 * band.sd < null_bands(DataSpec("8gaussians"), 200, 2)["w2"].mean
    assert (table["W2"] > 0).all() and (table["steps"] == 20).all()
    # The drawing and the bound settings are still in the URL: the link reproduces this comparison.
    assert at.query_params["cmp_draw"] in (text, [text])
    assert at.session_state["steps"] == 20 and at.session_state["seed"] == 2 and at.session_state["cmp_src"] == "drawing"


# ---- page 5 ------------------------------------------------------------------------------------
def test_methods_page_renders_fresh_and_from_the_url():
    at = _app(METHODS_PAGE)
    assert not at.error and at.session_state["seeds"] == 3
    at = _app(METHODS_PAGE, seeds="2", coupling="ot", target="25gaussians", fam="linear", taumax="5")
    assert at.session_state["seeds"] == 2 and at.session_state["coupling"] == "ot"
    assert at.session_state["target"] == "25gaussians" and at.session_state["fam"] == "linear"
    assert not at.error and "6 runs" in at.info[0].value
    assert "`linear:5`" in at.caption[1].value


@pytest.mark.slow
def test_methods_short_run_shows_curves_stability_and_samples():
    at = _app(METHODS_PAGE, steps="30", seeds="2", batch="64")
    at.button(key="compare_methods_start").click().run()
    try:
        _run_until(at, lambda a: len(a.dataframe) > 0, timeout=300)
    finally:
        _stop_job(at, "compare_methods")
    table = at.dataframe[0].value
    assert list(table["method"]) == ["GFT", "standard fine-tuning", "from scratch"]
    assert (table["seeds"] == 2).all()
    assert all("±" in v for v in table["Spearman"]) and all("±" in v for v in table["mode coverage"])
    specs = _specs(at)
    assert any(_axes(s) == {"xaxis", "xaxis2", "xaxis3"} for s in specs)  # final samples, 3 panels


def test_methods_page_refuses_an_empty_method_list_and_validation_without_few_points():
    at = _app(METHODS_PAGE)
    at.multiselect(key="methods").set_value([]).run()
    assert not at.exception and any("methods must be distinct labels" in e.value for e in at.error)
    at = _app(METHODS_PAGE, points="16", val_share="25%", methods=["gft-stop", "l2sp"], seeds="1")
    assert not at.error and at.session_state["methods"] == ["gft-stop", "l2sp"]
    # (the caption, not the "Press Start" box: an earlier test's finished run may still be this page's run)
    assert "2 runs of" in at.caption[1].value and "on 16 target points" in at.caption[1].value


@pytest.mark.slow
def test_methods_few_points_keep_validation_chosen_checkpoints():
    at = _app(METHODS_PAGE, steps="100", seeds="1", batch="64", points="16", val_share="25%",
              methods=["gft", "gft-stop", "standard"])
    at.button(key="compare_methods_start").click().run()
    try:
        _run_until(at, lambda a: len(a.dataframe) > 1, timeout=300)
    finally:
        _stop_job(at, "compare_methods")
    best = at.dataframe[1].value
    rows = best.to_dict("records") if hasattr(best, "to_dict") else list(best)
    assert [r["method"] for r in rows] == ["GFT", "GFT stopped at τ 0.5", "standard fine-tuning"]
    assert all(0 <= r["best step"] <= 100 and r["validation energy"] is not None for r in rows)
    stop = next(r for r in rows if r["method"] == "GFT stopped at τ 0.5")
    assert stop["λ"] > 0.3  # stopped at tau 0.5 (lambda 1/3): it never reaches the target alone
    assert next(r for r in rows if r["method"] == "standard fine-tuning")["λ"] == 0.0


# ---- page 6 ------------------------------------------------------------------------------------
def test_annealing_page_hides_the_answer_until_reveal():
    at = _app(ANNEALING_PAGE)
    assert not at.error and at.session_state["tau"] == "1"
    assert not at.metric  # predict first: the figure shows the question (both Gaussians), nothing of the answer
    _assert_question_only(at)
    at.radio(key="guess").set_value("exactly halfway between the two means").run()
    at.button(key="reveal").click().run()
    assert not at.exception
    # Default: both round, means (-2, 0) and (2, 1): the tau = 1 flow lands exactly halfway.
    assert "Right." in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["terminal mean"] == "(0.00, 0.50)" and metrics["λ = τ/(1 + τ)"] == "0.500"
    spec = _specs(at)[0]
    assert len(spec["frames"]) == 21 and len(spec["layout"]["sliders"]) == 1
    # the trail of terminal laws as tau sweeps from infinity to 0: from the pretrained mean to the target mean
    (trail,) = [t for t in spec["data"] if t.get("name") == "their means, τ = ∞ → 0"]
    assert trail["text"] == ["∞", "10", "4", "2", "1", "0.5", "0.25", "0.1", "0"]
    xs, ys = _floats(trail["x"]), _floats(trail["y"])
    assert (xs[0], ys[0]) == pytest.approx((-2.0, 0.0), abs=1e-3) and (xs[-1], ys[-1]) == pytest.approx((2.0, 1.0), abs=1e-3)
    assert (xs[4], ys[4]) == pytest.approx((0.0, 0.5), abs=1e-3)  # tau = 1: halfway, as revealed above


def test_annealing_page_reveal_shows_the_exact_numbers_from_the_url():
    at = _app(ANNEALING_PAGE, tau="4", tgt_cov="tilted", tgt_x="1.5", pre_y="-1")
    assert at.session_state["tau"] == "4" and at.session_state["tgt_cov"] == "tilted"
    assert at.session_state["tgt_x"] == 1.5 and at.session_state["pre_y"] == -1.0
    at.radio(key="guess").set_value("on the target mean").run()
    at.button(key="reveal").click().run()
    pre = gauss.Gaussian(np.array([-2.0, -1.0]), np.eye(2))
    target = gauss.Gaussian(np.array([1.5, 1.0]), np.array(annealing.COV_PRESETS["tilted"]))
    exact = gauss.terminal_law(pre, target, 0.8)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["terminal mean"] == f"({exact.mean[0]:.2f}, {exact.mean[1]:.2f})"
    assert metrics["W2 to target"] == f"{gauss.gaussian_w2(exact, target):.3f}"
    assert "Not quite" in at.warning[0].value  # lambda = 0.8 stays far from the target
    # a new temperature is a new question: the answer hides and the guess clears until the next reveal
    at.select_slider(key="tau").set_value("0").run()
    assert not at.exception and not at.metric
    _assert_question_only(at)
    assert at.radio(key="guess").value is None and not at.button(key="reveal").disabled
    at.radio(key="guess").set_value("on the target mean").run()
    at.button(key="reveal").click().run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["terminal mean"] == "(1.50, 1.00)" and metrics["W2 to target"] == "0.000"
    assert "Right." in at.success[0].value
    # so does moving a Gaussian
    at.number_input(key="tgt_x").set_value(2.5).run()
    assert not at.metric and at.radio(key="guess").value is None


def _assert_question_only(at: AppTest) -> None:
    """Before a reveal the page draws one figure, the question: no animation, no terminal law, no trail."""
    (spec,) = _specs(at)
    names = {t.get("name", "") for t in spec["data"]}
    assert not spec.get("frames") and {"pretrained", "target"} <= names
    assert not any("terminal" in n or "τ = ∞" in n for n in names), names


def _floats(x) -> list[float]:
    """A trace coordinate from a chart spec: a list, or Plotly's typed-array form {dtype, bdata}."""
    if isinstance(x, list):
        return [float(v) for v in x]
    import base64

    return [float(v) for v in np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])]
