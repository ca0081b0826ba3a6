"""Calibration reports: the before/after page, trade-off curves and plot, the reports table."""
import json

import pytest
import torch

from iaseg.decision import (DecisionRule, before_after_markdown, calibrate, parse_objective, parse_target,
                            tradeoff_curves, tradeoff_plot)
from iaseg.evidence import reports_table
from iaseg.metrics import ReportError, class_metrics

from tests.helpers.decision import NAMES, report_of, toy_data, toy_description


def test_markdown_tradeoff_plot_and_compare(tmp_path):
    data, desc = toy_data(4000), toy_description()
    target = parse_target("G3.recall>=0.6", desc)
    result = calibrate(data, [target], parse_objective("miou", desc))
    rule = DecisionRule(result.offsets, NAMES, [str(target)])
    before, after = report_of(result.before, desc), report_of(result.after, desc)
    md = before_after_markdown(before, after, rule, result)
    assert "| `G3.recall>=0.6` |" in md and "| person |" in md and "| **G3** |" in md and "| **mean** |" in md
    assert f"{100 * result.status[0]['after']:.1f}" in md
    curves = tradeoff_curves(data, rule.offsets, [3, 4])
    exact = class_metrics(result.after)
    for k in (3, 4):
        cur = curves[k]
        (at,) = torch.nonzero(cur["offset"] == rule.offsets[k])[0]  # the rule's own operating point
        assert float(cur["recall"][at]) == pytest.approx(float(exact["recall"][k]), abs=2e-3)
        assert bool((cur["offset"].diff() > 0).all()) and bool((cur["recall"].diff() >= 0).all())
        assert float(cur["recall"][0]) == 0.0 and float(cur["recall"][-1]) == 1.0  # the whole trade-off
    png = tradeoff_plot(data, rule, [3, 4], tmp_path / "rule.png", before=result.before, targets=[target])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "ial").mkdir()
    (tmp_path / "ial" / "report.json").write_text(json.dumps(after))
    table = reports_table({"CE": before, "IAL": tmp_path / "ial"})
    assert "| | CE | IAL |" in table and "| G3 recall |" in table and "| mean iou |" in table
    assert f"{100 * after['groups']['G3']['recall']:.1f}" in table
    with pytest.raises(ReportError, match="missing"):
        reports_table({"x": tmp_path / "missing.json"})
