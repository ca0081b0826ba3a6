"""Run folders: a fresh run never overwrites another by accident, stale temp files go, and the
run describes itself (versions, commit, command, threads, start time)."""
import pytest
import yaml

from iaseg.engine.config import load_config
from iaseg.engine.run_folder import RunFolderError, config_header, prepare_run_folder, run_info


def _make(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(b"x")


@pytest.mark.parametrize("names, message", [
    (["last.pt", "metrics.jsonl", "config.yaml"],
     "--out {out} holds another run (last.pt, metrics.jsonl): continue it with --resume, or start afresh with "
     "--overwrite (deletes its checkpoints and logs), or pick an empty folder"),
    (["epoch_3.pt"], "--out {out} holds another run (epoch_3.pt): continue it with --resume, or start afresh "
                     "with --overwrite (deletes its checkpoints and logs), or pick an empty folder"),
    (["notes.txt", "config.yaml"], "--out {out} holds other files (notes.txt): continue it with --resume, or "
                                   "start afresh with --overwrite (deletes its checkpoints and logs), or pick an "
                                   "empty folder"),
])
def test_a_fresh_run_refuses_a_folder_with_another_run(tmp_path, names, message):
    out = tmp_path / "run"
    _make(out, names)
    with pytest.raises(RunFolderError) as info:
        prepare_run_folder(out, resume=False)
    assert str(info.value) == message.format(out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(n.rstrip("/") for n in names)  # nothing touched


def test_overwrite_deletes_the_runs_files_only(tmp_path):
    out = tmp_path / "run"
    _make(out, ["last.pt", "best.pt", "epoch_2.pt", "metrics.jsonl", "curves.png", "config.yaml", "run.json",
                "train.log", "tb/", "class_stats.json", "preflight.json", "notes.txt", ".last.pt.abcd1234.tmp"])
    notes = prepare_run_folder(out, resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["class_stats.json", "notes.txt", "preflight.json"]
    assert notes[0] == "removed 1 temp file(s) of interrupted saves: .last.pt.abcd1234.tmp"
    assert notes[1].startswith("--overwrite: deleted the earlier run's best.pt, config.yaml, curves.png")


def test_a_start_that_saved_nothing_is_started_again(tmp_path):
    out = tmp_path / "run"
    _make(out, ["config.yaml", "run.json", "train.log", "tb/", "class_stats.json", "preflight.json", "console.log"])
    assert prepare_run_folder(out, resume=False) == []
    # caches stay, and so does the console log of `iaseg sweep`, which starts `iaseg train` in the folder
    assert sorted(p.name for p in out.iterdir()) == ["class_stats.json", "console.log", "preflight.json"]


def test_resume_keeps_everything_but_stale_temp_files(tmp_path):
    out = tmp_path / "run"
    _make(out, ["last.pt", "metrics.jsonl", ".last.pt.x1y2z3w4.tmp", ".best.pt.abcdefgh.tmp"])
    notes = prepare_run_folder(out, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "metrics.jsonl"]
    assert notes == ["removed 2 temp file(s) of interrupted saves: .best.pt.abcdefgh.tmp, .last.pt.x1y2z3w4.tmp"]


def test_out_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunFolderError, match=r"^--out .*f: is a file, not a run folder$"):
        prepare_run_folder(tmp_path / "f", resume=False)


def test_run_info_and_a_config_header_that_keeps_config_yaml_loadable(tmp_path):
    import platform

    import torch

    info = run_info(["iaseg", "train", "--config", "my exp.yaml"], device="cpu")
    assert info["command"] == "iaseg train --config 'my exp.yaml'"
    assert info["torch"] == str(torch.__version__) and info["python"] == platform.python_version()
    assert info["threads"] == torch.get_num_threads() and info["started"].endswith("Z")
    assert info["git_commit"] is None or len(info["git_commit"]) == 40
    cfg = load_config("tiny_synthetic")
    path = tmp_path / "config.yaml"
    path.write_text(config_header({**info, "resumed_from": {"epoch": 3, "step": 2}}) + cfg.to_yaml())
    text = path.read_text()
    assert text.startswith("# started ") and "# resumed from epoch 3, step 2\n" in text
    assert f"torch {torch.__version__}, Python {platform.python_version()}" in text
    assert load_config(path).to_dict() == cfg.to_dict() and yaml.safe_load(text) == cfg.to_dict()
