"""Learning-rate schedules: poly with warm-up against its formula, step as before, resume."""
import pytest
import torch

from iaseg.engine.config import ConfigError, OptimConfig
from iaseg.engine.schedule import PolyWarmup, apply_schedule, build_scheduler, lr_at

from tests.helpers.train import fit, tiny


def _rates(o, epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=o.lr)
    sched = build_scheduler(opt, o, epochs)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_poly_with_warmup_follows_its_formula():
    o = OptimConfig(lr=0.01, schedule="poly", warmup_epochs=3, power=0.9)
    rates = _rates(o, 10)
    expected = [0.01 * (e + 1) / 3 for e in range(3)] + [0.01 * (1 - (e - 3) / 7) ** 0.9 for e in range(3, 10)]
    assert rates == pytest.approx(expected, rel=1e-12)
    assert rates == pytest.approx([lr_at(o, 10, e) for e in range(10)], rel=1e-12)
    assert rates[-1] > 0 and max(rates) == pytest.approx(0.01)
    assert PolyWarmup(10, 0, 1.0)(5) == pytest.approx(0.5)


def test_step_schedule_is_unchanged():
    o = OptimConfig(lr=1.0, milestones=[2, 4], gamma=0.1)
    assert _rates(o, 6) == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert [lr_at(o, 6, e) for e in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_apply_schedule_puts_a_longer_horizon_in_force():
    o = OptimConfig(lr=0.01, schedule="poly", power=1.0)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=o.lr)
    sched = build_scheduler(opt, o, 10)
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    apply_schedule(sched, opt, o, 20, (0.0,))       # train.epochs 10 -> 20 on resume
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 15 / 20)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 14 / 20)


def test_poly_training_logs_its_rates_and_resumes_exactly(tmp_path):
    """Poly + warm-up + crops: the logged rates follow the formula, and a run stopped after its
    first epoch and resumed ends with the uninterrupted run's weights, bit for bit."""
    import json

    from iaseg.checkpoint import load_checkpoint
    from iaseg.engine.trainer import TrainingInterrupted

    from tests.helpers.train import states_equal

    opts = ("optim.schedule=poly", "optim.warmup_epochs=1", "train.epochs=3", "data.options.length=4",
            "train.val_every=10", "data.augment={crop: [32, 48], scale: [0.5, 2.0], blur: 0.5}")
    fit(tiny(*opts), tmp_path / "full")

    def stop(trainer, epoch, step):
        if epoch == 1:
            trainer.request_stop()
    with pytest.raises(TrainingInterrupted):
        fit(tiny(*opts), tmp_path / "cut", after_step=stop)
    fit(tiny(*opts), tmp_path / "cut", resume=True)
    recs = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    o = OptimConfig(lr=1e-3, schedule="poly", warmup_epochs=1)
    assert [r["lr"] for r in recs] == pytest.approx([lr_at(o, 3, e) for e in range(3)])
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["input_size"] == [64, 64]                  # trained on crops, the checkpoint keeps the frame size
    assert states_equal(a["model"], b["model"])


def test_config_refuses_bad_schedule_and_augment_keys():
    with pytest.raises(ConfigError, match="optim.schedule"):
        tiny("optim.schedule=cosine")
    with pytest.raises(ConfigError, match="warmup_epochs"):
        tiny("optim.schedule=poly", "optim.warmup_epochs=5", "train.epochs=2")
    with pytest.raises(ConfigError, match="data.augment.crops"):
        tiny("data.augment={crops: [32, 32]}")
    with pytest.raises(ConfigError, match="data.augment"):
        tiny("data.augment=3")
    assert tiny("data.augment={crop: [32, 48]}").data.augment == {"crop": [32, 48]}


def test_class_statistics_come_from_the_plain_labels_and_draw_nothing(tmp_path):
    """With augmentation on, the class weights are those of the un-augmented labels, and a run
    whose folder already holds class_stats.json trains to the same weights as a fresh one."""
    import shutil

    from iaseg.checkpoint import load_checkpoint

    from tests.helpers.train import states_equal

    opts = ("train.epochs=1", "data.options.length=4", "data.augment={crop: [32, 48], scale: [0.5, 2.0]}")
    plain = fit(tiny("train.epochs=1", "data.options.length=4"), tmp_path / "plain")
    fresh = fit(tiny(*opts), tmp_path / "fresh")
    assert torch.equal(fresh.class_weights, plain.class_weights)
    (tmp_path / "cached").mkdir()
    shutil.copy(tmp_path / "fresh" / "class_stats.json", tmp_path / "cached" / "class_stats.json")
    fit(tiny(*opts), tmp_path / "cached", overwrite=True)
    a, b = load_checkpoint(tmp_path / "fresh" / "last.pt"), load_checkpoint(tmp_path / "cached" / "last.pt")
    assert states_equal(a["model"], b["model"])
