"""Hand-drawn targets: strokes become a seeded point cloud along them, round-trip through a short URL
string, and bad strings or strokes are refused with a message naming the problem."""

from __future__ import annotations

import numpy as np
import pytest

from gft.data.drawing import MAX_VERTICES, Drawing

SQUARE = np.array([[-2, -2], [2, -2], [2, 2], [-2, 2], [-2, -2]], dtype=float)
LINE = np.array([[0.0, -3.0], [0.0, 3.0]])


def test_points_lie_along_the_strokes_with_the_chosen_spread():
    d = Drawing.empty().add(SQUARE)
    pts = d.points(2000, 0.0, seed=1)
    assert pts.shape == (2000, 2) and pts.dtype == np.float32
    on_edge = np.isclose(np.abs(pts).max(axis=1), 2.0, atol=1e-5)
    assert on_edge.all()  # spread 0: exactly on the square's outline
    # uniform by arc length: each side gets about a quarter
    sides = np.bincount(np.where(np.isclose(pts[:, 1], -2, atol=1e-5), 0, np.where(np.isclose(pts[:, 0], 2, atol=1e-5), 1,
                                 np.where(np.isclose(pts[:, 1], 2, atol=1e-5), 2, 3))), minlength=4) / 2000
    assert np.allclose(sides, 0.25, atol=0.04), sides
    jittered = d.points(4000, 0.3, seed=1)
    dist = np.abs(np.abs(jittered).max(axis=1) - 2.0)
    assert 0.1 < np.median(dist) < 0.35  # about 0.67 * 0.3 for a Gaussian jitter
    assert np.array_equal(d.points(100, 0.3, seed=4), d.points(100, 0.3, seed=4))
    assert not np.array_equal(d.points(100, 0.3, seed=4), d.points(100, 0.3, seed=5))


def test_longer_strokes_get_more_points():
    d = Drawing.empty().add(LINE).add(np.array([[2.0, 0.0], [3.0, 0.0]]))  # lengths 6 and 1
    pts = d.points(7000, 0.0, seed=0)
    share = np.mean(np.isclose(pts[:, 0], 0.0, atol=1e-6))
    assert share == pytest.approx(6 / 7, abs=0.02)


def test_the_url_form_round_trips_and_is_short():
    d = Drawing.empty().add(SQUARE).add(LINE).add(np.array([[1.03, 1.0]]))
    text = d.encode()
    back = Drawing.decode(text)
    assert len(back.strokes) == 3
    for a, b in zip(d.strokes, back.strokes):
        np.testing.assert_allclose(a, b)
    assert len(text) < 40
    wiggle = np.stack([np.linspace(-3, 3, 500), np.sin(np.linspace(0, 20, 500))], axis=1)
    long = Drawing.empty().add(wiggle).add(wiggle * 0.5).add(wiggle * 0.25)
    assert max(len(s) for s in long.strokes) == 64 and len(long.encode()) < 700  # thinned for the URL


@pytest.mark.parametrize("text, message", [
    ("!!!", "base64"),
    ("_w", "empty stroke"),  # a lone break byte
    ("AQ", "one coordinate"),
    ("yMg", "outside"),  # 200, 200: beyond the 1/16 grid on [-4, 4]
    ("A" * 5000, "sensible length"),
])
def test_bad_url_strings_are_refused_with_a_reason(text, message):
    with pytest.raises(ValueError, match=message):
        Drawing.decode(text)


def test_bad_strokes_and_settings_are_refused():
    with pytest.raises(ValueError, match="stroke 1"):
        Drawing((np.zeros((3, 3)),))
    with pytest.raises(ValueError, match="NaN"):
        Drawing((np.array([[0.0, np.nan]]),))
    with pytest.raises(ValueError, match="nothing drawn"):
        Drawing.empty().points(100, 0.1)
    with pytest.raises(ValueError, match="spread"):
        Drawing.empty().add(LINE).points(100, 2.0)
    with pytest.raises(ValueError, match="points"):
        Drawing.empty().add(LINE).points(3, 0.1)
    with pytest.raises(ValueError, match="dots need a spread"):
        Drawing.empty().add(np.array([[0.0, 0.0]])).points(100, 0.0)
    many = Drawing.empty()
    with pytest.raises(ValueError, match=f"at most {MAX_VERTICES} vertices"):
        for _ in range(5):
            many = many.add(np.stack([np.linspace(-3, 3, 100), np.zeros(100)], axis=1))
