"""The shipped paper_results.yaml against the hand transcription of the paper's tables."""
import pytest

from tests.helpers.compare import DESC


def test_paper_tables_match_the_transcription_in_test_metrics():
    from iaseg.evidence import paper_report, paper_table5

    from tests.helpers.paper import CAMVID_ORDER, CAMVID_TABLE2, CAMVID_TABLE5

    names = {"Sign": "SignSymbol", "Sidewalk": "Pavement"}
    for loss in ("CE", "IAL"):
        rep = paper_report("camvid", loss)
        assert list(rep["per_class"]) == list(DESC.classes)
        for i, paper_name in enumerate(CAMVID_ORDER):
            for k in ("precision", "recall", "iou"):
                assert rep["per_class"][names.get(paper_name, paper_name)][k] == pytest.approx(CAMVID_TABLE2[loss][k][i] / 100)
        t5 = paper_table5("camvid", loss)
        for k in ("precision", "recall", "iou"):
            assert [round(100 * t5[g][k], 2) for g in ("G3", "G2", "G1", "Mean")] == CAMVID_TABLE5[loss][k]
            # recomputed group means agree with the printed ones to rounding
            for g in ("G3", "G2", "G1"):
                assert abs(rep["groups"][g][k] - t5[g][k]) <= 0.001 + 1e-9
    cs = paper_report("cityscapes", "IAL")
    assert cs["per_class"]["train"]["recall"] == pytest.approx(0.46) and len(cs["per_class"]) == 19
    with pytest.raises(ValueError, match="no published results"):
        paper_report("kitti", "CE")
