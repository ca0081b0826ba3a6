import os
from contextlib import nullcontext
import random
import signal

import numpy as np
import pytest
import torch

from iaseg.engine.resume import (RESUMABLE, config_changes, kept_rng_state, nonfinite_entries, rng_state,
                                 set_rng_state, stop_on_signals)


class _MovedOffCPU:
    """Stands in for a tensor that `load_checkpoint(map_location="cuda")` moved to the GPU: only
    `.cpu()` gives back the CPU byte tensor the RNG setters accept."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self._tensor = tensor

    def cpu(self) -> torch.Tensor:
        return self._tensor


def test_rng_state_round_trip_restores_torch_numpy_and_python_streams():
    state = rng_state()
    expected = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    torch.rand(7), np.random.rand(7), random.random()
    set_rng_state(state)
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.rand(4), expected[1])
    assert [random.random() for _ in range(4)] == expected[2]


@pytest.mark.parametrize("fails", [False, True])
def test_kept_rng_state_leaves_the_streams_where_they_were_even_on_an_error(fails):
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    expected = (torch.rand(4), np.random.rand(4), random.random())
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    with pytest.raises(RuntimeError) if fails else nullcontext():
        with kept_rng_state():
            torch.rand(9), np.random.rand(9), random.random()
            if fails:
                raise RuntimeError("stop")
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.rand(4), expected[1]) and random.random() == expected[2]


def test_rng_state_restores_from_a_checkpoint_mapped_to_another_device():
    # `--resume` on CUDA loads last.pt with map_location=cuda: the saved RNG states came back on
    # the GPU and torch.set_rng_state refused them (found on an H100, 2026-11-26).
    state = rng_state()
    expected = (torch.rand(4), np.random.rand(4))
    moved = dict(state, torch=_MovedOffCPU(state["torch"]),
                 numpy=dict(state["numpy"], keys=_MovedOffCPU(state["numpy"]["keys"])))
    torch.rand(7), np.random.rand(7)
    set_rng_state(moved)
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.rand(4), expected[1])


def test_config_changes_lists_only_keys_both_configs_have_that_differ():
    old = {"train": {"epochs": 60, "seed": 0, "amp": "bf16"}, "loss": {"name": "ial"}, "model": "x"}
    new = {"train": {"epochs": 80, "seed": 0, "threads": 1}, "loss": {"name": "weighted_ce"}, "model": "y"}
    # threads is new (not in old), model is not a section: neither is a change
    assert config_changes(old, new) == [("train.epochs", 60, 80), ("loss.name", "ial", "weighted_ce")]
    assert config_changes(old, old) == []


def test_resumable_keys_allow_schedule_changes_but_not_another_experiment():
    assert {"train.epochs", "train.threads", "data.root", "optim.lr"} <= RESUMABLE
    assert not {"train.seed", "loss.name", "model.name", "data.size", "loss.preset"} & RESUMABLE


def test_nonfinite_entries_names_the_nested_float_tensors_with_nan_or_inf():
    state = {
        "model": {"conv.weight": torch.tensor([1.0, float("nan")]), "bn.num_batches": torch.tensor(3),
                  "fc.bias": torch.zeros(2)},
        "optimizer": {0: {"exp_avg": torch.tensor([float("inf")]), "step": torch.tensor(5.0)}},
        "epoch": 3,
    }
    assert nonfinite_entries(state) == ["model.conv.weight", "optimizer.0.exp_avg"]
    assert nonfinite_entries({"model": {"w": torch.ones(3)}}) == []


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name == "nt", reason="POSIX signals")
def test_stop_on_signals_turns_sigterm_into_a_stop_flag_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    flag: dict[str, bool] = {}
    with stop_on_signals(flag):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered before kill returns (to this thread)
        assert flag == {"stop": True}
        with pytest.raises(KeyboardInterrupt):  # a second signal aborts at once
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
