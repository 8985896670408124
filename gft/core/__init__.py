"""The method: networks, probability paths, couplings, schedules, the GFT objective, training,
sampling, checkpoints and the device. Imports nothing from the layers above it."""
