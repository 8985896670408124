"""What the experiments share once the suite has prepared it: pretrained weights and target references.

Pretraining and references are tasks of the suite like any other (stored, resumable); experiments
ask here for the pieces each of their runs needs, so a worker receives only those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.common import build_reference, pretrain_2d
from benchmarks.parallel import Job, Runner, is_error
from benchmarks.settings import Settings
from benchmarks.store import fingerprint

# Sizes that shape pretraining and references (a change makes new keys); seeds and workers do not.
_PRETRAIN_FIELDS = ("pretrain_steps", "batch", "pool_size")
_REFERENCE_FIELDS = ("reference_n", "eval_n", "null_pairs")


def sizes_key(settings: Settings, names: tuple[str, ...]) -> str:
    return fingerprint({n: getattr(settings, n) for n in names})


@dataclass
class Context:
    settings: Settings
    pretrained: dict[tuple[str, str, int], dict] = field(default_factory=dict)  # (source, coupling, seed) -> row
    references: dict[str, dict] = field(default_factory=dict)  # target -> {"reference", "null"}
    failures: list[str] = field(default_factory=list)

    def state(self, source: str, seed: int, coupling: str = "independent") -> dict:
        return self.pretrained[(source, coupling, self.settings.pretrained_seed(seed))]["state"]

    def reference(self, target: str) -> dict:
        return self.references[target]

    def has(self, sources: set[tuple[str, str]], targets: set[str]) -> str | None:
        """None when every source (both couplings asked) and target is ready, else what is missing."""
        missing = [f"pretrained {s} ({c})" for s, c in sorted(sources)
                   if any((s, c, k) not in self.pretrained for k in range(self.settings.pretrained_seeds))]
        missing += [f"reference {t}" for t in sorted(targets) if t not in self.references]
        return ", ".join(missing) or None


def prepare(runner: Runner, settings: Settings, sources: set[tuple[str, str]], targets: set[str],
            cached_only: bool = False) -> Context:
    """Pretrain every (source, coupling) at every pretrained seed and build every target's reference
    (``cached_only``: only read back what the runner's store holds, compute nothing)."""
    ctx = Context(settings)
    pre_key = sizes_key(settings, _PRETRAIN_FIELDS)
    ref_key = sizes_key(settings, _REFERENCE_FIELDS)
    jobs = []
    for source, coupling in sorted(sources):
        for seed in range(settings.pretrained_seeds):
            jobs.append(Job(pretrain_2d, (source, settings.pretrain_steps, settings.batch, settings.pool_size, seed, coupling),
                            f"pretrain {source} ({coupling}) seed {seed}", f"pretrain/{source}/{coupling}/{seed}/{pre_key}"))
    for target in sorted(targets):
        jobs.append(Job(build_reference, (target, settings.reference_n, settings.eval_n, settings.null_pairs),
                        f"reference {target}", f"reference/{target}/{ref_key}"))
    if cached_only:
        rows = [runner.store.get(job.key) if runner.store is not None else None for job in jobs]
    else:
        rows = runner.map(jobs)
    for job, row in zip(jobs, rows):
        if row is None:
            continue
        if is_error(row):
            ctx.failures.append(f"{job.tag}: {row['error']}")
        elif job.tag.startswith("pretrain"):
            ctx.pretrained[(row["source"], row["coupling"], row["seed"])] = row
        else:
            ctx.references[row["target"]] = row
    return ctx
