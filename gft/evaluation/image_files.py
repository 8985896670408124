"""Evaluating models of user image sets (``images:`` specs): FD in the file's feature space
(:mod:`gft.evaluation.image_features`), few-step FDs, diversity, memorisation and, with labels, the
class balance of the samples as the label classifier sees it.

Distances (diversity, nearest neighbours) are Euclidean in model scale ([-1, 1] pixels), on samples
clamped to that range as a saved file would be.
"""

from __future__ import annotations

import torch

from gft.constants import FEW_STEPS, NULL_PAIRS
from gft.core.device import model_device
from gft.core.models import FlowModel
from gft.core.sampling import noise, sample_ode
from gft.data.image_files import ImagePart
from gft.evaluation.image_features import FeatureSpace
from gft.evaluation.image_metrics import class_entropy, frechet_distance, mean_pairwise_distance, nn_distance_ratio
from gft.evaluation.images import real_null_band
from gft.evaluation.result import Evaluation


def evaluate_image_file(
    model: FlowModel,
    space: FeatureSpace,
    train: ImagePart,
    full_train: ImagePart,
    held: ImagePart,
    classes: tuple[int, ...] | None,
    n: int = 2000,
    seed: int = 0,
    solver: str = "euler",
    steps: int = 100,
) -> Evaluation:
    """Evaluate ``model`` from ``n`` noise draws of ``seed`` against ``held``.

    ``train`` is the subset the model saw (memorisation is measured against it), ``full_train`` the
    spec's whole train part (the FD null band), ``classes`` the spec's classes (None: all of the file's).
    """
    if n < 10:
        raise ValueError(f"n must be >= 10, got {n}")
    shape = tuple(held.images.shape[1:])
    held_feat = space.features(held.images)
    x0 = noise(n, shape, seed, model_device(model))
    samples = sample_ode(model, x0, solver, steps)
    x = samples.x.cpu().clamp(-1.0, 1.0)
    few = {str(k): frechet_distance(space.features(sample_ode(model, x0, "euler", k).x.cpu()), held_feat) for k in FEW_STEPS}
    labelled = space.classes is not None
    fractions = _fractions(space.predict(x), space.classes) if labelled else None
    wanted = space.classes if classes is None else classes
    return Evaluation(
        kind="images",
        fd=frechet_distance(space.features(x), held_feat),
        fd_null=real_null_band(space.features(full_train.images), held_feat, n, seed).to_dict(),
        fd_by_steps=few,
        solver=solver,
        nfe=samples.nfe,
        class_fractions=fractions,
        target_fraction=float(sum(fractions[str(c)] for c in wanted)) if labelled else None,
        class_entropy=class_entropy(fractions) if labelled else None,
        diversity=mean_pairwise_distance(x, seed=seed),
        diversity_real=mean_pairwise_distance(held.images, seed=seed),
        nn_distance_ratio=nn_distance_ratio(x, train.images, held.images),
        classifier_accuracy=float((space.predict(held.images) == held.labels).float().mean()) if labelled else None,
        n_samples=n,
        n_train=len(train),
        n_heldout=len(held),
        feature_dim=space.dim,
        notes=_notes(space, n, len(held)),
    )


def _fractions(predictions: torch.Tensor, classes: tuple[int, ...]) -> dict[str, float]:
    """Share of samples per label of the file, keyed by the label as a string."""
    counts = torch.stack([(predictions == c).sum() for c in classes]).double()
    return {str(c): float(v / max(len(predictions), 1)) for c, v in zip(classes, counts)}


def _notes(space: FeatureSpace, n: int, n_held: int) -> list[str]:
    notes = [space.describe(), f"fd and fd_by_steps compare {n} samples with {n_held} held-out images; fd_null is the FD of random subsets "
             f"of the real training images (min({n}, all)) to them, over {NULL_PAIRS} subsets"]
    if space.classes is None:
        notes.append("no labels: class_fractions, target_fraction, class_entropy and classifier_accuracy do not apply")
    if n_held < 2 * space.dim:
        notes.append(f"only {n_held} held-out images for {space.dim} features: FD values are noisy, compare them with fd_null")
    notes.append("diversity and nearest-neighbour distances are in model scale ([-1, 1] pixels)")
    return notes
