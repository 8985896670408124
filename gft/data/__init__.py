"""The data layer: 2D toy distributions, user point files, 8x8 digits and the ``--data`` spec.

The names below are re-exported so that ``from gft.data import sample_distribution`` reads as the
library's public face; the digits live in :mod:`gft.data.digits` (it imports scikit-learn).
"""

from gft.data.files import MAX_ABS_VALUE, MIN_FILE_ROWS, load_points_file, points_from_bytes, validate_points
from gft.data.spec import DataSpec
from gft.data.toys import DISTRIBUTIONS, MODES, sample_distribution

__all__ = [
    "DISTRIBUTIONS", "MAX_ABS_VALUE", "MIN_FILE_ROWS", "MODES", "DataSpec",
    "load_points_file", "points_from_bytes", "sample_distribution", "validate_points",
]  # fmt: skip
