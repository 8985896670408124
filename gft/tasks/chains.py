"""Chains of shifts (an evolving target): each stage fine-tunes the model the previous stage made."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from gft.core.models import FlowModel
from gft.core.training import Hook, Snapshot, TrainConfig, Trainer, TrainResult
from gft.tasks.runs import Monitor, make_trainer, task_for
from gft.tasks.task import Task


def stage_tasks(datas: Sequence[str | Task]) -> list[Task]:
    """The task of each stage: a ``--data`` text, or a ready task (a drawn or uploaded 2D cloud held in memory)."""
    return [d if isinstance(d, Task) else task_for(d) for d in datas]


@dataclass
class ChainStage:
    """One fine-tuning stage of a chain."""

    data: str
    model: FlowModel
    result: TrainResult


def run_chain(
    base: FlowModel,
    datas: Sequence[str | Task],
    config: TrainConfig,
    limit: int | None = None,
    monitor: Monitor = Monitor(),
    callback: Callable[[int, Snapshot], None] | None = None,
) -> list[ChainStage]:
    """Fine-tune ``base`` on ``datas[0]``, that model on ``datas[1]``, and so on.

    ``config`` (method gft, standard or scratch) applies to every stage; ``callback(stage, snapshot)``.
    """
    if config.method == "pretrain":
        raise ValueError("run_chain fine-tunes: config.method must be gft, standard or scratch")
    if not datas:
        raise ValueError("run_chain needs at least one target")
    tasks = stage_tasks(datas)  # every target checked before any training
    for task in tasks:
        task.check_model(base.config, "the base model")
    stages: list[ChainStage] = []
    parent = base
    for i, task in enumerate(tasks):
        trainer = make_trainer(task, config, base=parent, limit=limit, monitor=monitor)
        report = None if callback is None else (lambda snap, i=i: callback(i, snap))
        try:
            result = trainer.run(callback=report)
        finally:
            trainer.close()
        stages.append(ChainStage(task.data, trainer.result_model, result))
        parent = trainer.result_model
    return stages


def stage_metric(stage: int) -> str:
    """The history column of the curve metric on target ``stage`` (0-based) of a chain."""
    return f"w2_t{stage + 1}"


class ChainTrainer:
    """A chain of fine-tunings driven like one :class:`Trainer` (``run`` in chunks, ``step``, ``done``,
    ``result``, ``close``), so an app job can pause, step and stop it and animate it end to end.

    Stage ``i`` fine-tunes the model of stage ``i - 1`` on ``datas[i]`` (a ``--data`` text or a :class:`Task`,
    e.g. a drawn cloud's :class:`gft.tasks.points.PointsTask`) for ``config.steps`` steps (its own
    schedule: GFT restarts its anneal on each new target). Steps, snapshots and history rows count
    across the whole chain. Every ``monitor.eval_every`` steps it measures the curve metric on *every*
    target of the chain (columns :func:`stage_metric`), so forgetting of earlier targets shows; ``w2`` is
    the current target's and ``stage`` the 1-based stage. The trajectory particles are the same in all
    stages.
    """

    def __init__(self, base: FlowModel, datas: Sequence[str | Task], config: TrainConfig, limit: int | None = None, monitor: Monitor = Monitor()) -> None:
        if config.method not in ("gft", "standard", "l2sp"):
            raise ValueError(f"a chain fine-tunes: config.method must be gft, standard or l2sp, got {config.method!r}")
        if not 2 <= len(datas) <= 10:
            raise ValueError(f"a chain needs 2 to 10 targets, got {len(datas)}")
        self.tasks = stage_tasks(datas)
        for task in self.tasks:
            task.check_model(base.config, "the base model")
        self.stage_config = config
        self.config = replace(config, steps=config.steps * len(self.tasks), schedule="constant:0" if config.method != "gft" else config.schedule)
        self.monitor = monitor
        self.limit = limit
        self.stage = 0
        self.history: list[dict] = []
        self.stage_results: list[TrainResult] = []
        self._parent = base
        self._trainer: Trainer | None = None
        self._metrics = [task.curve_metric(config.seed, monitor.eval_points) for task in self.tasks] if monitor.eval_every else []

    @property
    def step(self) -> int:
        return self.stage * self.stage_config.steps + (self._trainer.step if self._trainer is not None else 0)

    @property
    def done(self) -> bool:
        return self.stage >= len(self.tasks)

    @property
    def result_model(self) -> FlowModel:
        return self._trainer.result_model if self._trainer is not None else self._parent

    def _build(self) -> Trainer:
        task, config = self.tasks[self.stage], self.stage_config
        hooks = [h for h in self.monitor.hooks(task, config) if h.name != task.metric]  # every target's metric instead
        hooks += [Hook(stage_metric(j), self.monitor.eval_every, fn) for j, fn in enumerate(self._metrics)]
        return Trainer(task.pool(config.seed, self.limit), config, pretrained=self._parent, hooks=hooks)

    def _global(self, snap: Snapshot) -> Snapshot:
        offset = self.stage * self.stage_config.steps
        values = dict(snap.values)
        current = values.get(stage_metric(self.stage))
        if current is not None:
            values["w2"] = current
        values["stage"] = self.stage + 1
        out = Snapshot(offset + snap.step, self.config.steps, snap.tau, snap.lam, snap.loss, values)
        self.history.append(out.row())
        return out

    def run(self, max_steps: int | None = None, stop_event: threading.Event | None = None,
            callback: Callable[[Snapshot], None] | None = None) -> TrainResult:
        """Train up to ``max_steps`` more steps across stages (all when None), or until the stop event."""
        left = self.config.steps if max_steps is None else max_steps
        while left > 0 and not self.done:
            if stop_event is not None and stop_event.is_set():
                return self.result(stopped=True)
            if self._trainer is None:
                self._trainer = self._build()
            before = self._trainer.step
            n = min(left, self.stage_config.steps - before)
            report = (lambda snap: callback(self._global(snap))) if callback is not None else self._global
            self._trainer.run(max_steps=n, stop_event=stop_event, callback=report)
            left -= self._trainer.step - before
            if self._trainer.done:
                self.stage_results.append(self._trainer.result())
                self._parent = self._trainer.result_model
                self._trainer.close()
                self._trainer = None
                self.stage += 1
            elif stop_event is not None and stop_event.is_set():
                return self.result(stopped=True)
        return self.result()

    def result(self, stopped: bool = False) -> TrainResult:
        parts = self.stage_results + ([self._trainer.result()] if self._trainer is not None else [])
        seconds = sum(p.train_seconds for p in parts)
        return TrainResult(
            steps=self.step, train_seconds=seconds, steps_per_second=self.step / seconds if seconds > 0 else 0.0,
            final_loss=parts[-1].final_loss if parts else float("nan"), history=list(self.history), stopped=stopped,
            ot_seconds_per_batch=sum(p.ot_seconds_per_batch * p.steps for p in parts) / max(self.step, 1),
        )

    def close(self) -> None:
        if self._trainer is not None:
            self._trainer.close()
