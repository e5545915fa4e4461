"""Fixed-rate scheduling for the recorder and every periodic loop of the shell
(:func:`allsmi.app.clock.run_every`; docs/architecture.md §7.4; §8, rule 6). Pure.

Deadlines are absolute — ``start + k × interval`` — so a 1 s recorder does not drift over an
hour. A cycle that overruns skips the deadlines it missed (and says how many) instead of
bursting to catch up. Frame times never go backwards even if the wall clock does.
"""

from __future__ import annotations

from typing import Final

FLUSH_WITHIN_MS: Final = 1000  # every frame reaches the OS within this of its collection


def next_deadline(deadline_ms: int, interval_ms: int, now_ms: int) -> tuple[int, int]:
    """The deadline after ``deadline_ms`` still in the future at ``now_ms``, and how many
    deadlines were missed on the way (0 when the cycle finished in time)."""
    following = deadline_ms + interval_ms
    if now_ms < following:
        return following, 0
    missed = (now_ms - following) // interval_ms + 1
    return following + missed * interval_ms, missed


def clamp_time(wall_ms: int, last_t_ms: int | None) -> int:
    """A frame's ``t``: the wall clock, but never before the previous frame's."""
    if last_t_ms is None or wall_ms >= last_t_ms:
        return wall_ms
    return last_t_ms


def flush_due(now_ms: int, last_flush_ms: int | None, interval_ms: int) -> bool:
    """Flush now unless the next frame still arrives within the flush bound.

    At intervals of a second or more every frame is flushed; faster recorders batch frames
    but never hold one longer than ``FLUSH_WITHIN_MS``.
    """
    if last_flush_ms is None or interval_ms >= FLUSH_WITHIN_MS:
        return True
    return now_ms + interval_ms - last_flush_ms >= FLUSH_WITHIN_MS


def within_duration(start_ms: int, now_ms: int, duration_ms: int) -> bool:
    """``--duration 0`` records until stopped; otherwise collect while time remains."""
    return duration_ms <= 0 or now_ms - start_ms < duration_ms
