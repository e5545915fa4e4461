"""Waiting for the signals that end a command, the one way every composition root does it.

``record``, ``api`` and ``mock`` stop on SIGTERM, SIGINT and SIGHUP (docs/architecture.md §7.5); the
TUI stops on SIGTERM and SIGHUP only (Ctrl-C is a key there). The handlers are anyio's: they
are installed when :func:`wait_for_signal` starts waiting and removed when it returns (the
signal's default action is back). Main thread only, as anyio requires.
"""

from __future__ import annotations

import signal
from typing import Final

import anyio

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
TUI_STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)


async def wait_for_signal(*signums: signal.Signals) -> signal.Signals:
    """The first of ``signums`` this process receives from now on."""
    with anyio.open_signal_receiver(*signums) as received:
        async for signum in received:
            return signal.Signals(signum)
    raise AssertionError("the signal receiver ended")  # pragma: no cover
