"""The training loop: pretraining, GFT and the baselines, usable from a background thread.

A :class:`Trainer` only trains: it owns its model (a copy of what it starts from, never the caller's
object), the optimiser, the frozen pretrained copy, the schedule, the OT prefetch and every random
stream. What a caller wants to watch (held-out metrics, trajectories for animations) is passed in as
:class:`Hook`s; progress reaches the caller through a callback of plain numbers and numpy arrays. It
is driven in chunks (``run(max_steps=...)``) so an app can pause, single-step and stop it.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gft.constants import PATH_SEED_OFFSET
from gft.core.couplings import COUPLINGS, Coupling
from gft.core.device import make_generator, resolve_device
from gft.core.distributed import DataParallelHeads, Shard
from gft.core.models import FlowModel, ModelConfig, build_seeded
from gft.core.objectives import GFTObjective
from gft.core.paths import GaussianPath
from gft.core.schedules import Schedule, parse_schedule

METHODS = ("pretrain", "gft", "standard", "scratch", "l2sp")
FINETUNE_METHODS = ("gft", "standard", "scratch", "l2sp")


# Divergence before NaN: a run diverges when the median loss of its last DIVERGENCE_WINDOW steps
# exceeds DIVERGENCE_FACTOR times its starting scale. The starting scale is the larger of the loss before
# any update and the median of E|x1 - x0|^2 over the first DIVERGENCE_WINDOW batches (the loss of
# predicting zero velocity: what a model that learnt nothing scores). A median ignores single spikes; the
# zero-prediction floor keeps GFT's small early losses (the target starts close to f_pre) from counting
# as a low start. Measured on seeded runs: sane runs (lr up to 0.1, GFT moons -> 8gaussians, digits)
# stay below 1x that scale; lr 1 runs that blow up pass 1000x within 50 steps.
DIVERGENCE_WINDOW = 50
DIVERGENCE_FACTOR = 100.0


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or grew far beyond its starting scale and stayed there."""


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
    tau_end: float = 0.0  # GFT's stop temperature: the anneal ends at tau_end > 0 instead of a tau = 0 phase
    coupling: str = "independent"
    sinkhorn_reg: float = 0.5
    sigma: float = 0.0
    grad_clip: float = 1.0
    device: str = "auto"
    callback_every: int = 100  # a history row and a callback every this many steps
    ot_workers: int = 0  # threads solving the coupling of upcoming batches; 0 = one per core, at most 4
    warmup: int = 0  # steps of linear learning-rate warm-up from 0 (any method)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0 = off); the EMA is the result
    anchor_weight: float = 0.0  # l2sp: weight of |theta - theta_pre|^2, the pull towards the pretrained weights

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
        if not isinstance(self.ot_workers, int) or not 0 <= self.ot_workers <= 64:
            raise ValueError(f"ot_workers must be an integer in [0, 64] (0 = automatic), got {self.ot_workers!r}")
        if not isinstance(self.warmup, int) or not 0 <= self.warmup <= self.steps:
            raise ValueError(f"warmup must be an integer in [0, steps={self.steps}], got {self.warmup!r}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1) (0 = off), got {self.ema}")
        if not 0 <= self.anchor_weight <= 1e6:
            raise ValueError(f"anchor_weight must be in [0, 1e6], got {self.anchor_weight}")
        if self.method == "l2sp" and not self.anchor_weight > 0:
            raise ValueError("method 'l2sp' needs anchor_weight > 0 (the pull towards the pretrained weights)")
        if self.method != "l2sp" and self.anchor_weight:
            raise ValueError(f"anchor_weight applies to method 'l2sp' only, not {self.method!r}")
        if self.tau_end and self.method != "gft":
            raise ValueError(f"tau_end applies to method 'gft' only, not {self.method!r}")
        parse_schedule(self.schedule, self.steps, self.final_fraction, self.tau_end)  # validated for every method
        Coupling(self.coupling, self.sinkhorn_reg)
        GaussianPath(self.sigma)

    def make_schedule(self) -> Schedule:
        """The temperature schedule; the baselines and pretraining always train at tau = 0."""
        if self.method != "gft":
            return parse_schedule("constant:0", self.steps, self.final_fraction)
        return parse_schedule(self.schedule, self.steps, self.final_fraction, self.tau_end)

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
class Hook:
    """A measurement of the model taken while it trains: ``fn(model)`` every ``every`` steps.

    It runs at step 0 (before any step), at every multiple of ``every`` and at the last step. A float
    result goes into the history row under ``name``; any result (a trajectory array, say) reaches the
    callback in :attr:`Snapshot.values`. ``fn`` must not change the model (samplers restore its mode).
    """

    name: str
    every: int
    fn: Callable[[FlowModel], Any]

    def __post_init__(self) -> None:
        if not self.name or self.name in ("step", "tau", "lambda", "loss"):
            raise ValueError(f"hook name must be non-empty and not a history column, got {self.name!r}")
        if not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"hook {self.name!r}: every must be an integer >= 1, got {self.every!r}")

    def due(self, step: int, total_steps: int) -> bool:
        return step % self.every == 0 or step >= total_steps


