"""A switch back to the bf16 training path of iaseg before the CPU training-speed work, so that
`iaseg benchmark --mode train` can time the previous path next to today's in one run.

Inside `previous_training_path()`: dropout masks come from torch's `bernoulli_` (not the fast
generator of `iaseg.models.dropout`), the downsamplers' concat promotes the trunk to fp32 under
autocast, and the logits are upsampled in the autocast dtype. Same model, same parameters; only
the random numbers and the mixed-precision casts differ.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

_previous = False


def using_previous_path() -> bool:
    """True inside `previous_training_path()`."""
    return _previous


@contextmanager
def previous_training_path() -> Iterator[None]:
    """Run the block with the previous training path (see the module docstring)."""
    global _previous
    old, _previous = _previous, True
    try:
        yield
    finally:
        _previous = old
