"""Every command's ``--help`` ends with an Examples section, and every example in it is a
command line the real parser accepts (parsed only, never run)."""

from __future__ import annotations

import argparse
import shlex

import pytest

from allsmi.app.cli import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("allsmi has no subcommands")


COMMANDS = sorted(_commands())


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def _examples(help_text: str) -> list[str]:
    """The lines under ``Examples:``, as written (the section ends the help)."""
    _, found, tail = help_text.partition("\nExamples:\n")
    assert found, "no Examples section"
    return [line.strip() for line in tail.splitlines() if line.strip()]


def test_every_command_is_covered() -> None:
    assert set(COMMANDS) == {
        "api", "demo", "events", "mock", "record", "snapshot", "status", "verify", "view",
    }  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_ends_with_examples_of_that_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(command, capsys)
    examples = _examples(text)
    assert 2 <= len(examples) <= 4
    for line in examples:
        assert line.startswith(f"allsmi {command}"), line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_parses_with_the_real_parser(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for line in _examples(_help(command, capsys)):
        argv = shlex.split(line, comments=True)
        assert argv[0] == "allsmi"
        args = build_parser().parse_args(argv[1:])  # a usage error would exit 2 here
        assert args.command == command


def test_the_description_is_still_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    """The examples keep their lines; the rest of the help is wrapped as before."""
    text = _help("record", capsys)
    description = text.split("\n\n")[1]
    assert "Replay with: allsmi view --replay" in " ".join(description.split())
    assert max(len(line) for line in description.splitlines()) <= 100
