"""What the command line sets up for every command before running it."""

from __future__ import annotations

import gc

from allsmi.app import cli


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
