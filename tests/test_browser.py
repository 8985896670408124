"""A real browser against a real server: Debian's Chromium, driven by Playwright, on ``streamlit run app.py``.

Opens every page, runs the one-click demo, waits for the animation, presses Play and checks that the
frame advances. Screenshots go to ``artifacts/screenshots`` (or ``$GFT_ARTIFACTS``) for a person to look at.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from gft.app.layout import CONTROLS_KEY, FIGURE_KEY, INTRO_KEY

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("GFT_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", None}  # None: data: and blob: URLs
PAGES = {  # url path -> a heading the page must show ("" is the default page, Start here)
    "": "Gradual fine-tuning of flow models",
    "pretrain": "Pretrain a flow model",
    "gradual_finetune": "Gradual fine-tuning",
    "compare_couplings": "Compare couplings",
    "compare_methods": "Compare methods",
    "annealing_exactly": "Annealing",
    "images": "Images: GFT on handwritten digits",
    "chains": "Chains of shifts",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (CI's .ci/run does this)")
    port = _free_port()
    log = open(ROOT / "artifacts" / "streamlit.log", "w") if (ROOT / "artifacts").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not come up within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


VIEWPORT = {"width": 1440, "height": 900}  # the screen the "one screen per idea" is judged on


def _open(browser, url: str, external: list | None = None):
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(120_000)
    if external is not None:  # every request that leaves this machine (the app must work offline)
        page.on("request", lambda r: external.append(r.url) if urllib.parse.urlsplit(r.url).hostname not in LOCAL_HOSTS else None)
    page.goto(url)
    return page


def _no_exception(page) -> None:
    assert page.get_by_text("Page not found").count() == 0, "the URL did not resolve to a page"
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()[:500]


def _assert_one_screen(page) -> None:
    """The page's intro, key controls and main figure all lie on the first 1440 x 900 screen (no scrolling)."""
    for key in (INTRO_KEY, CONTROLS_KEY, FIGURE_KEY):
        box = page.locator(f".st-key-{key}").first.bounding_box()
        assert box is not None, f"no {key} block on the page"
        assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"] + 1, f"{key} spans y {box['y']:.0f} to {box['y'] + box['height']:.0f}"
    plot = page.locator(f".st-key-{FIGURE_KEY} .js-plotly-plot").first.bounding_box()
    assert plot["height"] >= 300 and plot["width"] >= 400, f"the main figure is only {plot['width']:.0f} x {plot['height']:.0f} px"


@pytest.mark.parametrize("path,heading", list(PAGES.items()))
def test_every_page_opens(server, browser, path, heading):
    external: list[str] = []
    page = _open(browser, f"{server}/{path}", external)
    try:
        page.get_by_role("heading", name=heading).first.wait_for()
        # app.py's frame (sidebar badge) must be there even on a deep link to a fresh server.
        page.get_by_text("GFT explorer").or_(page.get_by_text("Gradual fine-tuning (GFT)")).first.wait_for()
        # Let the first rerun settle (the main figure drawn), then check nothing blew up.
        page.locator(f".st-key-{FIGURE_KEY} .js-plotly-plot").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        _no_exception(page)
        _assert_one_screen(page)
        # What fits 1440 x 900 (Streamlit scrolls inside its own container: a full-page shot would be the same picture).
        page.screenshot(path=str(SHOTS / f"page_{path or 'start_here'}.png"))
        assert not external, f"requests leaving the machine: {external[:3]}"  # e.g. a Material page icon from fonts.gstatic.com
    finally:
        page.close()


ACTIVE_FRAME = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const anim = plots.filter(p => p._fullLayout && p._fullLayout.sliders && p._fullLayout.sliders.length);
  if (!anim.length) return null;
  const s = anim[anim.length - 1]._fullLayout.sliders[0];
  return {active: s.active, steps: s.steps.length};
}"""


CONTROLS_BOX = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p._fullLayout && p._fullLayout.sliders && p._fullLayout.sliders.length);
  const p = plots[plots.length - 1];
  const right = [...p.querySelectorAll('.updatemenu-button')].map(b => b.getBoundingClientRect().right);
  return {buttons_right: Math.max(...right), grip_left: p.querySelector('.slider-grip-rect').getBoundingClientRect().left};
}"""


