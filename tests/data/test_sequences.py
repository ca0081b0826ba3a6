"""Video sequences in frame names: leave-one-sequence-out splits (iaseg.data.sequences)."""
from __future__ import annotations

import pytest

from iaseg.data import DatasetError, build_dataset
from iaseg.data.sequences import frame_key, select_sequences
from iaseg.engine.config import load_config

NAMES = ["0016E5_07959.png", "0006R0_f01000.png", "0001TP_006690.png", "0006R0_f01030.png", "other.png"]


def test_frame_key() -> None:
    assert frame_key("/a/0016E5_07959.png") == ("0016E5", 7959)
    assert frame_key("Seq05VD_f00030.png") == ("Seq05VD", 30)
    assert frame_key("aachen_000000_000019_leftImg8bit.png") is None


def test_select_sequences() -> None:
    assert select_sequences(NAMES) == (NAMES, [])
    assert select_sequences(NAMES, sequences=["0006R0"]) == ([NAMES[1], NAMES[3]], [])
    kept, problems = select_sequences(NAMES, exclude_sequences="0006R0")
    assert kept == [NAMES[0], NAMES[2], NAMES[4]] and problems == []  # names without a sequence stay
    kept, problems = select_sequences(NAMES, sequences=["0006RO"])
    assert kept == [] and "'0006RO' named in sequences has no frame" in problems[0]
    with pytest.raises(ValueError, match="list of sequence names"):
        select_sequences(NAMES, sequences=[3])


def test_camvid_leave_one_sequence_out(camvid_root) -> None:
    train = build_dataset("camvid", camvid_root, "train", exclude_sequences=["0006R0"])
    held_out = build_dataset("camvid", camvid_root, "train", sequences=["0006R0"])
    everything = build_dataset("camvid", camvid_root, "train")
    assert len(train) + len(held_out) == len(everything) and len(held_out) == 101
    assert {frame_key(p.image)[0] for p in held_out.pairs} == {"0006R0"}
    assert "0006R0" not in {frame_key(p.image)[0] for p in train.pairs}
    with pytest.raises(DatasetError, match="'0006RO' named in sequences"):
        build_dataset("camvid", camvid_root, "train", sequences=["0006RO"])


def test_val_options_apply_to_the_val_split_only(tmp_path) -> None:
    from iaseg.engine.trainer import Trainer

    cfg = load_config("tiny_synthetic", ["train.tensorboard=false", "data.options.length=6",
                                         "data.val_options.length=3"])
    t = Trainer(cfg, tmp_path / "run", progress=False)
    assert len(t.train_set) == 6 and len(t.val_set) == 3
    t.close()
    loso = load_config("camvid_loso_ce")
    assert loso.data.options == {"exclude_sequences": ["0006R0"]}
    assert loso.data.val_split == "train" and loso.data.val_options["sequences"] == ["0006R0"]
