"""Samplers of the training loop: resuming mid-epoch, and validation shards without padding."""
from __future__ import annotations

from typing import Iterator

from torch.utils.data import Sampler


class SkipSampler(Sampler[int]):
    """Wraps a sampler and drops its first `skip` indices (resuming in the middle of an epoch
    without loading the skipped samples)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        it = iter(self.sampler)
        for _ in range(self.skip):
            next(it, None)
        return it

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)  # type: ignore[arg-type]


class ShardSampler(Sampler[int]):
    """Indices rank, rank + world, ...: each sample on exactly one rank, no padding."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = range(rank, n, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
