"""Training on several processes (GPUs or machines) with torch.distributed.

``torchrun --nproc-per-node N -m asr train ...`` starts N copies of the
trainer and tells each its rank through the environment; :func:`setup` joins
them into one process group (NCCL between GPUs, gloo on CPUs). The model is
wrapped in DistributedDataParallel, every rank forms the same batches and
takes its own share of them (:class:`asr.data.BucketBatchSampler`), and only
rank 0 evaluates and writes. Run alone, nothing here does anything.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    # A gloo group beside NCCL's for small agreements between steps, which on
    # the host need no wait for the GPU.
    control: Any = field(default=None, compare=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: torch.device) -> tuple[Context, torch.device]:
    """Join the process group torchrun describes (if any); the device this rank trains on."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Context(), device
    context = Context(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
    control = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
    return Context(context.rank, context.world_size, context.local_rank, control), device


def sum_over_ranks(values: list[float], context: Context, device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (the values themselves when alone)."""
    if not context.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_have(flag: bool, context: Context) -> bool:
    """Whether ``flag`` holds on every rank (``flag`` itself when alone)."""
    if not context.enabled:
        return flag
    missing = torch.tensor([0 if flag else 1])
    dist.all_reduce(missing, group=context.control)
    return int(missing) == 0


def barrier(context: Context) -> None:
    if context.enabled:
        dist.barrier()


def teardown(context: Context) -> None:
    """Leave the process group once every rank is done (a rank leaving early can abort the others)."""
    if context.enabled and dist.is_initialized():
        gc.collect()  # the DistributedDataParallel wrapper the caller dropped, with its communication hooks
        dist.barrier()
        dist.destroy_process_group()