def test_demo_animates(server, browser):
    page = _open(browser, f"{server}/")
    try:
        page.get_by_role("heading", name=PAGES[""]).first.wait_for()
        started = time.monotonic()
        start = page.get_by_role("button", name="Start").filter(visible=True).first
        try:
            start.click(timeout=30_000)
        except Exception:  # noqa: BLE001 - Playwright's TimeoutError
            # A polling fragment can leave the page marked inert between reruns on a loaded machine;
            # the button's own click handler still runs on a dispatched click.
            start.dispatch_event("click")
        # The animation carries Plotly's own Play button.
        play = page.locator(".js-plotly-plot .updatemenu-button").filter(has_text="Play")
        play.first.wait_for(timeout=180_000)
        first_animation_s = time.monotonic() - started
        _no_exception(page)
        page.screenshot(path=str(SHOTS / "demo_ready.png"), full_page=True)
        # The animation sits in a narrow column: the slider's first position must not hide under ❚❚ Pause.
        box = page.evaluate(CONTROLS_BOX)
        assert box["grip_left"] >= box["buttons_right"], box
        before = page.evaluate(ACTIVE_FRAME)
        assert before is not None and before["steps"] >= 10, before
        play.first.click()
        page.wait_for_timeout(2500)
        after = page.evaluate(ACTIVE_FRAME)
        page.screenshot(path=str(SHOTS / "demo_playing.png"), full_page=True)
        assert after["active"] > before["active"], (before, after)
        print(f"first animation on screen {first_animation_s:.1f} s after pressing Start")
    finally:
        page.close()


STRIP_MARKER = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p._fullLayout && p._fullLayout.sliders && p._fullLayout.sliders.length);
  const p = plots[plots.length - 1];
  const markers = p._fullData.filter(t => t.mode && t.mode.startsWith('markers') && t.x && t.x.length === 1);  // _fullData: decoded typed arrays
  return {active: p._fullLayout.sliders[0].active, x: markers.map(t => Number(t.x[0]))};
}"""


def test_gallery_opens_a_scenario_from_shipped_results_and_its_schedule_marker_plays(server, browser):
    external: list[str] = []
    page = _open(browser, f"{server}/", external)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.get_by_role("button", name="Open").first.wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(SHOTS / "gallery.png"))
        started = time.monotonic()
        page.get_by_role("button", name="Open").first.click()
        play = page.locator(".js-plotly-plot .updatemenu-button").filter(has_text="Play")
        play.first.wait_for(timeout=60_000)
        first_animation_s = time.monotonic() - started
        _no_exception(page)
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "gallery_open.png"))
        # the animation and the text beside it fit the first screen
        box = page.locator(".js-plotly-plot").filter(has=page.locator(".updatemenu-button")).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"] + 40, box
        before = page.evaluate(STRIP_MARKER)
        play.first.click()
        page.wait_for_timeout(1200)  # well inside the play-through (about 31 frames of 120 ms), so Pause interrupts it
        after = page.evaluate(STRIP_MARKER)
        assert after["active"] > before["active"], (before, after)
        assert after["x"] and min(after["x"]) > max(before["x"]), (before, after)  # the schedule markers moved with the frames
        pause = page.locator(".js-plotly-plot .updatemenu-button").filter(has_text="Pause")
        pause.first.click()  # while it plays: plotly.js rejects the interrupted Play with no reason
        page.wait_for_timeout(300)
        stopped = page.evaluate(STRIP_MARKER)["active"]
        page.wait_for_timeout(1500)
        assert page.evaluate(STRIP_MARKER)["active"] == stopped  # Pause took effect
        assert not errors, errors  # neither Play nor Pause left an "undefined" promise rejection
        assert not external, external[:3]
        print(f"first gallery animation on screen {first_animation_s:.1f} s after the click")
    finally:
        page.close()


def _time_app():
    import importlib.util

    spec = importlib.util.spec_from_file_location("time_app", ROOT / "scripts" / "time_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Generous bounds for a shared 2-core machine: the targets are 1 s (controls, widgets) and 2 s (pages)
# when idle, 3 s at load 4; README lists what scripts/time_app.py measured.
BOUND_S = 3.0
# Back to a page that shows finished results: the server rerun takes 0.1-0.2 s, the rest is the browser
# drawing every figure again (1.7-2.2 s on a quiet machine, 3.1 s at load 6 before the figures were lightened).
RESULTS_PAGE_BOUND_S = 6.0


def test_controls_widgets_and_pages_answer_within_bounds_and_training_keeps_its_speed(server, browser):
    time_app = _time_app()
    cli = time_app.cli_steps_per_second()
    times = time_app.measure(browser, server)
    load = os.getloadavg()[0]
    print(f"load {load:.1f}; CLI {cli:.0f} steps/s; {times}")
    for name in ("pause_s", "resume_s", "widget_s", "stop_s", "page_switch_s"):
        assert 0 < times[name] <= BOUND_S, (name, times, load)
    assert 0 < times["page_switch_back_s"] <= RESULTS_PAGE_BOUND_S, (times, load)
    # At least 80% of the command line's steps/s when idle; the bound leaves room for a busy machine.
    assert times["app_steps_per_s"] >= 0.6 * cli, (times, cli, load)


def test_two_runs_of_the_session_compare_side_by_side(server, browser):
    page = _open(browser, f"{server}/gradual_finetune?ft_steps=60&ft_coupling=independent&ft_particles=100&ft_frames=10")
    try:
        page.get_by_role("heading", name="Gradual fine-tuning").first.wait_for()
        page.get_by_text("Batch, learning rate, seed").first.click()  # the seed lives in this expander
        for seed in ("1", "2"):
            box = page.get_by_label("Seed", exact=True).filter(visible=True).first
            box.fill(seed)
            box.press("Enter")
            page.wait_for_timeout(500)
            page.get_by_role("button", name="Start").filter(visible=True).first.click()
            page.get_by_role("heading", name="Take it away").first.wait_for(timeout=180_000)
            page.wait_for_timeout(500)
        page.get_by_text("Show any two finished runs").first.click()
        page.locator('[data-testid="stDataFrame"]').last.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        _no_exception(page)
        # Same target and snapshot steps: one figure with two panels under one slider.
        panels = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(p => p._fullLayout && p._fullLayout.sliders && p._fullLayout.sliders.length && p._fullLayout.xaxis2).length""")
        assert panels >= 1
        page.screenshot(path=str(SHOTS / "compare_two_runs.png"), full_page=True)
    finally:
        page.close()


