"""The app's background jobs and the session's run history, without Streamlit: controls take effect
at once, finished runs keep their weights but not their optimiser, the history is bounded and evicts
the oldest finished run first, and no run is discarded by starting another."""

from __future__ import annotations

import gc
import time
import types

import pytest
import torch

from gft.app.history import RunHistory
from gft.app.jobs import DONE, PAUSED, RUNNING, STOPPED, TrainingJob
from gft.core.models import ModelConfig
from gft.core.training import TrainConfig, Trainer
from gft.data import sample_distribution

TINY = ModelConfig(width=16, depth=2)
TARGET = sample_distribution("moons", 512, seed=0)


def tiny_job(steps: int = 20) -> TrainingJob:
    config = TrainConfig(method="pretrain", steps=steps, batch=32, lr=1e-3, seed=0, device="cpu", callback_every=5)
    return TrainingJob({"run": lambda: Trainer(TARGET, config, init=TINY)})


def finish(job: TrainingJob, timeout: float = 60.0) -> None:
    assert job.wait(timeout), "the job did not finish"


def reachable(root, kind: type, limit: int = 200_000) -> bool:
    """Whether an object of ``kind`` can be reached from ``root`` through references (bounded walk).

    Functions and modules are not followed: through their globals everything is reachable.
    """
    seen, todo = set(), [root]
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type, types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, kind):
            return True
        todo.extend(gc.get_referents(obj))
    return False


def test_a_finished_job_keeps_its_model_and_history_but_no_optimiser():
    job = tiny_job()
    job.start()
    finish(job)
    view = job.view()
    assert view.state == DONE
    run = view.run("run")
    assert run.step == 20 and run.result is not None and len(run.history) == 5  # steps 0, 5, 10, 15, 20
    model = job.model("run")
    assert model is not None and not model.training
    assert model(torch.zeros(3, 2), torch.zeros(3)).shape == (3, 2)
    assert not reachable(job, torch.optim.Optimizer)
    assert not reachable(job, Trainer)


def test_a_running_job_does_hold_its_optimiser():  # the walk above can find one: the test can fail
    job = tiny_job(steps=200_000)
    job.start()
    try:
        deadline = time.monotonic() + 30
        while job.view().run("run").step == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        job.pause()
        assert reachable(job, torch.optim.Optimizer)
    finally:
        job.close()


def test_pause_and_stop_take_effect_within_a_fraction_of_a_second():
    job = tiny_job(steps=200_000)
    job.start()
    try:
        deadline = time.monotonic() + 30
        while job.view().run("run").step < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        job.pause()
        assert job.view().state == PAUSED
        time.sleep(0.3)  # one chunk (about 50 ms of training) may still finish
        frozen = job.view().run("run").step
        time.sleep(0.5)
        assert job.view().run("run").step == frozen
        job.step(3)
        time.sleep(0.5)
        assert job.view().run("run").step == frozen + 3
        job.resume()
        assert job.view().state == RUNNING
        time.sleep(0.3)
        assert job.view().run("run").step > frozen + 3
        began = time.monotonic()
        job.stop()
        assert job.wait(1.0)
        assert time.monotonic() - began < 1.0
        assert job.view().state == STOPPED and job.view().run("run").result.stopped
    finally:
        job.close()


def test_history_keeps_every_page_run_and_starting_one_never_discards_another():
    history = RunHistory(keep=6)
    long_a, long_b = tiny_job(steps=200_000), tiny_job(steps=200_000)
    a = history.add("finetune", long_a, {"seed": 1}, "a")
    b = history.add("pretrain", long_b, {"seed": 2}, "b")
    try:
        time.sleep(0.2)
        assert {r.number for r in history.active()} == {a.number, b.number}  # another page's run keeps training
        c = history.add("finetune", tiny_job(), {"seed": 3}, "c")
        assert long_a.wait(5.0) and long_a.view().state == STOPPED  # the page's previous run stops ...
        assert [r.number for r in history.records()] == [a.number, b.number, c.number]  # ... and stays
        assert history.current("finetune") is c and history.params_for("finetune") == {"seed": 3}
        assert history.current("pretrain") is b and history.active()[0] is b
        assert history.for_page("images") is None and history.params_for("images") == {}
    finally:
        history.clear()
    assert history.records() == [] and long_b.wait(5.0)


def test_history_is_bounded_and_evicts_the_oldest_finished_run_first():
    history = RunHistory(keep=3)
    records = []
    for i in range(6):
        job = tiny_job()
        records.append(history.add(f"page{i % 2}", job, {"i": i}, f"run {i}"))
        finish(job)
    kept = history.records()
    assert len(kept) == 3
    # The current run of each page is never evicted; the others go oldest first.
    assert [r.number for r in kept] == [4, 5, 6]
    evicted = records[0].job
    assert evicted.model("run") is None  # closed: its model freed
    assert history.by_number(6).job.model("run") is not None
    history.clear_page("page1")  # the page shows nothing now; its run is still in the history
    assert history.current("page1") is None and history.by_number(6) is not None


def test_a_running_run_is_never_evicted():
    history = RunHistory(keep=1)
    busy = tiny_job(steps=200_000)
    history.add("a", busy, {}, "busy")
    try:
        history.add("b", tiny_job(), {}, "other")
        assert len(history.records()) == 2  # over the bound for a while rather than drop a live run
        assert not busy.view().finished
    finally:
        history.clear()


@pytest.mark.parametrize("keep", [0, 101, 2.5])
def test_history_rejects_a_bad_size(keep):
    with pytest.raises(ValueError, match="keep"):
        RunHistory(keep=keep)
