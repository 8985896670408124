"""Waiting in AppTest for a background run to show its results (timed fragments do not tick there)."""

from __future__ import annotations

import time

RESULTS_TIMEOUT_S = 300


def wait_for_results(at, heading: str = "Take it away", timeout: float = RESULTS_TIMEOUT_S):
    """Rerun ``at`` until a subheader containing ``heading`` appears; fail on an exception or the timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if any(heading in s.value for s in at.subheader):
            return at
        time.sleep(0.5)
    raise AssertionError(f"no results within {timeout:.0f} s; errors: {[e.value for e in at.error]}")


def drop_leftover_run(at, owner: str):
    """Reset the run an earlier test left on ``owner``'s page (one job history per test process), so the page
    shows its fresh state; ``at`` must have run once."""
    reset = at.button(key=f"{owner}_reset")
    if not reset.disabled:
        reset.click().run()
    return at
