"""Sizes of every benchmark experiment: the full suite (about 45 minutes on 2 idle CPU cores) and --quick (CI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from gft.constants import NULL_PAIRS, POINTS_POOL

EXPERIMENTS = ("budget", "stress", "fewshot", "straight", "chain", "digits", "speed", "robustness")


@dataclass(frozen=True)
class Settings:
    """One benchmark run's sizes; ``quick()`` and ``full()`` are the two presets."""

    mode: str
    seeds: int  # fine-tuning seeds, paired across methods
    pretrained_seeds: int  # fine-tuning seed s starts from pretrained model s % pretrained_seeds
    threads: int  # torch intra-op threads in every process (1: runs go side by side in processes)
    workers: int  # processes running tasks side by side
    pool_size: int  # training points drawn from a 2D law
    pretrain_steps: int
    batch: int
    # how 2D quality is read: unbiased energy distance of eval_n samples to a fixed reference_n draw
    eval_n: int
    reference_n: int
    curve_n: int  # samples behind each point of a curve (stress, validation)
    null_pairs: int
    # budget parity
    budget_shifts: tuple[str, ...]
    budgets: tuple[int, ...]
    # stability under stress
    stress_shift: str
    stress_lrs: tuple[float, ...]
    stress_batches: tuple[int, ...]
    stress_steps: int
    stress_every: int
    # few data from a related source
    fewshot_shifts: tuple[str, ...]
    fewshot_sizes: tuple[int, ...]
    fewshot_extras_size: int  # the extra baselines run at this size only
    fewshot_steps: int
    fewshot_every: int
    val_fraction: float
    # retention of straight paths
    straight_shift: str
    straight_steps: int
    # an evolving target
    chain: tuple[str, ...]  # source, then the targets in order
    chain_steps: int  # per stage
    # digits
    digits_pretrain_steps: int
    digits_steps: int
    digits_eval_n: int
    digits_batch: int
    # speed
    speed_steps: int
    speed_rounds: int
    ot_sizes: tuple[int, ...]
    ot_time_cap: float  # seconds: larger batches are skipped once one solve is predicted to exceed this
    sampling_repeats: int
    sampling_threads: tuple[str, ...]  # "suite" (the suite's thread count) and/or "all" (every core)

    def __post_init__(self) -> None:
        if self.mode not in ("quick", "full"):
            raise ValueError(f"mode must be 'quick' or 'full', got {self.mode!r}")
        for name in ("seeds", "pretrained_seeds", "threads", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 64:
                raise ValueError(f"{name} must be an integer in [1, 64], got {value!r}")
        if self.pretrained_seeds > self.seeds:
            raise ValueError(f"pretrained_seeds ({self.pretrained_seeds}) must be <= seeds ({self.seeds})")
        if not 2 <= self.null_pairs <= 200:
            raise ValueError(f"null_pairs must be in [2, 200], got {self.null_pairs}")
        if sorted(self.budgets) != list(self.budgets) or any(b % 5 for b in self.budgets):
            raise ValueError(f"budgets must be increasing multiples of 5 (tau reaches 0 at 80%), got {self.budgets}")
        for name, steps, every in (("stress", self.stress_steps, self.stress_every), ("fewshot", self.fewshot_steps, self.fewshot_every)):
            if every < 1 or steps % every or steps % 5:
                raise ValueError(f"{name}_steps ({steps}) must be a multiple of 5 and of {name}_every ({every})")
        if any(n < 4 for n in self.fewshot_sizes) or self.fewshot_extras_size not in self.fewshot_sizes:
            raise ValueError(f"fewshot_sizes must be >= 4 and contain fewshot_extras_size, got {self.fewshot_sizes}, "
                             f"{self.fewshot_extras_size}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if len(self.chain) < 3:
            raise ValueError(f"chain needs a source and at least 2 targets, got {self.chain}")

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))

    def pretrained_seed(self, seed: int) -> int:
        return seed % self.pretrained_seeds

    def with_overrides(self, seeds: int | None = None, workers: int | None = None, threads: int | None = None) -> "Settings":
        changes = {k: v for k, v in {"seeds": seeds, "workers": workers, "threads": threads}.items() if v is not None}
        if seeds is not None:
            changes["pretrained_seeds"] = min(self.pretrained_seeds, seeds)
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def full(workers: int = 2) -> Settings:
    return Settings(
        mode="full",
        seeds=10,
        pretrained_seeds=3,
        threads=1,
        workers=workers,
        pool_size=POINTS_POOL,
        pretrain_steps=3000,
        batch=256,
        eval_n=5000,
        reference_n=20000,
        curve_n=500,
        null_pairs=NULL_PAIRS,
        budget_shifts=("8gaussians->25gaussians",),
        budgets=(500, 1000, 2000, 4000),
        stress_shift="moons->moons_rot40",
        stress_lrs=(1e-3, 3e-3, 1e-2, 3e-2),
        stress_batches=(32, 256),
        stress_steps=500,
        stress_every=50,
        fewshot_shifts=("8gaussians->8gaussians_rot20_scale0.8", "moons->moons_rot40"),
        fewshot_sizes=(8, 16, 64, 256),
        fewshot_extras_size=16,
        fewshot_steps=600,
        fewshot_every=50,
        val_fraction=0.25,
        straight_shift="moons->moons_rot40",
        straight_steps=2000,
        chain=("moons", "moons_rot20", "moons_rot40", "moons_rot60"),
        chain_steps=1000,
        digits_pretrain_steps=1500,
        digits_steps=300,
        digits_eval_n=1000,
        digits_batch=128,
        speed_steps=300,
        speed_rounds=3,
        ot_sizes=(128, 256, 512, 1024, 2048),
        ot_time_cap=8.0,
        sampling_repeats=5,
        sampling_threads=("suite", "all"),
    )


def quick(workers: int = 2) -> Settings:
    return Settings(
        mode="quick",
        seeds=3,
        pretrained_seeds=2,
        threads=1,
        workers=workers,
        pool_size=4000,
        pretrain_steps=300,
        batch=128,
        eval_n=500,
        reference_n=2000,
        curve_n=200,
        null_pairs=5,
        budget_shifts=("moons->moons_rot40",),
        budgets=(50, 100),
        stress_shift="moons->moons_rot40",
        stress_lrs=(1e-3, 3e-2),
        stress_batches=(32,),
        stress_steps=100,
        stress_every=25,
        fewshot_shifts=("8gaussians->8gaussians_rot20_scale0.8",),
        fewshot_sizes=(8,),
        fewshot_extras_size=8,
        fewshot_steps=100,
        fewshot_every=25,
        val_fraction=0.25,
        straight_shift="moons->moons_rot40",
        straight_steps=100,
        chain=("moons", "moons_rot20", "moons_rot40"),
        chain_steps=50,
        digits_pretrain_steps=30,
        digits_steps=10,
        digits_eval_n=60,
        digits_batch=32,
        speed_steps=60,
        speed_rounds=1,
        ot_sizes=(128, 256),
        ot_time_cap=1.0,
        sampling_repeats=2,
        sampling_threads=("suite",),
    )
