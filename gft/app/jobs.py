"""Background training jobs for the app: one thread, several runs, pause / step / stop, snapshots.

The thread owns the trainers (and so the models); readers get immutable :class:`JobView`s of plain
numbers and numpy arrays copied under a lock. Nothing here imports Streamlit: the app keeps one job
per browser session and calls :meth:`TrainingJob.close` when the session ends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from gft.core.training import Snapshot, Trainer, TrainResult

IDLE, RUNNING, PAUSED, DONE, STOPPED, FAILED = "idle", "running", "paused", "done", "stopped", "failed"
CHUNK_S = 0.05  # seconds of training between looks at Pause / Step (Stop is checked every step)
MAX_CHUNK = 50


@dataclass(frozen=True)
class RunView:
    """What a page may read about one run of a job."""

    name: str
    step: int
    total_steps: int
    history: tuple[dict, ...]
    frames: tuple[Snapshot, ...]  # snapshots carrying trajectories, thinned to the frame budget
    result: TrainResult | None
    latest: Snapshot | None

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


@dataclass(frozen=True)
class JobView:
    state: str
    runs: tuple[RunView, ...]
    error: str | None
    elapsed: float

    @property
    def finished(self) -> bool:
        return self.state in (DONE, STOPPED, FAILED)

    @property
    def progress(self) -> float:
        return float(np.mean([r.progress for r in self.runs])) if self.runs else 0.0

    def run(self, name: str) -> RunView:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(name)


@dataclass
class _Run:
    name: str
    factory: Callable[[], Trainer]
    trainer: Trainer | None = None
    history: list[dict] = field(default_factory=list)
    frames: list[Snapshot] = field(default_factory=list)
    latest: Snapshot | None = None
    result: TrainResult | None = None
    total_steps: int = 0
    frame_stride: int = 1  # keep every stride-th trajectory snapshot; doubles when over budget
    seen: int = 0
    model: torch.nn.Module | None = None  # what a finished run keeps of its trainer: the trained weights
    chunk: int = 1  # steps per look at the controls, sized to CHUNK_S from the measured step time


class TrainingJob:
    """Runs one or more trainers in a background thread, interleaved chunk by chunk.

    ``runs`` maps a name to a factory that builds the :class:`Trainer` (called inside the thread, so
    even building the model never blocks the page). ``max_frames`` bounds the animation frames kept
    per run: when exceeded, every other frame is dropped (the first and the latest always stay).
    """

    def __init__(self, runs: dict[str, Callable[[], Trainer]], max_frames: int = 100) -> None:
        if not runs:
            raise ValueError("a job needs at least one run")
        if not 2 <= max_frames <= 1000:
            raise ValueError(f"max_frames must be in [2, 1000], got {max_frames}")
        self._runs = [_Run(name, factory) for name, factory in runs.items()]
        self._max_frames = max_frames
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._step_budget = 0  # single steps requested while paused
        self._state = IDLE
        self._error: str | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._thread: threading.Thread | None = None

    # ---- controls -------------------------------------------------------------------------
    def start(self, paused: bool = False) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._state = PAUSED if paused else RUNNING
            if paused:
                self._resume.clear()
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=self._main, name="gft-training", daemon=True)
            self._thread.start()

    def pause(self) -> None:
        with self._lock:
            if self._state == RUNNING:
                self._state = PAUSED
                self._resume.clear()

    def resume(self) -> None:
        with self._lock:
            if self._state == PAUSED:
                self._state = RUNNING
                self._resume.set()

    def step(self, n: int = 1) -> None:
        """Advance ``n`` steps while paused (starts the job paused if it has not started)."""
        if self._thread is None:
            self.start(paused=True)
        with self._lock:
            if self._state == PAUSED:
                self._step_budget += n
        self._wake()

    def stop(self) -> None:
        self._stop.set()
        self._wake()

    @property
    def stopping(self) -> bool:
        """Stop was requested (the thread may still be finishing its step)."""
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends; True if it did within ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop, wait briefly and drop the models (and any GPU memory they held)."""
        self.stop()
        self.wait(5.0)
        with self._lock:
            for run in self._runs:
                if run.trainer is not None:
                    run.trainer.close()
                run.trainer = None
                run.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _wake(self) -> None:
        self._resume.set()

    # ---- reading --------------------------------------------------------------------------
    def view(self) -> JobView:
        with self._lock:
            now = self._ended_at or time.monotonic()
            elapsed = now - self._started_at if self._started_at else 0.0
            runs = tuple(
                RunView(
                    r.name,
                    r.result.steps if r.result is not None else (r.trainer.step if r.trainer is not None else 0),
                    r.total_steps,
                    tuple(r.history),
                    tuple(r.frames),
                    r.result,
                    r.latest,
                )
                for r in self._runs
            )
            return JobView(self._state, runs, self._error, elapsed)

    def model(self, name: str):
        """The trained model of a finished run (for downloads), or None."""
        with self._lock:
            for r in self._runs:
                if r.name == name and r.result is not None:
                    return r.model
        return None

    # ---- the thread ----------------------------------------------------------------------
    def _record(self, run: _Run, snap: Snapshot) -> None:
        row = snap.row()
        with self._lock:
            run.history.append(row)
            run.latest = snap
            if snap.trajectory is None:
                return
            final = snap.step >= snap.total_steps
            if run.seen % run.frame_stride == 0 or final:
                if run.frames and run.frames[-1].step >= snap.total_steps:
                    return
                run.frames.append(snap)
            run.seen += 1
            if len(run.frames) > self._max_frames:
                # Evenly spaced in time: halve the frame rate instead of trimming one end.
                run.frame_stride *= 2
                run.frames = run.frames[::2] + ([snap] if final and run.frames[-1] is snap and len(run.frames) % 2 == 0 else [])

    @staticmethod
    def _keep_weights_only(run: _Run) -> None:
        """A finished run keeps its trained model, not the trainer (optimiser state, f_pre copy, pool)."""
        if run.trainer is None:
            return
        run.trainer.close()
        run.model = run.trainer.result_model
        run.model.eval()
        run.trainer = None

    def _main(self) -> None:
        try:
            for run in self._runs:
                if self._stop.is_set():
                    break
                run.trainer = run.factory()
                run.total_steps = run.trainer.config.steps
            active = [r for r in self._runs if r.trainer is not None]
            while active and not self._stop.is_set():
                if not self._resume.is_set():
                    self._resume.wait(0.1)
                    continue
                with self._lock:
                    single = self._state == PAUSED
                    budget = self._step_budget
                    self._step_budget = 0
                    if single and budget == 0:
                        self._resume.clear()
                        continue
                for run in active:
                    n = budget if single else run.chunk
                    began, before = time.perf_counter(), run.trainer.step
                    run.trainer.run(max_steps=n, stop_event=self._stop, callback=lambda s, r=run: self._record(r, s))
                    took = run.trainer.step - before
                    if took and not single:
                        per_step = (time.perf_counter() - began) / took
                        run.chunk = max(1, min(MAX_CHUNK, int(CHUNK_S / max(per_step, 1e-6))))
                    if run.trainer.done:
                        with self._lock:
                            run.result = run.trainer.result()
                active = [r for r in active if not r.trainer.done]
            with self._lock:
                stopped = self._stop.is_set() and any(not r.trainer or not r.trainer.done for r in self._runs)
                for run in self._runs:
                    if run.trainer is not None and run.result is None:
                        run.result = run.trainer.result(stopped=True)
                    self._keep_weights_only(run)
                self._state = STOPPED if stopped else DONE
        except Exception as exc:  # reported on the page; the app keeps working
            with self._lock:
                self._state = FAILED
                self._error = f"{type(exc).__name__}: {exc}"
                for run in self._runs:
                    if run.trainer is not None:
                        run.trainer.close()
        finally:
            with self._lock:
                self._ended_at = time.monotonic()
