"""Image sample metrics: Frechet distance of features, class statistics, diversity and memorisation.

All functions take plain tensors or arrays and return floats, so they can be tested on synthetic data.
Distances between images are Euclidean on flattened images (any fixed scale: the ratios do not care).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _flat(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().double()
    return x.reshape(x.shape[0], -1)


def frechet_distance(a, b) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)`` between two feature sets (N, D).

    The matrix square roots come from symmetric eigendecompositions (clipped at 0), which stay real and
    stable when a covariance is singular, e.g. with fewer samples than feature dimensions.
    """
    fa, fb = _flat(a).numpy(), _flat(b).numpy()
    if len(fa) < 2 or len(fb) < 2:
        raise ValueError(f"frechet_distance needs at least 2 samples per set, got {len(fa)} and {len(fb)}")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature dimensions differ: {fa.shape[1]} and {fb.shape[1]}")
    if not (np.isfinite(fa).all() and np.isfinite(fb).all()):
        return float("inf")
    mu = fa.mean(0) - fb.mean(0)
    sa, sb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ sb @ root_a)
    value = mu @ mu + np.trace(sa) + np.trace(sb) - 2.0 * np.sqrt(np.clip(cross, 0.0, None)).sum()
    return float(max(value, 0.0))


def class_fractions(predictions, n_classes: int = 10) -> dict[str, float]:
    """Share of samples assigned to each class, keyed by the class as a string (JSON-able)."""
    p = torch.as_tensor(predictions).long().cpu()
    counts = torch.bincount(p, minlength=n_classes).double()
    total = max(len(p), 1)
    return {str(c): float(counts[c] / total) for c in range(n_classes)}


def class_entropy(fractions: dict[str, float]) -> float:
    """Entropy in nats of the predicted class distribution (log 10 = 2.303 when all ten are equal)."""
    return float(-sum(f * math.log(f) for f in fractions.values() if f > 0))


def mean_pairwise_distance(x, n: int = 1000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct samples (a random ``n``-subset when larger)."""
    flat = _flat(x)
    if len(flat) < 2:
        raise ValueError(f"mean_pairwise_distance needs at least 2 samples, got {len(flat)}")
    if len(flat) > n:
        rng = np.random.default_rng(seed)
        flat = flat[torch.from_numpy(rng.choice(len(flat), n, replace=False))]
    d = torch.cdist(flat, flat)
    m = len(flat)
    return float(d.sum() / (m * (m - 1)))


def nearest_neighbour_distance(x, reference) -> float:
    """Mean over rows of ``x`` of the distance to the nearest row of ``reference``."""
    a, b = _flat(x), _flat(reference)
    best = torch.cat([torch.cdist(chunk, b).min(dim=1).values for chunk in a.split(1024)])
    return float(best.mean())


def nn_distance_ratio(samples, train, heldout) -> float:
    """Memorisation: NN distance of samples to the training images over that of held-out real images.

    About 1 when samples are as far from the training set as fresh real images; near 0 when the model
    copies its training images.
    """
    base = nearest_neighbour_distance(heldout, train)
    if base <= 0:
        raise ValueError("held-out images coincide with training images; the ratio is undefined")
    return nearest_neighbour_distance(samples, train) / base