@dataclass(frozen=True)
class Snapshot:
    """What a callback receives: plain numbers and what the hooks returned, safe to hand to another thread."""

    step: int
    total_steps: int
    tau: float
    lam: float
    loss: float | None
    values: Mapping[str, Any] = field(default_factory=dict)  # hook results at this step

    def row(self) -> dict:
        """The history row of this snapshot: step, tau, lambda, loss and the hooks' numbers."""
        row = {"step": self.step, "tau": self.tau, "lambda": self.lam, "loss": self.loss}
        row.update({k: float(v) for k, v in self.values.items() if isinstance(v, (float, int))})
        return row

    @property
    def trajectory(self) -> Any:
        """The ``trajectory`` hook's (K + 1, particles, *data_shape) float32 array, when it ran."""
        return self.values.get("trajectory")

    @property
    def samples(self) -> Any:
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


class Trainer:
    """Trains its own model on a pool of target samples; the trained model is :attr:`model`.

    Where training starts, by method: ``pretrain`` from ``init`` (a :class:`FlowModel`, copied, or a
    :class:`ModelConfig`, built with weights drawn from ``config.seed``); ``gft`` and ``standard`` from a
    copy of ``pretrained`` (or of ``init``, a model of the same architecture, when given); ``scratch`` from
    fresh weights of ``init`` (a ModelConfig) or of ``pretrained``'s architecture.
    GFT keeps its own frozen copy of ``pretrained`` as f_pre. The caller's models are never changed.
    With a ``shard`` (one rank of a torchrun job) it trains data-parallel: see :mod:`gft.core.distributed`.
    """

    def __init__(
        self,
        target: torch.Tensor,
        config: TrainConfig,
        *,
        init: FlowModel | ModelConfig | None = None,
        pretrained: FlowModel | None = None,
        hooks: Sequence[Hook] = (),
        shard: Shard | None = None,
    ) -> None:
        method = config.method
        start = _starting_point(method, init, pretrained)
        model_config = start if isinstance(start, ModelConfig) else start.config
        if tuple(target.shape[1:]) != model_config.data_shape:
            raise ValueError(f"target samples have shape {tuple(target.shape[1:])}, the model expects {model_config.data_shape}")
        if len(target) < 2:
            raise ValueError("the target needs at least 2 samples")
        names = [h.name for h in hooks]
        if len(set(names)) != len(names):
            raise ValueError(f"hook names must be unique, got {names}")
        self.config = config
        self.device = resolve_device(config.device)
        own = build_seeded(start, config.seed) if isinstance(start, ModelConfig) else copy.deepcopy(start)
        self.model = own.to(self.device)
        self.model.train()
        # Data-parallel (torchrun): ``config.batch`` is this rank's share; see gft.core.distributed.
        self.shard = shard
        self._net = self.model if shard is None else DataParallelHeads(self.model, self.device)
        self.hooks = tuple(hooks)
        self.schedule = config.make_schedule()
        self.coupling = Coupling(config.coupling, config.sinkhorn_reg)
        self.objective = GFTObjective(
            GaussianPath(config.sigma),
            self.coupling,
            # GFTObjective keeps a frozen copy; moving that copy leaves the caller's model where it was.
            pretrained if method == "gft" else None,
            score_head=self.model.has_score,
        )
        if self.objective.pretrained is not None:
            self.objective.pretrained.to(self.device)
        # The fused kernel updates every tensor in one call: a few percent of a small model's step.
        fused = self.device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, fused=fused)
        # l2sp pulls the weights towards the pretrained ones: keep those as fixed tensors on the device.
        self._anchor = (
            [p.detach().clone().to(self.device) for p in pretrained.parameters()] if method == "l2sp" else None
        )
        # The EMA copy is what the run yields (and what hooks measure) when ema > 0.
        self._ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True) if config.ema else None
        self.target = target.float().cpu()
        # Separate seeded streams: pairs (data + noise + OT) and the path (t, eps).
        self._data_gen = torch.Generator().manual_seed(config.seed)
        self._path_gen = make_generator(config.seed + PATH_SEED_OFFSET, self.device)
        self.step = 0
        self.history: list[dict] = []
        self.train_seconds = 0.0
        self.ot_seconds = 0.0
        self._window: list[float] = []
        self._last_loss = float("nan")
        self._start_loss: float | None = None  # the loss before the first update
        self._zero_prediction: list[float] = []  # E|x1 - x0|^2 of the first DIVERGENCE_WINDOW batches
        self._recent: deque[float] = deque(maxlen=DIVERGENCE_WINDOW)
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
        n = self.config.batch if self.shard is None else self.shard.global_size(self.config.batch)
        idx = torch.randint(len(self.target), (n,), generator=self._data_gen)
        x1 = self.target[idx]
        x0 = torch.randn(x1.shape, generator=self._data_gen)
        if self.shard is not None:
            x0, x1 = self.shard.local(x0), self.shard.local(x1)
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

    @property
    def result_model(self) -> FlowModel:
        """What this run yields: the EMA of the weights when ``ema > 0``, else the trained model."""
        return self._ema.module if self._ema is not None else self.model

    def _learning_rate(self) -> float:
        if self.config.warmup and self.step < self.config.warmup:
            return self.config.lr * (self.step + 1) / self.config.warmup
        return self.config.lr

    def train_step(self) -> float:
        """One optimisation step at the schedule's current lambda; returns the loss."""
        lam = self.schedule.lam(self.step)
        x0, x1 = self._next_pair()
        value = self.objective.loss(self._net, x0, x1, lam, self._path_gen, shard=self.shard)
        loss = float(value.total.detach())
        if self.shard is not None:
            value, loss = self.shard.average(value)
        if not math.isfinite(value.velocity) or (value.score is not None and not math.isfinite(value.score)):
            raise self._diverged("loss became non-finite")
        self._watch_growth(loss, x0, x1)
        total = value.total
        if self._anchor is not None:
            total = total + self.config.anchor_weight * sum(((p - a) ** 2).sum() for p, a in zip(self.model.parameters(), self._anchor))
        if self.config.warmup:
            for group in self.optimizer.param_groups:
                group["lr"] = self._learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip, foreach=True)
        self.optimizer.step()
        if self._ema is not None:
            self._ema.update_parameters(self.model)
        self.step += 1
        self._window.append(loss)
        self._last_loss = loss
        return loss

    def _diverged(self, what: str) -> TrainingDiverged:
        return TrainingDiverged(
            f"{what} at step {self.step} (tau={self.schedule.tau(self.step):g}); "
            f"lower the learning rate (now {self.config.lr:g}) or check the data"
        )

    def _watch_growth(self, loss: float, x0: torch.Tensor, x1: torch.Tensor) -> None:
        """Raise :class:`TrainingDiverged` on sustained growth (the rule above :data:`DIVERGENCE_WINDOW`)."""
        if self._start_loss is None:
            self._start_loss = loss
        if len(self._zero_prediction) < DIVERGENCE_WINDOW:
            self._zero_prediction.append(float(((x1 - x0) ** 2).flatten(1).sum(1).mean()))
        self._recent.append(loss)
        if len(self._recent) < DIVERGENCE_WINDOW:
            return
        start = max(self._start_loss, statistics.median(self._zero_prediction))
        running = statistics.median(self._recent)
        if running > DIVERGENCE_FACTOR * start:
            raise self._diverged(
                f"loss grew to {running:.3g} (median of the last {DIVERGENCE_WINDOW} steps), "
                f"over {DIVERGENCE_FACTOR:g}x its starting scale {start:.3g},"
            )

    def snapshot(self) -> Snapshot:
        """Record a history row at the current step, with the results of the hooks that are due."""
        step_for_tau = max(self.step - 1, 0)
        loss = float(sum(self._window) / len(self._window)) if self._window else self._last_loss
        if not math.isfinite(loss):
            loss = None  # no step taken yet; keeps the history valid JSON
        self._window = []
        values = {h.name: h.fn(self.result_model) for h in self.hooks if h.due(self.step, self.config.steps)}
        tau, lam = self.schedule.tau(step_for_tau), self.schedule.lam(step_for_tau)
        snap = Snapshot(self.step, self.config.steps, tau, lam, loss, values)
        self.history.append(snap.row())
        return snap

    def run(
        self,
        max_steps: int | None = None,
        stop_event: threading.Event | None = None,
        callback: Callable[[Snapshot], None] | None = None,
    ) -> TrainResult:
        """Train until done, ``max_steps`` more steps, or the stop event; callbacks every ``callback_every``."""
        if self.step == 0 and not self.history and (callback is not None or self.hooks):
            snap = self.snapshot()
            if callback is not None:
                callback(snap)
        target_step = self.config.steps if max_steps is None else min(self.config.steps, self.step + max_steps)
        stopped = False
        while self.step < target_step:
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            start = time.perf_counter()
            self.train_step()
            self.train_seconds += time.perf_counter() - start
            if self._row_due():
                snap = self.snapshot()
                if callback is not None:
                    callback(snap)
        if self.done or stopped:
            self.close()
        return self.result(stopped)

    def _row_due(self) -> bool:
        return self.step % self.config.callback_every == 0 or self.done or any(h.due(self.step, self.config.steps) for h in self.hooks)

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


