"""Run independent seeded tasks side by side in processes; results come back in submission order.

Every task seeds its own generators, so its numbers do not depend on how many workers ran it. A
task that raises is returned as an error row instead of losing the rest of the suite. With a
:class:`benchmarks.store.Store`, a task whose key is stored is not run again, and every finished task
is stored as soon as it returns (an interrupted suite resumes).
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

from benchmarks.store import Store


@dataclass(frozen=True)
class Job:
    """A top-level function and its (picklable) arguments; ``tag`` names it in progress lines."""

    fn: Callable[..., Any]
    args: tuple
    tag: str
    key: str = ""  # the store key; empty: never stored
    primary: bool = False  # needed by a primary endpoint: the suite runs these first


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

    def __init__(self, workers: int, threads: int, log: Callable[[str], None] | None = None, store: Store | None = None) -> None:
        self.workers, self.threads = workers, threads
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.store = store
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
        """Results of ``jobs`` in submission order (stored ones read back, the rest run)."""
        start = time.monotonic()
        results: list[Any] = [None] * len(jobs)
        todo = []
        for i, job in enumerate(jobs):
            stored = self.store.get(job.key) if self.store is not None and job.key else None
            if stored is None:
                todo.append(i)
            else:
                results[i] = stored
        if len(todo) < len(jobs):
            self.log(f"  {len(jobs) - len(todo)} of {len(jobs)} task(s) read back from {self.store.root}")
        if self._pool is None:
            init_worker(self.threads)
            for done, i in enumerate(todo, 1):
                results[i] = self._keep(jobs[i], _guarded(jobs[i]))
                self.log(f"  [{done}/{len(todo)}] {jobs[i].tag} ({time.monotonic() - start:.0f} s)")
            return results
        futures = {self._pool.submit(_guarded, jobs[i]): i for i in todo}
        for done, future in enumerate(as_completed(futures), 1):
            i = futures[future]
            results[i] = self._keep(jobs[i], future.result())
            self.log(f"  [{done}/{len(todo)}] {jobs[i].tag} ({time.monotonic() - start:.0f} s)")
        return results

    def _keep(self, job: Job, row: Any) -> Any:
        if self.store is not None and job.key and not is_error(row):
            self.store.put(job.key, row)
        return row


def is_error(row: Any) -> bool:
    return isinstance(row, dict) and "error" in row and len(row) == 2
