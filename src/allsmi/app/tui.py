"""The TUI composition root: one loop for live view and replay (docs/architecture.md §5.6).

The loop runs on the main thread (asciimatics installs signal handlers there): draw if
something changed, drain the keys, feed the time that passed, then wait on stdin until the
next frame is due. A model decides what is shown; the loop never branches on live vs replay.
The terminal and the clock are injected, so tests drive the loop with scripted keys on a
simulated clock, and the real program gets asciimatics and the OS clock.

Rules: the terminal is restored on every way out (``q``, an error, SIGTERM, SIGHUP, Ctrl-C);
warnings go to the message line, never to stderr under the screen; a resize reopens the
screen in-process and keeps every bit of state.

The Users page's export (``x``; :func:`~allsmi.domain.screen.exports_users`) is written here,
never in the view model: ``users-<frame time, UTC>.csv`` in ``$XDG_CACHE_HOME/allsmi/`` (else
``~/.cache/allsmi/``, created 0700), the file 0600 through a private temp file and a rename,
never through a symlink (:func:`allsmi.adapters.recording.files.atomic_write`). The message
line says where it went, or why it could not be written, until the next key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

import anyio
import attrs

from allsmi.adapters.csv_out import render_table
from allsmi.adapters.recording.eventscan import EventScan
from allsmi.adapters.recording.files import atomic_write
from allsmi.adapters.recording.follow import FollowingSource
from allsmi.adapters.recording.merged import MergedSource
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.clock import Clock
from allsmi.app.replay_driver import ReplayDriver
from allsmi.app.replay_map import MergedEvents, ReplayMap
from allsmi.app.signals import TUI_STOP_SIGNALS, wait_for_signal
from allsmi.domain import replay as core
from allsmi.domain.alerts_view import ALERT_HOLD_MS, MAX_ALERTS, Alert, alert_line
from allsmi.domain.energy import Energy, EnergyMeter, MapEnergy, replay_energy
from allsmi.domain.errors import AllsmiError, SinkFailed
from allsmi.domain.events import Detector, Event, stops
from allsmi.domain.history import MapView
from allsmi.domain.hosts import host_names
from allsmi.domain.model import Frame
from allsmi.domain.screen import (
    LIVE_KEYS_HELP,
    Status,
    StyledLine,
    ViewState,
    clamp_view,
    event_list_rows,
    event_list_view,
    exports_users,
    format_local,
    render,
    replay_keys_help,
    replay_status,
    tab_labels,
    users_table,
    view_key,
    view_takes,
)
from allsmi.domain.summary import Summary, bucket_of

RING_BUCKETS = 360  # live: an hour of 10-s buckets for the history sparklines
SCROLL_KEYS = frozenset({"up", "down", "pgup", "pgdn", "home", "end"})
# the alert line and the `A` panel (MAX_ALERTS live, ALERT_HOLD_MS, the order of kinds at
# one time): allsmi.domain.alerts_view
PLAYING_REDRAW_MS = 100  # the playhead clock redraws at 10 Hz while playing
IDLE_WAIT_MS = 1000
LIVE_POLL_MS = 100
FOLLOW_POLL_MS = 200  # how often a followed recording is checked for new frames


class Terminal(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def reopen(self) -> None: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def has_resized(self) -> bool: ...

    def read_keys(self) -> list[str]: ...

    def paint(self, lines: tuple[StyledLine, ...]) -> None: ...

    async def wait_input(self, timeout_ms: int) -> None: ...


class Model(Protocol):
    """What a screen shows and how it answers keys and time."""

    quit: bool
    dirty: bool

    def key(self, name: str) -> None: ...

    def elapsed(self, dt_ms: int) -> None: ...

    def resized(self, width: int, height: int) -> None: ...

    def lines(self, width: int, height: int) -> tuple[StyledLine, ...]: ...

    def wait_ms(self) -> int: ...


async def run_tui(
    terminal: Terminal,
    model: Model,
    clock: Clock,
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """Drive ``model`` on ``terminal`` until it quits or a signal arrives; ``background``
    (the live collector) runs beside the loop and stops with it."""
    terminal.open()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, tg.cancel_scope)
            if background is not None:
                tg.start_soon(background)
            await _loop(terminal, model, clock)
            tg.cancel_scope.cancel()
    finally:
        terminal.close()


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    await wait_for_signal(*TUI_STOP_SIGNALS)
    scope.cancel()


async def _loop(terminal: Terminal, model: Model, clock: Clock) -> None:
    last = clock.monotonic_ms()
    while not model.quit:
        if terminal.has_resized():
            terminal.reopen()
            model.resized(*terminal.size)
        now = clock.monotonic_ms()
        model.elapsed(now - last)  # the time that passed up to the keys that woke us
        last = now
        for name in terminal.read_keys():
            model.key(name)
            if model.quit:
                return
        if model.dirty:
            terminal.paint(model.lines(*terminal.size))
            model.dirty = False
        await terminal.wait_input(model.wait_ms())


# --------------------------------------------------------------------------- replay


@attrs.define
class ReplayModel:
    """``allsmi view --replay``: the replay driver plus tabs and scrolling, and the map of
    the recording (the strip and the history panel) while it is built behind."""

    driver: ReplayDriver
    tz: tzinfo
    view: ViewState = attrs.field(factory=ViewState)
    size: tuple[int, int] = (80, 24)
    quit: bool = False
    dirty: bool = True
    map: ReplayMap | None = None
    events: EventScan | MergedEvents | None = None  # behind `n` / `N`, found behind the replay
    notice: str | None = None  # the export's outcome, until the next key
    _since_poll: int = 0
    _events_told: tuple[int, bool] = (-1, False)  # (events, done) the core was last told of
    _first: Frame | None = None  # the recording's first frame (its energy counters)
    _map_energy: MapEnergy = attrs.Factory(MapEnergy)  # the map's sums so far

    def key(self, name: str) -> None:
        if self.notice is not None:
            self.notice, self.dirty = None, True
        if name == "esc" and self.view.help and self.driver.state.pending is None:
            self.view = attrs.evolve(self.view, help=False)  # Esc closes help, not the replay
            self.dirty = True
            return
        state = self.driver.state
        help_over_list = self.view.help and state.listing is not None
        core_busy = not (state.pending is None and state.listing is None and state.waiting is None)
        if help_over_list and name in SCROLL_KEYS:  # they scroll the help on top, not the list
            view_names = [name]
        elif view_takes(self.view, name) and (self.view.editing is not None or not core_busy):
            view_names = [name]  # the filter prompt's keys, and Esc clearing the filter
        else:
            self.driver.feed(core.KeyPressed(name))
            view_names = list(self.driver.view_keys)
        for view_name in view_names:
            if exports_users(self.view, view_name):
                self.notice = export_users(self.driver.frame(), self.view, self._hosts())
                self.dirty = True
                continue
            self.view = _navigate(
                self.view,
                view_name,
                self.driver.frame(),
                self._hosts(),
                self.size,
                self.status(),
                self.history(),
                self.shown_alerts(),
            )
            self.dirty = True
        self.driver.view_keys.clear()
        self._tell_tab()
        self.quit = self.driver.quit
        self.dirty = self.dirty or self.driver.dirty

    def _tell_tab(self) -> None:
        """Tell the core which host the tab shows (the event list lists its events)."""
        names = host_names(self.driver.frame(), self._hosts())
        tab = self.view.tab
        host = names.ids[tab - 1] if tab and len(names.ids) > 1 and tab <= len(names.ids) else None
        self.driver.feed(core.TabShown(host))

    def elapsed(self, dt_ms: int) -> None:
        if dt_ms > 0:
            self.driver.feed(core.TickElapsed(dt_ms))
            self.dirty = self.dirty or self.driver.dirty
        self._since_poll += dt_ms
        if self.polling and self._since_poll >= FOLLOW_POLL_MS:
            self._since_poll = 0
            if self.driver.polling and self.driver.poll():
                self.dirty = True
            if self.map is not None and self.map.poll():
                self.dirty = True
            self.poll_events()

    def poll_events(self) -> None:
        """Tell the core of the events found since (``n`` answers with those so far)."""
        scan = self.events
        if scan is None:
            return
        try:
            scan.poll()
        except AllsmiError as err:  # the search stops; the replay goes on
            self.events = None
            state = self.driver.state
            found = state.stops or ()
            problem = f"events: {err}"
            self.driver.feed(core.EventsFound(found, True, problem=problem, events=state.events))
            self.dirty = True
            return
        told = (len(scan.found), scan.done)
        if told != self._events_told:
            self._events_told = told
            source = self.driver.source
            expected = self._hosts()
            names = host_names(self.driver.frame(), expected).shown
            first = source.time_at(0)
            self.driver.feed(
                core.EventsFound(
                    stops(scan.found, first, names),
                    scan.done,
                    events=tuple(_listed(event, first, names) for event in scan.found),
                )
            )
            if scan.done:
                scan.close()
                self.events = None

    @property
    def polling(self) -> bool:
        """Whether something grows behind the screen: the index, a followed file, the map,
        the events."""
        building = self.map is not None and self.map.building
        return self.driver.polling or building or self.events is not None

    def history(self) -> MapView | None:
        source = self.driver.source
        if self.map is None or not isinstance(
            source, (RecordingSource, FollowingSource, MergedSource)
        ):
            return None
        state = self.driver.state
        view = self.map.view(source, state.cursor)
        marks = tuple((state.first_key_ms + e.offset_ms, e.host) for e in state.events)
        return attrs.evolve(view, marks=marks)

    def resized(self, width: int, height: int) -> None:
        self.driver.feed(core.Resized(width, height))
        self.dirty = True

    def wait_ms(self) -> int:
        if self.driver.state.mode is core.Mode.PLAYING:
            return PLAYING_REDRAW_MS
        return FOLLOW_POLL_MS if self.polling else IDLE_WAIT_MS

    def shown_alerts(self) -> tuple[Alert, ...]:
        """The alerts at the frame on screen (the footer and the ``A`` panel): the events
        the replay found (:attr:`~allsmi.domain.replay.ReplayState.events`) up to it, within
        :data:`ALERT_HOLD_MS` of recorded time before it."""
        state = self.driver.state
        here = state.cursor_key_ms - state.first_key_ms
        return tuple(
            _alert(state.first_key_ms + e.offset_ms, e.where, e, self.tz)
            for e in state.events
            if 0 <= here - e.offset_ms <= ALERT_HOLD_MS
        )

    def _hosts(self) -> tuple[str, ...]:
        header = self.driver.source.header
        return header.hosts if header and len(header.hosts) > 1 else ()

    def lines(self, width: int, height: int) -> tuple[StyledLine, ...]:
        self.size = (width, height)
        frame = self.driver.frame()
        history = self.history()
        listed = event_list_view(self.driver.state)
        if listed is not None:  # the list's window is what fits on screen
            hosts = self._hosts()
            rows = event_list_rows(
                frame,
                height,
                self.status(),
                expected_hosts=hosts,
                history=history,
                events=len(listed.events),
            )
            self.driver.feed(core.ListRows(rows))
        self.driver.dirty = False
        return render(
            frame,
            self.view,
            width,
            height,
            self.status(),
            expected_hosts=self._hosts(),
            title="allsmi replay",
            history=history,
            events=event_list_view(self.driver.state),
            alerts=self.shown_alerts() if self.view.alerts else (),
        )

    def status(self) -> Status:
        source = self.driver.source
        replay = replay_status(self.driver.state, self.tz, source.skipped_lines)
        message = self.notice or self.driver.state.message
        message = message or (source.warnings[-1] if source.warnings else None)
        if message is None and self.map is not None:
            message = self.map.problem
        if message is None:  # all-smi's alert footer, as live
            message = alert_line(self.shown_alerts(), self.driver.state.cursor_key_ms)
        keys = replay_keys_help(self.driver.state.mode, self.driver.state.has_live_edge)
        return Status(replay=replay, message=message, keys_help=keys, energy=self.energy())

    def energy(self) -> Energy | None:
        """From the recording's start to the frame on screen (:func:`replay_energy`)."""
        history = self.history()
        if history is None:
            return None
        source = self.driver.source
        if self._first is None and isinstance(source, (RecordingSource, FollowingSource)):
            self._first = source.frame(0)
        return replay_energy(history, self._first, self.driver.frame(), self._map_energy)


