"""One seeded 2D run of the benchmarks (pretraining, or fine-tuning with one method), run inside a worker.

Every 2D model is ``MLPFlow`` with width 128, depth 3 and a 32-dim time embedding (the gft default).
Pretrained weights travel between processes as numpy arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from benchmarks.measures import nn_distance_ratio
from benchmarks.targets import Shift, Target, TargetTask
from gft.core.models import FlowModel, ModelConfig, build_model
from gft.core.sampling import noise, sample_ode
from gft.core.training import METHODS, TrainConfig
from gft.data import DataSpec
from gft.evaluation.metrics import mode_coverage, stability, steps_to_threshold, wasserstein2
from gft.evaluation.points import evaluate_2d
from gft.tasks.runs import Monitor, make_trainer

MODEL = ModelConfig(kind="mlp", data_shape=(2,), width=128, depth=3, time_dim=32)
THRESHOLD_FACTOR = 1.5  # "reached the target": W2 within 1.5x the finite-sample floor
MEASURES = ("curve", "full2d", "diversity")


def to_numpy_state(model: FlowModel) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def from_numpy_state(config: ModelConfig, state: dict[str, np.ndarray]) -> FlowModel:
    model = build_model(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return model


def pretrain_2d(source: str, steps: int, batch: int, pool_size: int, seed: int, device: str = "auto") -> dict:
    """Plain flow matching on ``source`` (independent coupling); returns weights and the final W2."""
    config = TrainConfig(method="pretrain", steps=steps, batch=batch, seed=seed, callback_every=steps, device=device)
    task = TargetTask(Target(source), pool_size, 500, pool_offset=0)
    trainer = make_trainer(task, config, model_config=MODEL, monitor=Monitor(eval_every=steps, eval_points=500))
    try:
        result = trainer.run()
    finally:
        trainer.close()
    return {"source": source, "state": to_numpy_state(trainer.model), "w2": result.history[-1].get("w2"),
            "seconds": result.train_seconds}


@dataclass(frozen=True)
class FinetuneTask:
    """One fine-tuning run; ``measure`` picks what is evaluated (curve, full 2D evaluation, diversity)."""

    experiment: str
    shift: str
    method: str
    seed: int
    steps: int
    batch: int
    pool_size: int
    eval_points: int
    schedule: str = "stages:10,0.5,5"
    coupling: str = "independent"
    evals: int = 0  # W2 evaluations along the run (plus step 0); 0 = none
    limit: int | None = None
    sinkhorn_reg: float = 0.5
    measure: str = "curve"
    device: str = "auto"

    def __post_init__(self) -> None:
        Shift(self.shift)
        if self.method not in METHODS or self.method == "pretrain":
            raise ValueError(f"method must be gft, standard or scratch, got {self.method!r}")
        if self.measure not in MEASURES:
            raise ValueError(f"measure must be one of {MEASURES}, got {self.measure!r}")
        if self.evals and self.steps % self.evals:
            raise ValueError(f"steps ({self.steps}) must be a multiple of evals ({self.evals})")

    @property
    def label(self) -> str:
        """The method as tables name it: 'gft stages:10,0.5,5', 'standard' or 'scratch'."""
        return f"gft {self.schedule}" if self.method == "gft" else self.method

    def train_config(self) -> TrainConfig:
        every = self.steps // self.evals if self.evals else 0
        return TrainConfig(
            method=self.method, steps=self.steps, batch=self.batch, seed=self.seed, schedule=self.schedule,
            coupling=self.coupling, sinkhorn_reg=self.sinkhorn_reg, device=self.device,
            callback_every=every or self.steps,
            ot_workers=1,  # runs already go side by side in one process per core
        )

    def monitor(self) -> Monitor:
        every = self.steps // self.evals if self.evals else 0
        return Monitor(eval_every=every, eval_points=self.eval_points)


def run_finetune(task: FinetuneTask, pretrained_state: dict[str, np.ndarray]) -> dict:
    """Fine-tune from the pretrained weights and measure; returns one JSON-able row."""
    shift = Shift(task.shift)
    target = shift.target
    config = task.train_config()
    pretrained = from_numpy_state(MODEL, pretrained_state)
    trainer = make_trainer(TargetTask(target, task.pool_size, task.eval_points), config, base=pretrained, limit=task.limit,
                           monitor=task.monitor())
    train_pool = trainer.target
    try:
        result = trainer.run()
    finally:
        trainer.close()
    row = {**asdict(task), "label": task.label, "train_seconds": result.train_seconds,
           "steps_per_second": result.steps_per_second, "ot_seconds_per_batch": result.ot_seconds_per_batch,
           "final_loss": result.final_loss}
    model = trainer.model.eval()
    if task.measure == "curve":
        row.update(_curve_measures(result.history, target, task))
    elif task.measure == "full2d":
        ev = evaluate_2d(model, DataSpec(target.name), n=task.eval_points, seed=task.seed, device=trainer.device)
        row.update(ev.to_dict())
        row["w2_floor"] = ev.w2_null["mean"]  # the report's "floor" column until its rework: the null band's mean
    else:
        row.update(_diversity_measures(model, train_pool, target, task, trainer.device))
    return row


def _curve_measures(history: list[dict], target, task: FinetuneTask) -> dict:
    rows = [h for h in history if "w2" in h]
    steps = [h["step"] for h in rows]
    w2 = [h["w2"] for h in rows]
    floor = wasserstein2(target.floor_draw(task.eval_points, task.seed), target.held_out(task.eval_points, task.seed),
                         n=task.eval_points, seed=task.seed)
    st = stability(w2) if len(w2) >= 3 and all(np.isfinite(w2)) else None
    return {
        "curve_steps": steps,
        "curve_w2": w2,
        "w2_start": w2[0] if w2 else None,
        "final_w2": w2[-1] if w2 else None,
        "w2_floor": floor,
        "threshold": THRESHOLD_FACTOR * floor,
        "steps_to_threshold": steps_to_threshold(steps, w2, THRESHOLD_FACTOR * floor),
        "spearman": st.spearman if st else None,
        "diff_variance": st.diff_variance if st else None,
        "largest_rise": st.largest_rise if st else None,
    }


def _diversity_measures(model: FlowModel, train_pool: torch.Tensor, target, task: FinetuneTask, device) -> dict:
    n = task.eval_points
    x = sample_ode(model, noise(n, (2,), task.seed + 5, device), "euler", 100).x.cpu()
    held_out = target.held_out(n, task.seed)
    out = {
        "w2": wasserstein2(x, held_out, n=n, seed=task.seed),
        "w2_floor": wasserstein2(target.floor_draw(n, task.seed), held_out, n=n, seed=task.seed),
        "nn_distance_ratio": nn_distance_ratio(x, train_pool, held_out),
        "train_size": len(train_pool),
    }
    modes = target.modes
    if modes is not None:
        centres, std = modes
        out["mode_coverage"] = mode_coverage(x, centres, std)
        out["train_mode_coverage"] = float(len(set(torch.cdist(train_pool, centres).argmin(1).tolist())) / len(centres))
    return out
