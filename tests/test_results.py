"""Every committed study (results/**/study.json of `iaseg compare --group`, pooled.json of
`iaseg compare --pool`) is rebuilt from the committed run folders with the command its README or
docs/results.md documents, and must equal the committed file (floats to 1e-9 relative). So a
figure quoted from a study.json is what its documented command gives today, and a study whose
command is missing from the docs fails here. The documented `python results/....py ... > FILE`
lines (the docs_table.md files docs/results.md copies) must print their committed file. The
inputs are small committed JSON/npz files; no dataset is needed."""
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


def _code_lines(doc: Path) -> list[tuple[list[str], str]]:
    """(shell variable assignments so far, line) for every line of a document, with backslash
    continuations joined and indentation stripped."""
    joined, buf = [], ""
    for line in doc.read_text().splitlines():
        buf += line.strip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        joined.append(buf)
        buf = ""
    out, assignments = [], []
    for line in joined:
        if re.fullmatch(r"[A-Z]+=\S+", line):
            assignments.append(line)
        out.append((list(assignments), line))
    return out


def documented_tables() -> list[tuple[str, str, str]]:
    """(document, script, target) of every `python results/....py ARGS > FILE` line of the docs:
    the script with its shell variables, and the committed file it writes."""
    found = []
    for doc in DOCS:
        for assignments, line in _code_lines(doc) if doc.is_file() else []:
            m = re.fullmatch(r"(python results/\S+\.py .*?)\s+>\s+(\S+)", line)
            if m:
                target = subprocess.run(["bash", "-c", "\n".join(assignments + [f"echo {m.group(2)}"])], cwd=ROOT,
                                        capture_output=True, text=True, check=True).stdout.strip()
                found.append((str(doc.relative_to(ROOT)), "\n".join(assignments + [m.group(1)]), target))
    return found


def documented_commands() -> list[tuple[str, list[str]]]:
    """(document, argv) of every `iaseg compare --group/--pool` command written in a code line of
    the docs, with the shell variables assigned before it in the same document and bash's brace
    and glob expansion (run from the repository root)."""
    found = []
    for doc in DOCS:
        for assignments, line in _code_lines(doc) if doc.is_file() else []:
            if line.startswith("iaseg compare ") and re.search(r"\s--(group|pool)\s", line):
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
TABLES = documented_tables() if HAVE else []
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


@pytest.mark.parametrize("doc, script, target", TABLES, ids=[t for _, _, t in TABLES])
def test_documented_table_script_gives_the_committed_table(doc, script, target) -> None:
    """The tables docs/results.md copies (docs_table.md) are what their documented script prints
    from the committed study.json."""
    import os
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    script = f'python() {{ "{sys.executable}" "$@"; }}\n' + script
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (ROOT / target).read_text(), f"{doc}: {target} differs from what its command prints"
