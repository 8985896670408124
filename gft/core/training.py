"""The training loop: pretraining, GFT and the baselines, usable from a background thread.

One :class:`Trainer` owns the model, the optimiser, the frozen pretrained copy and every random
stream. It is driven in chunks (``run(max_steps=...)``) so an app can pause, single-step and stop it;
a stop event is checked every step and callbacks receive plain numbers and numpy arrays only.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from gft.core.couplings import COUPLINGS, Coupling
from gft.core.device import make_generator, resolve_device
from gft.core.models import FlowModel, build_seeded
from gft.core.objectives import GFTObjective
from gft.core.paths import GaussianPath
from gft.core.sampling import noise, sample_ode
from gft.core.schedules import Schedule, parse_schedule
from gft.evaluation.metrics import wasserstein2

METHODS = ("pretrain", "gft", "standard", "scratch")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run besides the data and the model weights."""

    method: str = "gft"
    steps: int = 3000
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0
    schedule: str = "stages:10,0.5,5"
    final_fraction: float = 0.2
    coupling: str = "independent"
    sinkhorn_reg: float = 0.5
    sigma: float = 0.0
    grad_clip: float = 1.0
    device: str = "auto"
    callback_every: int = 100  # history rows and callbacks
    eval_every: int = 500  # W2 (or an image metric) against held-out target draws; 0 = never
    eval_points: int = 1000
    snapshot_particles: int = 0  # fixed noise seeds whose trajectories each callback carries
    snapshot_steps: int = 20  # Euler steps of those trajectories
    ot_workers: int = 0  # threads solving the coupling of upcoming batches; 0 = one per core, at most 4

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= 10_000_000:
            raise ValueError(f"steps must be an integer in [1, 10000000], got {self.steps!r}")
        if not isinstance(self.batch, int) or not 2 <= self.batch <= 65_536:
            raise ValueError(f"batch must be an integer in [2, 65536], got {self.batch!r}")
        if not (0 < self.lr <= 1):
            raise ValueError(f"lr must be in (0, 1], got {self.lr}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {self.coupling!r}")
        if self.coupling != "independent" and self.batch > 4096:
            raise ValueError(f"batch must be <= 4096 with an OT coupling (cost grows as batch^2), got {self.batch}")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        if not isinstance(self.callback_every, int) or self.callback_every < 1:
            raise ValueError(f"callback_every must be an integer >= 1, got {self.callback_every!r}")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"eval_every must be an integer >= 0, got {self.eval_every!r}")
        if not 2 <= self.eval_points <= 20_000:
            raise ValueError(f"eval_points must be in [2, 20000], got {self.eval_points}")
        if not 0 <= self.snapshot_particles <= 20_000:
            raise ValueError(f"snapshot_particles must be in [0, 20000], got {self.snapshot_particles}")
        if not 1 <= self.snapshot_steps <= 1000:
            raise ValueError(f"snapshot_steps must be in [1, 1000], got {self.snapshot_steps}")
        if not isinstance(self.ot_workers, int) or not 0 <= self.ot_workers <= 64:
            raise ValueError(f"ot_workers must be an integer in [0, 64] (0 = automatic), got {self.ot_workers!r}")
        parse_schedule(self.schedule, self.steps, self.final_fraction)  # validated for every method
        Coupling(self.coupling, self.sinkhorn_reg)
        GaussianPath(self.sigma)

    def make_schedule(self) -> Schedule:
        """The temperature schedule; the baselines and pretraining always train at tau = 0."""
        spec = self.schedule if self.method == "gft" else "constant:0"
        return parse_schedule(spec, self.steps, self.final_fraction)

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved_ot_workers(self) -> int:
        """How many batches are solved ahead at once: none for the independent coupling."""
        if self.coupling == "independent":
            return 0
        # An exact 256 x 256 solve costs several optimiser steps of a small MLP, so on a 2-core
        # machine two solvers in flight (one per core) are what keeps the optimiser fed.
        return self.ot_workers or min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class Snapshot:
    """What a callback receives: plain numbers and numpy arrays, safe to hand to another thread."""

    step: int
    total_steps: int
    tau: float
    lam: float
    loss: float | None
    w2: float | None = None
    trajectory: np.ndarray | None = None  # (snapshot_steps + 1, particles, *data_shape), float32

    @property
    def samples(self) -> np.ndarray | None:
        return None if self.trajectory is None else self.trajectory[-1]


