"""One app session in its own process: drive the couplings page with AppTest and print its results table.

``python -m benchmarks.app_session --seed S --steps N`` prints one JSON line (the page's table rows).
Each session needs its own process: AppTest gives every instance the same session id, so two
instances in one process share the session-scoped job slot and the second Start replaces the first job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "pages" / "4_compare_couplings.py"
START_KEY = "compare_couplings_start"


def run_session(seed: int, steps: int, timeout: float) -> list[dict]:
    import torch
    from streamlit.testing.v1 import AppTest

    torch.set_num_threads(1)  # the job thread and the script thread share the cores
    at = AppTest.from_file(str(PAGE), default_timeout=timeout)
    for key, value in {"steps": str(steps), "batch": "64", "reg": "5.0", "seed": str(seed)}.items():
        at.query_params[key] = value
    at.run()
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].message}")
    at.button(key=START_KEY).click().run()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if at.exception:
            raise RuntimeError(f"the page raised: {at.exception[0].message}")
        if at.error:
            raise RuntimeError(f"the page showed an error: {at.error[0].value}")
        if len(at.dataframe) > 0:
            table = at.dataframe[0].value
            return json.loads(table.to_json(orient="records", double_precision=15))
        time.sleep(1.0)
        at.run()
    raise RuntimeError(f"the run did not finish within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.app_session")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--timeout", type=float, default=400.0)
    args = p.parse_args(argv)
    try:
        rows = run_session(args.seed, args.steps, args.timeout)
    except Exception as exc:  # reported by the calling check as its message
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
