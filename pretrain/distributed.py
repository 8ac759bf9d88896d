"""Process-group setup shared by single-process runs, `torchrun` and the tests' torch.multiprocessing launcher.

A run is distributed when `WORLD_SIZE` > 1 in the environment (as torchrun sets it): gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(local_rank: int = 0, device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(device: str | None = None) -> DistEnv:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    chosen = pick_device(local_rank, device)
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_value(env: DistEnv, value: T) -> T:
    """Rank 0's value on every rank (e.g. the run folder's name, or an error message)."""
    if not env.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


class StopVote:
    """Agrees across ranks on whether to stop, and by which signal, so every rank leaves the loop at the same step
    (a rank that left alone would leave the others waiting in the next all-reduce). The vote runs on a gloo group:
    on CPU, it never waits for the GPU."""

    def __init__(self, env: DistEnv) -> None:
        self.group = dist.new_group(backend="gloo") if env.distributed else None

    def agree(self, signum: int) -> int:
        """The highest signal number any rank received (0: none), the same on every rank."""
        if self.group is None:
            return signum
        box = torch.tensor([signum], dtype=torch.int64)
        dist.all_reduce(box, op=dist.ReduceOp.MAX, group=self.group)
        return int(box.item())
