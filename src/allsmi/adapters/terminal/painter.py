"""The asciimatics painter: paints styled lines and reads keys, nothing else
(docs/architecture.md §3.5).

It turns the view model's lines into ``print_at`` calls and asciimatics key codes into key
names (``"space"``, ``"left"``, ``"]"``) before anyone else sees them. It decides nothing.

Facts it relies on (measured in tmux and in a pty): curses must own a real terminal on
stdin/stdout; ``ESCDELAY`` must be set before the screen opens or Esc takes a second;
``print_at`` does not clear the rest of a line (our lines are always full width); a resized
terminal needs the screen closed and opened again.
"""

from __future__ import annotations

import contextlib
import curses
import os
import sys
from typing import Any, Final

from allsmi.domain.errors import UsageError
from allsmi.domain.screen import Style, StyledLine

COLOURS: Final = {
    "black": 0,
    "red": 1,
    "green": 2,
    "yellow": 3,
    "blue": 4,
    "magenta": 5,
    "cyan": 6,
    "white": 7,
}
A_BOLD: Final = 1
A_NORMAL: Final = 2
A_REVERSE: Final = 3

# asciimatics key codes → the names the cores use.
KEY_NAMES: Final = {
    -1: "esc",
    -203: "left",
    -205: "right",
    -204: "up",
    -206: "down",
    -207: "pgup",
    -208: "pgdn",
    -200: "home",
    -201: "end",
    -300: "backspace",
    -102: "delete",
    -301: "tab",
    -302: "backtab",
    10: "enter",
    13: "enter",
    32: "space",
    127: "backspace",
    8: "backspace",
    27: "esc",
    9: "tab",
}


def key_name(code: int) -> str | None:
    """The name of an asciimatics key code, or None for keys we do not use."""
    if code in KEY_NAMES:
        return KEY_NAMES[code]
    if 33 <= code < 0x110000 and chr(code).isprintable():
        return chr(code)
    return None


def require_terminal() -> None:
    """A TUI needs a terminal on stdin and stdout: say so in one line otherwise."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("this view needs a terminal (stdin and stdout must be a tty)")
    term = os.environ.get("TERM", "")
    if term in ("", "dumb", "unknown"):
        raise UsageError(f"the terminal type TERM={term or '(unset)'} cannot draw a TUI")


class AsciimaticsTerminal:
    """One terminal screen. ``open``/``close`` bracket its use; ``reopen`` after a resize."""

    def __init__(self) -> None:
        self._screen: Any = None

    def open(self) -> None:
        from asciimatics.screen import Screen

        os.environ.setdefault("ESCDELAY", "25")
        # The terminal's real size, never a stale LINES/COLUMNS from the environment
        # (curses would otherwise pin the screen to it and miss every resize).
        os.environ.pop("LINES", None)
        os.environ.pop("COLUMNS", None)
        try:
            self._screen = Screen.open(unicode_aware=True)
        except curses.error as err:
            raise UsageError(f"this terminal cannot be driven by curses ({err})") from None

    def close(self) -> None:
        screen, self._screen = self._screen, None
        if screen is not None:
            with contextlib.suppress(Exception):
                screen.close()

    def reopen(self) -> None:
        """After a resize: a new screen of the terminal's current size, state kept."""
        self.close()
        with contextlib.suppress(OSError, curses.error):
            # curses keeps the size it saw first unless told; a resize that came before
            # its SIGWINCH handler existed would otherwise never be noticed.
            actual = os.get_terminal_size(sys.stdout.fileno())
            curses.resizeterm(actual.lines, actual.columns)
        self.open()

    @property
    def size(self) -> tuple[int, int]:
        if self._screen is None:
            return 80, 24
        return int(self._screen.width), int(self._screen.height)

    def has_resized(self) -> bool:
        """True when the terminal's size differs from the screen's. asciimatics' own flag is
        only a hint: a reopen leaves a KEY_RESIZE behind that would otherwise reopen the
        screen on every turn, and a resize that raced the screen's opening leaves no signal."""
        if self._screen is None:
            return False
        self._screen.has_resized()  # consume the hint
        actual = self.actual_size()
        return actual is not None and actual != self.size

    @staticmethod
    def actual_size() -> tuple[int, int] | None:
        try:
            size = os.get_terminal_size(sys.stdout.fileno())
        except OSError:
            return None
        return size.columns, size.lines

    def fileno(self) -> int:
        return sys.stdin.fileno()

    def read_keys(self) -> list[str]:
        """Every key waiting, as names; mouse events and unknown keys dropped."""
        from asciimatics.event import KeyboardEvent

        names: list[str] = []
        if self._screen is None:
            return names
        while (event := self._screen.get_event()) is not None:
            if isinstance(event, KeyboardEvent):
                name = key_name(event.key_code)
                if name is not None:
                    names.append(name)
        return names

    def paint(self, lines: tuple[StyledLine, ...]) -> None:
        screen = self._screen
        if screen is None:
            return
        for y, line in enumerate(lines[: screen.height]):
            x = 0
            for span in line:
                fg, attr, bg = _colours(span.style)
                screen.print_at(span.text, x, y, colour=fg, attr=attr, bg=bg)
                x += len(span.text)
        screen.refresh()


def _colours(style: Style) -> tuple[int, int, int]:
    fg = COLOURS.get(style.fg, 7)
    bg = COLOURS.get(style.bg, 0) if style.bg else 0
    if style.reverse:
        return fg, A_REVERSE, bg
    return fg, A_BOLD if style.bold else A_NORMAL, bg
