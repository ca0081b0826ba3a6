"""The paper's tables (paper_tables.yaml, transcribed by hand) to check the reports and the
shipped paper_results.yaml against: per-class values (%) in the paper's column order (G3, G2,
G1 classes), and Table V group means (G3, G2, G1, Mean)."""
from pathlib import Path

import yaml

_TABLES = yaml.safe_load((Path(__file__).with_name("paper_tables.yaml")).read_text())


def _order(groups: dict) -> list:
    return groups["G3"] + groups["G2"] + groups["G1"]


CAMVID_GROUPS = _TABLES["camvid"]["groups"]
CAMVID_ORDER = _order(CAMVID_GROUPS)
CAMVID_TABLE2 = _TABLES["camvid"]["per_class"]
CAMVID_TABLE5 = _TABLES["camvid"]["table5"]
CITYSCAPES_GROUPS = _TABLES["cityscapes"]["groups"]
CITYSCAPES_ORDER = _order(CITYSCAPES_GROUPS)
CITYSCAPES_TABLES = _TABLES["cityscapes"]["per_class"]
CITYSCAPES_TABLE5 = _TABLES["cityscapes"]["table5"]
