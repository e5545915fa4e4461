"""The replay state machine (docs/architecture.md §5): every replay control as one total
function.

Rules this module obeys:
- ``step(state, event) -> (state, commands)`` is total: every state × every event gives a
  valid state and never raises. No I/O, no clock: time arrives as ``TickElapsed(dt_ms)``.
- Frames are reached by *index* (their order in the recording) for stepping and by *seek
  key* for seeking, so frames sharing a timestamp are all reachable. A frame's key is the
  running maximum of the recorded times up to it: it never goes back, even where the
  recorded clock did. The core asks the shell to ``Seek`` (show the last frame whose key is
  ≤ first + position) or ``ShowIndex``; the shell answers with ``FrameShown``, which carries
  the shown frame's key, its successor's key, and its recorded time (what the status shows).
- The shell tells the core when the recording changes under it: ``TimelineGrew`` (frames
  added at the end, evicted from the start) or ``TimelineRebuilt`` (frames counted anew:
  a file truncated or replaced, a seek table that lied), so the frame count never goes
  stale.
- Keys are names (``"space"``, ``"]"``, ``"enter"``) looked up in a data table; a key the
  replay does not use is handed back as ``PassToView`` (tabs, scrolling, help). While a
  timecode is being typed (``pending``) every key belongs to the entry.

Theory of operation. ``position_ms`` is the playhead as an offset from the first frame's
key; ``cursor`` is the frame on screen. Playing advances the playhead by ``dt × speed`` and
asks for a seek only when the next frame becomes due, so an idle tick costs nothing. A gap to
the next frame longer than ten intervals is jumped over with a message. Reaching the end wraps
(loop) or stops in mode ``end``; SPACE at the end restarts. A rebuilt timeline is sought
again at the playhead: the index on screen may name another frame now.
"""

from __future__ import annotations

import enum
from datetime import UTC, tzinfo
from typing import Final, assert_never

import attrs

from allsmi.domain.errors import UsageError
from allsmi.domain.parse import format_gap, parse_timecode, resolve_timecode

SPEEDS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SEEK_STEP_MS: Final = 10_000
GAP_INTERVALS: Final = 10  # a gap longer than this many intervals is skipped while playing
TIMECODE_CHARS: Final = frozenset("0123456789:@-+.TZtz")
MAX_PENDING: Final = 32


class Mode(enum.Enum):
    PAUSED = "paused"
    PLAYING = "playing"
    END = "end"
    LIVE = "live"


def _check_speed(_: object, __: attrs.Attribute[float], value: float) -> None:
    if value not in SPEEDS:
        raise ValueError(f"speed {value} is not on the ladder {SPEEDS}")


