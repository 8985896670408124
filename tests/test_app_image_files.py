"""The Images page with the user's own image file as the target (upload or path), under AppTest."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit")
from apptest_wait import wait_for_results
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/7_images.py"
needs_assets = pytest.mark.skipif(not (ROOT / "assets" / "digits_pretrained_0-9.pt").is_file(), reason="run scripts/make_digits_assets.py first")
SHORT_RUN = {"im_steps": "6", "im_frames": "3", "im_grid": "16", "im_euler": "2", "im_fd_checks": "0", "im_eval_n": "20",
             "im_coupling": "independent", "im_batch": "16"}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # what app.py does on CPU
    yield


def _npz(side: int, n: int = 40, **extra) -> bytes:
    rng = np.random.default_rng(0)
    x = (rng.random((n, side, side)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=np.arange(n) % 2, **extra)
    return buf.getvalue()


def page(params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
    for key, value in {"im_scenario": "your images", **(params or {})}.items():
        at.query_params[key] = value
    return at


def _upload(at: AppTest, name: str, payload: bytes, arrays: str = "") -> AppTest:
    at.file_uploader(key="im_upload").set_value((name, payload, "application/octet-stream"))
    at.text_input(key="im_arrays").set_value(arrays)
    return at.run()


def test_without_a_file_the_page_asks_for_one():
    at = page().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("upload an image file or give its path" in e.value for e in at.error)


def test_a_bad_upload_is_refused_by_the_file_checks():
    at = _upload(page().run(), "few.npz", _npz(8, n=5), "#x")
    assert not at.exception, [e.value for e in at.exception]
    assert any("few.npz: need 8 to" in e.value for e in at.error)


def test_other_sizes_ask_for_a_matching_pretrained_checkpoint():
    at = _upload(page().run(), "big.npz", _npz(28), "x,y")  # the leading '#' is optional
    assert not at.exception, [e.value for e in at.exception]
    assert any("no shipped model makes images of shape (1, 28, 28)" in e.value for e in at.error)


@needs_assets
def test_a_path_on_disk_works_like_an_upload(tmp_path):
    (tmp_path / "s.npz").write_bytes(_npz(8))
    at = page().run()
    at.text_input(key="im_path").set_value(str(tmp_path / "s.npz"))
    at.text_input(key="im_arrays").set_value("#x,y:1")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(f"images:{tmp_path / 's.npz'}#x,y:1" in m.value for m in at.markdown)


@needs_assets
@pytest.mark.slow
def test_an_uploaded_8x8_set_trains_from_the_shipped_digits_model_and_evaluates():
    at = _upload(page(SHORT_RUN).run(), "mine.npz", _npz(8), "#x,y")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("shipped digits 0-9" in m.value and "images:mine.npz#x,y" in m.value for m in at.markdown)
    at.button(key="images_start").click().run()
    wait_for_results(at)
    assert not at.error, [e.value for e in at.error]
    labels = [m.label for m in at.metric]
    assert labels.count("FD") == 2 and labels.count("share in target classes") == 2
    assert any("classifier trained on the file's labels" in c.value for c in at.caption)