def _starting_point(method: str, init: FlowModel | ModelConfig | None, pretrained: FlowModel | None) -> FlowModel | ModelConfig:
    """The weights (a model to copy) or the architecture (a config to build) a method starts from."""
    if method == "pretrain":
        if init is None:
            raise ValueError("method 'pretrain' needs init: a model or a ModelConfig to start from")
        if pretrained is not None:
            raise ValueError("method 'pretrain' uses no pretrained model")
        return init
    if method == "scratch":
        if isinstance(init, FlowModel):
            raise ValueError("method 'scratch' trains fresh weights: pass init as a ModelConfig (or only pretrained)")
        if init is None and pretrained is None:
            raise ValueError("method 'scratch' needs init (a ModelConfig) or a pretrained model to take the architecture from")
        return init if init is not None else pretrained.config
    if pretrained is None:
        raise ValueError(f"method {method!r} fine-tunes a pretrained model; pass one")
    if init is None:
        return pretrained
    if not isinstance(init, FlowModel):
        raise ValueError(f"method {method!r} starts from trained weights: init must be a model, not a ModelConfig")
    if init.config != pretrained.config:
        ours, theirs = init.config.to_dict(), pretrained.config.to_dict()
        diff = ", ".join(f"{k} {theirs[k]} vs {ours[k]}" for k in ours if ours[k] != theirs[k])
        raise ValueError(f"init and the pretrained model must share an architecture ({diff})")
    return init


def train(
    target: torch.Tensor,
    config: TrainConfig,
    *,
    init: FlowModel | ModelConfig | None = None,
    pretrained: FlowModel | None = None,
    hooks: Sequence[Hook] = (),
    callback: Callable[[Snapshot], None] | None = None,
    stop_event: threading.Event | None = None,
) -> tuple[FlowModel, TrainResult]:
    """Run a whole training job (see :class:`Trainer` for where it starts); returns the trained model and the result."""
    trainer = Trainer(target, config, init=init, pretrained=pretrained, hooks=hooks)
    try:
        result = trainer.run(stop_event=stop_event, callback=callback)
    finally:
        trainer.close()
    return trainer.result_model, result
