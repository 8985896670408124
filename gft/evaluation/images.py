"""Evaluating digit models: FD in the features of the project's digit classifier, class balance,
diversity and memorisation, against the held-out images of a ``digits:`` spec.

Held-out sets are small (about 54 images a class, 540 for all ten), hence a 32-dimensional feature
space for the FD and a reported floor (real train against real held-out) to read every FD against.
"""

from __future__ import annotations

from typing import Callable

import torch

from gft.constants import EVAL_SEED_OFFSET, FEW_STEPS, NULL_PAIRS, NULL_SEED_OFFSET
from gft.core.device import model_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.data.digits import DATA_SHAPE, digit_set, parse_digits_spec, to_model_scale, to_pixels
from gft.evaluation import classifier as clf
from gft.evaluation.image_metrics import (
    class_entropy,
    class_fractions,
    frechet_distance,
    mean_pairwise_distance,
    nn_distance_ratio,
)
from gft.evaluation.null_band import NullBand, null_band
from gft.evaluation.result import Evaluation

TRAINING_EVAL_SAMPLES = 256
TRAINING_EVAL_STEPS = 20  # Euler steps of the cheap FD in the training history


def classifier_features(x: torch.Tensor) -> torch.Tensor:
    """FD features (N, 32) of model-scale images, from the cached digit classifier."""
    return clf.classify(clf.load_classifier(), x).features


def fd_curve(features: Callable[[torch.Tensor], torch.Tensor], reference: torch.Tensor, shape: tuple[int, ...], seed: int = 0) -> Callable[[FlowModel], float]:
    """A cheap FD for training histories: 256 samples, 20 Euler steps, against ``reference`` features.

    It reads higher than a full evaluation's FD (fewer samples, coarser solver): compare it only with itself.
    """

    def evaluate(model: FlowModel) -> float:
        x0 = noise(TRAINING_EVAL_SAMPLES, shape, seed + EVAL_SEED_OFFSET, model_device(model))
        x = sample_ode(model, x0, "euler", TRAINING_EVAL_STEPS).x
        return frechet_distance(features(x), reference)

    return evaluate


def training_fd(spec_text: str, seed: int = 0) -> Callable[[FlowModel], float]:
    """:func:`fd_curve` against the held-out digits of a ``digits:`` spec, in the digit classifier's features."""
    spec = parse_digits_spec(spec_text)
    reference = classifier_features(to_model_scale(digit_set(spec, "heldout").pixels))
    return fd_curve(classifier_features, reference, DATA_SHAPE, seed)


def evaluate_images(
    model: FlowModel,
    spec_text: str,
    n: int = 2000,
    seed: int = 0,
    limit: int | None = None,
    train_seed: int | None = None,
    solver: str = "euler",
    steps: int = 100,
) -> Evaluation:
    """Evaluate ``model`` on ``spec_text`` from ``n`` noise draws of ``seed``.

    ``limit`` and ``train_seed`` (default ``seed``) name the training subset the model saw, which the
    memorisation ratio measures against. The main FD uses 100 Euler steps (NFE 100) by default: dopri5
    (``solver="dopri5"``) needs 300 or more evaluations on these models, minutes on a CPU.
    """
    if n < 10:
        raise ValueError(f"n must be >= 10, got {n}")
    spec = parse_digits_spec(spec_text)
    classifier = clf.load_classifier()
    train = digit_set(spec, "train", limit=limit, seed=seed if train_seed is None else train_seed)
    full_train = digit_set(spec, "train") if limit is not None else train
    held = digit_set(spec, "heldout")
    held_x = to_model_scale(held.pixels)
    held_feat = clf.classify(classifier, held_x).features

    x0 = noise(n, DATA_SHAPE, seed, model_device(model))
    main = sample_ode(model, x0, solver, steps)
    # Metrics read the images a user would save: pixel-clamped.
    samples = to_model_scale(to_pixels(main.x.cpu()))
    out = clf.classify(classifier, samples)
    few = {}
    for k in FEW_STEPS:
        xk = to_model_scale(to_pixels(sample_ode(model, x0, "euler", k).x.cpu()))
        few[str(k)] = frechet_distance(clf.classify(classifier, xk).features, held_feat)
    fractions = class_fractions(out.predictions)
    train_x = to_model_scale(train.pixels)
    return Evaluation(
        kind="images",
        fd=frechet_distance(out.features, held_feat),
        fd_null=real_null_band(clf.classify(classifier, to_model_scale(full_train.pixels)).features, held_feat, n, seed).to_dict(),
        fd_by_steps=few,
        solver=solver,
        nfe=main.nfe,
        class_fractions=fractions,
        target_fraction=float(sum(fractions[str(c)] for c in spec.classes)),
        class_entropy=class_entropy(fractions),
        diversity=mean_pairwise_distance(to_pixels(samples), seed=seed),
        diversity_real=mean_pairwise_distance(held.pixels, seed=seed),
        nn_distance_ratio=nn_distance_ratio(samples, train_x, held_x),
        classifier_accuracy=float((clf.classify(classifier, held_x).predictions == held.labels).float().mean()),
        n_samples=n,
        n_train=len(train),
        n_heldout=len(held),
        feature_dim=clf.FEATURE_DIM,
        notes=_notes(n, len(held), len(train)),
    )


def real_null_band(train_feat: torch.Tensor, held_feat: torch.Tensor, n: int, seed: int) -> NullBand:
    """FD of random subsets of the real training images (as many as the samples, at most 80% of them) to the
    held-out images: where a model that drew real digits would read. The held-out set is fixed, so only one side
    varies; the 80% cap keeps the subsets different from each other (all of them would give one value, sd 0)."""
    m = min(n, max(2, (4 * len(train_feat)) // 5))
    g = torch.Generator().manual_seed(seed + NULL_SEED_OFFSET)
    subsets = [torch.randperm(len(train_feat), generator=g)[:m] for _ in range(NULL_PAIRS)]
    return null_band(lambda k: (train_feat[subsets[k]], held_feat), frechet_distance, m)


def _notes(n: int, n_held: int, n_train: int) -> list[str]:
    notes = [f"fd and fd_by_steps compare {n} samples with {n_held} held-out images; fd_null is the FD of random subsets of "
             f"the real training images (min({n}, 80% of them)) to them, over {NULL_PAIRS} subsets"]
    if n_held < 2 * clf.FEATURE_DIM:
        notes.append(f"only {n_held} held-out images for {clf.FEATURE_DIM} features: FD values are noisy, compare them with fd_null")
    if n_train <= 10:
        notes.append("nn_distance_ratio against very few training images: a ratio near 1 is still expected for a model that generalises")
    return notes
