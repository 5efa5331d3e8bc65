"""Data-parallel training across processes and machines through ``torch.distributed`` (gloo, on CPUs): each
process trains on its share of the batch's rows, and the NumPy gradients are averaged over all processes
before clipping and the optimizer step, so every process applies the same update and the result is that of
one process with the whole batch.  rnnfast writes no communication of its own: ``torch.distributed`` does it.

Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), ``rnnfast train`` uses it by itself::

    torchrun --nproc-per-node 2 -m rnnfast train                       # two processes on this machine
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 2 \\
             --rdzv-backend c10d --rdzv-endpoint HOST:29400 -m rnnfast train   # and the same on the other node
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np


def launched_by_torchrun() -> bool:
    """True in a process that torchrun started as one of several (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


class DataParallel:
    """This process's place among ``world_size`` and the averaging of gradients (``torch.distributed``'s
    process group, started here with the gloo backend from torchrun's environment if none is running)."""

    def __init__(self, backend: str = "gloo"):
        try:
            import torch.distributed as dist
        except ImportError as exc:
            raise RuntimeError("training across processes needs PyTorch: pip install rnnfast[torch]") from exc
        if not dist.is_available():
            raise RuntimeError("this PyTorch build has no torch.distributed")
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        self._dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self._buffer: Optional[np.ndarray] = None

    @property
    def is_main(self) -> bool:
        """The process that prints, saves and samples (rank 0)."""
        return self.rank == 0

    def rows(self, batch_size: int) -> slice:
        """This process's rows of a batch of ``batch_size`` (an equal share each)."""
        if batch_size % self.world_size:
            raise ValueError(f"batch size {batch_size} does not divide among {self.world_size} processes; "
                             f"use a multiple of {self.world_size}")
        share = batch_size // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def average_gradients(self, grads) -> None:
        """Each gradient array becomes its mean over all processes, in place: one all-reduce of one buffer."""
        import torch

        sizes = [g.size for g in grads]
        dtype = np.result_type(*grads)
        if self._buffer is None or self._buffer.size != sum(sizes) or self._buffer.dtype != dtype:
            self._buffer = np.empty(sum(sizes), dtype=dtype)
        offsets = np.cumsum([0] + sizes)
        for g, a, b in zip(grads, offsets[:-1], offsets[1:]):
            self._buffer[a:b] = g.reshape(-1)
        self._dist.all_reduce(torch.from_numpy(self._buffer))  # shares the memory: reduced in place
        self._buffer /= self.world_size
        for g, a, b in zip(grads, offsets[:-1], offsets[1:]):
            g.reshape(-1)[...] = self._buffer[a:b]

    def sum(self, *values: float):
        """The sums of a few numbers over all processes (losses and token counts for the log)."""
        import torch

        t = torch.tensor(values, dtype=torch.float64)
        self._dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self._dist.is_initialized():
            self._dist.barrier()  # no rank tears gloo down while a peer still talks to it
            self._dist.destroy_process_group()
