"""engine/run_log.py: the records a training run writes."""
import json
import math

import torch

from iaseg.engine.run_log import RunLog, duration


def _record(epoch: int, loss: float) -> dict:
    return {"epoch": epoch, "train_loss": loss, "images": 4, "lr": 1e-3, "images_per_s": 2.0,
            "time_s": 1.5, "extra": {"nan": float("nan"), "inf": float("-inf"), "t": torch.tensor([1.5, 2.0])}}


def test_metrics_lines_are_strict_json_with_non_finite_as_null_and_tensors_as_lists(tmp_path):
    log = RunLog(tmp_path, is_main=True)
    log.write_record(_record(1, 0.5), epochs=2, eta=None)
    line = (tmp_path / "metrics.jsonl").read_text()
    assert line.endswith("\n") and line.count("\n") == 1
    rec = json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert rec["extra"] == {"nan": None, "inf": None, "t": [1.5, 2.0]}
    assert math.isclose(rec["train_loss"], 0.5)


def test_a_rewritten_epoch_replaces_the_lines_of_that_epoch_and_later(tmp_path):
    log = RunLog(tmp_path, is_main=True)
    for epoch, loss in ((1, 0.9), (2, 0.8), (3, 0.7)):
        log.write_record(_record(epoch, loss), epochs=3, eta=None)
    log.write_record(_record(2, 0.1), epochs=3, eta=None)   # a resumed try redoing epoch 2
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["train_loss"]) for r in recs] == [(1, 0.9), (2, 0.1)]


def test_other_processes_write_nothing(tmp_path):
    RunLog(tmp_path, is_main=False).write_record(_record(1, 0.5), epochs=1, eta=None)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_duration_words():
    assert duration(95) == "1m35s" and duration(3725) == "1h02m" and duration(-3) == "0m00s"
