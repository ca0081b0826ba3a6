"""What a checkpoint trained on, and what calibration images share with it."""
from iaseg.decision.provenance import (same_split, seen_data, seen_data_text, sequences_of, split_names,
                                       training_record, validation_record)

from tests.helpers.data import camvid_tree

LOSO = {"config": {"data": {"dataset": "camvid", "train_split": "train", "val_split": "train",
                            "options": {"exclude_sequences": ["0006R0"], "description": "x.yaml"},
                            "val_options": {"sequences": ["0006R0"], "exclude_sequences": []}}}}


def test_training_and_validation_records_come_from_the_config():
    assert training_record(LOSO) == {"dataset": "camvid", "split": "train",
                                     "options": {"exclude_sequences": ["0006R0"]}}
    assert validation_record(LOSO) == {"dataset": "camvid", "split": "train",
                                       "options": {"sequences": ["0006R0"], "exclude_sequences": []}}
    assert training_record({}) is None and validation_record({"config": {"data": {"dataset": "camvid"}}}) is None


def test_seen_data_counts_shared_sequences_and_images():
    train = ["0001TP_006690.png", "0016E5_07959.png", "0016E5_07961.png"]
    val = ["0016E5_08159.png", "0016E5_07961.png", "Seq05VD_f00030.png", "odd.png"]
    assert sequences_of(val) == {"0016E5", "Seq05VD"}
    seen = seen_data(val, train)
    assert seen == {"sequences": ["0016E5"], "images": 1}
    assert seen_data_text(seen, 4) == "shares sequence 0016E5 and 1 of its 4 images with the model's training data"
    assert seen_data_text(seen_data(["0006R0_f01.png"], train), 1) is None
    assert same_split({"dataset": "camvid", "split": "train", "options": {"exclude_sequences": ["0006R0"]}},
                      training_record(LOSO))
    assert not same_split({"dataset": "camvid", "split": "train", "options": {"sequences": ["0006R0"]}},
                          training_record(LOSO))


def test_split_names_lists_a_camvid_split_with_its_sequence_options(tmp_path):
    camvid_tree(tmp_path, "train", names=("A_001", "A_002", "B_001"))
    assert sorted(split_names("camvid", tmp_path, "train", {})) == ["A_001.png", "A_002.png", "B_001.png"]
    assert split_names("camvid", tmp_path, "train", {"exclude_sequences": ["A"]}) == ["B_001.png"]
    assert split_names("camvid", tmp_path, "val", {}) is None  # cannot be listed here
    assert split_names("synthetic", None, "val", {}) is None


def test_seen_by_model_names_what_the_calibration_split_shares_with_the_training_data(tmp_path):
    from iaseg.decision.provenance import seen_by_model

    camvid_tree(tmp_path, "train", names=("A_001", "A_002", "B_001"))
    trained_on_a = {"config": {"data": {"dataset": "camvid", "train_split": "train",
                                        "options": {"exclude_sequences": ["B"]}}}}
    assert seen_by_model(trained_on_a, "camvid", tmp_path, "train", {"sequences": ["B"]}) == (True, None)
    assert seen_by_model(trained_on_a, "camvid", tmp_path, "train", {}) == \
        (True, "camvid train shares sequence A and 2 of its 3 images with the model's training data")
    # a split that cannot be listed: the split and sequence options decide
    assert seen_by_model(trained_on_a, "camvid", tmp_path, "val", {}) == (True, None)
    same = {"config": {"data": {"dataset": "synthetic", "train_split": "val", "options": {}}}}
    assert seen_by_model(same, "synthetic", None, "val", {}) == (True, "synthetic val is the model's training split")
    assert seen_by_model({}, "camvid", tmp_path, "train", {}) == (False, None)
