"""`iaseg` itself: lazy sub-commands (a fast --help), library errors as one line with exit 2."""
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from iaseg import cli
from iaseg.checkpoint import CheckpointError
from iaseg.data import DatasetError, DescriptionError
from iaseg.decision import DecisionRuleError
from iaseg.engine.config import ConfigError
from iaseg.engine.trainer import TrainingError
from iaseg.metrics import ReportError

from tests.helpers.train import subprocess_env


def test_help_imports_no_command_and_no_torch():
    code = ("import sys\nfrom iaseg.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('iaseg.') and m != 'iaseg.cli'"
            " and m != 'iaseg.cli.common'))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"
    for name in cli.COMMANDS:
        assert name in res.stdout


@pytest.mark.parametrize("error", [
    DatasetError("a.png: unreadable"), DescriptionError("d.yaml: bad"), ConfigError("c.yaml: unknown key x"),
    DecisionRuleError("r.json: not a rule"), ReportError("r.json: bad"), CheckpointError("c.pt not found"),
    TrainingError("no checkpoint"), ValueError("bad value"), FileNotFoundError("x: no such file"),
    cli.CLIError("--x needs --y"),
])
def test_library_errors_are_one_line_with_exit_2(error, monkeypatch, capsys):
    def run(args):
        raise type(error)(f"{error}\nsecond line of detail")

    monkeypatch.setitem(sys.modules, "iaseg.cli.fake", types.SimpleNamespace(add_arguments=lambda p: None, run=run))
    monkeypatch.setitem(cli.COMMANDS, "fake", ("iaseg.cli.fake", "a test command"))
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == f"iaseg fake: error: {error}\n"


def test_bugs_keep_their_traceback_and_ctrl_c_is_130(monkeypatch, capsys):
    def bug(args):
        raise KeyError("a bug")

    fake = types.SimpleNamespace(add_arguments=lambda p: None, run=bug)
    monkeypatch.setitem(sys.modules, "iaseg.cli.fake", fake)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("iaseg.cli.fake", "a test command"))
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["fake"])

    def interrupted(args):
        raise KeyboardInterrupt

    fake.run = interrupted
    assert cli.main(["fake"]) == 130 and capsys.readouterr().err == "iaseg fake: interrupted\n"


def test_predict_refuses_16_bit_images_like_the_datasets(tiny_run, tmp_path, capsys):
    """One strict image reader: predict's error is the dataset reader's, one line."""
    Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16)).save(tmp_path / "deep.png")
    assert cli.main(["predict", "--checkpoint", str(tiny_run / "best.pt"), "--input", str(tmp_path / "deep.png"),
                     "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (f"iaseg predict: error: {tmp_path / 'deep.png'}: image mode 'I;16' is not RGB and cannot be "
                   "converted safely (16-bit/float?); save it as 8-bit RGB\n")
    assert not (tmp_path / "o").exists()
