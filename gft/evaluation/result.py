"""One evaluation result for every kind of data: the metrics that apply to it, the rest None."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The fields each kind reports (their JSON keys in ``evaluate --json``).
POINT_FIELDS = (
    "w2", "w2_null", "w2_by_steps", "mmd", "energy", "energy_null", "path_length", "straightness", "kinetic_energy",
    "mode_coverage", "nfe", "solver", "n_samples",
)  # fmt: skip
IMAGE_FIELDS = (
    "fd", "fd_null", "fd_by_steps", "class_fractions", "target_fraction", "class_entropy", "diversity",
    "diversity_real", "nn_distance_ratio", "classifier_accuracy", "nfe", "solver", "n_samples", "n_train",
    "n_heldout", "feature_dim", "notes",
)  # fmt: skip
KINDS = ("points", "images")
# Fields that may be None where they do not apply: mode coverage (mixtures only) and the class
# statistics of images (sets with labels only: the digits and labelled image files).
OPTIONAL_FIELDS = ("mode_coverage", "class_fractions", "target_fraction", "class_entropy", "classifier_accuracy")


@dataclass(frozen=True)
class Evaluation:
    """Sample quality of a model against held-out target data, few-step quality and (2D) path geometry.

    ``metric`` names the headline distance (``w2`` for points, ``fd`` for images); ``null`` is its null band
    (mean, sd over independent pairs of real sets of the same size), where a perfect model reads.
    """

    kind: str
    solver: str
    nfe: int  # function evaluations of the solve behind the headline metric
    n_samples: int
    # points
    w2: float | None = None
    w2_null: dict | None = None  # NullBand.to_dict(): W2 between independent target draws of n_samples points
    w2_by_steps: dict[str, float] | None = None  # Euler with 1, 2, 4, 8 steps, same noise
    mmd: float | None = None
    energy: float | None = None  # unbiased (U-statistic) energy distance: about 0 for a perfect model
    energy_null: dict | None = None
    path_length: float | None = None
    straightness: float | None = None
    kinetic_energy: float | None = None
    mode_coverage: float | None = None  # mixtures only
    # images
    fd: float | None = None  # Frechet distance of classifier (or, unlabelled files, random) features
    fd_null: dict | None = None  # NullBand.to_dict(): real train images (subsets) against held-out images
    fd_by_steps: dict[str, float] | None = None
    class_fractions: dict[str, float] | None = None  # every class (all ten digits), as the classifier assigns the samples
    target_fraction: float | None = None  # share of samples assigned to the spec's classes
    class_entropy: float | None = None  # nats
    diversity: float | None = None  # mean pairwise pixel distance of samples
    diversity_real: float | None = None  # the same for the held-out images
    nn_distance_ratio: float | None = None  # memorisation: << 1 means the samples copy training images
    classifier_accuracy: float | None = None  # on the spec's held-out images
    n_train: int | None = None
    n_heldout: int | None = None
    feature_dim: int | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        missing = [f for f in self._fields() if f not in OPTIONAL_FIELDS and getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} evaluation needs {', '.join(missing)}")

    def _fields(self) -> tuple[str, ...]:
        return POINT_FIELDS if self.kind == "points" else IMAGE_FIELDS

    @property
    def metric(self) -> str:
        return "w2" if self.kind == "points" else "fd"

    @property
    def value(self) -> float:
        """The headline distance (lower is better)."""
        return getattr(self, self.metric)

    @property
    def null(self) -> dict:
        return getattr(self, f"{self.metric}_null")

    @property
    def by_steps(self) -> dict[str, float]:
        return getattr(self, f"{self.metric}_by_steps")

    def to_dict(self) -> dict:
        """The fields of this kind only (the JSON of ``evaluate``)."""
        d = asdict(self)
        return {name: d[name] for name in self._fields()}

