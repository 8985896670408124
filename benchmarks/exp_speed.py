"""Experiment 4, speed: training steps per second of ``gft.core.training.Trainer`` against a minimal hand-written
PyTorch loop of the same model (and TorchCFM's OT-CFM loop when installed), OT time per batch, and
sampling time. Runs in the main process with nothing else of the suite running beside it.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from typing import Callable

import numpy as np
import ot
import torch

from benchmarks.common import MODEL
from benchmarks.settings import Settings
from gft.constants import POINTS_POOL
from gft.core.couplings import Coupling
from gft.core.device import describe_device, resolve_device
from gft.core.models import MLPFlow, build_seeded
from gft.core.sampling import noise, sample_ode
from gft.core.training import TrainConfig, Trainer
from gft.data import sample_distribution

NAME = "speed"
TARGET = "8gaussians"
WARMUP = 20
SAMPLING_N, SAMPLING_STEPS = 2000, 100
SAMPLING_TARGET_S = 0.5
TARGET_VS_TORCHCFM = 1.5  # our OT training at least 1.5x TorchCFM's steps per second
TARGET_VS_REFERENCE = 1.3  # our time per step at most 1.3x the minimal loop's


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_trainer(trainer: Trainer, steps: int, device: torch.device, warmup: int = WARMUP) -> float:
    """Steps per second of ``trainer.run`` after ``warmup`` steps: wall time, bookkeeping and OT waits included."""
    trainer.run(max_steps=warmup)
    sync(device)
    start = time.perf_counter()
    trainer.run(max_steps=steps)
    sync(device)
    return steps / (time.perf_counter() - start)


def sampling_seconds(model: torch.nn.Module, x0: torch.Tensor, repeats: int, keep_trajectory: bool = False) -> float:
    """Median seconds of a 100-step Euler solve from ``x0``; the first call (one-off allocations) is dropped."""
    times = []
    for _ in range(repeats + 1):
        sync(x0.device)
        start = time.perf_counter()
        sample_ode(model, x0, "euler", SAMPLING_STEPS, keep_trajectory=keep_trajectory)
        sync(x0.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


class ReferenceLoop:
    """The minimal loop: draw x0 and x1, pair them by ot.emd's permutation (OT), draw t, regress x1 - x0.

    No prefetch thread, no gradient clipping, no logging: the floor any trainer of this model pays.
    """

    def __init__(self, pool: torch.Tensor, coupling: str, batch: int, seed: int, device: torch.device) -> None:
        self.pool, self.ot, self.batch, self.device = pool, coupling == "ot", batch, device
        self.model = MLPFlow(MODEL).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.gen = torch.Generator().manual_seed(seed)
        self.uniform = np.full(batch, 1.0 / batch)

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of pairs: x1 reordered by the exact OT plan's permutation (OT) or as drawn."""
        x1 = self.pool[torch.randint(len(self.pool), (self.batch,), generator=self.gen)]
        x0 = torch.randn(x1.shape, generator=self.gen)
        if self.ot:
            plan = ot.emd(self.uniform, self.uniform, ot.dist(x0.double().numpy(), x1.double().numpy()))
            x1 = x1[torch.from_numpy(plan.argmax(axis=1))]
        return x0, x1

    def step(self) -> None:
        x0, x1 = self.draw()
        t = torch.rand(self.batch, generator=self.gen)
        x0, x1, t = x0.to(self.device), x1.to(self.device), t.to(self.device)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        loss = ((self.model(xt, t) - (x1 - x0)) ** 2).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class TorchCFMLoop:
    """TorchCFM's OT-CFM (or independent CFM) matcher driving the same model, as its README trains."""

    def __init__(self, pool: torch.Tensor, coupling: str, batch: int, seed: int, device: torch.device) -> None:
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher, ExactOptimalTransportConditionalFlowMatcher

        self.fm = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0) if coupling == "ot" else ConditionalFlowMatcher(sigma=0.0)
        self.pool, self.batch, self.device = pool, batch, device
        self.model = MLPFlow(MODEL).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.gen = torch.Generator().manual_seed(seed)

    def step(self) -> None:
        x1 = self.pool[torch.randint(len(self.pool), (self.batch,), generator=self.gen)].to(self.device)
        x0 = torch.randn(x1.shape, generator=self.gen).to(self.device)
        t, xt, ut = self.fm.sample_location_and_conditional_flow(x0, x1)
        loss = ((self.model(xt, t) - ut) ** 2).sum(1).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def torchcfm_status() -> tuple[bool, str]:
    try:
        import torchcfm
        from torchcfm.conditional_flow_matching import ExactOptimalTransportConditionalFlowMatcher  # noqa: F401
    except Exception as exc:  # any import failure (missing package or missing dependency) means skip
        return False, f"torchcfm not importable ({type(exc).__name__}: {exc})"
    return True, f"torchcfm {getattr(torchcfm, '__version__', '?')}"


def _steps_per_second(step: Callable[[], None], steps: int, device: torch.device) -> float:
    for _ in range(WARMUP):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps / (time.perf_counter() - start)


def _trainer_steps_per_second(pool, coupling: str, method: str, settings: Settings, seed: int, device) -> float:
    config = TrainConfig(method=method, steps=WARMUP + settings.speed_steps, batch=256, seed=seed, coupling=coupling,
                         callback_every=WARMUP + settings.speed_steps, device=str(device.type))
    if method == "gft":
        trainer = Trainer(pool, config, pretrained=build_seeded(MODEL, seed + 1))
    else:
        trainer = Trainer(pool, config, init=build_seeded(MODEL, seed))
    try:
        return time_trainer(trainer, settings.speed_steps, device)
    finally:
        trainer.close()


