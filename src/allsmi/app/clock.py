"""The shell's clock, injected into every composition root (STYLE.md rule 6).

``RealClock`` reads the OS; ``SimClock`` is a simulated clock whose waits return at once
after moving time forward, so a test or the demo records an hour in a second.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    def monotonic_ms(self) -> int:
        """Milliseconds on a clock that never steps (scheduling)."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch (stamping samples)."""
        ...

    async def wait_until(self, deadline_ms: int, stop: anyio.Event) -> None:
        """Return at ``deadline_ms`` (monotonic) or as soon as ``stop`` is set."""
        ...


class RealClock:
    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def wait_until(self, deadline_ms: int, stop: anyio.Event) -> None:
        delay_s = (deadline_ms - self.monotonic_ms()) / 1000
        if delay_s <= 0:
            return
        with anyio.move_on_after(delay_s):
            await stop.wait()


class SimClock:
    """Simulated time: waiting jumps straight to the deadline. ``advance`` models work."""

    def __init__(self, wall_start_ms: int, monotonic_start_ms: int = 0) -> None:
        self._mono = monotonic_start_ms
        self._offset = wall_start_ms - monotonic_start_ms
        self.waits = 0

    def monotonic_ms(self) -> int:
        return self._mono

    def wall_ms(self) -> int:
        return self._mono + self._offset

    def advance(self, ms: int) -> None:
        self._mono += ms

    def step_wall(self, ms: int) -> None:
        """Step the wall clock alone (an NTP correction), monotonic time unchanged."""
        self._offset += ms

    async def wait_until(self, deadline_ms: int, stop: anyio.Event) -> None:
        self.waits += 1
        if not stop.is_set() and deadline_ms > self._mono:
            self._mono = deadline_ms
        await anyio.lowlevel.checkpoint()
