"""Data-parallel training under ``torchrun``: one process per device, gradients averaged by PyTorch's
DistributedDataParallel (Gloo on CPUs, NCCL on CUDA GPUs).

How a global batch is shared: every rank draws the same global batch of ``world_size * B`` from the
run's seed (data indices, noise, then the path's times and noise) and keeps its own disjoint slice of
``B`` rows. The mean of the ranks' local losses is the single-process loss of the global batch, and
DDP averages the gradients, so K ranks with local batch B take the steps one process would take with
batch K * B, up to float rounding (an OT coupling is the exception: each rank pairs its own B noise
draws with its own B data points, a coupling of a smaller batch). A seeded run is reproducible for a
fixed K.

``torchrun`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; outside it (or with one
process) nothing here runs and training is exactly the single-process code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed as dist
from torch import nn

from gft.core.objectives import LossValue

BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel run: rank ``rank`` of ``world_size``."""

    rank: int
    world_size: int

    def __post_init__(self) -> None:
        if not isinstance(self.world_size, int) or self.world_size < 1:
            raise ValueError(f"world_size must be an integer >= 1, got {self.world_size!r}")
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be an integer in [0, {self.world_size - 1}], got {self.rank!r}")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and prints."""
        return self.rank == 0

    def global_size(self, local: int) -> int:
        return local * self.world_size

    def local(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch (rows ``rank * B`` to ``(rank + 1) * B``)."""
        b = x.shape[0] // self.world_size
        return x[self.rank * b : (self.rank + 1) * b]

    def average(self, value: LossValue) -> tuple[LossValue, float]:
        """The loss parts averaged over ranks (one all-reduce) and the mean total, for logging and the
        divergence check: every rank then sees the same numbers and stops together. ``total`` stays the
        local tensor to backpropagate."""
        parts = torch.tensor([float(value.total.detach()), value.velocity, value.score or 0.0], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            parts = parts.cuda()
        dist.all_reduce(parts)
        mean = (parts / self.world_size).tolist()
        score = None if value.score is None else mean[2]
        return LossValue(value.total, mean[1], score), mean[0]


class _Heads(nn.Module):
    # DDP synchronises what runs through its forward(); the objective needs every head, not the velocity.
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.heads(x, t)


class DataParallelHeads:
    """``heads(x, t)`` of a model through DistributedDataParallel: backward averages gradients over ranks."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
        # Buffers are fixed (time frequencies): nothing to broadcast at every step.
        self.ddp = nn.parallel.DistributedDataParallel(_Heads(model), device_ids=ids, broadcast_buffers=False)

    def heads(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.ddp(x, t)


def world_size_from_env() -> int:
    """WORLD_SIZE as torchrun sets it (1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


def is_main_process() -> bool:
    """False only on ranks other than 0 of a torchrun job: they neither write nor print."""
    return os.environ.get("RANK", "0") == "0"


def setup(device: torch.device) -> Shard | None:
    """Join the torchrun job this process belongs to (None when there is none, or a single process).

    The backend follows the device: NCCL for CUDA (each process on GPU LOCAL_RANK), Gloo for CPU.
    """
    world = world_size_from_env()
    if world <= 1:
        return None
    if device.type not in BACKENDS:
        raise ValueError(f"data-parallel training runs on cpu or cuda, got device {device}")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(BACKENDS[device.type])
    if dist.get_world_size() != world:
        raise ValueError(f"WORLD_SIZE is {world} but the process group has {dist.get_world_size()} ranks")
    return Shard(dist.get_rank(), world)


def teardown(finished: bool = True) -> None:
    """Leave the process group (a no-op outside torchrun).

    After a finished run every rank waits at a barrier first: a rank that destroyed its Gloo group while
    its peer was still leaving was seen to abort the peer at exit ("terminate called without an active
    exception", about one run in 30). After an error there is no barrier, since a failed rank may never come.
    """
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