def training_speed(settings: Settings, device: torch.device) -> dict:
    pool = sample_distribution(TARGET, POINTS_POOL, 0)
    has_cfm, cfm_note = torchcfm_status()
    loops: dict[str, Callable[[int], float]] = {}
    for coupling in ("independent", "ot"):
        loops[f"trainer {coupling}"] = lambda s, c=coupling: _trainer_steps_per_second(pool, c, "pretrain", settings, s, device)
        loops[f"reference {coupling}"] = lambda s, c=coupling: _steps_per_second(
            ReferenceLoop(pool, c, 256, s, device).step, settings.speed_steps, device)
        if has_cfm:
            loops[f"torchcfm {coupling}"] = lambda s, c=coupling: _steps_per_second(
                TorchCFMLoop(pool, c, 256, s, device).step, settings.speed_steps, device)
    loops["trainer gft+ot"] = lambda s: _trainer_steps_per_second(pool, "ot", "gft", settings, s, device)
    # Rounds interleave the loops so a load spike from elsewhere hits all of them alike.
    per_round: dict[str, list[float]] = {k: [] for k in loops}
    for r in range(settings.speed_rounds):
        for name, fn in loops.items():
            per_round[name].append(fn(r))
    med = {k: statistics.median(v) for k, v in per_round.items()}
    ratios = {}
    for c in ("independent", "ot"):
        # time per step of the trainer over the minimal loop's: 1.0 is parity, above is slower.
        ratios[f"trainer/reference time per step, {c}"] = statistics.median(
            ref / tr for tr, ref in zip(per_round[f"trainer {c}"], per_round[f"reference {c}"]))
        if has_cfm:
            ratios[f"trainer/torchcfm speed, {c}"] = statistics.median(
                tr / cf for tr, cf in zip(per_round[f"trainer {c}"], per_round[f"torchcfm {c}"]))
    targets = {
        "ot_time_ratio_vs_reference": {"value": ratios["trainer/reference time per step, ot"],
                                       "target": f"<= {TARGET_VS_REFERENCE}",
                                       "met": ratios["trainer/reference time per step, ot"] <= TARGET_VS_REFERENCE},
    }
    if has_cfm:
        v = ratios["trainer/torchcfm speed, ot"]
        targets["ot_speedup_vs_torchcfm"] = {"value": v, "target": f">= {TARGET_VS_TORCHCFM}", "met": v >= TARGET_VS_TORCHCFM}
    return {"batch": 256, "model": "MLPFlow width 128, depth 3, time_dim 32", "steps_timed": settings.speed_steps,
            "rounds": settings.speed_rounds, "steps_per_second": med, "per_round": per_round, "ratios": ratios,
            "targets": targets, "torchcfm": cfm_note if has_cfm else None, "torchcfm_skipped": None if has_cfm else cfm_note}


def ot_cost(settings: Settings) -> list[dict]:
    """Seconds per coupling solve against batch size; sizes past the time cap are skipped and said so."""
    default = Coupling("sinkhorn")
    variants = [
        ("exact (ot.emd)", Coupling("ot")),
        (f"sinkhorn reg {default.reg:g}, {'log' if default.log_domain else 'plain'} domain (gft default)", default),
        (f"sinkhorn reg {default.reg:g}, {'plain' if default.log_domain else 'log'} domain",
         Coupling("sinkhorn", default.reg, not default.log_domain)),
        ("sinkhorn reg 0.05, log domain (a sharp plan)", Coupling("sinkhorn", 0.05, True)),
    ]
    rows = []
    for name, coupling in variants:
        last = None
        for n in settings.ot_sizes:
            if last is not None and last[1] * (n / last[0]) ** 2 > settings.ot_time_cap:
                rows.append({"coupling": name, "batch": n, "seconds": None,
                             "note": f"skipped: predicted over the {settings.ot_time_cap:g} s cap"})
                continue
            g = torch.Generator().manual_seed(n)
            x0 = torch.randn(n, 2, generator=g)
            x1 = sample_distribution(TARGET, n, n)
            times = []
            budget = time.perf_counter() + max(1.0, settings.ot_time_cap / 4)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence warnings are expected at small reg
                while len(times) < 5 and (not times or time.perf_counter() < budget):
                    coupling.pair(x0, x1, g)
                    times.append(coupling.last_seconds)
            last = (n, statistics.median(times))
            rows.append({"coupling": name, "batch": n, "seconds": last[1], "repeats": len(times)})
    return rows


def sampling_speed(settings: Settings, device: torch.device) -> list[dict]:
    model = build_seeded(MODEL, 0).to(device)
    x0 = noise(SAMPLING_N, (2,), 0, device)
    rows = []
    threads_before = torch.get_num_threads()
    counts = {"suite": settings.threads, "all": os.cpu_count() or 1}
    thread_options = sorted({counts[k] for k in settings.sampling_threads}) if device.type == "cpu" else [threads_before]
    try:
        for threads in thread_options:
            torch.set_num_threads(threads)
            for keep in (False, True):
                best = sampling_seconds(model, x0, settings.sampling_repeats, keep)
                rows.append({"threads": threads, "keep_trajectory": keep, "seconds": best,
                             "target_s": SAMPLING_TARGET_S, "met": best < SAMPLING_TARGET_S})
    finally:
        torch.set_num_threads(threads_before)
    return rows


def run(settings: Settings) -> dict:
    device = resolve_device("auto")
    load_before = os.getloadavg()
    out = {"device": describe_device(device), "training": training_speed(settings, device),
           "ot_per_batch": ot_cost(settings), "sampling": sampling_speed(settings, device)}
    out["load_average"] = {"before": load_before[0], "after": os.getloadavg()[0], "cores": os.cpu_count()}
    return out
