"""`iaseg evaluate`: report files, one-line errors."""
import json

import numpy as np
import pytest
import torch

from iaseg.checkpoint import load_checkpoint
from iaseg.cli import main as cli


def test_evaluate_cli_writes_reports(tiny_run, tmp_path):
    assert cli(["evaluate", "--checkpoint", str(tiny_run / "best.pt"), "--out", str(tmp_path / "ev"),
                "--no-progress"]) == 0
    for name in ("report.json", "report.md", "report.csv", "confusion_matrix.png"):
        assert (tmp_path / "ev" / name).is_file()
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert list(report["per_class"])[:2] == ["Sky", "Building"]
    assert report["meta"]["split"] == "val"
    # the numbers follow from the confusion matrix (float64, undefined classes left out)
    m = np.asarray(report["confusion_matrix"], dtype=np.float64)
    assert m.sum() == report["meta"]["pixels"] > 0
    tp = np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (m.sum(0) + m.sum(1) - tp)
        recall = tp / m.sum(1)
    g3 = [list(report["per_class"]).index(c) for c in report["meta"]["groups"]["G3"]]
    for reported, expected in ((report["mean"]["iou"], iou), (report["groups"]["G3"]["recall"], recall[g3])):
        defined = expected[~np.isnan(expected)]
        assert reported == (pytest.approx(defined.mean(), abs=1e-12) if defined.size else None)


def test_evaluate_cli_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    bad.write_text("garbage")
    assert cli(["evaluate", "--checkpoint", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "x.pt" in err and len(err.splitlines()) == 1


def test_published_weights_need_root_for_real_datasets(tiny_run, tmp_path, capsys):
    ckpt = load_checkpoint(tiny_run / "best.pt")
    ckpt["config"]["data"].update(dataset="camvid", root=None)
    path = tmp_path / "camvid_like.pt"
    torch.save(ckpt, path)
    assert cli(["evaluate", "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "give --root DIR" in err and len(err.splitlines()) == 1
