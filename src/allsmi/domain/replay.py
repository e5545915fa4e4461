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
- A frame's **label** is its offset from the first key rounded to the nearest second (half
  up): 24.003 s and 24.6 s read ``00:00:24`` and ``00:00:25``. The status shows the label of
  the frame on screen, so successive frames of a jittery 1 s recording read successive
  seconds. Going to a second (``g``, ``--start``, ``j``/``k``) is a ``Land``: the first frame
  whose label is that second, else the last frame before it; a wall-clock second
  (``@16:21:32``) lands on the first frame recorded within it. The playhead moves to the
  frame landed on.
- The shell tells the core when the recording changes under it: ``TimelineGrew`` (frames
  added at the end, evicted from the start) or ``TimelineRebuilt`` (frames counted anew:
  a file truncated or replaced, a seek table that lied), so the frame count never goes
  stale. ``RecorderChanged`` says the followed recording's recorder stopped (``live`` ends:
  the end is the end, "recording ended") or started again on the same path (followed again).
- Keys are names (``"space"``, ``"]"``, ``"enter"``) looked up in a data table; a key the
  replay does not use is handed back as ``PassToView`` (tabs, scrolling, help). While a
  timecode is being typed (``pending``) every key belongs to the entry.
- ``e`` opens the event list (``listing``): the events known so far (``EventsFound``), only
  the host's on a host tab (the shell says which with ``TabShown``). While it is open, ↑ ↓
  PgUp PgDn Home End move its selection (the window scrolls with it, ``ListRows`` high),
  Enter goes to the selected event's frame, paused, as ``n`` does, and closes it; ``e`` or
  Esc closes it. Every other key does what it does without the list (←/→ change the tab and
  so the list's host; ``q`` quits), and the list stays open.

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
from allsmi.domain.parse import (
    MS_PER_SECOND,
    Offset,
    format_gap,
    parse_timecode,
    resolve_timecode,
)

SPEEDS: Final = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
SEEK_STEP_MS: Final = 10_000
GAP_INTERVALS: Final = 10  # a gap longer than this many intervals is skipped while playing
TIMECODE_CHARS: Final = frozenset("0123456789:@-+.TZtz")
MAX_PENDING: Final = 32
HALF_SECOND_MS: Final = MS_PER_SECOND // 2
RECORDING_ENDED: Final = "recording ended"


class Mode(enum.Enum):
    PAUSED = "paused"
    PLAYING = "playing"
    END = "end"
    LIVE = "live"


def _check_speed(_: object, __: attrs.Attribute[float], value: float) -> None:
    if value not in SPEEDS:
        raise ValueError(f"speed {value} is not on the ladder {SPEEDS}")


@attrs.frozen
class ListedEvent:
    """One event as the list shows it."""

    offset_ms: int  # from the first key
    host: str | None  # host id (the list's filter); None: the recording as a whole
    where: str  # the host's shown name, or ``recording``
    gpu: str | None  # the GPU's index (else its uuid); None: no one GPU
    kind: str
    message: str

    @property
    def label(self) -> str:
        """What the message line says of it (as ``n`` says of a lone event)."""
        gpu = f" GPU{self.gpu}" if self.gpu is not None else ""
        return f"{self.where}{gpu}: {self.kind}: {self.message}"


@attrs.frozen
class EventList:
    """The open event list: the selected row and the first row shown, both indexes into
    the events of the tab (:func:`listed`)."""

    selected: int = 0
    top: int = 0


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
    ended: bool = False  # following, and its recorder exited: there is no live edge now
    indexing: int | None = None  # percent of the recording indexed; None once it all is
    frames_estimate: int | None = None  # the frame count extrapolated while indexing
    whole_ms: int | None = None  # indexing: the whole duration, where it is known ahead
    waiting: tuple[int, int] | None = None  # a Land past what is indexed yet, held until it is
    pending: str | None = None  # timecode text being typed after `g`
    message: str | None = None
    stops: tuple[tuple[int, str], ...] | None = None  # events (n/N); None: not looked for
    stops_complete: bool = False  # every frame looked at for events
    events: tuple[ListedEvent, ...] = ()  # every event found so far, in time order (`e`)
    tab_host: str | None = None  # the host of the tab shown; None: the cluster (All)
    listing: EventList | None = None  # the event list, while it is open
    list_rows: int = attrs.field(default=10, validator=attrs.validators.ge(1))  # its window
    interval_ms: int | None = None  # the recording's interval, for gap skipping
    tz: tzinfo | None = None  # the local zone, for `@HH:MM` timecodes

    @position_ms.validator
    def _within(self, _: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= self.duration_ms:
            raise ValueError(f"position {value} outside [0, {self.duration_ms}]")

    @property
    def last_index(self) -> int:
        return self.frame_count - 1

    @property
    def has_live_edge(self) -> bool:
        """Following a recorder that is still running: the end is the live edge."""
        return self.follow and not self.ended


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
class IndexProgress:
    """The background index grew: ``percent`` of the recording's bytes are indexed (None:
    all of them), and about ``frames_estimate`` frames are expected in all; the whole
    recording lasts ``whole_ms`` when its end could be read ahead of the index (None: not
    known yet, the duration grows with the index)."""

    percent: int | None
    frames_estimate: int | None = None
    whole_ms: int | None = None


@attrs.frozen
class RecorderChanged:
    """Following: the recorder stopped (its lock was released: a clean exit or a kill, and
    every frame it wrote has been read), or a recorder started on the same path again."""

    running: bool


@attrs.frozen
class Resized:
    width: int
    height: int


@attrs.frozen
class EventsFound:
    """The recording's events as far as they are known: one stop per event time, ``(offset
    from the first key, what happened there)``, in time order; ``complete`` once every
    frame has been looked at; ``problem``: why the search stopped short (said once on the
    message line; ``n`` goes on with what was found)."""

    stops: tuple[tuple[int, str], ...]
    complete: bool
    problem: str | None = None
    events: tuple[ListedEvent, ...] = ()  # the events one by one, in time order (`e`)


@attrs.frozen
class TabShown:
    """The tab on screen changed: ``host`` (its id), or None for the cluster (All)."""

    host: str | None


@attrs.frozen
class ListRows:
    """How many rows of events the screen shows the event list in."""

    rows: int


Event = (
    KeyPressed
    | TickElapsed
    | FrameShown
    | TimelineGrew
    | TimelineRebuilt
    | IndexProgress
    | RecorderChanged
    | Resized
    | EventsFound
    | TabShown
    | ListRows
)


# --------------------------------------------------------------------------- commands


@attrs.frozen
class Seek:
    position_ms: int  # show the last frame whose seek key is ≤ first + position


@attrs.frozen
class Land:
    """Go to a second: show the first frame whose seek key lies in ``[first + from_ms,
    first + until_ms)``, else the last frame before ``first + from_ms`` (else the first
    frame). The answer is ``FrameShown(stepped=True)`` when the frame lies in the window
    (the playhead moves to it), else ``FrameShown(stepped=False)``."""

    from_ms: int
    until_ms: int


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


Command = Seek | Land | ShowIndex | Render | PassToView | Quit
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


def label_s(offset_ms: int) -> int:
    """A frame's label: its offset from the first key in whole seconds, rounded half up."""
    return (offset_ms + HALF_SECOND_MS) // MS_PER_SECOND


def second_window(second: int) -> tuple[int, int]:
    """The offsets whose label is ``second``: ``[second − 0.5 s, second + 0.5 s)``."""
    centre = second * MS_PER_SECOND
    return centre - HALF_SECOND_MS, centre + HALF_SECOND_MS


# --------------------------------------------------------------------------- opening


def initial(
    frame_count: int,
    first_key_ms: int,
    duration_ms: int,
    *,
    start: str | None = None,
    speed: float = 1.0,
    loop: bool = False,
    follow: bool = False,
    interval_ms: int | None = None,
    tz: tzinfo | None = None,
    live: bool = False,
    indexing: int | None = None,
    whole_ms: int | None = None,
) -> Result:
    """Open paused on the first frame, or landed at the timecode ``start`` (as ``g`` would
    go there; a malformed one raises :class:`UsageError`), or following at the live edge."""
    state = ReplayState(
        frame_count=max(1, frame_count),
        first_key_ms=first_key_ms,
        duration_ms=max(0, duration_ms),
        cursor_t_ms=first_key_ms,
        cursor_key_ms=first_key_ms,
        speed=speed,
        loop=loop,
        follow=follow,
        interval_ms=interval_ms,
        tz=tz,
        indexing=indexing,
        whole_ms=whole_ms if indexing is not None else None,
    )
    if live and follow:
        edge = state.duration_ms
        return attrs.evolve(state, mode=Mode.LIVE, position_ms=edge), (Seek(edge), RENDER)
    if start:
        return _go_to(state, start)
    # The first frame itself, not the last of several sharing its timestamp.
    return state, (ShowIndex(0), RENDER)


# --------------------------------------------------------------------------- the step


def step(state: ReplayState, event: Event) -> Result:
    """The whole of replay: (state, event) → (state, commands). Total; never raises."""
    match event:
        case KeyPressed(key=key):
            if state.pending is not None:
                return _timecode_key(state, key)
            if state.listing is not None and key in LIST_KEYS:
                return LIST_KEYS[key](attrs.evolve(state, message=None))
            return _key(attrs.evolve(state, message=None), key)
        case TickElapsed(dt_ms=dt):
            return _tick(state, max(0, dt))
        case FrameShown():
            return _shown(state, event)
        case TimelineGrew():
            return _grew(state, event)
        case TimelineRebuilt():
            return _rebuilt(state, event)
        case RecorderChanged(running=running):
            return _recorder(state, running)
        case IndexProgress():
            return _indexed(state, event)
        case Resized():
            return state, (RENDER,)
        case EventsFound(stops=stops, complete=complete, problem=problem, events=events):
            found = attrs.evolve(state, stops=stops, stops_complete=complete, events=events)
            found = _relisted(state, found)
            # New events are drawn (on the strip, in the list); the open list says when the
            # search is done.
            done = found.listing is not None and complete != state.stops_complete
            if problem is None:
                return found, ((RENDER,) if events != state.events or done else ())
            return attrs.evolve(found, message=problem), (RENDER,)
        case TabShown(host=host):
            if host == state.tab_host:
                return state, ()
            return _relisted(state, attrs.evolve(state, tab_host=host)), (RENDER,)
        case ListRows(rows=rows):
            rows = max(1, rows)
            if rows == state.list_rows:
                return state, ()
            resized = attrs.evolve(state, list_rows=rows)
            if resized.listing is None:
                return resized, ()
            return attrs.evolve(resized, listing=_window(resized, resized.listing.selected)), ()
        case _:
            assert_never(event)


def _key(state: ReplayState, key: str) -> Result:
    if state.waiting is not None and key in MOVING_KEYS:
        # Another move replaces a seek still waiting for the index; Esc only cancels it.
        state = attrs.evolve(state, waiting=None)
        if key == "esc":
            return attrs.evolve(state, message="seek cancelled"), (RENDER,)
    action = KEYS.get(key)
    if action is None:
        return state, (PassToView(key),)
    return action(state)


# --------------------------------------------------------------------------- key actions


def _toggle_play(state: ReplayState) -> Result:
    on_last = state.mode is Mode.PAUSED and state.cursor >= state.last_index
    at_last = on_last and not state.has_live_edge and state.indexing is None
    if state.mode is Mode.END or (at_last and state.frame_count > 1):
        # One press plays from the start: the last frame has nothing left to play.
        return attrs.evolve(state, mode=Mode.PLAYING, position_ms=0), (ShowIndex(0), RENDER)
    mode = Mode.PAUSED if state.mode in (Mode.PLAYING, Mode.LIVE) else Mode.PLAYING
    return attrs.evolve(state, mode=mode), (RENDER,)


def _step_forward(state: ReplayState) -> Result:
    if state.cursor >= state.last_index:
        if state.indexing is not None:  # the next frame is not indexed yet: wait for it
            after = state.cursor_key_ms - state.first_key_ms + 1
            return _land(attrs.evolve(state, mode=Mode.PAUSED), (after, after + STEP_WAIT_MS))
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
    return _land_on_second(state, label_s(state.position_ms) - SEEK_STEP_MS // MS_PER_SECOND)


def _ahead_10s(state: ReplayState) -> Result:
    return _land_on_second(state, label_s(state.position_ms) + SEEK_STEP_MS // MS_PER_SECOND)


def _land_on_second(state: ReplayState, second: int) -> Result:
    last = label_s(state.duration_ms)
    return _land(state, second_window(min(max(0, second), last)))


def _land(state: ReplayState, window: tuple[int, int]) -> Result:
    """Go to the frames of ``window`` (offsets): the playhead moves to its start (clamped),
    then to the frame landed on when that frame lies inside it (``FrameShown(stepped)``); a
    window with no frame keeps the playhead there, so ``k`` after ``k`` crosses a gap. A
    seek leaves ``live`` and ``end``."""
    start, until = window
    if state.indexing is not None and start > state.duration_ms:
        waiting = attrs.evolve(state, waiting=window)
        return attrs.evolve(waiting, message=_waiting_message(waiting)), (RENDER,)
    position = _clamp(max(start, 0), state.duration_ms)
    mode = Mode.PLAYING if state.mode is Mode.PLAYING else Mode.PAUSED
    moved = attrs.evolve(state, position_ms=position, mode=mode, waiting=None)
    return moved, (Land(start, until), RENDER)


def _open_timecode(state: ReplayState) -> Result:
    return attrs.evolve(state, pending=""), (RENDER,)


def _toggle_loop(state: ReplayState) -> Result:
    return attrs.evolve(state, loop=not state.loop), (RENDER,)


def _go_live(state: ReplayState) -> Result:
    if not state.follow:
        return attrs.evolve(state, message="not following a live recording"), (RENDER,)
    edge = state.duration_ms
    if state.ended:
        ended = attrs.evolve(state, mode=Mode.END, position_ms=edge, message=RECORDING_ENDED)
        return ended, (Seek(edge), RENDER)
    return attrs.evolve(state, mode=Mode.LIVE, position_ms=edge), (Seek(edge), RENDER)


def _quit(state: ReplayState) -> Result:
    return state, (Quit(),)


def _next_event(state: ReplayState) -> Result:
    return _event_stop(state, forward=True)


def _previous_event(state: ReplayState) -> Result:
    return _event_stop(state, forward=False)


def _event_stop(state: ReplayState, *, forward: bool) -> Result:
    """``n`` / ``N``: pause on the next / previous event strictly after / before the frame on
    screen (events sharing a time are one stop), the message naming it; the first frame
    of its time (``Land``)."""
    paused = attrs.evolve(state, mode=Mode.PAUSED if state.mode is Mode.PLAYING else state.mode)
    if state.stops is None:
        return attrs.evolve(paused, message="events are not looked for here"), (RENDER,)
    here = state.cursor_key_ms - state.first_key_ms
    if forward:
        found = next((stop for stop in state.stops if stop[0] > here), None)
    else:
        found = next((stop for stop in reversed(state.stops) if stop[0] < here), None)
    if found is None:
        where = "after" if forward else "before"
        still = "" if state.stops_complete else " yet (still looking through the recording)"
        return attrs.evolve(paused, message=f"no event {where} this frame{still}"), (RENDER,)
    offset, label = found
    moved, commands = _land(attrs.evolve(paused, mode=Mode.PAUSED), (offset, offset + 1))
    if moved.waiting is not None:  # beyond what is indexed: the waiting message stays
        return moved, commands
    return attrs.evolve(moved, message=label), commands


# --------------------------------------------------------------------------- the event list


def listed(state: ReplayState) -> tuple[ListedEvent, ...]:
    """The events the list shows: all of them on the cluster tab, the host's on its tab."""
    if state.tab_host is None:
        return state.events
    return tuple(event for event in state.events if event.host == state.tab_host)


def _open_list(state: ReplayState) -> Result:
    """``e``: open the list on the first event at or after the frame on screen (else the
    last); ``e`` again closes it."""
    if state.listing is not None:
        return _close_list(state)
    if state.stops is None:
        return attrs.evolve(state, message="events are not looked for here"), (RENDER,)
    opened = attrs.evolve(state, listing=_window(state, _nearest(state, listed(state))))
    return opened, (RENDER,)


def _close_list(state: ReplayState) -> Result:
    return attrs.evolve(state, listing=None), (RENDER,)


def _nearest(state: ReplayState, events: tuple[ListedEvent, ...]) -> int:
    here = state.cursor_key_ms - state.first_key_ms
    at = next((i for i, event in enumerate(events) if event.offset_ms >= here), None)
    return max(0, len(events) - 1) if at is None else at


def _window(state: ReplayState, selected: int) -> EventList:
    """The list with ``selected`` (clamped) and its window moved just enough to show it."""
    count = len(listed(state))
    selected = min(max(0, selected), max(0, count - 1))
    rows = state.list_rows
    top = state.listing.top if state.listing is not None else selected
    top = min(max(top, selected - rows + 1), selected)
    return EventList(selected=selected, top=max(0, min(top, count - rows)))


def _relisted(before: ReplayState, after: ReplayState) -> ReplayState:
    """``after`` (more events, or another tab) with the list's selection kept on the same
    event where it is still listed, else on the nearest one to the frame on screen."""
    if after.listing is None:
        return after
    old, new = listed(before), listed(after)
    if old == new:
        return after
    selected = before.listing.selected if before.listing is not None else 0
    if 0 <= selected < len(old) and old[selected] in new:
        at = new.index(old[selected])
        if before.tab_host == after.tab_host:  # the same window over more events
            shift = at - selected
            moved = attrs.evolve(after.listing, top=after.listing.top + shift)
            return attrs.evolve(after, listing=_window(attrs.evolve(after, listing=moved), at))
        return attrs.evolve(after, listing=_window(attrs.evolve(after, listing=None), at))
    nearest = _nearest(after, new)
    return attrs.evolve(after, listing=_window(attrs.evolve(after, listing=None), nearest))


def _list_move(state: ReplayState, by: int) -> Result:
    assert state.listing is not None  # only called while the list is open
    return attrs.evolve(state, listing=_window(state, state.listing.selected + by)), (RENDER,)


def _list_go(state: ReplayState) -> Result:
    """Enter: go to the selected event's frame, paused (as ``n`` does), and close the list."""
    events = listed(state)
    closed = attrs.evolve(state, listing=None)
    if state.listing is None or not events:
        return closed, (RENDER,)
    event = events[min(state.listing.selected, len(events) - 1)]
    offset = event.offset_ms
    moved, commands = _land(attrs.evolve(closed, mode=Mode.PAUSED), (offset, offset + 1))
    if moved.waiting is not None:  # beyond what is indexed: the waiting message stays
        return moved, commands
    return attrs.evolve(moved, message=event.label), commands


LIST_KEYS: Final = {
    "up": lambda s: _list_move(s, -1),
    "down": lambda s: _list_move(s, +1),
    "pgup": lambda s: _list_move(s, -s.list_rows),
    "pgdn": lambda s: _list_move(s, +s.list_rows),
    "home": lambda s: _list_move(s, -(1 << 40)),
    "end": lambda s: _list_move(s, 1 << 40),
    "enter": _list_go,
    "e": _close_list,
    "esc": _close_list,
}


STEP_WAIT_MS: Final = 1 << 40  # `]` at the indexed end: the first frame after, however far
MOVING_KEYS: Final = frozenset({"space", "]", "[", "j", "k", "G", "n", "N", "esc"})
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
    "n": _next_event,
    "N": _previous_event,
    "e": _open_list,
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
    try:
        return _go_to(state, text)
    except (UsageError, ValueError, OverflowError) as err:
        return attrs.evolve(state, message=_short(err)), (RENDER,)


def _go_to(state: ReplayState, text: str) -> Result:
    """Land at the timecode ``text``; raises on a malformed one (the caller decides whether
    that is a message or a usage error)."""
    start, until = target_window(state, text)
    moved, commands = _land(state, (start, until))
    if moved.waiting is not None:
        return moved, commands
    if start > state.duration_ms:
        return attrs.evolve(moved, message=f"{text} is after the end: last frame"), commands
    if until <= 0:
        return attrs.evolve(moved, message=f"{text} is before the start: first frame"), commands
    return moved, commands


def target_window(state: ReplayState, text: str) -> tuple[int, int]:
    """The offsets a timecode names. A whole second of offset is the frames labelled with
    it (:func:`second_window`); a whole wall-clock second is the frames recorded within it;
    a time with a fraction of a second is that instant exactly."""
    timecode = parse_timecode(text)
    first = state.first_key_ms
    target = resolve_timecode(timecode, first, first + state.duration_ms, state.tz or UTC)
    if isinstance(timecode, Offset):
        if target % MS_PER_SECOND == 0:
            return second_window(target // MS_PER_SECOND)
        return target, target + 1
    whole = (first + target) % MS_PER_SECOND == 0
    return target, target + (MS_PER_SECOND if whole else 1)


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
    if state.indexing is not None:  # the end of what is indexed yet: play on as it grows
        end = state.duration_ms
        return attrs.evolve(state, position_ms=end), (Seek(end), RENDER)
    if state.loop and state.duration_ms > 0:
        return attrs.evolve(state, position_ms=0), (Seek(0), RENDER)
    end = state.duration_ms
    if state.has_live_edge:  # caught up with a recording still being written
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
    if grown.waiting is not None and grown.waiting[0] <= grown.duration_ms:
        return _land(attrs.evolve(grown, waiting=None, message=None), grown.waiting)
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


def _indexed(state: ReplayState, event: IndexProgress) -> Result:
    """The index grew (or is done): the status follows; a seek that waited for it lands
    once it is done (past the end: on the last frame, said so)."""
    estimate = None if event.percent is None else event.frames_estimate
    whole = None if event.percent is None else event.whole_ms
    state = attrs.evolve(state, indexing=event.percent, frames_estimate=estimate, whole_ms=whole)
    if state.waiting is None:
        return state, (RENDER,)
    if event.percent is not None:
        return attrs.evolve(state, message=_waiting_message(state)), (RENDER,)
    window, state = state.waiting, attrs.evolve(state, waiting=None, message=None)
    landed, commands = _land(state, window)
    if window[0] > state.duration_ms:
        landed = attrs.evolve(landed, message="after the end: last frame")
    return landed, commands


def _waiting_message(state: ReplayState) -> str:
    return f"indexing — {state.indexing or 0} % (the seek lands when it gets there; Esc cancels)"


def _recorder(state: ReplayState, running: bool) -> Result:
    """The recorder stopped: leave ``live`` (the end is the end now) and say so. It started
    again: what is at the end is live again, and a replay sitting there follows it."""
    if not state.follow or running != state.ended:
        return state, ()
    if not running:
        mode = Mode.END if state.mode is Mode.LIVE else state.mode
        return attrs.evolve(state, ended=True, mode=mode, message=RECORDING_ENDED), (RENDER,)
    resumed = attrs.evolve(state, ended=False, message="recording resumed: following it")
    if state.mode is Mode.END:
        edge = state.duration_ms
        return attrs.evolve(resumed, mode=Mode.LIVE, position_ms=edge), (Seek(edge), RENDER)
    return resumed, (RENDER,)


def _evicted_message(dropped: int) -> str | None:
    return f"{dropped} oldest frames were evicted by rotation" if dropped > 0 else None


def _clamp(position_ms: int, duration_ms: int) -> int:
    return min(max(0, position_ms), max(0, duration_ms))