CANVAS_BOX = """() => {
  const plot = [...document.querySelectorAll('.js-plotly-plot')].find(p => p._fullLayout && p._fullLayout.dragmode === 'lasso');
  if (!plot) return null;
  const r = plot.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: r.x, y: r.y, width: r.width, height: r.height};
}"""


def test_a_lasso_stroke_becomes_a_target_cloud_kept_in_the_url(server, browser):
    page = _open(browser, f"{server}/gradual_finetune?ft_src=drawing&ft_draw_n=800")
    try:
        page.get_by_role("heading", name="Gradual fine-tuning").first.wait_for()
        page.get_by_text("Nothing drawn yet").first.wait_for()
        page.wait_for_function(CANVAS_BOX)
        box = page.evaluate(CANVAS_BOX)
        cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) / 4
        page.mouse.move(cx - r, cy)
        page.mouse.down()
        for k in range(1, 25):  # a half circle, dragged slowly enough for plotly's lasso to sample it
            angle = 3.14159 * k / 24
            page.mouse.move(cx - r * math.cos(angle), cy - r * math.sin(angle), steps=2)
        page.mouse.up()
        page.get_by_text("1 stroke → 800 points").first.wait_for(timeout=60_000)
        _no_exception(page)
        assert "ft_draw=" in page.url
        page.screenshot(path=str(SHOTS / "drawing.png"))
    finally:
        page.close()


def test_a_chain_of_shifts_runs_and_shows_what_was_forgotten(server, browser):
    page = _open(browser, f"{server}/chains?ch_steps=20&ch_coupling=independent")
    try:
        page.get_by_role("heading", name="Chains of shifts").first.wait_for()
        page.get_by_role("button", name="Start").filter(visible=True).first.click()
        page.get_by_role("heading", name="What each method keeps").first.wait_for(timeout=180_000)
        page.wait_for_timeout(1500)
        _no_exception(page)
        frames = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(p => p._fullLayout && p._fullLayout.sliders && p._fullLayout.sliders.length)
            .map(p => p._fullLayout.sliders[0].steps.length)""")
        assert frames == [31], frames  # one animation over all three stages
        page.screenshot(path=str(SHOTS / "chains.png"), full_page=True)
    finally:
        page.close()


def test_after_a_run_the_sde_sampler_shows_beside_the_ode(server, browser):
    page = _open(browser, f"{server}/gradual_finetune?ft_steps=60&ft_coupling=independent&ft_particles=100&ft_frames=10")
    try:
        page.get_by_role("heading", name="Gradual fine-tuning").first.wait_for()
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Start").filter(visible=True).first.click()
        page.get_by_role("heading", name="Take it away").first.wait_for(timeout=180_000)
        page.get_by_text("Compare samplers").first.click()
        sampler = page.get_by_label("Sampler", exact=True).first
        sampler.wait_for(timeout=60_000)
        sampler.click()
        page.get_by_role("option", name="sde", exact=True).click()
        page.get_by_text("SDE, 8 steps, g = 1", exact=True).first.wait_for(timeout=60_000)  # the panel title and the table row
        page.wait_for_timeout(1000)
        _no_exception(page)
        assert page.get_by_text("ODE reference: dopri5 (adaptive)").count() >= 1
        page.screenshot(path=str(SHOTS / "samplers.png"))
    finally:
        page.close()
