"""Numbers that several layers must agree on, defined once."""

# The particles a training animation follows are drawn from noise(n, shape, seed + 7) by the trainer;
# a figure that samples a model "on the animated seeds" must draw the same noise, hence one number.
SNAPSHOT_SEED_OFFSET = 7
