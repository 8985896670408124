"""The explorer's figures (gft.viz.training, gft.viz.style): frame counts, trace layout, float32 payloads,
fixed axes, per-frame labels; and the history CSV (gft.app.downloads)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from gft.app.downloads import history_csv
from gft.core.schedules import lambda_of_tau
from gft.core.training import Snapshot
from gft.viz import style
from gft.viz import training as figures


def _snapshots(n_frames: int = 7, k: int = 5, n: int = 40, total: int = 60) -> list[Snapshot]:
    rng = np.random.default_rng(0)
    taus = np.linspace(8.0, 0.0, n_frames)
    out = []
    for i, tau in enumerate(taus):
        traj = rng.normal(size=(k + 1, n, 2)).astype(np.float32)
        step = round(i * total / (n_frames - 1))
        out.append(Snapshot(step, total, float(tau), lambda_of_tau(float(tau)), 0.1, {"trajectory": traj}))
    return out


def _spec(fig) -> dict:
    return json.loads(fig.to_json())


def test_trajectory_animation_has_one_frame_per_snapshot_with_the_moving_traces_only():
    snaps = _snapshots()
    pre = np.zeros((300, 2), np.float32)
    tgt = np.ones((300, 2), np.float32)
    fig = figures.trajectory_animation(snaps, pre, tgt, max_particles=30, max_paths=10)
    assert len(fig.frames) == len(snaps)
    assert figures.frame_count(_spec(fig)) == len(snaps)
    assert len(fig.data) == 3 + 4  # two static clouds and the schedule line + paths, particles, label, schedule marker
    for frame in fig.frames:
        assert list(frame.traces) == [3, 4, 5, 6]  # static clouds and the schedule curve are never resent
        assert len(frame.data) == 4
    # slider: one step per frame, pointing at that frame by name
    steps = fig.layout.sliders[0].steps
    assert [s.args[0][0] for s in steps] == [f.name for f in fig.frames]


def test_animation_frames_carry_step_tau_and_lambda_labels():
    snaps = _snapshots()
    fig = figures.trajectory_animation(snaps)
    for snap, frame, step in zip(snaps, fig.frames, fig.layout.sliders[0].steps):
        label = frame.data[2].text[0]
        assert f"step {snap.step}/{snap.total_steps}" in label
        assert f"τ = {snap.tau:.3g}" in label
        assert f"λ = {snap.lam:.3f}" in label
        assert step.label in ("", str(snap.step))  # readable ticks: the step number under some frames, nothing under the rest
    # lambda really is tau / (1 + tau) in the labels (the first frame has tau = 8)
    assert "λ = 0.889" in fig.frames[0].data[2].text[0]
    assert "τ = 0 · λ = 0.000" in fig.frames[-1].data[2].text[0]


def test_animation_arrays_are_float32_and_axes_fixed():
    snaps = _snapshots()
    fig = figures.trajectory_animation(snaps, np.zeros((50, 2)), np.ones((50, 2)))
    for trace in list(fig.data) + [t for f in fig.frames for t in f.data]:
        assert np.asarray(trace.x).dtype == np.float32
        assert np.asarray(trace.y).dtype == np.float32
    spec = _spec(fig)
    assert spec["frames"][0]["data"][1]["x"]["dtype"] == "f4"  # sent as binary float32, not lists
    for axis in ("xaxis", "yaxis"):
        assert spec["layout"][axis]["range"] == list(style.AXIS_RANGE)
        assert spec["layout"][axis]["autorange"] is False
    # animation never redraws the whole figure (Scattergl would freeze; SVG scatter animates)
    play = fig.layout.updatemenus[0].buttons[0].args[1]
    assert play["frame"]["redraw"] is False
    assert all(t.type == "scatter" for t in fig.data)


def test_animation_particles_are_the_same_seeds_in_every_frame_and_respect_the_budget():
    snaps = _snapshots(n=40)
    fig = figures.trajectory_animation(snaps, max_particles=25, max_paths=4)
    for snap, frame in zip(snaps, fig.frames):
        np.testing.assert_array_equal(np.asarray(frame.data[1].x), snap.trajectory[-1, :25, 0])
        x = np.asarray(frame.data[0].x)
        assert x.size == 4 * (snap.trajectory.shape[0] + 1)  # 4 polylines, NaN-separated


def test_long_trajectories_keep_the_animated_points_within_budget():
    snaps = _snapshots(n_frames=3, k=100, n=2500)
    fig = figures.trajectory_animation(snaps)
    for frame in fig.frames:
        assert len(frame.data[0].x) <= figures.PATH_POINTS  # fewer paths when each has more vertices
        assert len(frame.data[1].x) == 2000  # particles capped at the ~2,000-point budget


def test_animation_without_trajectories_is_refused():
    snaps = [Snapshot(0, 10, 1.0, 0.5, 0.1)]
    with pytest.raises(ValueError, match="particles"):
        figures.trajectory_animation(snaps)


def test_paths_are_polylines_of_each_particle_separated_by_nan():
    traj = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)  # K+1 = 4 points, 3 particles
    x, y = style.trajectory_lines(traj, 2)
    assert x.shape == (2 * 5,)
    np.testing.assert_array_equal(x[:4], traj[:, 0, 0])
    np.testing.assert_array_equal(y[5:9], traj[:, 1, 1])
    assert np.isnan(x[4]) and np.isnan(x[9])


def test_arrows_start_at_the_point_and_end_at_point_plus_scaled_vector():
    p = np.array([[0.0, 0.0], [1.0, 2.0]], np.float32)
    v = np.array([[1.0, 0.0], [0.0, -2.0]], np.float32)
    x, y = style.arrows_xy(p, v, scale=0.5)
    seg = np.stack([x, y], axis=1).reshape(2, 7, 2)
    np.testing.assert_allclose(seg[:, 0], p)
    np.testing.assert_allclose(seg[:, 1], p + 0.5 * v)
    np.testing.assert_allclose(seg[:, 4], p + 0.5 * v)  # both head strokes meet at the tip
    assert np.isnan(seg[:, 2]).all() and np.isnan(seg[:, 6]).all()
    # head strokes point backwards: shorter than the arrow, on its tail side
    back = seg[:, 3] - seg[:, 1]
    assert (np.einsum("ij,ij->i", back, 0.5 * v) < 0).all()


def test_arrow_scale_maps_the_95th_percentile_norm_to_the_requested_length():
    v = np.zeros((100, 2), np.float32)
    v[:, 0] = np.linspace(0, 10, 100)
    scale = figures.arrow_scale(v, length=0.5)
    assert scale * np.percentile(np.abs(v[:, 0]), 95) == pytest.approx(0.5)
    assert figures.arrow_scale(None) == 1.0


def test_time_scrub_has_one_frame_per_euler_step_and_optional_arrow_layers():
    k, n = 6, 20
    traj = np.cumsum(np.random.default_rng(1).normal(size=(k + 1, n, 2)), axis=0).astype(np.float32)
    plain = figures.time_scrub_figure(traj)
    assert len(plain.frames) == k + 1
    assert len(plain.frames[0].data) == 2  # particles + label
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 5)), -1).reshape(-1, 2).astype(np.float32)
    field = (grid, np.ones((k + 1, len(grid), 2), np.float32))
    full = figures.time_scrub_figure(traj, np.zeros((10, 2)), np.ones((10, 2)), drift_pre=np.ones_like(traj), field=field, learned_arrows=True)
    assert len(full.frames) == k + 1
    assert len(full.frames[0].data) == 5  # particles, f_pre, learned, field, label
    for kk, frame in enumerate(full.frames):
        np.testing.assert_array_equal(np.asarray(frame.data[0].x), traj[kk, :, 0])
        assert frame.data[-1].text[0].startswith(f"t = {kk / k:.2f}")
    with pytest.raises(ValueError, match="trajectory"):
        figures.time_scrub_figure(np.zeros((1, 5, 2)))


def test_learned_arrows_are_the_euler_increments():
    k = 4
    traj = np.zeros((k + 1, 3, 2), np.float32)
    traj[:, :, 0] = np.arange(k + 1)[:, None] * 0.25  # constant velocity 1 in x
    fig = figures.time_scrub_figure(traj, learned_arrows=True)
    x = np.asarray(fig.frames[0].data[1].x).reshape(3, 7)
    lengths = x[:, 1] - x[:, 0]
    assert np.allclose(lengths, lengths[0]) and lengths[0] > 0  # same velocity everywhere, pointing +x


def test_schedule_preview_plots_tau_and_lambda():
    steps = np.arange(5)
    tau = np.array([4.0, 2.0, 1.0, 0.0, 0.0])
    fig = figures.schedule_figure(steps, tau, tau / (1 + tau))
    assert len(fig.data) == 2
    np.testing.assert_allclose(np.asarray(fig.data[1].y), [0.8, 2 / 3, 0.5, 0, 0], rtol=1e-6)
    assert fig.data[1].yaxis == "y2"


def test_live_figures_stay_light():
    samples = np.random.default_rng(0).normal(size=(3000, 2))
    fig = figures.live_scatter(samples, samples, max_points=500)
    assert all(len(t.x) <= 500 for t in fig.data)
    assert not fig.frames
    hist = [{"step": i, "tau": 0.0, "lambda": 0.0, "loss": 1.0 / (i + 1), "w2": 2.0 if i % 5 == 0 else None} for i in range(20)]
    curves = figures.curves_figure(hist)
    assert len(curves.data[0].x) == 20 and len(curves.data[1].x) == 4


def test_history_csv_round_trips_with_blank_w2():
    hist = [{"step": 0, "tau": 4.0, "lambda": 0.8, "loss": None, "w2": 1.5}, {"step": 10, "tau": 0.0, "lambda": 0.0, "loss": 0.25}]
    rows = list(csv.DictReader(io.StringIO(history_csv(hist, {"run": "gft"}))))
    assert rows[0] == {"run": "gft", "step": "0", "tau": "4.0", "lambda": "0.8", "loss": "", "w2": "1.5"}
    assert rows[1]["w2"] == "" and float(rows[1]["loss"]) == 0.25


def test_animation_html_is_standalone():
    html = figures.animation_html(figures.trajectory_animation(_snapshots(n_frames=3, n=5)))
    assert "<html" in html and "Plotly.addFrames" in html
    assert 'src="https://cdn.plot.ly' not in html
    assert len(html) > 1_000_000  # plotly.js inlined (no network at run time)


# ---- the schedule strip: tau moves with the frames -------------------------------------------------
def test_schedule_marker_moves_with_every_frame_of_the_training_animation():
    snaps = _snapshots()
    fig = figures.trajectory_animation(snaps)
    strip = [t for t in fig.data if t.xaxis == "x2"]
    assert len(strip) == 2  # the lambda curve (static) and the marker (animated)
    marker_index = len(fig.data) - 1
    for snap, frame in zip(snaps, fig.frames):
        assert marker_index in frame.traces
        marker = frame.data[list(frame.traces).index(marker_index)]
        assert float(np.asarray(marker.x)[0]) == snap.step  # the marker sits at the frame's step ...
        assert float(np.asarray(marker.y)[0]) == pytest.approx(snap.lam, abs=1e-6)  # ... on its lambda
        assert f"τ = {snap.tau:.3g}" in marker.text[0]
    # slider ticks are readable: a few step numbers in a visible font, the first and last included
    ticks = [s.label for s in fig.layout.sliders[0].steps]
    shown = [t for t in ticks if t]
    assert shown[0] == str(snaps[0].step) and shown[-1] == str(snaps[-1].step) and 2 <= len(shown) <= 6
    assert fig.layout.sliders[0].font.color != "rgba(0,0,0,0)"


def test_pretraining_animation_has_no_temperature():
    snaps = _snapshots()
    fig = figures.trajectory_animation(snaps, temperature=False)
    assert not [t for t in fig.data if t.xaxis == "x2"]
    for frame in fig.frames:
        label = frame.data[2].text[0]
        assert "τ" not in label and "λ" not in label and label.startswith("step ")


def test_side_by_side_animation_moves_one_schedule_marker_per_run():
    from gft.viz import compare

    gft_runs, std = _snapshots(), [Snapshot(s.step, s.total_steps, 0.0, 0.0, 0.1, {"trajectory": s.trajectory}) for s in _snapshots()]
    fig = compare.training_animation({"gft": gft_runs, "standard": std}, np.ones((50, 2), np.float32))
    for k, frame in enumerate(fig.frames):
        markers = [t for t in frame.data if t.mode and "markers" in t.mode and np.asarray(t.x).size == 1]
        assert [float(np.asarray(m.x)[0]) for m in markers] == [gft_runs[k].step] * 2
        assert sorted(round(float(np.asarray(m.y)[0]), 4) for m in markers) == sorted([0.0, round(gft_runs[k].lam, 4)])
    names = [t.name for t in fig.data if t.name in ("gft", "standard")]
    assert names == ["gft", "standard"]


def test_play_never_interrupts_and_pause_stops_at_once():
    fig = figures.trajectory_animation(_snapshots())
    play, pause = (b.args for b in fig.layout.updatemenus[0].buttons)
    # Play queues after what is queued: "immediate" interrupts an empty queue, a console error in plotly.js
    assert play[0] is None and "mode" not in play[1] and play[1]["fromcurrent"] is True
    assert list(pause[0]) == [None] and pause[1]["mode"] == "immediate"  # the documented pause


def test_blend_arrows_are_drawn_to_one_scale_with_a_legend_naming_each():
    rng = np.random.default_rng(3)
    traj = rng.normal(size=(4, 12, 2)).astype(np.float32)
    pre, tgt = rng.normal(size=traj.shape).astype(np.float32), rng.normal(size=traj.shape).astype(np.float32) * 3
    lam = 0.25
    mix = (1 - lam) * tgt + lam * pre
    fig = figures.time_scrub_figure(traj, drift_pre=pre, drift_target=tgt, drift_blend=mix, blend_lambda=lam, learned_arrows=True)
    names = [t.name for t in fig.frames[0].data]
    assert names[1:5] == ["f_pre: pretrained drift", "target drift (estimated from target samples)",
                          "blend (1 − λ)·target + λ·f_pre, λ = 0.25", "drift the particles follow"]

    def drawn(trace) -> np.ndarray:  # the shaft of each arrow: tip - base, from the NaN-separated polyline
        xy = np.stack([np.asarray(trace.x), np.asarray(trace.y)], 1).reshape(-1, 7, 2)
        return xy[:, 1] - xy[:, 0]

    for k, frame in enumerate(fig.frames):
        shafts = {n: drawn(t) for n, t in zip(names[1:4], frame.data[1:4])}
        scale = np.linalg.norm(shafts[names[1]], axis=1) / np.linalg.norm(pre[k], axis=1)
        np.testing.assert_allclose(scale, scale[0], rtol=1e-4)  # one scale inside a set ...
        np.testing.assert_allclose(shafts[names[3]], mix[k] * scale[0], rtol=1e-4, atol=1e-5)  # ... and across sets
        np.testing.assert_allclose(shafts[names[2]], tgt[k] * scale[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="blend_lambda"):
        figures.time_scrub_figure(traj, drift_blend=mix)


def test_method_curves_name_every_seed_in_the_legend_in_its_method_colour():
    from gft.evaluation.summaries import MethodCurves
    from gft.viz import compare

    steps = np.array([0, 10, 20])
    curves = {m: MethodCurves(m, (0, 1, 2), steps, np.random.default_rng(i).uniform(0.5, 1.5, (3, 3))) for i, m in enumerate(("gft", "standard"))}
    fig = compare.method_curves_figure(curves, {"gft": "GFT", "standard": "standard fine-tuning"})
    seeds = [t for t in fig.data if t.name and ", seed " in t.name]
    assert [t.name for t in seeds] == [f"{lab}, seed {s}" for lab in ("GFT", "standard fine-tuning") for s in (0, 1, 2)]
    assert all(t.showlegend is not False for t in seeds)
    assert len({t.line.dash for t in seeds[:3]}) == 3  # seeds of one method differ by dash ...
    assert seeds[0].line.color != seeds[3].line.color  # ... and methods by colour
    np.testing.assert_allclose(np.asarray(seeds[1].y), curves["gft"].w2[1])


def test_animated_paths_keep_both_ends_through_at_most_the_vertex_budget():
    from gft.viz.style import trajectory_lines

    traj = np.cumsum(np.random.default_rng(0).normal(size=(31, 5, 2)), axis=0).astype(np.float32)
    x, y = trajectory_lines(traj, 3, vertices=11)
    # 3 polylines of 11 vertices, NaN-separated; each starts at t = 0 and ends at t = 1 of its particle
    parts = np.split(np.stack([x, y], 1), np.flatnonzero(np.isnan(x)))
    paths = [p[~np.isnan(p[:, 0])] for p in parts if (~np.isnan(p[:, 0])).any()]
    assert [len(p) for p in paths] == [11, 11, 11]
    for i, p in enumerate(paths):
        np.testing.assert_array_equal(p[0], traj[0, i])
        np.testing.assert_array_equal(p[-1], traj[-1, i])
        np.testing.assert_array_equal(p[5], traj[15, i])  # evenly spaced: vertex 5 of 10 segments is t-index 15 of 30
    full_x, _ = trajectory_lines(traj, 3)
    assert np.count_nonzero(~np.isnan(full_x)) == 3 * 31  # without a budget every time is kept
    with pytest.raises(ValueError, match="vertices"):
        trajectory_lines(traj, 3, vertices=1)
