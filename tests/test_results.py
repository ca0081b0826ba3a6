"""Every committed study (results/**/study.json of `iaseg compare --group`, pooled.json of
`iaseg compare --pool`) is rebuilt from the committed run folders with the command its README or
docs/results.md documents, and must equal the committed file (floats to 1e-9 relative). So a
figure quoted from a study.json is what its documented command gives today, and a study whose
command is missing from the docs fails here. The inputs are small committed JSON/npz files; no
dataset is needed."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from iaseg.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(ROOT.glob("results/*/README.md")) + [ROOT / "weights" / "README.md", ROOT / "docs" / "results.md"]
OUTPUTS = ("study.json", "pooled.json")
IGNORED = {"version", "created", "timestamp"}  # what may differ between runs of the same command


def documented_commands() -> list[tuple[str, list[str]]]:
    """(document, argv) of every `iaseg compare --group/--pool` command written in a code line of
    the docs, with the shell variables assigned before it in the same document and bash's brace
    and glob expansion (run from the repository root)."""
    found = []
    for doc in DOCS:
        if not doc.is_file():
            continue
        lines = doc.read_text().splitlines()
        joined, buf = [], ""
        for line in lines:
            buf += line.strip()
            if buf.endswith("\\"):
                buf = buf[:-1] + " "
                continue
            joined.append(buf)
            buf = ""
        assignments: list[str] = []
        for line in joined:
            if re.fullmatch(r"[A-Z]+=\S+", line):
                assignments.append(line)
            elif line.startswith("iaseg compare ") and re.search(r"\s--(group|pool)\s", line):
                script = "\n".join(assignments + ["set -- " + line[len("iaseg "):], 'printf "%s\\0" "$@"'])
                out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
                found.append((str(doc.relative_to(ROOT)), out.stdout.split("\0")[:-1]))
    # a command written in two documents (a README and docs/results.md) is run once
    unique: dict[tuple[str, ...], list[str]] = {}
    for doc, argv in found:
        unique.setdefault(tuple(argv), []).append(doc)
    return [(" + ".join(docs), list(argv)) for argv, docs in unique.items()]


def _out(argv: list[str]) -> str:
    return argv[argv.index("--out") + 1]


def assert_same(new: Any, old: Any, where: str = "") -> None:
    """Equal JSON, floats to 1e-9 relative (1e-12 absolute), keys in IGNORED skipped."""
    if isinstance(old, dict):
        assert isinstance(new, dict) and set(new) - IGNORED == set(old) - IGNORED, \
            f"{where}: keys differ: {sorted(set(new) ^ set(old))}"
        for k in old:
            if k not in IGNORED:
                assert_same(new[k], old[k], f"{where}/{k}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), f"{where}: lengths differ"
        for i, (a, b) in enumerate(zip(new, old)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(old, float) or isinstance(new, float):
        assert isinstance(new, (int, float)) and isinstance(old, (int, float)), f"{where}: {new!r} vs {old!r}"
        assert math.isclose(new, old, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {new!r} vs {old!r}"
    else:
        assert new == old, f"{where}: {new!r} vs {old!r}"


HAVE = (ROOT / "results").is_dir() and shutil.which("bash") is not None
COMMANDS = documented_commands() if HAVE else []
pytestmark = pytest.mark.skipif(not HAVE, reason="needs the committed results/ folder and bash")


def test_every_committed_study_has_a_documented_command() -> None:
    committed = {str(p.parent.relative_to(ROOT)) for name in OUTPUTS for p in ROOT.glob(f"results/**/{name}")}
    documented = {_out(argv).rstrip("/") for _, argv in COMMANDS}
    assert committed, "no committed study found"
    assert committed <= documented, f"no documented command writes {sorted(committed - documented)}"


@pytest.mark.parametrize("doc, argv", COMMANDS, ids=[f"{d}:{_out(a)}" for d, a in COMMANDS])
def test_documented_command_rebuilds_the_committed_study(doc, argv, tmp_path, monkeypatch, capsys) -> None:
    out = _out(argv)
    committed = [ROOT / out / name for name in OUTPUTS if (ROOT / out / name).is_file()]
    assert committed, f"{doc}: `iaseg {' '.join(argv)}` writes {out}, which holds no committed study"
    monkeypatch.chdir(ROOT)  # the documented paths are relative to the repository root
    argv = list(argv)
    argv[argv.index("--out") + 1] = str(tmp_path / "out")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the bootstrap's small array sums: several times faster on a busy machine
    try:
        assert cli(argv) == 0, capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)
    for old in committed:
        assert_same(json.loads((tmp_path / "out" / old.name).read_text()), json.loads(old.read_text()),
                    str(old.relative_to(ROOT)))