@dataclass
class TrainResult:
    """Summary of a finished (or stopped) run."""

    steps: int
    train_seconds: float
    steps_per_second: float
    final_loss: float
    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    ot_seconds_per_batch: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


EvalFn = Callable[[FlowModel], float]


class Trainer:
    """Trains ``model`` on a pool of target samples; ``pretrained`` is required for GFT and standard."""

    def __init__(
        self,
        model: FlowModel,
        target: torch.Tensor,
        config: TrainConfig,
        pretrained: FlowModel | None = None,
        eval_target: torch.Tensor | None = None,
        eval_fn: EvalFn | None = None,
    ) -> None:
        if config.method in ("gft", "standard") and pretrained is None:
            raise ValueError(f"method {config.method!r} fine-tunes a pretrained model; pass one")
        if config.method in ("gft", "standard") and pretrained.config != model.config:
            ours, theirs = model.config.to_dict(), pretrained.config.to_dict()
            diff = ", ".join(f"{k} {theirs[k]} vs {ours[k]}" for k in ours if ours[k] != theirs[k])
            raise ValueError(f"the pretrained model and the model to fine-tune must share an architecture ({diff})")
        if tuple(target.shape[1:]) != model.config.data_shape:
            raise ValueError(f"target samples have shape {tuple(target.shape[1:])}, the model expects {model.config.data_shape}")
        if len(target) < 2:
            raise ValueError("the target needs at least 2 samples")
        self.config = config
        self.device = resolve_device(config.device)
        if config.method == "scratch":
            # Same architecture, fresh weights drawn from the run's seed.
            model = build_seeded(model.config, config.seed)
        elif config.method in ("gft", "standard"):
            model.load_state_dict(pretrained.state_dict())
        self.model = model.to(self.device)
        self.model.train()
        self.schedule = config.make_schedule()
        self.coupling = Coupling(config.coupling, config.sinkhorn_reg)
        uses_pretrained = config.method == "gft"
        self.objective = GFTObjective(
            GaussianPath(config.sigma),
            self.coupling,
            pretrained.to(self.device) if uses_pretrained else None,
            score_head=model.has_score,
        )
        # The fused kernel updates every tensor in one call: a few percent of a small model's step.
        fused = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=fused)
        self.target = target.float().cpu()
        self.eval_target = eval_target
        self.eval_fn = eval_fn
        # Separate seeded streams: pairs (data + noise + OT) and the path (t, eps).
        self._data_gen = torch.Generator().manual_seed(config.seed)
        self._path_gen = make_generator(config.seed + 1, self.device)
        self._snapshot_noise = (
            noise(config.snapshot_particles, model.config.data_shape, config.seed + 7, self.device)
            if config.snapshot_particles
            else None
        )
        self._eval_noise = noise(config.eval_points, model.config.data_shape, config.seed + 11, self.device)
        self.step = 0
        self.history: list[dict] = []
        self.train_seconds = 0.0
        self.ot_seconds = 0.0
        self._window: list[float] = []
        self._last_loss = float("nan")
        # Couplings are solved in worker threads, one batch ahead per worker (POT releases the GIL).
        # Batches are drawn here, in order, so the run does not depend on the number of workers.
        self._ot_workers = config.resolved_ot_workers()
        self._pool = ThreadPoolExecutor(self._ot_workers, thread_name_prefix="gft-ot") if self._ot_workers else None
        self._pending: deque[Future] = deque()
        self._drawn = 0

    @property
    def done(self) -> bool:
        return self.step >= self.config.steps

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Generator | None]:
        idx = torch.randint(len(self.target), (self.config.batch,), generator=self._data_gen)
        x1 = self.target[idx]
        x0 = torch.randn(x1.shape, generator=self._data_gen)
        gen = None
        if self.coupling.kind == "sinkhorn":
            # Each batch gets its own stream for its partner draws, so workers may finish in any order.
            gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=self._data_gen)))
        self._drawn += 1
        return x0, x1, gen

    def _fill(self) -> None:
        while self._pool is not None and len(self._pending) < self._ot_workers and self._drawn < self.config.steps:
            self._pending.append(self._pool.submit(self.coupling.solve, *self._draw()))

    def _next_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pool is None:
            x0, x1, gen = self._draw()
            x0, x1, ot_s = self.coupling.solve(x0, x1, gen)
        else:
            self._fill()
            x0, x1, ot_s = self._pending.popleft().result()
            self._fill()
        self.ot_seconds += ot_s
        return x0.to(self.device, non_blocking=True), x1.to(self.device, non_blocking=True)

    def train_step(self) -> float:
        """One optimisation step at the schedule's current lambda; returns the loss."""
        lam = self.schedule.lam(self.step)
        x0, x1 = self._next_pair()
        value = self.objective.loss(self.model, x0, x1, lam, self._path_gen)
        if not math.isfinite(value.velocity) or (value.score is not None and not math.isfinite(value.score)):
            raise TrainingDiverged(
                f"loss became non-finite at step {self.step} (tau={self.schedule.tau(self.step):g}); "
                f"lower the learning rate (now {self.config.lr:g}) or check the data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        value.total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip, foreach=True)
        self.optimizer.step()
        self.step += 1
        loss = float(value.total.detach())
        self._window.append(loss)
        self._last_loss = loss
        return loss

    def evaluate(self) -> float:
        """W2 of 50-step Euler samples against held-out target draws (or the custom eval_fn)."""
        if self.eval_fn is not None:
            return float(self.eval_fn(self.model))
        ref = self.eval_target if self.eval_target is not None else self.target
        x = sample_ode(self.model, self._eval_noise, "euler", 50).x
        return wasserstein2(x, ref, n=self.config.eval_points, seed=self.config.seed)

    def trajectory_snapshot(self) -> np.ndarray | None:
        if self._snapshot_noise is None:
            return None
        res = sample_ode(self.model, self._snapshot_noise, "euler", self.config.snapshot_steps, keep_trajectory=True)
        return res.trajectory.float().cpu().numpy()

    def snapshot(self) -> Snapshot:
        """Record a history row (and W2 when due) at the current step."""
        step_for_tau = max(self.step - 1, 0)
        loss = float(np.mean(self._window)) if self._window else self._last_loss
        if not math.isfinite(loss):
            loss = None  # no step taken yet; keeps the history valid JSON
        self._window = []
        due = self.config.eval_every and (self.step % self.config.eval_every == 0 or self.done)
        w2 = self.evaluate() if due or self.step == 0 and self.config.eval_every else None
        row = {"step": self.step, "tau": self.schedule.tau(step_for_tau), "lambda": self.schedule.lam(step_for_tau), "loss": loss}
        if w2 is not None:
            row["w2"] = w2
        self.history.append(row)
        return Snapshot(self.step, self.config.steps, row["tau"], row["lambda"], loss, w2, self.trajectory_snapshot())

    def run(
        self,
        max_steps: int | None = None,
        stop_event: threading.Event | None = None,
        callback: Callable[[Snapshot], None] | None = None,
    ) -> TrainResult:
        """Train until done, ``max_steps`` more steps, or the stop event; callbacks every ``callback_every``."""
        if self.step == 0 and not self.history and callback is not None:
            callback(self.snapshot())
        target_step = self.config.steps if max_steps is None else min(self.config.steps, self.step + max_steps)
        stopped = False
        while self.step < target_step:
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            start = time.perf_counter()
            self.train_step()
            self.train_seconds += time.perf_counter() - start
            if self.step % self.config.callback_every == 0 or self.done:
                snap = self.snapshot()
                if callback is not None:
                    callback(snap)
        if self.done or stopped:
            self.close()
        return self.result(stopped)

    def result(self, stopped: bool = False) -> TrainResult:
        sps = self.step / self.train_seconds if self.train_seconds > 0 else 0.0
        n_ot = max(self.step, 1)
        return TrainResult(
            steps=self.step,
            train_seconds=self.train_seconds,
            steps_per_second=sps,
            final_loss=self._last_loss,
            history=list(self.history),
            stopped=stopped,
            ot_seconds_per_batch=self.ot_seconds / n_ot if not self.coupling.independent else 0.0,
        )

    def close(self) -> None:
        """Release the prefetch worker (the model stays usable)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._pending.clear()


def train(
    model: FlowModel,
    target: torch.Tensor,
    config: TrainConfig,
    pretrained: FlowModel | None = None,
    eval_target: torch.Tensor | None = None,
    callback: Callable[[Snapshot], None] | None = None,
    stop_event: threading.Event | None = None,
) -> tuple[FlowModel, TrainResult]:
    """Run a whole training job; returns the trained model (``scratch`` builds a fresh one) and the result."""
    trainer = Trainer(model, target, config, pretrained, eval_target)
    try:
        result = trainer.run(stop_event=stop_event, callback=callback)
    finally:
        trainer.close()
    return trainer.model, result
