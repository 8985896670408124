"""How fast the explorer answers, measured in a real browser: ``python scripts/time_app.py [--out times.json]``.

Starts ``streamlit run app.py`` on a free port, drives Debian's Chromium through Playwright and times, on
the Gradual fine-tune page while a run trains: Pause, Resume and Stop (click until the live panel shows
the new state), a widget change (until the page says the settings changed), a page switch (until the
other page's heading shows), and the run's steps/s next to the command line's on the same settings.
``tests/test_browser.py`` uses :func:`measure` with generous bounds; README quotes a run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The settings of the timed run, on the page and on the command line alike.
STEPS, BATCH, LR, COUPLING, SCHEDULE = 600, 256, 0.002, "ot", "stages:10,0.5,5"
LONG_STEPS = 20_000  # the run that Pause / Resume / Stop act on: it must still be training when they come

PROGRESS_TEXT = """() => {
  const el = document.querySelector('[data-testid="stProgress"]');
  return el ? el.innerText : '';
}"""
# Latencies are timed inside the browser: from the user's input event (a capture listener records the
# click or key press) to the first animation frame that shows the expected text. Playwright's own
# overhead (finding the button, waiting for it to be stable) is not part of what a user feels.
INPUT_CLOCK = """() => {
  if (window.__gftInput) return;
  window.__gftInput = {t: null};
  for (const kind of ['pointerdown', 'keydown']) {
    document.addEventListener(kind, () => { window.__gftInput.t = performance.now(); }, true);
  }
}"""
SHOWN_AFTER_INPUT = """([selector, text]) => {
  const els = [...document.querySelectorAll(selector)];
  if (!els.some(el => el.innerText.includes(text)) || window.__gftInput.t === null) return false;
  return (performance.now() - window.__gftInput.t) / 1000;
}"""
STATE_SHOWN = """(state) => {
  const el = document.querySelector('[data-testid="stProgress"]');
  if (!el || !el.innerText.startsWith(state + ' ·') || window.__gftInput.t === null) return false;
  return (performance.now() - window.__gftInput.t) / 1000;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(log_path: Path | None = None, timeout: float = 90.0) -> Iterator[str]:
    """``streamlit run app.py`` on a free local port; yields its URL and stops it afterwards."""
    port = free_port()
    log = open(log_path, "w") if log_path is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not come up within {timeout:.0f} s") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _progress(page) -> str:
    return page.evaluate(PROGRESS_TEXT)


def _until(page, predicate, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` holds (polled every 20 ms); RuntimeError after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s (progress: {_progress(page)!r})")
        page.wait_for_timeout(20)
    return time.monotonic() - start


def _timed(page, act, condition: str, arg, timeout: float) -> float:
    """Seconds from the input event of ``act()`` to the first frame where ``condition(arg)`` holds."""
    page.evaluate("() => { window.__gftInput.t = null; }")
    act()
    return float(page.wait_for_function(condition, arg=arg, polling="raf", timeout=timeout * 1000).json_value())


def _click(page, name: str) -> None:
    page.get_by_role("button", name=name).filter(visible=True).first.click(timeout=30_000)


def _state(page) -> str:
    return _progress(page).split(" · ")[0].strip()


def finetune_url(base: str, steps: int) -> str:
    query = f"ft_steps={steps}&ft_batch={BATCH}&ft_lr={LR}&ft_coupling={COUPLING}&ft_frames=60"
    return f"{base}/gradual_finetune?{query}"


def measure(browser, url: str, timeout: float = 120.0) -> dict:
    """The response times (seconds) and the app's steps/s, one browser page on the fine-tune page."""
    out: dict = {}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(timeout * 1000)
    try:
        t0 = time.monotonic()
        page.goto(finetune_url(url, STEPS))
        page.get_by_role("heading", name="Gradual fine-tuning").first.wait_for()
        page.get_by_role("button", name="Start").filter(visible=True).first.wait_for()
        out["page_load_s"] = time.monotonic() - t0

        # steps/s of an undisturbed run while the live panel polls, then Take it away (its results). The first
        # render of a cold page (imports, caches, the browser drawing every chart) is not training's business.
        page.wait_for_timeout(2000)
        _click(page, "Start")
        page.get_by_text("steps / s").first.wait_for(timeout=timeout * 1000 * 3)
        metric = page.locator('[data-testid="stMetric"]').filter(has_text="steps / s").first.inner_text()
        out["app_steps_per_s"] = float(re.search(r"steps / s\s*([\d.]+)", metric).group(1))

        # A long run to act on.
        page.goto(finetune_url(url, LONG_STEPS))
        page.get_by_role("heading", name="Gradual fine-tuning").first.wait_for()
        _click(page, "Start")
        _until(page, lambda: _state(page) == "running" and "step 0/" not in _progress(page), timeout, "the run starting")
        page.evaluate(INPUT_CLOCK)
        page.wait_for_timeout(1500)
        out["pause_s"] = _timed(page, lambda: _click(page, "Pause"), STATE_SHOWN, "paused", timeout)
        page.wait_for_timeout(500)
        out["resume_s"] = _timed(page, lambda: _click(page, "Resume"), STATE_SHOWN, "running", timeout)
        page.wait_for_timeout(1000)

        # A widget change while training: the page must say that the settings changed.
        page.get_by_text("Batch, learning rate, seed").first.click()  # the seed lives in this expander
        box = page.get_by_label("Seed").first

        def change_seed() -> None:
            box.fill("7")
            box.press("Enter")

        out["widget_s"] = _timed(page, change_seed, SHOWN_AFTER_INPUT, ['[data-testid="stCaptionContainer"]', "The settings above changed"], timeout)
        page.wait_for_timeout(1000)
        out["stop_s"] = _timed(page, lambda: _click(page, "Stop"), STATE_SHOWN, "stopped", timeout)

        # Page switches through the sidebar, there and back: until the new page's last block is drawn.
        out["page_switch_s"] = _timed(page, lambda: page.get_by_role("link", name="Compare methods").first.click(),
                                      SHOWN_AFTER_INPUT, ['[data-testid="stAlert"]', "Press Start to train"], timeout)
        out["page_switch_back_s"] = _timed(page, lambda: page.get_by_role("link", name="Gradual fine-tune").first.click(),
                                           SHOWN_AFTER_INPUT, ["h3", "Take it away"], timeout)
    finally:
        page.close()
    return out


def cli_steps_per_second(steps: int = STEPS) -> float:
    """steps/s of ``python -m gft finetune`` on the same settings as the timed app run."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gft", "finetune", "--base", str(ROOT / "assets" / "pretrained_moons.pt"), "--data", "8gaussians",
               "--steps", str(steps), "--batch", str(BATCH), "--lr", str(LR), "--coupling", COUPLING, "--schedule", SCHEDULE,
               "--eval-every", "0", "--out", os.path.join(tmp, "ft.pt"), "--json"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        return float(json.loads(done.stdout.strip().splitlines()[-1])["steps_per_second"])


def load_average() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/time_app.py")
    p.add_argument("--out", type=Path, help="write the numbers here as JSON")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    report = {"load_before": load_average()}
    cli_before = cli_steps_per_second()
    with app_server() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            report.update(measure(browser, url))
        finally:
            browser.close()
    report["load_after"] = load_average()
    # The machine may be shared: the command line is timed just before and just after the app, and averaged.
    report["cli_steps_per_s"] = (cli_before + cli_steps_per_second()) / 2
    report["app_vs_cli"] = report["app_steps_per_s"] / report["cli_steps_per_s"]
    text = json.dumps({k: round(v, 3) for k, v in report.items()}, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
