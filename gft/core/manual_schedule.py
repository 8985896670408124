"""A temperature the user sets while training runs ("manual annealing"), recorded so it can be replayed.

The app's τ knob calls :meth:`ManualSchedule.set_tau` from the page thread; the trainer reads
:meth:`ManualSchedule.tau` every step from its own thread (a lock guards the record). What was used
becomes a ``piecewise`` spec (with ``final_fraction = 0``), so the same run can be replayed on the
page or with ``python -m gft finetune --schedule SPEC --final-fraction 0``.
"""

from __future__ import annotations

import bisect
import threading

from gft.core.schedules import MAX_TAU, lambda_of_tau, parse_schedule


class ManualSchedule:
    """τ(step) is the last value set at or before ``step``; starts at ``start_tau``."""

    family = "manual"

    def __init__(self, total_steps: int, start_tau: float) -> None:
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        self.total_steps = total_steps
        self._steps: list[int] = [0]
        self._taus: list[float] = [self._checked(start_tau)]
        self._lock = threading.Lock()

    @staticmethod
    def _checked(tau: float) -> float:
        if not 0 <= tau <= MAX_TAU:
            raise ValueError(f"tau must be in [0, {MAX_TAU:g}], got {tau}")
        return float(tau)

    @property
    def start_tau(self) -> float:
        return self._taus[0]

    def set_tau(self, tau: float, step: int) -> None:
        """From ``step`` on, train at ``tau`` (a later change at the same step replaces it)."""
        tau = self._checked(tau)
        with self._lock:
            step = max(int(step), self._steps[-1])  # the past is what it was: changes only apply forward
            if step == self._steps[-1]:
                self._taus[-1] = tau
                if len(self._steps) > 1 and self._taus[-2] == tau:
                    self._steps.pop()
                    self._taus.pop()
            elif tau != self._taus[-1]:
                self._steps.append(step)
                self._taus.append(tau)

    def tau(self, step: int) -> float:
        with self._lock:
            return self._taus[max(0, bisect.bisect_right(self._steps, step) - 1)]

    def lam(self, step: int) -> float:
        return lambda_of_tau(self.tau(step))

    def changes(self) -> list[tuple[int, float]]:
        """(step, tau) of every change, the start included."""
        with self._lock:
            return list(zip(self._steps, self._taus))

    def spec(self) -> str:
        """The recorded schedule as ``piecewise:P/TAU,...`` over the whole run (use ``final_fraction = 0``).

        A change at step s becomes two breakpoints one step apart, (s - 1)/N at the old τ and s/N at the
        new one: the replay steps from one value to the next where the user moved the knob.
        """
        n = self.total_steps
        points = [(0.0, self._taus[0])]
        for (s, tau), (_, before) in zip(self.changes()[1:], self.changes()):
            if s >= n:
                break
            if (s - 1) / n > points[-1][0]:
                points.append(((s - 1) / n, before))
            points.append((s / n, tau))
        if points[-1][0] < 1.0:
            points.append((1.0, points[-1][1]))
        spec = "piecewise:" + ",".join(f"{p:.9g}/{t:g}" for p, t in points)
        parse_schedule(spec, n, 0.0)  # what is written must read back
        return spec
