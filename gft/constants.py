"""Numbers that several layers must agree on, defined once.

Seed offsets derive independent random streams from one run seed, so that a run is reproducible
from its config alone and two streams never share draws.
"""

# ---- seed offsets (added to a run's seed) ----------------------------------------------------
PATH_SEED_OFFSET = 1  # the path's (t, eps) stream; the run seed itself drives data, noise and OT
SNAPSHOT_SEED_OFFSET = 7  # the particles a training animation follows: noise(n, shape, seed + 7)
EVAL_SEED_OFFSET = 11  # the noise behind training-time evaluations (W2 or FD curves)
HELDOUT_SEED_OFFSET = 1_000_003  # held-out target draws: far from any training seed, never trained on
FLOOR_SEED_OFFSET = 2_000_003  # a second independent target draw: the noise floor of a metric
NULL_SEED_OFFSET = 4_000_037  # the independent target-draw pairs behind a metric's null band
VALIDATION_SEED_OFFSET = 3_000_017  # which training samples a run holds out for validation

# ---- sizes ------------------------------------------------------------------------------------
POINTS_POOL = 20_000  # training points drawn from a registered 2D distribution
HELDOUT_POINTS = 2_000  # held-out points of a registered 2D distribution
FEW_STEPS = (1, 2, 4, 8)  # Euler step counts of the few-step quality columns
NULL_PAIRS = 20  # independent pairs of target draws behind a metric's null band
MAX_MEASURED_POINTS = 20_000  # samples behind one training-time measurement (exact W2 costs n^2 memory)
SAMPLER_SEED_OFFSET = 13  # the noise of the app's sampler comparison (and its SDE's Brownian increments, + 1)
