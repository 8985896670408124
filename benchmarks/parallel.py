"""Run independent seeded tasks side by side in processes; results come back in submission order.

Every task seeds its own generators, so its numbers do not depend on how many workers ran it. A
task that raises is returned as an error row instead of losing the rest of the suite.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class Job:
    """A top-level function and its (picklable) arguments; ``tag`` names it in progress lines."""

    fn: Callable[..., Any]
    args: tuple
    tag: str


def init_worker(threads: int) -> None:
    # One intra-op thread per process: on 2 cores, two single-threaded runs beat one two-threaded run.
    torch.set_num_threads(threads)


def _guarded(job: Job) -> Any:
    try:
        return job.fn(*job.args)
    except Exception as exc:  # reported in the results and the REPORT, never silently dropped
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return {"error": last, "tag": job.tag}


class Runner:
    """Runs batches of jobs on one set of worker processes (spawned once, reused by every phase).

    ``workers == 1`` runs the jobs in this process: no spawn cost, and the only choice with a GPU.
    """

    def __init__(self, workers: int, threads: int, log: Callable[[str], None] | None = None) -> None:
        self.workers, self.threads = workers, threads
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "Runner":
        if self.workers > 1:
            # spawn, not fork: a forked child of a process that already ran torch threads can deadlock.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init_worker, initargs=(self.threads,))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map(self, jobs: list[Job]) -> list[Any]:
        """Results of ``jobs`` in submission order."""
        start = time.monotonic()
        results: list[Any] = [None] * len(jobs)
        if self._pool is None:
            init_worker(self.threads)
            for i, job in enumerate(jobs):
                results[i] = _guarded(job)
                self.log(f"  [{i + 1}/{len(jobs)}] {job.tag} ({time.monotonic() - start:.0f} s)")
            return results
        futures = {self._pool.submit(_guarded, job): i for i, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            results[i] = future.result()
            self.log(f"  [{done}/{len(jobs)}] {jobs[i].tag} ({time.monotonic() - start:.0f} s)")
        return results


def is_error(row: Any) -> bool:
    return isinstance(row, dict) and "error" in row and len(row) == 2
