"""`pulse-twin --help` and every subcommand's `--help` explain themselves: a description, and help for every option."""
import argparse

import pytest

from federation.cli import build_parser, main
from federation.commands import COMMANDS


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    out = []
    for name, sub in subparsers(build_parser()).items():
        out.append((name, sub))
        out.extend((f"{name} {inner}", p) for inner, p in subparsers(sub).items())
    return out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name,parser", all_parsers(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_explains_itself(name, parser, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*name.split(), "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 200
    assert parser.description and len(parser.description) > 40, f"`pulse-twin {name}` has no description"
    undocumented = [a.option_strings or a.dest for a in parser._actions
                    if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not undocumented, f"`pulse-twin {name}`: options without help: {undocumented}"


def test_version_is_printed():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "federation.cli", "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("pulse-twin 0.") and out.stdout.strip() != "pulse-twin"
