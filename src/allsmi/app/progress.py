"""The live progress line of a long pass over a recording: ``allsmi verify`` (docs/architecture.md
§7.1).

Rules:
- Only on a terminal: the command decides (its stderr is a tty) and passes ``enabled``;
  disabled, nothing at all is written, so piped or redirected output stays what it was.
- One line on stderr rewritten in place, as ``record``'s live status is: ``\\r\\x1b[2K`` then
  the text, never a newline, cut to the terminal's width so that it never wraps.
- At most one draw every :data:`EVERY_S` seconds, the first one interval after the start, so
  a pass that ends sooner shows nothing.
- :meth:`ProgressLine.clear` erases the line before anything else reaches the terminal: the
  report, or the one-line error of a failure or an interrupt (docs/architecture.md §7.3).
- The clock is injected (a monotonic function of seconds), so tests never sleep.

What the line says (:class:`PassProgress`): the phase; the stored bytes read of the total of
every segment of the set (while frames are checked, their share of it: frames done of frames
total); frames (while indexing, those of the segments already open: a scan tells bytes, not
frames); the rate; and the time left in the phase, its remaining work at the phase's average
rate so far (shown once the phase has done some).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, TextIO

CLEAR: Final = "\r\x1b[2K"  # to the line's start, erase it (record's live status does the same)
EVERY_S: Final = 0.25  # at most four draws a second
INDEXING: Final = "indexing"
CHECKING: Final = "checking"  # every frame's time and seq
STRUCTURING: Final = "structuring"  # --deep: every frame structured


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to; 0 when it has none."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return 0


class ProgressLine:
    """One status line on a terminal, redrawn in place at most every ``every_s`` seconds."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float],
        *,
        enabled: bool,
        columns: Callable[[], int] = lambda: 0,
        every_s: float = EVERY_S,
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.enabled = enabled
        self.columns = columns  # 0: no limit known
        self.every_s = every_s
        self.shown = False
        self._last = clock()

    def due(self) -> bool:
        """Whether a draw now would be shown (cheap: the caller formats only then)."""
        return self.enabled and self.clock() - self._last >= self.every_s

    def show(self, text: str) -> bool:
        """Draw ``text`` over the line if a draw is due; whether it was drawn."""
        now = self.clock()
        if not self.enabled or now - self._last < self.every_s:
            return False
        width = self.columns()
        if width > 1:
            text = text[: width - 1]  # the last column would wrap on some terminals
        self.stream.write(CLEAR + text)
        self.stream.flush()
        self.shown = True
        self._last = now
        return True

    def clear(self) -> None:
        """Erase the line, leaving the cursor at its start; nothing when none is shown."""
        if self.shown:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.shown = False


class PassProgress:
    """What one pass over a recording has done, told through a :class:`ProgressLine`.

    The indexing phase learns the set's segments and sizes first (:meth:`indexing`), then
    which segment is being opened (:meth:`opening`), how far the scan of it has read
    (:meth:`scanned`, the reader's progress callback: a fraction of that segment's stored
    bytes) and when it is open (:meth:`opened`). A frame phase (:meth:`frames_phase`) counts
    frames done of frames total (:meth:`advanced`).
    """

    def __init__(self, line: ProgressLine, clock: Callable[[], float]) -> None:
        self.line = line
        self.clock = clock
        self.phase = INDEXING
        self.started = clock()
        self.sizes: Mapping[Path, int] = {}
        self.total_bytes = 0
        self.opened_bytes = 0  # the segments already open
        self.current_bytes = 0  # the segment being opened
        self.fraction = 0.0  # of it, read so far
        self.frames = 0
        self.frames_opened = 0  # frames of the segments already open
        self.frames_total = 0

    def indexing(self, sizes: Mapping[Path, int]) -> None:
        self.phase, self.started = INDEXING, self.clock()
        self.sizes = sizes
        self.total_bytes = sum(sizes.values())

    def opening(self, path: Path) -> None:
        self.current_bytes, self.fraction = self.sizes.get(path, 0), 0.0

    def scanned(self, fraction: float, frames: int = 0) -> None:
        """The scan of the segment being opened has read ``fraction`` of its stored bytes
        and met ``frames`` frames so far."""
        if self.phase == INDEXING:  # a rescan later, while frames are checked, is not shown
            self.fraction = fraction
            self.frames = self.frames_opened + frames
            self._tick()

    def opened(self, frames: int) -> None:
        self.opened_bytes += self.current_bytes
        self.current_bytes, self.fraction = 0, 0.0
        self.frames = self.frames_opened = frames
        self._tick()

    def frames_phase(self, phase: str, total: int) -> None:
        self.phase, self.started = phase, self.clock()
        self.frames, self.frames_total = 0, total

    def advanced(self, done: int, total: int) -> None:
        self.frames, self.frames_total = done, total
        self._tick()

    def clear(self) -> None:
        self.line.clear()

    def _tick(self) -> None:
        if self.line.due():
            self.line.show(self.text())

    @property
    def bytes_done(self) -> int:
        if self.phase == INDEXING:
            return self.opened_bytes + int(self.fraction * self.current_bytes)
        return self.total_bytes * self.frames // max(1, self.frames_total)

    def text(self) -> str:
        elapsed = self.clock() - self.started
        read = f"{format_bytes(self.bytes_done)} / {format_bytes(self.total_bytes)}"
        if self.phase == INDEXING:
            done, left = float(self.bytes_done), float(self.total_bytes - self.bytes_done)
            counted = f"  {self.frames:,} frames" if self.frames else ""
            fields = [f"{INDEXING}  {read}{counted}"]
        else:
            done, left = float(self.frames), float(self.frames_total - self.frames)
            fields = [f"{self.phase}  {self.frames:,} / {self.frames_total:,} frames  {read}"]
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            if left > 0:
                fields.append(f"~{format_duration(left / rate)} left")
            per_s = f"{format_bytes(rate)}/s" if self.phase == INDEXING else format_rate(rate)
            fields.append(per_s)
        return "  ".join(fields)


def format_bytes(n: float) -> str:
    """Decimal units, three significant digits: ``412 MB``, ``1.06 GB``, ``41.2 kB``."""
    return _scaled(n, ("B", "kB", "MB", "GB", "TB"), " ")


def format_ibytes(n: float) -> str:
    """Binary units, one decimal: ``512 B``, ``41.2 KiB``, ``100.0 MiB``, ``2.1 GiB``
    (sizes the user gave in binary units, as ``--max-size``, are echoed so)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def format_rate(per_s: float) -> str:
    """Frames a second, short: ``8,500 frames/s``, ``62.5k frames/s``, ``1.23M frames/s``."""
    if per_s < 9_999.5:
        return f"{per_s:,.0f} frames/s"
    return _scaled(per_s, ("", "k", "M", "G"), "") + " frames/s"


def _scaled(n: float, units: tuple[str, ...], gap: str) -> str:
    """``n`` in the first of ``units`` (each 1000 times the one before) that keeps it under
    1000, to three significant digits (whole numbers in the first unit)."""
    at = 0
    while n >= 999.5 and at < len(units) - 1:
        n /= 1000
        at += 1
    unit = units[at]
    digits = 0 if unit == units[0] or n >= 99.95 else 1 if n >= 9.995 else 2
    return f"{n:.{digits}f}{gap}{unit}"


def format_duration(seconds: float) -> str:
    """A time left, rounded up: ``3 s``, ``4 min``, ``1.5 h``."""
    if seconds < 60:
        return f"{max(1, math.ceil(seconds))} s"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
