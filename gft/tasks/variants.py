"""Named method variants: the baselines a reviewer asks for and the GFT variants that may make annealing
pay off, each a recipe for a :class:`gft.core.training.TrainConfig`.

One registry for the app's comparison page and the benchmarks, so "gft-stop" or "l2sp" mean the same
run everywhere (the CLI spells the same fields as flags: --tau-end, --warmup, --ema, --anchor-weight).
"""

from __future__ import annotations

from dataclasses import dataclass

from gft.core.schedules import lambda_of_tau
from gft.core.training import TrainConfig

GFT_SCHEDULE = "stages:10,0.5,5"  # the library default: tau 10 -> 0.6 in five stages over 80%, then tau = 0
STOP_TAU = 0.5  # gft-stop ends its anneal at tau 0.5 (lambda 1/3) instead of a tau = 0 phase
CONSTANT_TAU = 1.0  # gft-constant trains at lambda 1/2 throughout
L2SP_WEIGHT = 1e-2
EMA_DECAY = 0.99
SLOW_LR = 3e-4


@dataclass(frozen=True)
class Variant:
    """A method as reports name it, and the TrainConfig fields that make it."""

    label: str
    method: str
    schedule: str = "constant:0"
    lr: float | None = None  # None: the caller's learning rate
    warmup_share: float = 0.0  # warm-up steps as a share of the run
    tau_end: float = 0.0
    ema: float = 0.0
    anchor_weight: float = 0.0
    about: str = ""

    def config(self, steps: int, schedule: str | None = None, **fields) -> TrainConfig:
        """The run's config; ``schedule`` replaces the variant's own for the annealed GFT variants."""
        lr = self.lr if self.lr is not None else fields.pop("lr", 1e-3)
        fields.pop("lr", None)
        use = schedule if schedule is not None and self.method == "gft" and not self.schedule.startswith("constant") else self.schedule
        return TrainConfig(method=self.method, steps=steps, schedule=use, lr=lr, warmup=round(self.warmup_share * steps),
                           tau_end=self.tau_end, ema=self.ema, anchor_weight=self.anchor_weight, **fields)


VARIANTS = {v.label: v for v in (
    Variant("standard", "standard", about="keep training on the target samples"),
    Variant("gft", "gft", GFT_SCHEDULE, about="GFT: anneal over 80% of the steps, then tau = 0"),
    Variant("gft-stop", "gft", GFT_SCHEDULE, tau_end=STOP_TAU,
            about=f"GFT stopped at tau = {STOP_TAU:g} (lambda {lambda_of_tau(STOP_TAU):.2f}): no tau = 0 phase"),
    Variant("gft-constant", "gft", f"constant:{CONSTANT_TAU:g}",
            about=f"GFT at a constant tau = {CONSTANT_TAU:g} (lambda {lambda_of_tau(CONSTANT_TAU):.1f}) throughout"),
    Variant("standard-slow", "standard", lr=SLOW_LR, warmup_share=0.1,
            about=f"standard, lr {SLOW_LR:g} with 10% linear warm-up"),
    Variant("standard-ema", "standard", ema=EMA_DECAY, about=f"standard, EMA of the weights (decay {EMA_DECAY})"),
    Variant("l2sp", "l2sp", anchor_weight=L2SP_WEIGHT,
            about=f"standard plus {L2SP_WEIGHT:g} |theta - theta_pre|^2 (L2-SP weight anchoring)"),
    Variant("scratch", "scratch", about="fresh weights, trained on the target only"),
)}


def variant(label: str) -> Variant:
    if label not in VARIANTS:
        raise ValueError(f"method variant must be one of {sorted(VARIANTS)}, got {label!r}")
    return VARIANTS[label]
