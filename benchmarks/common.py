"""What every 2D experiment shares: the model, the methods compared, pretraining, how a run is driven
to its evaluation steps, and how quality is read.

Every 2D model is ``MLPFlow`` with width 128, depth 3 and a 32-dim time embedding (the gft default).
Quality is the unbiased energy distance of ``eval_n`` samples (100 Euler steps from seeded noise) to a
fixed reference draw of the target (:class:`gft.evaluation.reference.EnergyReference`), next to its
null band: the same measure for fresh target draws of the same size.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from benchmarks.targets import Target, TargetTask
from gft.constants import NULL_SEED_OFFSET
from gft.core.models import FlowModel, ModelConfig, build_model
from gft.core.sampling import noise, sample_ode
from gft.core.training import TrainConfig, Trainer, TrainingDiverged
from gft.evaluation.metrics import path_geometry
from gft.evaluation.reference import EnergyReference
from gft.tasks.runs import Monitor, make_trainer
from gft.tasks.variants import VARIANTS as ALL_VARIANTS

MODEL = ModelConfig(kind="mlp", data_shape=(2,), width=128, depth=3, time_dim=32)
EULER_STEPS = 100  # the sampler behind every quality number (dopri5 on 5,000 points costs 6x more here)
REFERENCE_SEED = 424_242  # one fixed reference draw per target, shared by every run
EVAL_NOISE_OFFSET = 5  # a run's evaluation noise: its seed plus this
# One seed-paired registry of methods with the app (gft.tasks.variants); the benchmarks fix lr 1e-3 unless a
# variant sets its own.
VARIANTS = {k: v for k, v in ALL_VARIANTS.items() if k != "scratch"}


def run_config(label: str, steps: int, **fields) -> TrainConfig:
    """The run config of variant ``label`` (one OT worker thread: runs already go side by side in processes)."""
    return VARIANTS[label].config(steps, ot_workers=1, **fields)


def to_numpy_state(model: FlowModel) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def from_numpy_state(config: ModelConfig, state: dict[str, np.ndarray]) -> FlowModel:
    model = build_model(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model


def pretrain_2d(source: str, steps: int, batch: int, pool_size: int, seed: int, coupling: str = "independent") -> dict:
    """Flow matching on ``source`` from weights of ``seed``; returns the weights (numpy) and seconds."""
    config = TrainConfig(method="pretrain", steps=steps, batch=batch, seed=seed, coupling=coupling, ot_workers=1,
                         callback_every=steps)
    trainer = make_trainer(TargetTask(Target(source), pool_size, 500, pool_offset=seed * 7919),
                           config, model_config=MODEL, monitor=Monitor())
    try:
        result = trainer.run()
    finally:
        trainer.close()
    return {"source": source, "seed": seed, "coupling": coupling, "state": to_numpy_state(trainer.model),
            "seconds": result.train_seconds}


def build_reference(target: str, reference_n: int, eval_n: int, pairs: int) -> dict:
    """A target's fixed reference and the null band of ``eval_n`` fresh draws against it."""
    t = Target(target)
    ref = EnergyReference(t.sample(reference_n, REFERENCE_SEED))
    band = ref.null_band(lambda k: t.sample(eval_n, REFERENCE_SEED + NULL_SEED_OFFSET + 7919 * k), eval_n, pairs)
    return {"target": target, "reference": ref, "null": band.to_dict()}


def samples(model: FlowModel, n: int, seed: int, steps: int = EULER_STEPS, keep_trajectory: bool = False):
    return sample_ode(model, noise(n, (2,), seed + EVAL_NOISE_OFFSET, "cpu"), "euler", steps,
                      keep_trajectory=keep_trajectory)


def energy(model: FlowModel, reference: EnergyReference, n: int, seed: int, steps: int = EULER_STEPS) -> float:
    return reference.energy(samples(model, n, seed, steps).x)


def straightness(model: FlowModel, n: int, seed: int) -> float:
    """0 for straight constant-speed sampling paths, larger as they bend (:func:`gft.evaluation.metrics.path_geometry`)."""
    return path_geometry(samples(model, n, seed, keep_trajectory=True).trajectory).straightness


@dataclass
class Driven:
    """A run driven to its evaluation steps: what each evaluation returned, and the training seconds before it."""

    evals: dict[int, object]
    seconds: dict[int, float]
    diverged_at: int | None
    total_seconds: float
    losses: list[float]


def drive(trainer: Trainer, steps: list[int], evaluate: Callable[[FlowModel, int], object]) -> Driven:
    """Train ``trainer`` to each of ``steps`` in turn and ``evaluate(result_model, step)`` there.

    Evaluation time is not training time: ``seconds`` are the trainer's own. A run that diverges (the
    library's rule, or a non-finite loss) stops; later steps are missing and ``diverged_at`` says where.
    """
    evals, seconds, diverged_at = {}, {}, None
    wall = time.monotonic()
    try:
        for step in sorted(set(steps)):
            if step > trainer.step:
                trainer.run(max_steps=step - trainer.step)
            model = trainer.result_model
            with torch.no_grad():
                evals[step] = evaluate(model, step)
            seconds[step] = trainer.train_seconds
    except TrainingDiverged:
        diverged_at = trainer.step
    finally:
        trainer.close()
    losses = [h["loss"] for h in trainer.history if h.get("loss") is not None]
    return Driven(evals, seconds, diverged_at, time.monotonic() - wall, losses)


def train_to_end(trainer: Trainer) -> bool:
    """Run ``trainer`` to its last step and close it; True when the library's rule stopped it as diverged."""
    try:
        trainer.run()
    except TrainingDiverged:
        return True
    finally:
        trainer.close()
    return False


def mean_nn_distance(points: torch.Tensor, reference: torch.Tensor, chunk: int = 2048) -> float:
    """Mean over ``points`` of the Euclidean distance to the nearest row of ``reference``."""
    ref = reference.reshape(len(reference), -1).double()
    total = 0.0
    for block in points.reshape(len(points), -1).double().split(chunk):
        total += float(torch.cdist(block, ref).min(dim=1).values.sum())
    return total / len(points)


def nn_distance_ratio(samples_: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor) -> float:
    """Memorisation: NN distance of samples to the training set over that of fresh target draws.

    About 1 when the model generalises; well below 1 when samples sit on the training points.
    """
    if not torch.isfinite(samples_).all():
        return math.nan
    return mean_nn_distance(samples_, train) / max(mean_nn_distance(held_out, train), 1e-12)
