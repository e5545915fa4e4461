"""What the command line sets up for every command before running it."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import Any

import pytest

from allsmi.app import cli, view
from allsmi.app.replay_driver import ReplayDriver
from allsmi.domain.errors import UsageError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "format-v1.ndjson.zst"


def test_a_loaded_command_runs_with_start_up_frozen_and_a_lazy_collector() -> None:
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        handler = cli._load("allsmi.app.verify:run")
        assert callable(handler)
        assert gc.get_threshold()[0] == cli.GC_THRESHOLD
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # tuned, never switched off
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_replay_opens_the_recording_once_before_asking_for_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file is judged first; a refused terminal then closes what was opened, and the
    recording is never opened a second time just to be checked."""
    events: list[str] = []
    real_open = ReplayDriver.open

    def counting_open(*args: Any, **kwargs: Any) -> ReplayDriver:
        events.append("open")
        driver = real_open(*args, **kwargs)
        real_close = driver.source.close

        def close() -> None:
            events.append("close")
            real_close()

        monkeypatch.setattr(driver.source, "close", close)
        return driver

    def no_terminal() -> None:
        events.append("terminal?")
        raise UsageError("this view needs a terminal (stdin and stdout must be a tty)")

    monkeypatch.setattr(ReplayDriver, "open", counting_open)
    monkeypatch.setattr(view, "require_terminal", no_terminal)
    args = argparse.Namespace(
        command="view", replay=str(FIXTURE), speed=1.0, start=None, loop=False, follow=False
    )
    with pytest.raises(UsageError, match="needs a terminal"):
        view.run_replay(args)
    assert events == ["open", "terminal?", "close"]


def test_every_error_names_its_command_view_replay_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(_args: argparse.Namespace) -> int:
        raise UsageError("no frames in x")

    args = argparse.Namespace(command="view", replay="x")
    assert cli.run_handler(refuse, args) == 2
    assert capsys.readouterr().err == "allsmi view: no frames in x\n"
