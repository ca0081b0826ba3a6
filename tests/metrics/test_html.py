"""metrics/html.py: Markdown blocks, the explorer's numbers (against a float64 numpy reference),
a self-contained page."""
import json
import re

import numpy as np
import pytest

from iaseg.metrics.html import explorer_data, markdown_blocks, render_page


def test_markdown_blocks_of_the_report_layouts(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 3), (255, 0, 0)).save(tmp_path / "fig.png")
    md = ("# Title\n\n- a: **1**\n- b: `x|y`\n\nSome text\ngoes on.\n\n| Group | G2 | |\n|:---|---:|---:|\n"
          "| Class | car | a \\| b |\n| IoU | **+1.0** | - |\n\n![the figure](fig.png)\n![gone](missing.png)\n")
    blocks = markdown_blocks(md, tmp_path)
    assert [b["kind"] for b in blocks] == ["h", "list", "p", "table", "figure"]
    assert blocks[0] == {"kind": "h", "level": 2, "spans": [{"kind": "text", "text": "Title"}]}
    assert blocks[1]["items"][0] == [{"kind": "text", "text": "a: "}, {"kind": "strong", "text": "1"}]
    assert blocks[2]["spans"] == [{"kind": "text", "text": "Some text goes on."}]
    table = blocks[3]
    assert table["align"] == ["left", "right", "right"]
    assert [c[0]["text"] if c else "" for c in table["header"]] == ["Group", "G2", ""]
    assert table["rows"][0][2] == [{"kind": "text", "text": "a | b"}]
    assert table["rows"][1][1] == [{"kind": "strong", "text": "+1.0"}]
    assert blocks[4]["src"].startswith("data:image/png;base64,") and blocks[4]["caption"] == "the figure"


def _reference(m, classes, groups):
    """float64 numpy per-class metrics, group and overall means over defined values."""
    m = np.asarray(m, dtype=np.float64)
    tp = np.diag(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = {"precision": tp / m.sum(0), "recall": tp / m.sum(1), "iou": tp / (m.sum(0) + m.sum(1) - tp)}
    out = {"mean": {k: np.nanmean(v) for k, v in per.items()}, "groups": {}}
    for g, members in groups.items():
        ids = [classes.index(c) for c in members]
        out["groups"][g] = {k: np.nanmean(v[ids]) if not np.isnan(v[ids]).all() else None for k, v in per.items()}
    out["classes"] = {c: {k: None if np.isnan(v[i]) else v[i] for k, v in per.items()} for i, c in enumerate(classes)}
    return out


def test_explorer_numbers_are_each_offsets_report():
    rng = np.random.default_rng(0)
    classes, groups = ["road", "car", "person"], {"G1": ["road"], "G2": ["car", "person"]}
    confusions = rng.integers(0, 50, (5, 3, 3))
    confusions[2, :, 2] = 0  # person never predicted at this offset: precision undefined
    frontier = {"classes": classes, "deltas": [-0.5, 0.0, 0.5, 1.0, 1.5], "base_offsets": [0, 0, 0],
                "sets": {"G2": {"classes": ["car", "person"], "confusions": confusions}}}
    data = explorer_data(frontier, "G2", groups, "iaseg calibrate --offset G2={offset}")
    assert data["start"] == 1 and data["labels"] == ["-0.5", "0", "0.5", "1", "1.5"]
    for m, point in zip(confusions, data["points"]):
        ref = _reference(m, classes, groups)
        for k in ("precision", "recall", "iou"):
            assert point["mean"][k] == pytest.approx(ref["mean"][k], abs=1e-12)
            for g in groups:
                assert point["groups"][g][k] == pytest.approx(ref["groups"][g][k], abs=1e-12)
            for c in classes:
                assert point["classes"][c][k] == (None if ref["classes"][c][k] is None
                                                  else pytest.approx(ref["classes"][c][k], abs=1e-12))
    assert data["points"][2]["classes"]["person"]["precision"] is None


def test_the_page_is_self_contained_and_escapes_text():
    frontier = {"classes": ["a", "b"], "deltas": [0.0, 1.0], "base_offsets": [0, 0],
                "sets": {"G2": {"classes": ["b"], "confusions": np.array([[[5, 1], [2, 3]], [[4, 2], [1, 4]]])}}}
    explorer = explorer_data(frontier, "G2", {"G1": ["a"], "G2": ["b"]}, "iaseg calibrate </script> {offset}")
    html = render_page("<b>T</b>", markdown_blocks("| x |\n|---:|\n| <i>1</i> |\n"), explorer=explorer)
    assert "<b>T</b>" not in html and "&lt;b&gt;T&lt;/b&gt;" in html and "&lt;i&gt;1&lt;/i&gt;" in html
    block = re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(block.replace("<\\/", "</"))["command"] == "iaseg calibrate </script> {offset}"
    assert not re.search(r'(src|href)="(https?:)?//', html)
