"""gft.app.comparisons, gft.viz.compare and gft.viz.gaussian: coupled batches (gft.evaluation.probes), run sets,
tables, exact annealing numbers."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gft.app import comparisons as cmp
from gft.core.couplings import COUPLINGS
from gft.core.training import TrainResult
from gft.evaluation import probes, summaries
from gft.evaluation.result import Evaluation
from gft.theory import exact_annealing as annealing
from gft.theory import gaussian as gauss
from gft.viz import compare as figs
from gft.viz import gaussian as gaussian_figs


# ---- coupled batches ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ot_pairing_costs_no_more_than_independent_or_sinkhorn(seed):
    batches = {k: probes.coupled_batch(k, "8gaussians", n=64, seed=seed, reg=0.5) for k in COUPLINGS}
    ind, ot_, sk = batches["independent"], batches["ot"], batches["sinkhorn"]
    # Same two batches for every kind: identical noise rows, and OT only permutes the target rows.
    np.testing.assert_array_equal(ind.x0, ot_.x0)
    np.testing.assert_array_equal(ind.x0, sk.x0)
    np.testing.assert_array_equal(np.sort(ind.x1, axis=0), np.sort(ot_.x1, axis=0))
    assert ot_.total_cost <= ind.total_cost
    assert ot_.total_cost <= sk.total_cost + 1e-6
    # On a spread-out target a random pairing is far from optimal: a wrong "OT" would not reach half.
    assert ot_.total_cost < 0.6 * ind.total_cost


def test_ot_pairing_is_the_optimal_permutation():
    batch = probes.coupled_batch("ot", "moons", n=6, seed=4)
    ind = probes.coupled_batch("independent", "moons", n=6, seed=4)
    best = min(
        float(((ind.x0.astype(np.float64) - ind.x1[list(p)]) ** 2).sum()) for p in itertools.permutations(range(6))
    )
    assert batch.total_cost == pytest.approx(best, rel=1e-6)


def test_coupled_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="n must be"):
        probes.coupled_batch("ot", "moons", n=1)
    with pytest.raises(ValueError, match="coupling must be one of"):
        probes.coupled_batch("greedy", "moons")
    with pytest.raises(ValueError, match="unknown data"):
        probes.coupled_batch("ot", "nowhere")


# ---- run sets --------------------------------------------------------------------------------
def test_settings_validate_and_align_evaluations_with_callbacks():
    with pytest.raises(ValueError, match="target must be one of"):
        cmp.CompareSettings(target="nowhere")
    with pytest.raises(ValueError, match="steps must be"):
        cmp.CompareSettings(steps=5)
    with pytest.raises(ValueError, match="schedule"):
        cmp.CompareSettings(schedule="warm:3")
    for steps in (20, 97, 300, 1234, 5000):
        s = cmp.CompareSettings(steps=steps)
        assert s.eval_every % s.callback_every == 0  # the trainer only evaluates at callback steps
        assert 5 <= steps // s.eval_every <= 40


def test_a_target_is_any_2d_data_spec_and_session_points_become_one(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(300, 2)).astype(np.float32) + np.array([3.0, 0.0], np.float32)
    spec = cmp.points_spec(pts, tmp_path)
    assert spec.startswith("file:") and cmp.points_spec(pts.copy(), tmp_path) == spec  # named by content: written once
    assert cmp.points_spec(pts[:-1], tmp_path) != spec  # other points, another spec: a page sees changed settings
    assert len(list(tmp_path.iterdir())) == 2  # no temporary file left behind
    s = cmp.CompareSettings(target=spec, steps=20)
    assert s.target == spec and cmp.CompareSettings(target="moons").target == "moons"
    np.testing.assert_array_equal(cmp.target_cloud(spec), pts)  # small sets are drawn whole
    assert cmp.target_cloud(spec, 50).shape == (50, 2) and cmp.target_cloud("moons", 40).shape == (40, 2)
    # The runs train on those points and measure W2 against them (one yardstick: the whole set).
    task = cmp.PointsTask(spec, reference_seed=0)
    np.testing.assert_array_equal(task.pool(0).numpy(), pts)
    np.testing.assert_array_equal(task.held_out(5).numpy(), pts)
    # The coupling figure draws n rows of the set, not the whole file.
    batch = probes.coupled_batch("ot", spec, n=32, seed=1)
    assert batch.x1.shape == (32, 2) and all(np.isclose(pts, p).all(axis=1).any() for p in batch.x1)
    for bad, message in [
        ("nowhere", "target must be one of"),
        ("", "target must be a registered 2D name or file:PATH"),
        ("digits:0-4", "target must be 2D points"),
        (f"file:{tmp_path / 'missing.npy'}", "target 'file:.*' cannot be used: data file not found"),
    ]:
        with pytest.raises(ValueError, match=message):
            cmp.CompareSettings(target=bad)
    (tmp_path / "bad.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="target 'file:.*bad.csv' cannot be used: .*N x 2"):
        cmp.CompareSettings(target=f"file:{tmp_path / 'bad.csv'}")
    with pytest.raises(ValueError, match="target points: expected an N x 2"):
        cmp.points_spec(np.zeros((10, 3)), tmp_path)


def test_run_sets_share_seed_schedule_and_snapshot_noise():
    model = SimpleNamespace()  # factories are lazy: nothing is built until the job's thread calls them
    s = cmp.CompareSettings(steps=100, seed=7)
    runs = cmp.coupling_runs(model, s)
    assert tuple(runs) == COUPLINGS
    configs = [s.config("gft", k, s.seed) for k in COUPLINGS]
    assert {(c.seed, c.schedule, c.steps) for c in configs} == {(7, s.schedule, 100)}
    assert s.monitor().particles == s.particles and s.monitor().eval_every == s.eval_every
    runs = cmp.method_runs(model, s, seeds=2)
    assert sorted(runs) == sorted(summaries.run_name(m, k) for m in cmp.COMPARED_METHODS for k in (7, 8))
    assert summaries.parse_run_name(summaries.run_name("scratch", 8)) == ("scratch", 8)
    with pytest.raises(ValueError, match="seeds must be"):
        cmp.method_runs(model, s, seeds=0)


def test_coupling_runs_train_from_the_shipped_model():
    from gft.tasks.shipped import load_shipped

    pre = load_shipped("moons").model
    s = cmp.CompareSettings(steps=10, batch=32, snapshots=5, evaluations=3, particles=50, eval_points=50, sinkhorn_reg=5.0)
    trainer = cmp.coupling_runs(pre, s)["ot"]()
    before = {k: v.clone() for k, v in pre.state_dict().items()}
    trainer.run()
    assert trainer.step == 10 and trainer.history[-1]["w2"] > 0
    # The shared pretrained weights are never touched by a run.
    assert all(torch.equal(before[k], v) for k, v in pre.state_dict().items())


# ---- tables ---------------------------------------------------------------------------------
def _history(values, every=10, with_loss_rows=True):
    rows = []
    for i, v in enumerate(values):
        if with_loss_rows and i:
            rows.append({"step": i * every - every // 2, "tau": 0.0, "lambda": 0.0, "loss": 1.0})  # no W2: ignored
        rows.append({"step": i * every, "tau": 0.0, "lambda": 0.0, "loss": 1.0, "w2": v})
    return rows


def test_stability_table_on_a_synthetic_history():
    histories = {
        summaries.run_name("gft", 0): _history([4.0, 3.0, 2.0, 1.0]),
        summaries.run_name("gft", 1): _history([4.0, 3.0, 3.5, 1.0]),
        summaries.run_name("standard", 0): _history([4.0, 3.0, 5.0, 2.0, 7.0]),
        summaries.run_name("standard", 1): _history([4.0, 2.0, 3.0, 1.0]),  # stopped early: compare the first 4
    }
    curves = summaries.method_curves(histories)
    np.testing.assert_array_equal(curves["gft"].steps, [0, 10, 20, 30])
    np.testing.assert_array_equal(curves["standard"].steps, [0, 10, 20, 30])
    np.testing.assert_allclose(curves["gft"].mean, [4, 3, 2.75, 1])
    np.testing.assert_allclose(curves["gft"].high, [4, 3, 3.5, 1])
    table = summaries.stability_table(curves, {"gft": [1.0, 0.5], "standard": [0.25, None]})
    expected = ["method", "seeds"] + [c for k in summaries.STABILITY_NUMBERS for c in (k, f"{k} std")]
    assert list(table.columns) == expected
    gft = table[table["method"] == "GFT"].iloc[0]
    # Seed 0: a steady descent (rho -1, no rise, constant steps). Seed 1: rho -0.8, diffs -1, .5, -2.5.
    assert gft["Spearman"] == pytest.approx(-0.9) and gft["Spearman std"] == pytest.approx(0.1)
    assert gft["diff variance"] == pytest.approx(0.75) and gft["diff variance std"] == pytest.approx(0.75)
    assert gft["largest rise"] == pytest.approx(0.25)
    assert gft["final W2"] == pytest.approx(1.0) and gft["final W2 std"] == 0
    assert gft["mode coverage"] == pytest.approx(0.75)
    std = table[table["method"] == "standard fine-tuning"].iloc[0]
    assert std["largest rise"] == pytest.approx(1.5)  # seed 0: 3 -> 5 within the common steps; seed 1: 2 -> 3
    assert std["mode coverage"] == 0.25 and std["mode coverage std"] == 0
    shown = summaries.mean_pm_std(table)
    assert shown.loc[0, "Spearman"] == "-0.9 ± 0.1"


def test_stability_needs_three_points():
    curves = summaries.method_curves({summaries.run_name("gft", 0): _history([2.0, 1.0])})
    row = summaries.stability_table(curves).iloc[0]
    assert np.isnan(row["Spearman"]) and row["final W2"] == 1.0
    assert summaries.mean_pm_std(summaries.stability_table(curves)).loc[0, "Spearman"] == "n/a"


def test_coupling_table_columns_and_units():
    result = TrainResult(steps=100, train_seconds=2.0, steps_per_second=50.0, final_loss=0.1, ot_seconds_per_batch=0.004)
    ev = Evaluation(kind="points", solver="dopri5", nfe=50, n_samples=500, w2=0.5, w2_null={"mean": 0.3, "sd": 0.05, "pairs": 20, "n": 500}, mmd=0.0, energy=0.0,
                    energy_null={"mean": 0.0, "sd": 0.01, "pairs": 20, "n": 500},
                    path_length=3.0, straightness=0.2, kinetic_energy=1.0, w2_by_steps={"1": 2.0, "2": 1.0, "4": 0.7, "8": 0.6})
    table = summaries.coupling_table({"ot": result, "independent": result}, {"ot": ev})
    assert tuple(table.columns) == summaries.COUPLING_COLUMNS
    row = table.iloc[0]
    assert row["coupling"] == "ot" and row["W2"] == 0.5 and row["W2 @1"] == 2.0 and row["W2 @8"] == 0.6
    assert row["W2 null top"] == pytest.approx(0.4)  # mean + 2 sd
    assert row["OT ms/batch"] == pytest.approx(4.0) and row["steps/s"] == 50.0
    assert np.isnan(table.iloc[1]["W2"])  # not evaluated: shown as missing, never as a made-up number


def test_final_coverage_only_for_mixtures():
    from gft.data import MODES, sample_distribution

    pts = sample_distribution("8gaussians", 800, 0).numpy()
    assert summaries.final_coverage(pts, "8gaussians") == 1.0
    centre = MODES["8gaussians"][0][0].numpy()
    assert summaries.final_coverage(np.tile(centre, (100, 1)), "8gaussians") == pytest.approx(1 / 8)
    assert summaries.final_coverage(pts, "moons") is None


# ---- exact annealing between Gaussians ----------------------------------------------------------
PRE = annealing.gaussian_2d((-2.0, 0.0), "round")


@pytest.mark.parametrize("shape", ["round", "tilted", "wide along x"])
def test_tau_zero_lands_on_the_target_and_infinity_on_the_pretrained(shape):
    target = annealing.gaussian_2d((2.0, 1.0), shape)
    cold = annealing.annealing_numbers(PRE, target, 0.0)
    np.testing.assert_allclose(cold.terminal.mean, target.mean, atol=1e-6)
    np.testing.assert_allclose(cold.terminal.cov, target.cov, atol=1e-6)
    assert cold.lam == 0 and cold.w2_to_target < 1e-5 and cold.distance_to_target == 0
    assert cold.answer == annealing.MEAN_ANSWERS[0]
    hot = annealing.annealing_numbers(PRE, target, float("inf"))
    np.testing.assert_allclose(hot.terminal.mean, PRE.mean, atol=1e-6)
    assert hot.w2_to_pretrained < 1e-5 and hot.answer == annealing.MEAN_ANSWERS[4]
    assert hot.w2_to_target == pytest.approx(gauss.gaussian_w2(PRE, target), rel=1e-6)


@pytest.mark.parametrize("tau", [0.25, 1.0, 4.0])
def test_numbers_match_the_oracle_and_the_lambda_law(tau):
    target = annealing.gaussian_2d((2.0, 1.0), "tilted")
    n = annealing.annealing_numbers(PRE, target, tau)
    lam = tau / (1 + tau)
    ref = gauss.terminal_law(PRE, target, lam)
    assert n.lam == pytest.approx(lam)
    np.testing.assert_allclose(n.terminal.mean, ref.mean, atol=1e-8)
    np.testing.assert_allclose(n.terminal.cov, ref.cov, atol=1e-8)
    assert n.w2_to_target == pytest.approx(gauss.gaussian_w2(ref, target), rel=1e-6)
    assert n.w2_to_pretrained == pytest.approx(gauss.gaussian_w2(ref, PRE), rel=1e-6)
    # The path-space fact the page states: |f_tau - f_target| = lambda |f_pre - f_target|.
    assert n.distance_to_target == pytest.approx(lam * n.drift_gap, rel=1e-9)
    assert n.drift_gap > 1.0


def test_equal_shapes_at_tau_one_land_exactly_halfway():
    target = annealing.gaussian_2d((2.0, 1.0), "round")
    n = annealing.annealing_numbers(PRE, target, 1.0)
    np.testing.assert_allclose(n.terminal.mean, (PRE.mean + target.mean) / 2, atol=1e-6)
    assert n.answer == "exactly halfway between the two means"
    # Different shapes break the symmetry: the mean no longer sits at the midpoint.
    small = annealing.annealing_numbers(PRE, annealing.gaussian_2d((2.0, 1.0), "small"), 1.0)
    assert small.answer != "exactly halfway between the two means"
    assert small.answer in annealing.MEAN_ANSWERS


def test_tau_and_preset_errors_are_clear():
    with pytest.raises(ValueError, match="tau must be"):
        annealing.parse_tau("-1")
    with pytest.raises(ValueError, match="tau must be"):
        annealing.parse_tau("warm")
    assert annealing.parse_tau("inf") == float("inf")
    with pytest.raises(ValueError, match="covariance preset"):
        annealing.gaussian_2d((0.0, 0.0), "banana")


# ---- figures ---------------------------------------------------------------------------------
def _snapshots(steps, seed):
    rng = np.random.default_rng(seed)
    return [
        SimpleNamespace(step=s, tau=1.0, lam=0.5, trajectory=rng.standard_normal((5, 40, 2)).astype(np.float32))
        for s in steps
    ]


def test_training_animation_one_slider_over_the_common_steps():
    panels = {"independent": _snapshots([0, 10, 20, 30], 0), "ot": _snapshots([0, 10, 20], 1), "sinkhorn": _snapshots([0, 10, 20, 30], 2)}
    fig = figs.training_animation(panels, np.zeros((20, 2), np.float32), panels["ot"][0].trajectory[-1])
    spec = json.loads(fig.to_json())
    assert len(spec["frames"]) == 3  # steps every run recorded
    assert len(spec["layout"]["sliders"]) == 1 and len(spec["layout"]["sliders"][0]["steps"]) == 3
    # three panels and the schedule strip spanning them
    assert {k for k in spec["layout"] if k.startswith("xaxis")} == {"xaxis", "xaxis2", "xaxis3", "xaxis4"}
    assert all(t["type"] == "scatter" for t in spec["data"])  # SVG: scattergl would freeze on frame 0
    assert [s["label"] for s in spec["layout"]["sliders"][0]["steps"]] == ["0", "10", "20"]  # readable step ticks
    for frame, step in zip(spec["frames"], (0, 10, 20)):
        # 6 static clouds and 3 schedule curves are never resent: paths and particles per panel, a marker per run, the label
        assert frame["traces"] == list(range(9, 19))
        assert frame["data"][1]["x"]["dtype"] == "f4"  # float32 typed arrays, not lists
        assert frame["data"][-1]["text"][0] == f"step {step}/20 · τ = 1 · λ = 0.500"
    with pytest.raises(ValueError, match="no snapshot step"):
        figs.training_animation({"a": _snapshots([0], 0), "b": _snapshots([5], 1)}, np.zeros((2, 2)))


def test_coupling_and_annealing_figures():
    batches = [probes.coupled_batch(k, "moons", 16, 0, 1.0) for k in COUPLINGS]
    spec = json.loads(figs.coupling_figure(batches).to_json())
    assert {k for k in spec["layout"] if k.startswith("xaxis")} == {"xaxis", "xaxis2", "xaxis3"}
    target = annealing.gaussian_2d((2.0, 1.0), "small")
    spec = json.loads(gaussian_figs.annealing_figure(PRE, target, 0.5, times=11).to_json())
    assert len(spec["frames"]) == 11 and spec["layout"]["sliders"][0]["active"] == 5
