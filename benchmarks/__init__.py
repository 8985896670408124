"""Benchmarks of the gft library: stability, couplings, limited data, digits, speed and robustness.

Run ``python -m benchmarks`` (full, about 35 minutes on 2 CPU cores) or ``python -m benchmarks --quick``;
results land in ``benchmarks/results/`` and the written report in ``benchmarks/REPORT.md``.
"""