@attrs.frozen
class ReplayState:
    frame_count: int  # frames in the recording (≥ 1)
    first_key_ms: int  # seek key (and time) of the first frame, ms since the epoch
    duration_ms: int  # last seek key − first, ≥ 0
    cursor: int = 0  # index of the frame shown
    cursor_t_ms: int = 0  # its recorded time (what the status shows)
    cursor_key_ms: int = 0  # its seek key
    next_key_ms: int | None = None  # seek key of the frame after it; None at the last frame
    position_ms: int = attrs.field(default=0)  # playhead, offset from the first key
    speed: float = attrs.field(default=1.0, validator=_check_speed)
    mode: Mode = Mode.PAUSED
    loop: bool = False
    follow: bool = False  # the recording is still being written (--follow)
    pending: str | None = None  # timecode text being typed after `g`
    message: str | None = None
    interval_ms: int | None = None  # the recording's interval, for gap skipping
    tz: tzinfo | None = None  # the local zone, for `@HH:MM` timecodes

    @position_ms.validator
    def _within(self, _: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= self.duration_ms:
            raise ValueError(f"position {value} outside [0, {self.duration_ms}]")

    @property
    def last_index(self) -> int:
        return self.frame_count - 1


# --------------------------------------------------------------------------- events


@attrs.frozen
class KeyPressed:
    key: str


@attrs.frozen
class TickElapsed:
    dt_ms: int


@attrs.frozen
class FrameShown:
    index: int
    key_ms: int  # the shown frame's seek key
    next_key_ms: int | None  # the seek key of the frame after it; None at the last frame
    t_ms: int  # the shown frame's recorded time
    stepped: bool = False  # the answer to ShowIndex: the playhead moves to the frame


@attrs.frozen
class TimelineGrew:
    """The recording being followed changed: frames were added at the end, and ``dropped``
    frames were evicted from the start (which then begins at ``first_key_ms``)."""

    frame_count: int
    duration_ms: int
    dropped: int = 0
    first_key_ms: int | None = None


@attrs.frozen
class TimelineRebuilt:
    """The frames were counted anew (a followed file truncated or replaced, a seek table
    that lied): indexes no longer name the frames they named, so the frame to show is found
    again by the playhead. ``dropped`` frames were evicted from the start meanwhile."""

    frame_count: int
    duration_ms: int
    first_key_ms: int
    dropped: int = 0


@attrs.frozen
class Resized:
    width: int
    height: int


Event = KeyPressed | TickElapsed | FrameShown | TimelineGrew | TimelineRebuilt | Resized


# --------------------------------------------------------------------------- commands


@attrs.frozen
class Seek:
    position_ms: int  # show the last frame whose seek key is ≤ first + position


@attrs.frozen
class ShowIndex:
    index: int


@attrs.frozen
class Render:
    pass


@attrs.frozen
class PassToView:
    key: str


@attrs.frozen
class Quit:
    pass


Command = Seek | ShowIndex | Render | PassToView | Quit
Result = tuple[ReplayState, tuple[Command, ...]]
RENDER: Final = Render()


def parse_speed(text: str) -> float:
    """``--speed``: a ladder value only (``2``, ``2x``, ``0.25``)."""
    try:
        value = float(text.strip().rstrip("xX"))
    except ValueError:
        value = -1.0
    if value not in SPEEDS:
        ladder = ", ".join(f"{s:g}" for s in SPEEDS)
        raise UsageError(f"invalid speed {text!r}: use one of {ladder}")
    return value


# --------------------------------------------------------------------------- opening


def initial(
    frame_count: int,
    first_key_ms: int,
    duration_ms: int,
    *,
    start_ms: int = 0,
    speed: float = 1.0,
    loop: bool = False,
    follow: bool = False,
    interval_ms: int | None = None,
    tz: tzinfo | None = None,
    live: bool = False,
) -> Result:
    """Open paused at ``start_ms`` (clamped to the recording), or on the first frame."""
    position = _clamp(start_ms, duration_ms)
    state = ReplayState(
        frame_count=max(1, frame_count),
        first_key_ms=first_key_ms,
        duration_ms=max(0, duration_ms),
        cursor_t_ms=first_key_ms,
        cursor_key_ms=first_key_ms,
        position_ms=position,
        speed=speed,
        loop=loop,
        follow=follow,
        interval_ms=interval_ms,
        tz=tz,
    )
    if live and follow:
        edge = state.duration_ms
        return attrs.evolve(state, mode=Mode.LIVE, position_ms=edge), (Seek(edge), RENDER)
    # The first frame itself, not the last of several sharing its timestamp.
    return state, ((Seek(position) if position else ShowIndex(0)), RENDER)


# --------------------------------------------------------------------------- the step


def step(state: ReplayState, event: Event) -> Result:
    """The whole of replay: (state, event) → (state, commands). Total; never raises."""
    match event:
        case KeyPressed(key=key):
            if state.pending is not None:
                return _timecode_key(state, key)
            return _key(attrs.evolve(state, message=None), key)
        case TickElapsed(dt_ms=dt):
            return _tick(state, max(0, dt))
        case FrameShown():
            return _shown(state, event)
        case TimelineGrew():
            return _grew(state, event)
        case TimelineRebuilt():
            return _rebuilt(state, event)
        case Resized():
            return state, (RENDER,)
        case _:
            assert_never(event)


def _key(state: ReplayState, key: str) -> Result:
    action = KEYS.get(key)
    if action is None:
        return state, (PassToView(key),)
    return action(state)


# --------------------------------------------------------------------------- key actions


def _toggle_play(state: ReplayState) -> Result:
    if state.mode is Mode.END:
        return attrs.evolve(state, mode=Mode.PLAYING, position_ms=0), (Seek(0), RENDER)
    mode = Mode.PAUSED if state.mode in (Mode.PLAYING, Mode.LIVE) else Mode.PLAYING
    return attrs.evolve(state, mode=mode), (RENDER,)


def _step_forward(state: ReplayState) -> Result:
    if state.cursor >= state.last_index:
        if state.loop and state.frame_count > 1:
            return attrs.evolve(state, mode=Mode.PAUSED), (ShowIndex(0), RENDER)
        return attrs.evolve(state, mode=_paused_or_end(state), message="last frame"), (RENDER,)
    return attrs.evolve(state, mode=Mode.PAUSED), (ShowIndex(state.cursor + 1), RENDER)


def _step_back(state: ReplayState) -> Result:
    if state.cursor <= 0:
        return attrs.evolve(state, mode=Mode.PAUSED, message="first frame"), (RENDER,)
    return attrs.evolve(state, mode=Mode.PAUSED), (ShowIndex(state.cursor - 1), RENDER)


def _paused_or_end(state: ReplayState) -> Mode:
    return Mode.END if state.mode is Mode.END else Mode.PAUSED


def _faster(state: ReplayState) -> Result:
    return _speed(state, +1)


def _slower(state: ReplayState) -> Result:
    return _speed(state, -1)


def _speed(state: ReplayState, direction: int) -> Result:
    at = SPEEDS.index(state.speed) + direction
    if not 0 <= at < len(SPEEDS):
        edge = "fastest" if direction > 0 else "slowest"
        return attrs.evolve(state, message=f"{edge} speed"), (RENDER,)
    return attrs.evolve(state, speed=SPEEDS[at]), (RENDER,)


def _back_10s(state: ReplayState) -> Result:
    return _seek(state, state.position_ms - SEEK_STEP_MS)


def _ahead_10s(state: ReplayState) -> Result:
    return _seek(state, state.position_ms + SEEK_STEP_MS)


def _seek(state: ReplayState, position_ms: int) -> Result:
    """Move the playhead (clamped) and show the last frame at or before it; a seek leaves
    ``live`` and ``end`` (playing keeps playing)."""
    position = _clamp(position_ms, state.duration_ms)
    mode = Mode.PLAYING if state.mode is Mode.PLAYING else Mode.PAUSED
    return attrs.evolve(state, position_ms=position, mode=mode), (Seek(position), RENDER)


def _open_timecode(state: ReplayState) -> Result:
    return attrs.evolve(state, pending=""), (RENDER,)


def _toggle_loop(state: ReplayState) -> Result:
    return attrs.evolve(state, loop=not state.loop), (RENDER,)


def _go_live(state: ReplayState) -> Result:
    if not state.follow:
        return attrs.evolve(state, message="not following a live recording"), (RENDER,)
    edge = state.duration_ms
    return attrs.evolve(state, mode=Mode.LIVE, position_ms=edge), (Seek(edge), RENDER)


def _quit(state: ReplayState) -> Result:
    return state, (Quit(),)


KEYS: Final = {
    "space": _toggle_play,
    "]": _step_forward,
    "[": _step_back,
    "+": _faster,
    "=": _faster,
    "-": _slower,
    "_": _slower,
    "j": _back_10s,
    "k": _ahead_10s,
    "g": _open_timecode,
    "L": _toggle_loop,
    "G": _go_live,
    "q": _quit,
    "esc": _quit,
}


# --------------------------------------------------------------------------- timecode entry


def _timecode_key(state: ReplayState, key: str) -> Result:
    text = state.pending or ""
    if key == "esc":
        return attrs.evolve(state, pending=None, message=None), (RENDER,)
    if key == "backspace":
        return attrs.evolve(state, pending=text[:-1]), (RENDER,)
    if key == "enter":
        return _enter_timecode(attrs.evolve(state, pending=None), text)
    if len(key) == 1 and key in TIMECODE_CHARS and len(text) < MAX_PENDING:
        return attrs.evolve(state, pending=text + key), (RENDER,)
    return state, ()  # captured: no other key acts while typing


def _enter_timecode(state: ReplayState, text: str) -> Result:
    if not text:
        return state, (RENDER,)
    last_key = state.first_key_ms + state.duration_ms
    try:
        target = resolve_timecode(
            parse_timecode(text), state.first_key_ms, last_key, state.tz or UTC
        )
    except (UsageError, ValueError, OverflowError) as err:
        return attrs.evolve(state, message=_short(err)), (RENDER,)
    moved, commands = _seek(state, target)
    if target > state.duration_ms:
        return attrs.evolve(moved, message=f"{text} is after the end: last frame"), commands
    if target < 0:
        return attrs.evolve(moved, message=f"{text} is before the start: first frame"), commands
    return moved, commands


def _short(err: Exception) -> str:
    """``invalid timecode '12:75'`` — the message up to its hint (which follows ``': '``)."""
    text = str(err)
    return text.rsplit(": ", 1)[0] if isinstance(err, UsageError) else "invalid timecode"


# --------------------------------------------------------------------------- time passing


def _tick(state: ReplayState, dt_ms: int) -> Result:
    if state.mode is not Mode.PLAYING or dt_ms == 0:
        return state, ()
    position = state.position_ms + int(dt_ms * state.speed)
    message = state.message
    jump = _gap_jump(state, position)
    if jump is not None:
        position, message = jump
    if position >= state.duration_ms:
        return _reached_end(state)
    state = attrs.evolve(state, position_ms=position, message=message)
    due = state.next_key_ms is not None and state.first_key_ms + position >= state.next_key_ms
    return state, ((Seek(position), RENDER) if due else (RENDER,))


def _gap_jump(state: ReplayState, position: int) -> tuple[int, str] | None:
    """Jump over a gap longer than ten intervals once the next frame would normally have
    come: the new playhead and the message saying how long the gap was."""
    interval, next_key = state.interval_ms, state.next_key_ms
    if interval is None or next_key is None:
        return None
    gap = next_key - state.cursor_key_ms
    if gap <= GAP_INTERVALS * interval:
        return None
    if state.first_key_ms + position < state.cursor_key_ms + interval:
        return None
    return max(position, next_key - state.first_key_ms), f"gap {format_gap(gap)}"


def _reached_end(state: ReplayState) -> Result:
    if state.loop and state.duration_ms > 0:
        return attrs.evolve(state, position_ms=0), (Seek(0), RENDER)
    end = state.duration_ms
    if state.follow:  # caught up with a recording still being written
        return attrs.evolve(state, position_ms=end, mode=Mode.LIVE), (Seek(end), RENDER)
    return attrs.evolve(state, position_ms=end, mode=Mode.END), (Seek(end), RENDER)


def _shown(state: ReplayState, event: FrameShown) -> Result:
    index = min(max(0, event.index), state.last_index)
    position = state.position_ms
    if event.stepped:
        position = _clamp(event.key_ms - state.first_key_ms, state.duration_ms)
    state = attrs.evolve(
        state,
        cursor=index,
        cursor_t_ms=event.t_ms,
        cursor_key_ms=event.key_ms,
        next_key_ms=event.next_key_ms,
        position_ms=position,
    )
    return state, (RENDER,)


def _grew(state: ReplayState, event: TimelineGrew) -> Result:
    first = state.first_key_ms if event.first_key_ms is None else event.first_key_ms
    grown = _recounted(state, event.frame_count, event.duration_ms, first, event.dropped)
    if grown.mode is Mode.LIVE:
        return attrs.evolve(grown, position_ms=grown.duration_ms), (Seek(grown.duration_ms), RENDER)
    if event.dropped > 0 or state.next_key_ms is None:
        # The start moved, or the frame on screen was the last: ask the shell again, so
        # the cursor and the key of the frame after it are current (playing goes on).
        return grown, (Seek(grown.position_ms), RENDER)
    return grown, (RENDER,)


def _rebuilt(state: ReplayState, event: TimelineRebuilt) -> Result:
    """Whatever the mode, the frame to show is found again by the playhead (live: the
    edge), since the index on screen may now name another frame."""
    rebuilt = _recounted(
        state, event.frame_count, event.duration_ms, event.first_key_ms, event.dropped
    )
    if rebuilt.mode is Mode.LIVE:
        rebuilt = attrs.evolve(rebuilt, position_ms=rebuilt.duration_ms)
    return rebuilt, (Seek(rebuilt.position_ms), RENDER)


def _recounted(
    state: ReplayState, frame_count: int, duration_ms: int, first_key_ms: int, dropped: int
) -> ReplayState:
    """The state over a timeline of ``frame_count`` frames from ``first_key_ms``, the
    playhead kept on the same recorded instant when the start moved (eviction)."""
    count = max(1, frame_count)
    duration = max(0, duration_ms)
    position = _clamp(state.position_ms + state.first_key_ms - first_key_ms, duration)
    recounted = attrs.evolve(
        state,
        frame_count=count,
        duration_ms=duration,
        first_key_ms=first_key_ms,
        position_ms=position,
        cursor=min(max(0, state.cursor - max(0, dropped)), count - 1),
        message=_evicted_message(dropped) or state.message,
    )
    if recounted.mode is Mode.END and duration > state.duration_ms:
        recounted = attrs.evolve(recounted, mode=Mode.PAUSED)  # there is more to play now
    return recounted


def _evicted_message(dropped: int) -> str | None:
    return f"{dropped} oldest frames were evicted by rotation" if dropped > 0 else None


def _clamp(position_ms: int, duration_ms: int) -> int:
    return min(max(0, position_ms), max(0, duration_ms))
