"""cli/common.py: --checkpoint, --device and --decision-rule are declared once and mean the same
in every command that takes them."""
import argparse

import pytest

from iaseg.cli import COMMANDS, build_parser


def _option(command: str, flag: str) -> argparse.Action | None:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return next((a for a in sub._actions if flag in a.option_strings), None)


@pytest.mark.parametrize("flag, commands", [
    ("--checkpoint", ("evaluate", "calibrate", "predict")),
    ("--decision-rule", ("evaluate", "predict")),
    ("--device", ("evaluate", "calibrate", "predict")),
])
def test_a_shared_option_has_one_help_text_and_default(flag, commands):
    actions = [_option(c, flag) for c in commands]
    assert all(a is not None for a in actions)
    first = actions[0].help.split(";")[0]
    assert all(a.help.split(";")[0] == first and a.default == actions[0].default for a in actions)
    # every command that takes it at all got it from cli/common.py: the same first phrase
    for command in COMMANDS:
        action = _option(command, flag)
        if action is not None and flag != "--checkpoint":
            assert action.help.startswith(first.split(" (default")[0]), command
