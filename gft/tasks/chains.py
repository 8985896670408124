"""Chains of shifts (an evolving target): each stage fine-tunes the model the previous stage made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from gft.core.models import FlowModel
from gft.core.training import Snapshot, TrainConfig, TrainResult
from gft.tasks.runs import Monitor, make_trainer, task_for


@dataclass
class ChainStage:
    """One fine-tuning stage of a chain."""

    data: str
    model: FlowModel
    result: TrainResult


def run_chain(
    base: FlowModel,
    datas: Sequence[str],
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
    tasks = [task_for(text) for text in datas]  # every target checked before any training
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
