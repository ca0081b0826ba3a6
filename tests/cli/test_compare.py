"""`iaseg compare`: tables, names, errors, the overlay from checkpoints, the paper's tables and curves."""
import json
import re

import numpy as np
import pytest
from PIL import Image

import iaseg.data
from iaseg.cli import main as cli
from iaseg.evidence import compare_reports
from iaseg.metrics import build_report, pct, write_report
from iaseg.metrics.figures import method_rgb

from tests.helpers.compare import DESC, FakeDataset, GROUPS, SpatialFake, lines_to_rows, save_tiny_checkpoint


def test_compare_cli_end_to_end(two_runs, tmp_path, capsys):
    run_a, file_b, a, b = two_runs
    out = tmp_path / "cmp"
    assert cli(["compare", str(run_a), str(file_b), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("ial_run raised G3 recall from ")  # default names: the run folders
    comp = json.loads((out / "comparison.json").read_text())
    assert comp["names"] == ["ce_run", "ial_run"]
    assert comp["sources"][0].endswith("ce_run/eval/report.json")
    for c in DESC.classes:
        for k in ("precision", "recall", "iou"):
            v = comp["per_class"][c][k]
            assert (v["a"], v["b"]) == (a["per_class"][c][k], b["per_class"][c][k])
            assert v["delta"] == pytest.approx(b["per_class"][c][k] - a["per_class"][c][k], abs=1e-15)
    for g in GROUPS:
        assert comp["groups"][g]["recall"]["delta"] == pytest.approx(b["groups"][g]["recall"] - a["groups"][g]["recall"])
    assert comp["mean"]["iou"]["delta"] == pytest.approx(b["mean"]["iou"] - a["mean"]["iou"])
    assert comp["groups"]["G3"]["recall"]["delta"] > 0

    md = (out / "comparison.md").read_text()
    lines = md.splitlines()
    r0, r1 = a["groups"]["G3"]["recall"], b["groups"]["G3"]["recall"]
    assert f"**ial_run raised G3 recall from {100 * r0:.1f}% to {100 * r1:.1f}% ({100 * (r1 - r0):+.1f} points)" in md
    d_iou = 100 * (b["mean"]["iou"] - a["mean"]["iou"])
    assert f"mean IoU changed by {d_iou:+.1f} points" in md
    # Table II layout: group row, separator, class row, then A / B / delta blocks of three metric rows
    start = lines.index("## Per class (%)") + 2
    table = [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:start + 12]]
    assert table[0][:3] == ["Group", "", "G3"] and table[2][:3] == ["Class", "", "SignSymbol"]
    assert [r[0] for r in table[3:]] == ["ce_run", "", "", "ial_run", "", "", "Δ (ial_run − ce_run)", "", ""]
    assert [r[1] for r in table[3:6]] == ["Precision", "Recall", "IoU"]
    car_recall_delta = 100 * (b["per_class"]["Car"]["recall"] - a["per_class"]["Car"]["recall"])
    assert table[10][3] == f"**{car_recall_delta:+.1f}**"  # Car is the 2nd G3 column
    assert "| Group |  | G3 | G2 | G1 | Mean |" in md
    assert "![comparison_bars](comparison_bars.png)" in md
    with Image.open(out / "comparison_bars.png") as im:
        assert im.format == "PNG"
    # report.html: the same tables and the bar chart, in one page without outside resources
    html = (out / "report.html").read_text()
    assert "<title>Comparison: ce_run vs ial_run</title>" in html and "data:image/png;base64," in html
    assert f"<td class=\"right\"><strong>{car_recall_delta:+.1f}</strong></td>" in html
    assert "Δ (ial_run − ce_run)" in html and not re.search(r'(src|href)="(https?:)?//', html)


def test_compare_names_errors_and_python_api(two_runs, tmp_path, capsys):
    run_a, file_b, a, b = two_runs
    assert cli(["compare", str(run_a), str(file_b), "--out", str(tmp_path / "c2"), "--names", "CE", "IAL"]) == 0
    assert json.loads((tmp_path / "c2" / "comparison.json").read_text())["names"] == ["CE", "IAL"]
    capsys.readouterr()
    assert cli(["compare", str(run_a), str(tmp_path / "nothing"), "--out", str(tmp_path / "c3")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing" in err and len(err.splitlines()) == 1
    other = build_report([[3, 1], [1, 3]], ["x", "y"], {"G1": ["x"], "G2": ["y"]})
    write_report(other, tmp_path / "other")
    assert cli(["compare", str(run_a), str(tmp_path / "other"), "--out", str(tmp_path / "c4")]) == 2
    assert "different classes" in capsys.readouterr().err
    assert cli(["compare", str(run_a), str(file_b), "--out", str(tmp_path / "c5"), "--root", "x"]) == 2
    assert "--checkpoints" in capsys.readouterr().err

    # the demo's call: in-memory reports, no output folder
    result = compare_reports(a, b, ("Weighted CE", "IAL"))
    assert result["files"] == {} and result["figures"] == []
    assert result["summary"].startswith("IAL raised G3 recall") and "## Group means (%)" in result["markdown"]
    assert result["comparison"]["sources"] == [None, None]


def test_compare_overlay_from_checkpoints(two_runs, tmp_path, monkeypatch, capsys):
    run_a, file_b, _, _ = two_runs
    calls = []

    def fake_build_dataset(name, root, split, size=None, **options):
        calls.append((name, root, split, size, options))
        return FakeDataset()

    monkeypatch.setattr(iaseg.data, "build_dataset", fake_build_dataset, raising=False)
    ca, cb = save_tiny_checkpoint(tmp_path / "a.pt", 0), save_tiny_checkpoint(tmp_path / "b.pt", 1)
    out = tmp_path / "cmp"
    assert cli(["compare", str(run_a), str(file_b), "--out", str(out), "--names", "CE", "IAL",
                "--checkpoints", str(ca), str(cb), "--root", "/data/camvid", "--split", "test", "--images", "2"]) == 0
    assert calls == [("camvid", "/data/camvid", "test", (64, 64), {})]
    with Image.open(out / "overlay.png") as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert "![overlay](overlay.png)" in (out / "comparison.md").read_text()
    assert "overlay.png" in capsys.readouterr().out

    # with a two-input network: at the labels' resolution, one dataset per network
    bi = save_tiny_checkpoint(tmp_path / "bi.pt", 2, "bierfpspnet")
    calls.clear()
    monkeypatch.setattr(iaseg.data, "build_dataset", lambda name, root, split, size=None, **options: (
        calls.append((name, root, split, size, options)) or SpatialFake(options.get("spatial_size"))), raising=False)
    assert cli(["compare", str(run_a), str(file_b), "--out", str(tmp_path / "cmp2"), "--images", "2",
                "--checkpoints", str(ca), str(bi), "--root", "/data/camvid"]) == 0
    assert calls == [("camvid", "/data/camvid", "val", None, {}),
                     ("camvid", "/data/camvid", "val", None, {"spatial_size": (64, 64)})]
    with Image.open(tmp_path / "cmp2" / "overlay.png") as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert cli(["compare", str(run_a), str(file_b), "--out", str(tmp_path / "cmp3"),
                "--checkpoints", str(ca), str(cb)]) == 2
    assert "--root" in capsys.readouterr().err


def test_compare_cli_adds_paper_tables_and_curves(two_runs, tmp_path, capsys):
    run_a, file_b, a, b = two_runs
    run_b = file_b.parent
    for run, offset in ((run_a, 0.0), (run_b, 0.05)):
        with open(run / "metrics.jsonl", "w") as f:
            for e in (1, 2, 3):
                f.write(json.dumps({"epoch": e, "train_loss": 2.0 / e, "val": {
                    "mean": {"iou": 0.3 + 0.05 * e}, "groups": {"G3": {"recall": 0.2 + 0.1 * e + offset}}}}) + "\n")
    out = tmp_path / "cmp"
    assert cli(["compare", str(run_a), str(run_b), "--out", str(out), "--paper", "camvid"]) == 0
    md = (out / "comparison.md").read_text()
    assert "## Paper vs ours" in md and "![curves](curves.png)" in md
    with Image.open(out / "curves.png") as im:
        assert im.format == "PNG"
    section = md[md.index("## Paper vs ours"):]
    t2 = lines_to_rows(section[:section.index("### Group means")].splitlines())
    t5 = lines_to_rows(section[section.index("### Group means"):].splitlines())
    sign = t2[2].index("Sign")  # the paper's class names in the header
    labels = [r[1] for r in t2[3:]]
    assert labels == ["paper CE", "paper IAL", "paper Δ", "ours CE", "ours IAL", "ours Δ"] * 3
    assert [r[0] for r in t2[3::6]] == ["Precision", "Recall", "IoU"]
    recall = t2[9:15]
    assert (recall[0][sign], recall[1][sign], recall[2][sign]) == ("34.0", "47.0", "**+13.0**")
    expected = 100 * (b["per_class"]["SignSymbol"]["recall"] - a["per_class"]["SignSymbol"]["recall"])
    assert recall[3][sign] == pct(a["per_class"]["SignSymbol"]["recall"]) and recall[5][sign] == f"**{expected:+.1f}**"
    # Table V: the paper's printed G3 recall 56.2 -> 60.6, ours from the reports
    g3 = t5[0].index("G3")
    assert [r[g3] for r in t5[8:11]] == ["56.2", "60.6", "**+4.4**"]
    assert t5[11][g3] == pct(a["groups"]["G3"]["recall"])
    assert "| Group |  | G3 | G2 | G1 | Mean |" in md
    # the same numbers in comparison.json (fractions) and a figure of them
    paper = json.loads((out / "comparison.json").read_text())["paper"]
    assert (paper["dataset"], paper["model"], paper["ours"]) == ("camvid", "ERF-PSPNet", {"CE": "ce_run", "IAL": "ial_run"})
    sign_recall = paper["per_class"]["SignSymbol"]["recall"]
    assert sign_recall["paper"] == {"CE": pytest.approx(0.34), "IAL": pytest.approx(0.47), "delta": pytest.approx(0.13)}
    assert sign_recall["ours"] == {"CE": pytest.approx(a["per_class"]["SignSymbol"]["recall"]),
                                   "IAL": pytest.approx(b["per_class"]["SignSymbol"]["recall"]),
                                   "delta": pytest.approx(expected / 100)}
    assert list(paper["groups"]) == ["G3", "G2", "G1"]
    assert paper["groups"]["G3"]["recall"]["paper"]["CE"] == pytest.approx(0.562)       # Table V as printed
    assert paper["mean"]["iou"]["paper"] == {"CE": pytest.approx(0.543), "IAL": pytest.approx(0.532),
                                             "delta": pytest.approx(-0.011)}
    assert paper["mean"]["iou"]["ours"]["IAL"] == pytest.approx(b["mean"]["iou"])
    assert "![paper_vs_ours](paper_vs_ours.png)" in md
    with Image.open(out / "paper_vs_ours.png") as im:
        shown = np.asarray(im.convert("RGB"))
    for i in (0, 1):  # CE and IAL in their method colours, as in the other figures
        assert (shown == method_rgb(i)).all(-1).sum() > 500
    assert cli(["compare", str(run_a), str(run_b), "--out", str(tmp_path / "k"), "--paper", "kitti"]) == 2
    assert "paper comparison: no published results for dataset 'kitti'" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()  # refused before writing anything


def test_compare_groups_of_seeds(tmp_path, capsys):
    """`compare --group`: the study of constructed evaluation folders (tests/evidence/test_study.py)."""
    from tests.evidence.test_study import _run

    for seed in range(3):
        _run(tmp_path, "CE", seed, 0.0)
        _run(tmp_path, "IAL", seed, 0.4)
    args = ["compare", "--out", str(tmp_path / "study"), "--bootstrap-samples", "200"]
    for m in ("CE", "IAL"):
        args += ["--group", m, *[str(tmp_path / m / f"seed{s}") for s in range(3)]]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "IAL - CE, G3 Recall:" in out and "smallest possible two-sided sign-flip p is 0.25" in out
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    assert study["reference"] == "CE" and study["differences"]["IAL"]["G3 Recall"]["n"] == 3
    for name in ("study.md", "seeds.png", "frontier.png"):
        assert (tmp_path / "study" / name).is_file()
    band = study["frontier"]["band"]
    assert band["width"] == pytest.approx(0.02)
    assert band["pairs"]["IAL"]["high"] - band["pairs"]["IAL"]["low"] == pytest.approx(0.02, abs=1e-12)
    assert cli(["compare", "--out", str(tmp_path / "b1"), "--band", "1"] + args[3:]) == 0  # --band in points
    assert json.loads((tmp_path / "b1" / "study.json").read_text())["frontier"]["band"]["width"] == pytest.approx(0.01)
    capsys.readouterr()
    assert cli(args + ["--band", "0"]) == 2
    assert "--band must be in (0, 100]" in capsys.readouterr().err
    html = (tmp_path / "study" / "report.html").read_text()  # the CIs and paired deltas of study.md, the figures
    ci = next(line for line in (tmp_path / "study" / "study.md").read_text().splitlines() if "[" in line and "|" in line)
    assert [c.strip() for c in ci.strip("|").split("|")][-1].replace("−", "-") in html.replace("−", "-")
    assert html.count("data:image/png;base64,") >= 2 and 'alt="frontier' in html
    assert cli(["compare", "--out", str(tmp_path / "x"), "--group", "CE"]) == 2
    assert "give the method's runs" in capsys.readouterr().err
    assert cli(["compare", "--out", str(tmp_path / "x")]) == 2
    assert "give two runs A B" in capsys.readouterr().err


def test_compare_pool_of_studies(tmp_path, capsys):
    """`compare --pool NAME=STUDY ...`: studies pooled with a stratum each (tests/evidence/test_pool.py)."""
    from tests.evidence.test_study import _run

    for stratum, bias in (("A", 0.3), ("B", 0.6)):
        for seed in range(3):
            _run(tmp_path / stratum, "CE", seed, 0.0)
            _run(tmp_path / stratum, "IAL", seed, bias)
        args = ["compare", "--out", str(tmp_path / stratum / "study"), "--bootstrap-samples", "100"]
        for m in ("CE", "IAL"):
            args += ["--group", m, *[str(tmp_path / stratum / m / f"seed{s}") for s in range(3)]]
        assert cli(args) == 0
    capsys.readouterr()
    pool = ["compare", "--pool", f"A={tmp_path / 'A' / 'study'}", f"B={tmp_path / 'B' / 'study' / 'study.json'}",
            "--methods", "IAL", "--bootstrap-samples", "100", "--out", str(tmp_path / "pooled")]
    assert cli(pool) == 0
    assert "IAL - CE, G3 Recall, pooled over A (3 seeds), B (3 seeds)" in capsys.readouterr().out
    data = json.loads((tmp_path / "pooled" / "pooled.json").read_text())
    assert data["methods"]["IAL"]["pooled"]["G3 Recall"]["n"] == 6 and (tmp_path / "pooled" / "pooled.md").is_file()
    for bad, msg in ((["--pool", "A"], "give NAME=STUDY"), (["--pool", "A=x", "A=y"], "given twice"),
                     (["--pool", f"A={tmp_path}", f"B={tmp_path}"], "no study.json"),
                     (["--pool", "A=x", "--group", "CE", "r"], "drop A B, --group")):
        assert cli(["compare", "--out", str(tmp_path / "x"), *bad]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