def _alert(t_ms: int, where: str | None, event: Event | core.ListedEvent, tz: tzinfo) -> Alert:
    """One event as the footer and the alert panel show it (its time of day in ``tz``)."""
    when = format_local(t_ms, tz).split(" ")[1]
    return Alert(t_ms, when, where, event.gpu, event.kind, event.message)


def _listed(event: Event, first_t_ms: int, names: Mapping[str, str]) -> core.ListedEvent:
    """One found event as the event list shows it (its host under its shown name)."""
    where = "recording" if event.host is None else names.get(event.host, event.host)
    return core.ListedEvent(
        event.t_ms - first_t_ms, event.host, where, event.gpu, event.kind, event.message
    )


def _navigate(
    view: ViewState,
    key: str,
    frame: Frame | None,
    hosts: tuple[str, ...],
    size: tuple[int, int],
    status: Status,
    history: MapView | None = None,
    alerts: tuple[Alert, ...] = (),
) -> ViewState:
    """A tab/scroll/help key, clamped to what the screen can show."""
    tabs = len(tab_labels(frame, hosts))
    page = max(1, size[1] - 8)
    moved = view_key(view, key, tabs, page, frame=frame, expected_hosts=hosts)
    return clamp_view(
        frame, moved, size[0], size[1], status,
        expected_hosts=hosts, history=history, alerts=alerts,
    )  # fmt: skip


