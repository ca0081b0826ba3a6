"""The Markdown table helpers."""
import pytest

from iaseg.metrics import delta_pct, display_groups, format_table2_md, format_table5_md, format_table_md, pct


def test_table_helpers():
    assert pct(0.5678) == "56.8" and pct(None) == "-" and pct(float("nan")) == "-"
    assert delta_pct(0.012) == "**+1.2**" and delta_pct(-0.0301) == "**-3.0**" and delta_pct(0.0001) == "0.0"
    assert delta_pct(float("nan")) == "-"
    assert format_table_md(["a", "b"], [["x|y", "1"]]).splitlines() == ["| a | b |", "|:---|---:|", "| x\\|y | 1 |"]
    with pytest.raises(ValueError):
        format_table_md(["a", "b"], [["x"]])
    assert display_groups(["a", "b", "c"], {"G1": ["b"], "G2": ["c"]}) == [("G2", ["c"]), ("G1", ["b"]),
                                                                             ("(other)", ["a"])]
    t2 = format_table2_md([("G2", ["c"]), ("G1", ["a", "b"])],
                          [("A", [("Recall", {"a": "1.0", "b": "2.0", "c": "3.0"})]),
                           ("B", [("Recall", {"a": "4.0", "b": "5.0", "c": "6.0"})])]).splitlines()
    assert t2[0] == "| Group |  | G2 | G1 |  |" and t2[2] == "| Class |  | c | a | b |"
    assert t2[3] == "| A | Recall | 3.0 | 1.0 | 2.0 |" and t2[4] == "| B | Recall | 6.0 | 4.0 | 5.0 |"
    t5 = format_table5_md(["G2", "G1"], [("", [("IoU", {"G1": "1", "G2": "2", "Mean": "3"})])]).splitlines()
    assert t5[0] == "| Group | G2 | G1 | Mean |" and t5[2] == "| IoU | 2 | 1 | 3 |"
