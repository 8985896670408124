"""Evaluating finished runs in a background thread (seconds per model), read by a page as snapshots."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gft.core.models import FlowModel
from gft.data import DataSpec
from gft.evaluation.points import evaluate_2d
from gft.evaluation.result import Evaluation

EVALUATION_POINTS = 1000  # evaluate_2d on finished runs: about 2-4 s per model on a CPU


@dataclass(frozen=True)
class EvaluationView:
    results: dict[str, Evaluation]
    total: int
    error: str | None

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.results) == self.total

    @property
    def progress(self) -> float:
        return len(self.results) / self.total if self.total else 1.0


class EvaluationTask:
    """Runs :func:`gft.evaluation.points.evaluate_2d` on several models in a thread (seconds each)."""

    def __init__(self, models: dict[str, FlowModel], data: str, n: int = 1000, seed: int = 0, device: str = "cpu") -> None:
        self._models = dict(models)
        self._total = len(self._models)
        self._spec = DataSpec(data)
        self._n, self._seed, self._device = n, seed, device
        self._results: dict[str, Evaluation] = {}
        self._error: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._main, name="gft-evaluation", daemon=True)

    def start(self) -> "EvaluationTask":
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def view(self) -> EvaluationView:
        with self._lock:
            return EvaluationView(dict(self._results), self._total, self._error)

    def _main(self) -> None:
        try:
            for name, model in self._models.items():
                result = evaluate_2d(model, self._spec, n=self._n, seed=self._seed, device=self._device)
                with self._lock:
                    self._results[name] = result
        except Exception as exc:  # shown on the page; a failed evaluation must not take the app down
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self._models = {}  # drop the references: the job owns the models
