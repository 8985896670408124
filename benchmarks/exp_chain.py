"""An evolving target: a chain of shifts, each stage fine-tuning the model the previous stage made
(for GFT, that model is also the stage's f_pre), as :func:`gft.tasks.chains.run_chain` does.

After every stage the model is read against every law of the chain so far, the source included:
quality on the current target, and what was forgotten of the earlier ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from benchmarks.common import MODEL, energy, from_numpy_state, run_config, train_to_end
from benchmarks.context import Context
from benchmarks.parallel import Job
from benchmarks.settings import Settings
from benchmarks.stats import aligned, summarize
from benchmarks.store import fingerprint
from benchmarks.targets import Target, TargetTask
from gft.tasks.runs import make_trainer

NAME = "chain"
METHODS = ("standard", "gft")


def needs(settings: Settings) -> tuple[set, set]:
    return {(settings.chain[0], "independent")}, set(settings.chain)


@dataclass(frozen=True)
class ChainRun:
    chain: tuple[str, ...]
    variant: str
    seed: int
    steps: int  # per stage
    batch: int
    eval_n: int
    pool_size: int


def run_chain_2d(task: ChainRun, state: dict, references: dict) -> dict:
    model = from_numpy_state(MODEL, state)
    readings = []  # one dict per stage: law -> energy
    diverged_stage = None
    for stage, target in enumerate(task.chain[1:], 1):
        config = run_config(task.variant, task.steps, batch=task.batch, seed=task.seed + 1000 * stage,
                                               callback_every=task.steps)
        trainer = make_trainer(TargetTask(Target(target), task.pool_size, task.eval_n), config, base=model)
        if train_to_end(trainer):
            diverged_stage = stage
            break
        model = trainer.result_model
        readings.append({law: energy(model, references[law], task.eval_n, task.seed) for law in task.chain[: stage + 1]})
    return {**asdict(task), "readings": readings, "diverged_stage": diverged_stage}


def jobs(ctx: Context) -> list[Job]:
    s = ctx.settings
    refs = {law: ctx.reference(law)["reference"] for law in s.chain}
    sizes = fingerprint({"pretrain": [s.pretrain_steps, s.batch, s.pool_size], "ref": [s.reference_n, s.eval_n]})
    out = []
    for variant in METHODS:
        for seed in s.seed_list:
            r = ChainRun(tuple(s.chain), variant, seed, s.chain_steps, s.batch, s.eval_n, s.pool_size)
            out.append(Job(run_chain_2d, (r, ctx.state(s.chain[0], seed), refs), f"{NAME} {variant} seed {seed}",
                           f"{NAME}/{variant}/{seed}/{fingerprint(asdict(r))}/{sizes}", primary=True))
    return out


def _values(rows: list[dict], variant: str, stage: int, law: str) -> dict:
    out = {}
    for r in rows:
        if r["variant"] == variant:
            out[r["seed"]] = r["readings"][stage - 1].get(law) if len(r["readings"]) >= stage else None
    return out


def summarise(rows: list[dict], ctx: Context) -> dict:
    chain = ctx.settings.chain
    last = len(chain) - 1
    table = []
    for stage in range(1, last + 1):
        for law in chain[: stage + 1]:
            entry = {"stage": stage, "target": chain[stage], "law": law, "null": ctx.reference(law)["null"]}
            for v in METHODS:
                entry[v] = summarize(_values(rows, v, stage, law).values()).to_dict()
            table.append(entry)
    comparisons = []
    for law, primary, question in ((chain[last], True, f"energy to the current target {chain[last]} after the whole chain"),
                                   (chain[1], False, f"energy to the first target {chain[1]} after the whole chain (forgetting)"),
                                   (chain[0], False, f"energy to the source {chain[0]} after the whole chain (forgetting)")):
        a, b = aligned(_values(rows, "gft", last, law), _values(rows, "standard", last, law))
        comparisons.append({"id": f"chain:{law}", "question": f"chain {' -> '.join(chain)}: {question}", "a": "gft",
                            "b": "standard", "metric": "energy", "lower_is_better": True, "values_a": a, "values_b": b,
                            "null": ctx.reference(law)["null"], "primary_candidate": primary})
    return {"table": table, "comparisons": comparisons,
            "diverged": {v: sum(r["diverged_stage"] is not None for r in rows if r["variant"] == v) for v in METHODS}}
