"""Flow matching and GFT on 8x8 digits: the hooks the CLI and the app call for ``digits:`` data.

Model space: pixels ``x`` in [0, 16] become ``x / 8 - 1`` in [-1, 1], shape (N, 1, 8, 8); samples go
back through :func:`to_pixels` (clamped, channel dropped). Couplings, the GFT objective and the
samplers are the 2D ones: they work on flattened samples of any shape.

Metrics (:func:`evaluate_images`) use the features of :mod:`gft.evaluation.classifier`. Held-out sets are small
(about 54 images a class, 540 for all ten), hence a 32-dimensional feature space for the FD and a
reported floor (real held-out against real train) to read every FD against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch

from gft.core.models import FlowModel, ModelConfig, build_model
from gft.core.sampling import noise, sample_ode
from gft.core.training import Snapshot, TrainConfig, Trainer, TrainResult
from gft.data.digits import digit_set, parse_digits_spec, to_model_scale, to_pixels  # to_pixels: a CLI hook
from gft.evaluation import classifier as clf
from gft.evaluation.image_metrics import (
    class_entropy,
    class_fractions,
    frechet_distance,
    mean_pairwise_distance,
    nn_distance_ratio,
)

DATA_SHAPE = (1, 8, 8)
DEFAULT_WIDTH = 16  # channels at full resolution (2x that at 4x4); 32 fits better at 1/3 of the speed
DEFAULT_DEPTH = 1  # residual blocks per resolution level
DEFAULT_BATCH = 128
FEW_STEPS = (1, 2, 4, 8)
TRAINING_EVAL_SAMPLES = 256
TRAINING_EVAL_STEPS = 20  # Euler steps of the cheap FD in the training history


def model_config(upsample: int = 1, width: int | None = None, score_head: bool = False, depth: int | None = None) -> ModelConfig:
    """The digits convnet; ``width`` is its channel count at 8x8 (16x16 with ``upsample=2``)."""
    return ModelConfig(
        kind="convnet",
        data_shape=DATA_SHAPE,
        width=DEFAULT_WIDTH if width is None else width,
        depth=DEFAULT_DEPTH if depth is None else depth,
        score_head=score_head,
        upsample=upsample,
    )


def target_sets(spec_text: str, limit: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images (``limit`` of them, chosen by ``seed``) and all held-out images, model scale (N, 1, 8, 8)."""
    spec = parse_digits_spec(spec_text)
    train = digit_set(spec, "train")
    if limit is not None:
        if limit > len(train):
            raise ValueError(f"--limit {limit} exceeds the {len(train)} training images of {spec_text}")
        train = digit_set(spec, "train", limit=limit, seed=seed)
    held = digit_set(spec, "heldout")
    return to_model_scale(train.pixels), to_model_scale(held.pixels)


def _device_of(model: FlowModel) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def classifier_features(x: torch.Tensor) -> torch.Tensor:
    """FD features (N, 32) of model-scale images, from the cached digit classifier."""
    return clf.classify(clf.load_classifier(), x).features


def training_eval_fn(spec_text: str, seed: int = 0) -> Callable[[FlowModel], float]:
    """A cheap FD for training histories: 256 samples, 20 Euler steps, against the held-out images.

    It reads higher than :func:`evaluate_images`' FD (fewer samples, coarser solver): compare it only
    with itself.
    """
    spec = parse_digits_spec(spec_text)
    reference = classifier_features(to_model_scale(digit_set(spec, "heldout").pixels))

    def evaluate(model: FlowModel) -> float:
        x0 = noise(TRAINING_EVAL_SAMPLES, DATA_SHAPE, seed + 11, _device_of(model))
        x = sample_ode(model, x0, "euler", TRAINING_EVAL_STEPS).x
        return frechet_distance(classifier_features(x), reference)

    return evaluate


@dataclass(frozen=True)
class ImageEvaluation:
    """Sample quality of a digits model against the held-out images of its spec."""

    fd: float  # Frechet distance of classifier features, samples from `solver` (100 Euler steps by default)
    fd_floor: float  # the spec's real train images against its held-out images
    fd_by_steps: dict[str, float]  # Euler with 1, 2, 4, 8 steps, same noise
    solver: str
    nfe: int  # function evaluations of the solve behind fd
    class_fractions: dict[str, float]  # all ten digits, as the classifier assigns the samples
    target_fraction: float  # share of samples assigned to the spec's classes
    class_entropy: float  # nats
    diversity: float  # mean pairwise pixel distance of samples
    diversity_real: float  # the same for the held-out images
    nn_distance_ratio: float  # memorisation: << 1 means the samples copy the training images
    classifier_accuracy: float  # on the spec's held-out images
    n_samples: int
    n_train: int
    n_heldout: int
    feature_dim: int = clf.FEATURE_DIM
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_images(
    model: FlowModel,
    spec_text: str,
    n: int = 2000,
    seed: int = 0,
    limit: int | None = None,
    train_seed: int | None = None,
    solver: str = "euler",
    steps: int = 100,
) -> dict:
    """Evaluate ``model`` on ``spec_text`` from ``n`` noise draws of ``seed``; a JSON-able dict.

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

    x0 = noise(n, DATA_SHAPE, seed, _device_of(model))
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
    result = ImageEvaluation(
        fd=frechet_distance(out.features, held_feat),
        fd_floor=frechet_distance(clf.classify(classifier, to_model_scale(full_train.pixels)).features, held_feat),
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
        notes=_notes(n, len(held), len(train)),
    )
    return result.to_dict()


def _notes(n: int, n_held: int, n_train: int) -> list[str]:
    notes = [f"fd and fd_by_steps compare {n} samples with {n_held} held-out images; fd_floor compares the spec's real train images with them"]
    if n_held < 2 * clf.FEATURE_DIM:
        notes.append(f"only {n_held} held-out images for {clf.FEATURE_DIM} features: FD values are noisy, compare them with fd_floor")
    if n_train <= 10:
        notes.append("nn_distance_ratio against very few training images: a ratio near 1 is still expected for a model that generalises")
    return notes


@dataclass
class ChainStage:
    """One fine-tuning stage of a style-shift chain."""

    spec: str
    model: FlowModel
    result: TrainResult


def run_chain(
    base: FlowModel,
    specs: Sequence[str],
    config: TrainConfig,
    limit: int | None = None,
    callback: Callable[[int, Snapshot], None] | None = None,
) -> list[ChainStage]:
    """Fine-tune ``base`` on ``specs[0]``, that model on ``specs[1]``, and so on (each from the last).

    ``config`` (method gft, standard or scratch) applies to every stage; ``callback(stage, snapshot)``.
    """
    if config.method == "pretrain":
        raise ValueError("run_chain fine-tunes: config.method must be gft, standard or scratch")
    if not specs:
        raise ValueError("run_chain needs at least one spec")
    for text in specs:
        parse_digits_spec(text)  # fail before any training
    stages: list[ChainStage] = []
    parent = base
    for i, text in enumerate(specs):
        train_x, held_x = target_sets(text, limit, config.seed)
        model = build_model(parent.config)
        trainer = Trainer(model, train_x, config, parent, held_x, eval_fn=training_eval_fn(text, config.seed))
        report = None if callback is None else (lambda snap, i=i: callback(i, snap))
        try:
            result = trainer.run(callback=report)
        finally:
            trainer.close()
        stages.append(ChainStage(text, trainer.model, result))
        parent = trainer.model
    return stages
