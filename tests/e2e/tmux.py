"""Drive the real program in a real terminal: tmux on its own socket, polled for text."""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping

import pytest

from .conftest import allsmi_path

_SERIAL = itertools.count()


class Tmux:
    """One tmux server (own socket, no config) running one command in a W×H pane."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        width: int = 120,
        height: int = 40,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.socket = f"allsmi-{name}-{os.getpid()}-{next(_SERIAL)}"
        variables = {
            "TERM": "tmux-256color",
            "LANG": "C.UTF-8",
            "ESCDELAY": "25",
            "TZ": "UTC",
            **(env or {}),
        }
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
        program = " ".join(shlex.quote(a) for a in [allsmi_path(), *args])
        script = f"env -u LINES -u COLUMNS {assignments} {program}; echo EXITED rc=$?; sleep 60"
        self._tmux("new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height), script)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout

    def send(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "main", key)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "main")

    def styled(self) -> str:
        """The pane with its colours and attributes as SGR escape sequences."""
        return self._tmux("capture-pane", "-p", "-e", "-t", "main")

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", "main", "-x", str(width), "-y", str(height))

    def program_pid(self) -> int:
        shell = int(self._tmux("list-panes", "-t", "main", "-F", "#{pane_pid}").strip())
        out = subprocess.run(["pgrep", "-P", str(shell)], capture_output=True, text=True)
        return int(out.stdout.split()[0])

    def wait_for(
        self, what: str | Callable[[str], bool], timeout: float = 15.0, *, styled: bool = False
    ) -> str:
        """The first settled screen that passes `what` (``styled``: its SGR capture).

        A capture can catch the program mid-paint (half a status line), so a screen counts
        only once two captures in a row are the same: what the caller asserts next about the
        returned screen is then about a whole paint, not a torn one.
        """
        test = (lambda s: what in s) if isinstance(what, str) else what
        capture = self.styled if styled else self.screen
        deadline = time.monotonic() + timeout
        screen, previous = "", None
        while time.monotonic() < deadline:
            screen = capture()
            if screen == previous and test(screen):
                return screen
            previous = screen
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {what!r}; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)
