"""Sizes of every benchmark experiment: the full suite (about 35 minutes on 2 CPU cores) and --quick (CI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from gft.constants import POINTS_POOL

SCHEDULES = ("stages:10,0.5,5", "cosine:10", "linear:5")
EXPERIMENTS = ("stability", "couplings", "limited_data", "digits", "speed", "robustness")


@dataclass(frozen=True)
class Settings:
    """One benchmark run's sizes; ``quick()`` and ``full()`` are the two presets."""

    mode: str
    seeds: int
    threads: int  # torch intra-op threads in every process (1: runs go side by side in processes)
    workers: int  # processes running fine-tuning tasks side by side
    pool_size: int  # training points drawn from a registered 2D distribution
    pretrain_steps: int
    batch: int
    # 1. stability and quality
    stability_shifts: tuple[str, ...]
    stability_steps: int
    stability_evals: int  # W2 evaluations along a run (plus step 0)
    eval_points: int
    # 2. couplings
    coupling_steps: int
    coupling_eval_points: int
    sinkhorn_reg: float
    # 3. limited data
    limited_targets: tuple[str, ...]
    limited_sizes: tuple[int | None, ...]  # None: the whole pool
    limited_steps: int
    # digits (stability and limited data on images)
    digits_seeds: int
    digits_pretrain_steps: int
    digits_steps: int
    digits_evals: int
    digits_eval_n: int
    digits_limit: int
    digits_batch: int
    # 4. speed
    speed_steps: int
    speed_rounds: int
    ot_sizes: tuple[int, ...]
    ot_time_cap: float  # seconds: larger batches are skipped once one solve is predicted to exceed this
    sampling_repeats: int
    sampling_threads: tuple[str, ...]  # "suite" (the suite's thread count) and/or "all" (every core)

    def __post_init__(self) -> None:
        if self.mode not in ("quick", "full"):
            raise ValueError(f"mode must be 'quick' or 'full', got {self.mode!r}")
        for name in ("seeds", "threads", "workers", "digits_seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 64:
                raise ValueError(f"{name} must be an integer in [1, 64], got {value!r}")
        if self.stability_evals < 3:
            raise ValueError(f"stability_evals must be >= 3 (stability needs a curve), got {self.stability_evals}")
        if self.stability_steps % self.stability_evals:
            raise ValueError(
                f"stability_steps ({self.stability_steps}) must be a multiple of stability_evals ({self.stability_evals})"
            )
        if self.digits_steps % self.digits_evals:
            raise ValueError(f"digits_steps ({self.digits_steps}) must be a multiple of digits_evals ({self.digits_evals})")
        if not self.sinkhorn_reg > 0:
            raise ValueError(f"sinkhorn_reg must be > 0, got {self.sinkhorn_reg}")
        if any(s is not None and s < 2 for s in self.limited_sizes):
            raise ValueError(f"limited_sizes must be >= 2 or None (all), got {self.limited_sizes}")

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))

    def with_overrides(self, seeds: int | None = None, workers: int | None = None, threads: int | None = None) -> "Settings":
        changes = {k: v for k, v in {"seeds": seeds, "workers": workers, "threads": threads}.items() if v is not None}
        if seeds is not None:
            changes["digits_seeds"] = seeds
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def full(workers: int = 2) -> Settings:
    return Settings(
        mode="full",
        seeds=5,
        threads=1,
        workers=workers,
        pool_size=POINTS_POOL,
        pretrain_steps=3000,
        batch=256,
        stability_shifts=("gaussian->25gaussians", "moons->moons_rot40", "moons->8gaussians", "circles->checkerboard"),
        stability_steps=2000,
        stability_evals=20,
        eval_points=500,
        coupling_steps=1500,
        coupling_eval_points=1000,
        sinkhorn_reg=0.5,
        limited_targets=("8gaussians", "25gaussians"),
        limited_sizes=(10, 50, 200, None),
        limited_steps=1500,
        digits_seeds=5,
        digits_pretrain_steps=2000,
        digits_steps=600,
        digits_evals=6,
        digits_eval_n=200,
        digits_limit=50,
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
        seeds=2,
        threads=1,
        workers=workers,
        pool_size=4000,
        pretrain_steps=300,
        batch=128,
        stability_shifts=("gaussian->25gaussians", "moons->moons_rot40"),
        stability_steps=120,
        stability_evals=4,
        eval_points=200,
        coupling_steps=80,
        coupling_eval_points=200,
        sinkhorn_reg=0.5,
        limited_targets=("8gaussians",),
        limited_sizes=(10, None),
        limited_steps=80,
        digits_seeds=1,
        digits_pretrain_steps=40,
        digits_steps=12,
        digits_evals=3,
        digits_eval_n=50,
        digits_limit=20,
        digits_batch=64,
        speed_steps=60,
        speed_rounds=1,
        ot_sizes=(128, 256),
        ot_time_cap=1.0,
        sampling_repeats=2,
        sampling_threads=("suite",),
    )