# --------------------------------------------------------------------------- live


@attrs.define
class LiveModel:
    """``allsmi view``: the newest collected frame, tabs and scrolling, and the history of
    the last hour (:data:`RING_BUCKETS` buckets of the map's width) for the sparklines."""

    label: str
    tz: tzinfo
    expected_hosts: tuple[str, ...] = ()
    frame: Frame | None = None
    message: str | None = None
    view: ViewState = attrs.field(factory=ViewState)
    size: tuple[int, int] = (80, 24)
    quit: bool = False
    dirty: bool = True
    ring: Summary = attrs.field(init=False)
    # the replay's event detection, fed every frame shown: its events are the alert line
    detector: Detector = attrs.field(init=False)
    alerts: list[Event] = attrs.field(factory=list)  # the latest, at most MAX_ALERTS
    notice: str | None = None  # the export's outcome, until the next key
    # energy since the view started; `R` resets it (allsmi.domain.energy)
    meter: EnergyMeter = attrs.Factory(EnergyMeter)

    def __attrs_post_init__(self) -> None:
        self.ring = Summary(expected_hosts=self.expected_hosts)
        self.detector = Detector(expected_hosts=self.expected_hosts)

    def show(self, frame: Frame) -> None:
        self.frame = frame
        self.ring.add(frame)  # the same bucket function as the recording's map
        self.ring.trim_before(bucket_of(frame.t_ms, self.ring.width_ms) - RING_BUCKETS + 1)
        self.meter.feed(frame)
        found = self.detector.feed(frame)
        if found:
            self.alerts = [*self.alerts, *found][-MAX_ALERTS:]
        self.dirty = True

    def alert_line(self) -> str | None:
        """The message line's alert (all-smi's alert footer, from the recording's own
        detection; :func:`allsmi.domain.alerts_view.alert_line`): the newest event confirmed
        in the last five minutes of frames; None without one."""
        if self.frame is None:
            return None
        return alert_line(self.shown_alerts(), self.frame.t_ms)

    def shown_alerts(self) -> tuple[Alert, ...]:
        """The last :data:`MAX_ALERTS` events as the footer and the ``A`` panel show them."""
        names = host_names(self.frame, self.expected_hosts).shown
        return tuple(
            _alert(e.t_ms, names.get(e.host, e.host) if e.host else None, e, self.tz)
            for e in self.alerts
        )

    def history(self) -> MapView | None:
        return None if self.frame is None else MapView(self.ring, self.frame.t_ms)

    def key(self, name: str) -> None:
        if self.notice is not None:
            self.notice, self.dirty = None, True
        if name == "esc" and self.view.help:
            self.view = attrs.evolve(self.view, help=False)
            self.dirty = True
            return
        if name in ("q", "esc") and not view_takes(self.view, name):
            self.quit = True
            return
        if name == "R" and not view_takes(self.view, name):  # the view's energy session only
            self.meter.reset()
            self.dirty = True
            return
        if exports_users(self.view, name):
            self.notice = export_users(self.frame, self.view, self.expected_hosts)
            self.dirty = True
            return
        self.view = _navigate(
            self.view,
            name,
            self.frame,
            self.expected_hosts,
            self.size,
            self.status(),
            self.history(),
            self.shown_alerts(),
        )
        self.dirty = True

    def elapsed(self, dt_ms: int) -> None:
        return None

    def resized(self, width: int, height: int) -> None:
        self.dirty = True

    def wait_ms(self) -> int:
        return LIVE_POLL_MS  # a new frame may arrive from the collector at any time

    def status(self) -> Status:
        when = format_local(self.frame.t_ms, self.tz) if self.frame else "collecting..."
        return Status(
            replay=None,
            live_label=f"{self.label} | {when}",
            message=self.notice or self.message or self.alert_line(),
            keys_help=LIVE_KEYS_HELP,
            energy=self.meter.energy() if self.frame is not None else None,
        )

    def lines(self, width: int, height: int) -> tuple[StyledLine, ...]:
        self.size = (width, height)
        return render(
            self.frame,
            self.view,
            width,
            height,
            self.status(),
            expected_hosts=self.expected_hosts,
            title="allsmi",
            history=self.history(),
            alerts=self.shown_alerts() if self.view.alerts else (),
        )


# --------------------------------------------------------------------------- export


def export_dir() -> Path:
    """The user cache dir's ``allsmi``: ``$XDG_CACHE_HOME/allsmi`` (an absolute one, as the
    XDG spec says), else ``~/.cache/allsmi``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "allsmi"


def export_users(frame: Frame | None, view: ViewState, hosts: tuple[str, ...]) -> str:
    """Write the Users table (:func:`~allsmi.domain.screen.users_table`) as CSV to
    :func:`export_dir` (module header); the message line's text: the path, or the reason."""
    if frame is None:
        return "export: no frame yet"
    columns, rows = users_table(frame, view, hosts)
    when = datetime.fromtimestamp(frame.t_ms // 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    path = export_dir() / f"users-{when}.csv"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = render_table(columns, rows)
        try:  # a command line psutil read with surrogateescape (not UTF-8) keeps its bytes
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # any other lone surrogate: written escaped
            data = text.encode("utf-8", "backslashreplace")
        atomic_write(path, data)
    except SinkFailed as err:
        return f"export failed: {err}"
    except OSError as err:
        return f"export failed: cannot create {path.parent}: {err.strerror or err}"
    return f"exported {len(rows)} users to {path}"
