"""The shell's clock, injected into every composition root (docs/architecture.md §7.4), and the one
fixed-rate loop every periodic task runs on.

``RealClock`` reads the OS; ``SimClock`` is a simulated clock whose waits return at once
after moving time forward, so a test or the demo records an hour in a second.

:func:`run_every` is the only periodic loop in the shell (the recorder, the exporter's and
the live view's collectors, the mock cluster's simulation): absolute deadlines
``start + k × interval`` (:func:`~allsmi.domain.schedule.next_deadline`), so nothing drifts,
and a step that overruns skips the deadlines it missed instead of bursting to catch up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from allsmi.domain.schedule import next_deadline, within_duration


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
        if not stop.is_set() and deadline_ms > self._mono:
            self._mono = deadline_ms
        await anyio.lowlevel.checkpoint()


Step = Callable[[int], Awaitable[None]]


async def run_every(
    clock: Clock,
    interval_ms: int,
    step: Step,
    *,
    stop: anyio.Event | None = None,
    duration_ms: int = 0,
    at_start: bool = True,
) -> int:
    """Await ``step(missed)`` at each deadline ``start + k × interval_ms``, ``start`` being
    the clock when called; ``k`` counts from 0, or from 1 without ``at_start``.

    One step at a time: the next deadline is the first one still ahead when a step returns;
    ``missed`` is how many were skipped just before the step (0 when the previous one ended
    in time). Ends before a step once ``stop`` is set (a wait ends early when it is) or, when
    ``duration_ms`` > 0, once that long has passed since ``start``; else runs until
    cancelled. Returns the number of deadlines skipped in all, after the last step included.
    """
    stop = anyio.Event() if stop is None else stop
    start = deadline = clock.monotonic_ms()
    missed = skipped = 0
    if not at_start:
        deadline, missed = next_deadline(deadline, interval_ms, clock.monotonic_ms())
        skipped += missed
        await clock.wait_until(deadline, stop)
    while not stop.is_set() and within_duration(start, clock.monotonic_ms(), duration_ms):
        await step(missed)
        deadline, missed = next_deadline(deadline, interval_ms, clock.monotonic_ms())
        skipped += missed
        await clock.wait_until(deadline, stop)
    return skipped
