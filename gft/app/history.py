"""A browser session's runs: the last few jobs with their settings, which page started each, which runs.

Starting a run on one page never touches another page's run; on its own page it stops the previous
run (a page trains one run at a time) but keeps it in the history. The history is bounded: past
``keep`` runs, the oldest finished run that no page shows is closed and dropped. Finished jobs keep
their frames, metrics and trained weights (for sampling and downloads), never their optimiser
(:meth:`gft.app.jobs.TrainingJob` drops the trainers when a run ends).

Nothing here imports Streamlit: :mod:`gft.app.session` keeps one history per browser session.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from gft.app.jobs import TrainingJob

KEEP_RUNS = 6  # at least five earlier runs stay comparable, whatever page made them


@dataclass
class RunRecord:
    """One job of the session: its page, a short label, the settings it was started with."""

    number: int  # 1, 2, 3 ... in the order runs were started in this session
    owner: str  # the page that started it
    label: str
    job: TrainingJob = field(repr=False)
    params: dict = field(default_factory=dict, repr=False)
    started_at: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return f"#{self.number} {self.label}"

    @property
    def active(self) -> bool:
        return not self.job.view().finished


class RunHistory:
    """The session's runs, newest last; ``current`` names the run each page shows."""

    def __init__(self, keep: int = KEEP_RUNS) -> None:
        if not isinstance(keep, int) or not 1 <= keep <= 100:
            raise ValueError(f"keep must be an integer in [1, 100], got {keep!r}")
        self.keep = keep
        self._records: list[RunRecord] = []
        self._current: dict[str, RunRecord] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    # ---- writing -------------------------------------------------------------------------------
    def add(self, owner: str, job: TrainingJob, params: dict, label: str = "") -> RunRecord:
        """Record ``job`` as ``owner``'s current run and start it; stops (keeps) that page's previous run."""
        with self._lock:
            record = RunRecord(next(self._numbers), owner, label or owner, job, dict(params))
            previous = self._current.get(owner)
            self._records.append(record)
            self._current[owner] = record
            evicted = self._evict()
        if previous is not None:
            previous.job.stop()
        for old in evicted:
            old.job.close()
        job.start()
        return record

    def _evict(self) -> list[RunRecord]:
        """Drop the oldest finished runs no page shows until at most ``keep`` remain (lock held)."""
        shown = {id(r) for r in self._current.values()}
        evicted = []
        for record in list(self._records):
            if len(self._records) <= self.keep:
                break
            if id(record) not in shown and not record.active:
                self._records.remove(record)
                evicted.append(record)
        return evicted

    def clear_page(self, owner: str) -> None:
        """Reset a page: stop its run and show none; the run stays in the history."""
        with self._lock:
            record = self._current.pop(owner, None)
            evicted = self._evict()
        if record is not None:
            record.job.stop()
        for old in evicted:
            old.job.close()

    def clear(self) -> None:
        """Stop and free every run (the browser session ended)."""
        with self._lock:
            records, self._records, self._current = self._records, [], {}
        for record in records:
            record.job.close()

    # ---- reading -------------------------------------------------------------------------------
    def current(self, owner: str) -> RunRecord | None:
        return self._current.get(owner)

    def for_page(self, owner: str) -> TrainingJob | None:
        record = self._current.get(owner)
        return record.job if record is not None else None

    def params_for(self, owner: str) -> dict:
        record = self._current.get(owner)
        return record.params if record is not None else {}

    def records(self) -> list[RunRecord]:
        """Every kept run, oldest first."""
        with self._lock:
            return list(self._records)

    def by_number(self, number: int) -> RunRecord | None:
        return next((r for r in self.records() if r.number == number), None)

    def active(self) -> list[RunRecord]:
        """The runs training (or paused) now."""
        return [r for r in self.records() if r.active]
