"""Tasks: points and images behind one interface (data pool, held-out set, default model,
evaluation) and the run factory that the CLI, the app and the benchmarks share."""
