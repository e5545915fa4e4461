"""Telling systemd how a long-running command is doing: the notify protocol (sd_notify(3)),
spoken directly (docs/architecture.md §7.7).

Theory of operation. A unit with ``Type=notify`` starts the command with ``$NOTIFY_SOCKET``
naming a datagram socket; the command sends ``READY=1`` once it does its job, and with
``WatchdogSec=`` set (``$WATCHDOG_USEC``, for ``$WATCHDOG_PID``) ``WATCHDOG=1`` at least that
often, or systemd kills and restarts it. ``record`` is ready after its first frame is written
and pets the watchdog after each frame it writes, so a collector that hangs stops the pets
and gets the recorder restarted; ``api`` is ready once it listens and pets after each
collection.

Rules this module obeys:
- No service manager, no cost: without ``$NOTIFY_SOCKET`` :func:`notifier_from_env` gives a
  notifier that sends nothing.
- The socket is a filesystem path (``/…``) or an abstract name (``@…``, sent with a leading
  NUL), as systemd sets it; any other form (a vsock address) is not spoken: nothing is sent.
- One datagram per message, never blocking (``MSG_DONTWAIT``). A send that fails (the
  manager went away, its queue is full) is dropped silently: the manager's own timeouts say
  what a missing message means, and a recorder never stops recording because systemd did not
  listen.
- The watchdog is ours only when ``$WATCHDOG_PID`` is unset or names this process. When the
  interval between pets could come near the watchdog's timeout (a recorder set to collect
  every minute under ``WatchdogSec=60``), :meth:`Notifier.need_watchdog` raises the timeout
  to what the cadence needs (``WATCHDOG_USEC=``), so a slow cadence is never mistaken for a
  hang; it never lowers it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from typing import Final

# A pet may come late by one collection that ran long: the timeout covers three cadences.
WATCHDOG_CADENCES: Final = 3


class Notifier:
    """Sends notify messages to the service manager's socket (or nothing, without one)."""

    def __init__(self, address: bytes | str | None, watchdog_us: int | None) -> None:
        self._address = address
        self._sock: socket.socket | None = None
        self.watchdog_us = watchdog_us  # the watchdog's timeout, when it is ours

    @property
    def active(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> None:
        """One datagram of ``KEY=VALUE`` lines; dropped without a word when it cannot go."""
        if self._address is None:
            return
        if self._sock is None:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError:
                self._address = None
                return
        with contextlib.suppress(OSError):
            self._sock.sendto("\n".join(fields).encode(), socket.MSG_DONTWAIT, self._address)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={_one_line(status)}")

    def pet(self) -> None:
        """``WATCHDOG=1``, when the manager watches this process."""
        if self.watchdog_us is not None:
            self.send("WATCHDOG=1")

    def need_watchdog(self, cadence_ms: int) -> None:
        """Pets come every ``cadence_ms``: raise the watchdog's timeout to three cadences if it
        is shorter (module rules)."""
        wanted = cadence_ms * 1000 * WATCHDOG_CADENCES
        if self.watchdog_us is not None and self.watchdog_us < wanted:
            self.watchdog_us = wanted
            self.send(f"WATCHDOG_USEC={wanted}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        """Send nothing more."""
        self._address = None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def notifier_from_env(environ: Mapping[str, str] | None = None) -> Notifier:
    """The notifier ``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` and ``$WATCHDOG_PID`` describe."""
    env = os.environ if environ is None else environ
    address = _address(env.get("NOTIFY_SOCKET", ""))
    watchdog = _watchdog_us(env) if address is not None else None
    return Notifier(address, watchdog)


def _address(text: str) -> bytes | str | None:
    if text.startswith("/"):
        return text
    if text.startswith("@") and len(text) > 1:
        return b"\0" + text[1:].encode()
    return None


def _watchdog_us(env: Mapping[str, str]) -> int | None:
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None  # the watchdog watches another process
    return int(usec)


def _one_line(text: str) -> str:
    return " ".join(text.split())
