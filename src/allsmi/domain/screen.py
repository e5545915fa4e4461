"""The view model (docs/architecture.md §6, "one render pipeline"; §8, rule 11).

Rules this module obeys:
- Pure: ``render(frame, view, width, height, status)`` returns styled lines and does nothing
  else. The standard library and attrs only; the local zone arrives as a ``tzinfo``.
- The result is always exactly ``height`` lines of exactly ``width`` single-cell characters,
  at any size, for any frame; nothing here raises on data or keys.
- Nothing branches on live vs replay: the shell describes the bottom lines in a
  :class:`Status`, and only the status line shows the REPLAY (or LIVE) chip.
- A frame is drawn from itself alone: a host without rows is ``<host>: no data``, a section
  that was not collected is absent, a reading that is ``None`` is ``N/A``.
- Hosts are named once per frame (:func:`allsmi.domain.hosts.host_names`): the tab row, the
  rows, the ``no data`` lines, the process table and the overview's counts all read the same
  :class:`~allsmi.domain.hosts.HostNames`; a tab is selected by position, i.e. by id.

Theory of operation. The screen is, top to bottom: a title line, the cluster overview (two
lines, only for more than one host), the tab row (``All`` and one tab per host), the body,
then the message, status and key-help lines. Space goes to the status line first, then the
message, key help, title and tab row; panels (the overview) only while the body keeps twelve
lines, six GPUs (``MIN_BODY``); the body gets the rest. The body is a list of
blocks whose heights are known before any text is made (two lines per GPU, CPU rows, memory
rows, disks, the process table), so scrolling is clamped to the content and only the blocks
inside the window are turned into text: a 100-host frame costs a screenful of lines, not 800
GPUs' worth.

The All tab of a cluster (issue #20; the rules in :mod:`allsmi.domain.host_view`): the
overview's cards are followed by one status dot per host; the body opens with one summary
row per host (GPUs, mean utilization, VRAM, power, hottest GPU, state), the hosts in trouble
first and highlighted, before the per-GPU rows. The sort keys, ``f`` and the filter are
state of :class:`ViewState`, live and replay alike: ``d``/``u``/``g`` (and ``v``, since the
replay's ``g`` goes to a time) sort the GPUs, ``p``/``c``/``m`` the processes, ``f`` keeps
the processes that use a GPU, ``/`` opens the filter prompt on the key-help line (it takes
every key until Enter or Esc; :func:`view_takes` tells the shells); a line at the top of the
body says what is sorted or filtered.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, TypeAlias

import attrs

from allsmi.domain.alerts_view import Alert, alert_panel_lines, alert_top
from allsmi.domain.energy import Energy, format_energy
from allsmi.domain.history import (
    PANEL_HEIGHT,
    MapView,
    gpu_history_lines,
    panel_lines,
    strip_line,
)
from allsmi.domain.host_view import (
    GPU_SORTS,
    NO_DATA,
    PROCESS_SORTS,
    HostSummary,
    Match,
    dot_state,
    failing_hosts,
    gpu_key,
    host_columns,
    host_header,
    host_line,
    host_summary,
    matcher,
    sort_processes,
    status_dots,
    trouble_first,
)
from allsmi.domain.hosts import HostNames, host_names
from allsmi.domain.model import Cpu, Frame, Gpu, GpuProcess, Memory, Storage
from allsmi.domain.parse import MS_PER_SECOND, format_offset
from allsmi.domain.replay import ListedEvent, Mode, ReplayState, label_s, listed
from allsmi.domain.screen_rows import (
    BOLD,
    CYAN,
    HEADER,
    PLAIN,
    RED,
    YELLOW,
    RowLayout,
    Span,
    Spans,
    Style,
    StyledLine,
    clean,
    cpu_height,
    cpu_lines,
    cut,
    disk_line,
    fit,
    health_line,
    health_notes,
    memory_lines,
    no_data_line,
    overview_lines,
    process_header,
    process_line,
    row_layout,
    workload_header,
    workload_line,
)
from allsmi.domain.screen_rows import gpu_lines as _gpu_lines
from allsmi.domain.summary import error_host
from allsmi.domain.topology_view import topology_height, topology_lines
from allsmi.domain.users_view import (
    CSV_COLUMNS,
    USER_SORT_KEYS,
    USER_SORTS,
    UsersPage,
    csv_cells,
    user_rows,
    users_data,
    users_lines,
)

__all__ = [
    "EventListView",
    "ReplayStatus",
    "Span",
    "Status",
    "Style",
    "StyledLine",
    "ViewState",
    "clamp_view",
    "event_list_rows",
    "event_list_view",
    "exports_users",
    "format_local",
    "render",
    "replay_status",
    "status_line",
    "tab_labels",
    "users_table",
    "view_key",
    "view_takes",
]

SCROLL_END: Final = 1 << 30  # "end": render clamps it to the last screenful
MAX_ERRORS: Final = 5
MIN_GPU_ROWS: Final = 6  # the vertical budget: panels fold before fewer GPUs fit
MIN_BODY: Final = 2 * MIN_GPU_ROWS  # body lines the panels leave (a GPU is two lines)
MAX_TAB_LABEL: Final = 24
CHIP_REPLAY: Final = Style(fg="black", bg="yellow")
CHIP_LIVE: Final = Style(fg="black", bg="green")
SELECTED_TAB: Final = Style(fg="black", bg="cyan")
STATUS_TEXT: Final = Style(fg="cyan")
TIMECODE_FORMS: Final = "HH:MM:SS, MM:SS, SS, @HH:MM[:SS], @2026-04-18T14:32:00Z"
LIVE_KEYS_HELP: Final = "h:Help q:Exit ←→:Tabs ↑↓:Scroll PgUp/PgDn:Page Home/End"
REPLAY_KEYS_HELP: Final = (  # up to q:Exit fits 80 columns (SPACE:Pause too; not G:Live)
    "SPACE:Play ]/[:Step +/-:Speed j/k:-/+10s g:Go n/N/e:Event L:Loop G:Live h:Help q:Exit ←→:Tabs"
)
FAILING_TAB: Final = Style(fg="red")
PAGE_PREFIX: Final = {"users": "Users: ", "topology": "Topology: "}  # the tab row's
FAILING_MARK: Final = "!"  # before the tab of a host with no rows in the frame shown


def replay_keys_help(mode: Mode, live_edge: bool) -> str:
    """The key-help line of a replay: SPACE says what it will do; ``G`` only while there is
    a live edge to go to."""
    keys = REPLAY_KEYS_HELP if live_edge else REPLAY_KEYS_HELP.replace(" G:Live", "")
    return keys.replace("SPACE:Play", "SPACE:Pause") if mode is Mode.PLAYING else keys


# --------------------------------------------------------------------------- view state


PAGES: Final = ("gpus", "users", "topology")


@attrs.frozen
class ViewState:
    """What the user chose to look at: a tab, a scroll offset, the help screen, the GPU and
    process sorts, the GPU-process filter (``f``), the filter text (``/``) and, while it is
    typed, the prompt's text (:mod:`allsmi.domain.host_view`)."""

    tab: int = attrs.field(default=0, validator=attrs.validators.ge(0))  # index, modulo tabs
    scroll: int = attrs.field(default=0, validator=attrs.validators.ge(0))  # body lines
    help: bool = False
    gpu_sort: str = attrs.field(default="default", validator=attrs.validators.in_(GPU_SORTS))
    process_sort: str = attrs.field(default="memory", validator=attrs.validators.in_(PROCESS_SORTS))
    gpu_processes: bool = False  # `f`: only the processes that use a GPU
    filter: str = ""  # applied (`/`, Enter); "" shows everything
    editing: str | None = None  # the filter prompt's text while it is open
    # the page the body shows (`V`/`U` Users, `T` Topology; docs/architecture.md §6), and
    # the Users page's sort, `f` there, the user/host drilled into and a cursor per level
    page: str = attrs.field(default="gpus", validator=attrs.validators.in_(PAGES))
    user_sort: str = attrs.field(default="vram", validator=attrs.validators.in_(USER_SORTS))
    hide_system: bool = False
    drill: tuple[str, ...] = ()  # (), (user,), (user, host id)
    cursor: tuple[int, ...] = (0,)  # one per level: len(drill) + 1
    # the alert panel (`A`; :mod:`allsmi.domain.alerts_view`) and its first row shown
    alerts: bool = False
    alert_top: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    @property
    def lens(self) -> bool:
        """Whether a sort, filter or toggle differs from the default (a line says which)."""
        return (
            self.gpu_sort != "default"
            or self.process_sort != "memory"
            or self.gpu_processes
            or bool(self.filter)
        )


_Move: TypeAlias = Callable[[ViewState, int, int], ViewState]  # (view, tab count, page)

_VIEW_KEYS: Final[Mapping[str, _Move]] = {
    "left": lambda v, n, _: attrs.evolve(v, tab=(v.tab - 1) % n, scroll=0),
    "right": lambda v, n, _: attrs.evolve(v, tab=(v.tab + 1) % n, scroll=0),
    "up": lambda v, _, __: attrs.evolve(v, scroll=max(v.scroll - 1, 0)),
    "down": lambda v, _, __: attrs.evolve(v, scroll=v.scroll + 1),
    "pgup": lambda v, _, page: attrs.evolve(v, scroll=max(v.scroll - page, 0)),
    "pgdn": lambda v, _, page: attrs.evolve(v, scroll=v.scroll + page),
    "home": lambda v, _, __: attrs.evolve(v, scroll=0),
    "end": lambda v, _, __: attrs.evolve(v, scroll=SCROLL_END),
    "h": lambda v, _, __: attrs.evolve(v, help=not v.help, scroll=0),
    "?": lambda v, _, __: attrs.evolve(v, help=not v.help, scroll=0),
    # all-smi's sort keys (docs/architecture.md §6); `g` is the replay's go-to key, so
    # there (the core takes `g` first) VRAM sorts with `v`, which live answers too
    "d": lambda v, _, __: attrs.evolve(v, gpu_sort="default", scroll=0),
    "u": lambda v, _, __: attrs.evolve(v, gpu_sort="util", scroll=0),
    "g": lambda v, _, __: attrs.evolve(v, gpu_sort="memory", scroll=0),
    "v": lambda v, _, __: attrs.evolve(v, gpu_sort="memory", scroll=0),
    "p": lambda v, _, __: attrs.evolve(v, process_sort="pid"),
    "c": lambda v, _, __: attrs.evolve(v, process_sort="cpu"),
    "m": lambda v, _, __: attrs.evolve(v, process_sort="memory"),
    "f": lambda v, _, __: attrs.evolve(v, gpu_processes=not v.gpu_processes, scroll=0),
    "/": lambda v, _, __: attrs.evolve(v, editing=v.filter, help=False),
    "esc": lambda v, _, __: attrs.evolve(v, filter="", scroll=0) if v.filter else v,
    # the pages: all-smi's `V` (and `U`) Users and `T` Topology; again, or Esc, back
    "V": lambda v, _, __: _page(v, "users"),
    "U": lambda v, _, __: _page(v, "users"),
    "T": lambda v, _, __: _page(v, "topology"),
    # all-smi's alert panel: `A` again, or Esc, closes it (:func:`_alerts_key`)
    "A": lambda v, _, __: attrs.evolve(v, alerts=not v.alerts, alert_top=0, help=False),
}


def _alerts_key(view: ViewState, key: str, page: int) -> ViewState | None:
    """The open alert panel's keys (None: not one of them): ↑↓ PgUp/PgDn Home/End scroll
    it (:func:`render` clamps the far end), Esc closes it."""
    at = view.alert_top
    moves = {"up": at - 1, "down": at + 1, "pgup": at - page, "pgdn": at + page}
    moves |= {"home": 0, "end": SCROLL_END}
    if key in moves:
        return attrs.evolve(view, alert_top=max(moves[key], 0))
    if key == "esc":
        return attrs.evolve(view, alerts=False, alert_top=0)
    return None


def _page(view: ViewState, page: str) -> ViewState:
    """Open ``page`` (at its top level), or close it when it is open."""
    page = "gpus" if view.page == page else page
    return attrs.evolve(view, page=page, drill=(), cursor=(0,), scroll=0, help=False)


def _cursor(view: ViewState, to: int) -> ViewState:
    return attrs.evolve(view, cursor=(*view.cursor[:-1], max(to, 0)))


def _users_key(view: ViewState, key: str, page: int, users: UsersPage | None) -> ViewState | None:
    """The Users page's own keys (None: not one of them): ↑↓ PgUp/PgDn Home/End move the
    cursor, Enter drills into the user or host under it, Esc backs out (and, at the top,
    closes the page), ``u m p o t`` sort, ``f`` hides the system users; ←/→ change the tab
    and go back to the top level."""
    at = view.cursor[-1]
    moves = {"up": at - 1, "down": at + 1, "pgup": at - page, "pgdn": at + page}
    moves |= {"home": 0, "end": SCROLL_END}
    if key in moves:
        return _cursor(view, moves[key])
    if key in USER_SORT_KEYS:
        return attrs.evolve(view, user_sort=USER_SORT_KEYS[key], cursor=(0,), drill=())
    if key == "f":
        return attrs.evolve(view, hide_system=not view.hide_system, cursor=(0,), drill=())
    if key in ("left", "right"):
        return attrs.evolve(view, drill=(), cursor=(0,))
    if key == "esc" and not view.filter:
        if not view.drill:
            return attrs.evolve(view, page="gpus")
        return attrs.evolve(view, drill=view.drill[:-1], cursor=view.cursor[:-1])
    if key == "enter":
        name = users.pick(at) if users is not None else None
        if name is None:
            return view
        return attrs.evolve(view, drill=(*view.drill, name), cursor=(*view.cursor, 0))
    return None


MAX_FILTER: Final = 64  # characters the filter prompt takes


def _filter_key(view: ViewState, key: str) -> ViewState:
    """The open filter prompt takes every key: a character is typed (``space`` too),
    Backspace erases, Enter applies the text (to the top of the body), Esc closes the prompt
    and clears the filter."""
    text = view.editing or ""
    if key == "esc":
        return attrs.evolve(view, editing=None, filter="", scroll=0)
    if key == "enter":
        return attrs.evolve(view, editing=None, filter=text.strip(), scroll=0)
    if key == "backspace":
        return attrs.evolve(view, editing=text[:-1])
    char = " " if key == "space" else key
    if len(char) == 1 and char.isprintable() and len(text) < MAX_FILTER:
        return attrs.evolve(view, editing=text + char)
    return view


def view_takes(view: ViewState, key: str) -> bool:
    """Whether ``key`` is the view's before the shell's own use of it (quit, the replay's
    keys): every key while the filter prompt is open, Esc while a filter is applied (all-smi:
    Esc clears the filter first), while the alert panel is open (Esc closes it first) or
    while a page other than the GPUs' is open (Esc backs out of it first)."""
    if view.editing is not None:
        return True
    return key == "esc" and (bool(view.filter) or view.page != "gpus" or view.alerts)


def exports_users(view: ViewState, key: str) -> bool:
    """Whether ``key`` asks the shell to export the Users table (``x`` on the Users page;
    all-smi's ``e``, which the replay's event list keeps): the writing is the shell's."""
    return key == "x" and view.page == "users" and view.editing is None and not view.help


def view_key(
    view: ViewState, key: str, tab_count: int, page: int, *,
    frame: Frame | None = None, expected_hosts: Sequence[str] = (),
) -> ViewState:  # fmt: skip
    """Tabs wrap around; scrolling never goes below 0 (``render`` clamps the other end, and
    :func:`clamp_view` gives the shell the clamped state); while the filter prompt is open
    every key is its own (:func:`_filter_key`); on the Users page its own keys come first
    (:func:`_users_key`: Enter reads ``frame`` for the row under the cursor); on the
    Topology page Esc closes it; unknown keys change nothing."""
    if view.editing is not None:
        return _filter_key(view, key)
    if view.alerts and not view.help:  # the open alert panel's keys come first
        moved_alerts = _alerts_key(view, key, max(page, 1))
        if moved_alerts is not None:
            return moved_alerts
    if view.page == "users" and not view.help:
        users = _users_of(frame, view, expected_hosts) if key == "enter" else None
        moved = _users_key(view, key, max(page, 1), users)
        if moved is not None and key not in ("left", "right"):
            return moved
        view = moved or view  # ←/→: back to the top level, then the tab moves
    if view.page == "topology" and key == "esc" and not view.filter and not view.help:
        return attrs.evolve(view, page="gpus", scroll=0)
    move = _VIEW_KEYS.get(key)
    if move is None:
        return view
    return move(view, max(tab_count, 1), max(page, 1))


# --------------------------------------------------------------------------- status


@attrs.frozen
class ReplayStatus:
    position_ms: int  # the shown frame's offset from the first (shown as its label)
    duration_ms: int
    speed: float
    mode: str  # paused | playing | end | live
    loop: bool
    frame_no: int  # 1-based
    frame_total: int
    recorded_at: str  # the shown frame's wall time, already formatted (format_local)
    skipped: int = 0  # damaged lines skipped while reading
    pending: str | None = None  # timecode being typed after `g`
    indexing: int | None = None  # percent indexed while the index is built; None when done
    whole_ms: int | None = None  # indexing: the whole duration, known ahead of the index


@attrs.frozen
class Status:
    """The bottom lines, prepared by the shell."""

    replay: ReplayStatus | None = None  # None: live
    live_label: str = "LIVE"  # the chip when live: "LIVE local", "LIVE 100 hosts"
    message: str | None = None
    keys_help: str = LIVE_KEYS_HELP
    # each GPU's and host's energy (:mod:`allsmi.domain.energy`): on GPU rows with room
    # and in the All tab's host rows; None: not shown
    energy: Energy | None = None


def replay_status(state: ReplayState, tz: tzinfo, skipped: int = 0) -> ReplayStatus:
    """The status of a replay core's state, its recorded time in zone ``tz``."""
    return ReplayStatus(
        position_ms=state.cursor_key_ms - state.first_key_ms,
        duration_ms=state.duration_ms,
        speed=state.speed,
        mode=state.mode.value,
        loop=state.loop,
        frame_no=state.cursor + 1,
        frame_total=state.frame_count
        if state.indexing is None
        else max(state.frame_count, state.frames_estimate or 0),
        recorded_at=format_local(state.cursor_t_ms, tz),
        skipped=skipped,
        pending=state.pending,
        indexing=state.indexing,
        whole_ms=state.whole_ms,
    )


@attrs.frozen
class EventListView:
    """The open event list (``e``) as the body shows it: the tab's events, the selected
    row and the first row shown, whether the search still runs."""

    events: tuple[ListedEvent, ...]
    selected: int
    top: int
    searching: bool


def event_list_view(state: ReplayState) -> EventListView | None:
    """The event list of a replay core's state; None while it is closed."""
    if state.listing is None:
        return None
    return EventListView(
        listed(state), state.listing.selected, state.listing.top, not state.stops_complete
    )


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def format_local(t_ms: int, tz: tzinfo) -> str:
    """Epoch ms → ``2026-04-18 14:32:05 CEST`` in ``tz`` (whole seconds, floored); a zone
    without a name (``+02``) reads ``UTC+02:00``."""
    try:
        moment = (_EPOCH + timedelta(seconds=t_ms // 1000)).astimezone(tz)
    except (OverflowError, ValueError):
        return f"t={t_ms} ms"
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        name = _utc_offset(moment.utcoffset())
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment:%H:%M:%S}"
    return f"{text} {name}" if name else text


def _utc_offset(offset: timedelta | None) -> str:
    if offset is None:
        return ""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minute = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minute:02d}"


def speed_text(speed: float) -> str:
    """``0.25x 0.5x 1.0x 2.0x 4.0x 8.0x``: one decimal unless a second one is needed."""
    if speed != speed or speed in (float("inf"), float("-inf")):
        return f"{speed}x"
    return f"{speed:.1f}x" if round(speed * 10) == speed * 10 else f"{speed:.2f}x"


def format_label(offset_ms: int) -> str:
    """A frame's offset as the status shows it: its label, ``HH:MM:SS`` (rounded half up)."""
    return format_offset(label_s(max(offset_ms, 0)) * MS_PER_SECOND)


def _replay_forms(replay: ReplayStatus) -> list[str]:
    """The status text from its full form to its most compact, one part shortened or
    dropped at each step (README, "The status line"): the recorded date goes first (the
    time of day stays), then the word ``frame``, then ``skipped N``, then ``n/N``, then the
    recorded time. Position / duration, speed, mode and ``loop`` always stay."""
    when = clean(replay.recorded_at)
    clock = when.split(" ", 1)[-1]  # "2026-04-18 12:00:07 UTC" → "12:00:07 UTC"
    approx = "~" if replay.indexing is not None else ""  # the total is an estimate
    count = f"{replay.frame_no}/{approx}{replay.frame_total}"
    skipped = f"skipped {replay.skipped}" if replay.skipped > 0 else None
    steps: list[tuple[str | None, str | None, str | None]] = [
        (when, f"frame {count}", skipped),
        (clock, f"frame {count}", skipped),
        (clock, count, skipped),
        (clock, count, None),
        (clock, None, None),
        (None, None, None),
    ]
    duration = format_label(replay.duration_ms)  # while indexing: what is indexed, growing
    if replay.indexing is not None:
        whole = replay.whole_ms
        duration = "~" + duration if whole is None else format_label(max(whole, 0))
    head = [
        f"{format_label(replay.position_ms)} / {duration}",
        speed_text(replay.speed),
        clean(replay.mode),
    ]
    if replay.indexing is not None:
        head.append(f"indexing {replay.indexing} %")
    loop = "loop" if replay.loop else None
    return [
        " | ".join(part for part in (*head, at, loop, frame, damage) if part is not None)
        for at, frame, damage in steps
    ]


def _replay_text(replay: ReplayStatus, room: int) -> str:
    """The longest form of the status text that fits in ``room`` cells."""
    if replay.pending is not None:
        entry = clean(replay.pending)
        return f"go to: {entry}_  ({TIMECODE_FORMS}; Enter seek, Esc cancel)"
    forms = _replay_forms(replay)
    return next((text for text in forms if len(text) <= room), forms[-1])


def status_line(status: Status, width: int) -> StyledLine:
    """``REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | <recorded at> | loop | frame n/N``,
    compacted to fit ``width`` (:func:`_replay_forms`)."""
    replay = status.replay
    if replay is None:
        return fit([Span(clean(status.live_label), CHIP_LIVE)], width)
    live = replay.mode == "live"
    chip = Span("LIVE", CHIP_LIVE) if live else Span("REPLAY", CHIP_REPLAY)
    separator = " | "
    room = width - len(chip.text) - len(separator)
    return fit([chip, Span(separator + _replay_text(replay, room), STATUS_TEXT)], width)


# --------------------------------------------------------------------------- hosts and tabs


def tab_labels(frame: Frame | None, expected_hosts: Sequence[str] = ()) -> tuple[str, ...]:
    """``All`` and one tab per host, under its display name; a single host has just ``All``
    (its own rows)."""
    return _labels(host_names(frame, expected_hosts))


def _labels(names: HostNames) -> tuple[str, ...]:
    return ("All", *names.names) if len(names.shown) > 1 else ("All",)


def _failing_tabs(names: HostNames) -> frozenset[int]:
    """The tab positions of hosts with no rows in the frame shown (marked on the tab row)."""
    return frozenset(at for at, host in enumerate(names.ids, start=1) if host in names.silent)


def _tab_window(cells: Sequence[int], selected: int, room: int) -> tuple[int, int]:
    """The tabs [lo, hi) shown: all when they fit, else grown around ``selected``."""
    if sum(cells) <= room:
        return 0, len(cells)
    room -= 2  # the "<" and ">" markers
    lo, hi, used = selected, selected + 1, cells[selected]
    grew = True
    while grew:
        grew = False
        if hi < len(cells) and used + cells[hi] <= room:
            used, hi, grew = used + cells[hi], hi + 1, True
        if lo > 0 and used + cells[lo - 1] <= room:
            used, lo, grew = used + cells[lo - 1], lo - 1, True
    return lo, hi


def _tab_row(
    labels: Sequence[str], selected: int, width: int, failing: frozenset[int] = frozenset(),
    prefix: str = "Tabs: ",
) -> StyledLine:  # fmt: skip
    """The tabs, windowed around the selected one; a failing host's tab reads ``!name``
    in red (unless selected). ``prefix`` names the page open (``Users:``, ``Topology:``)."""
    names = [
        (FAILING_MARK if at in failing else "") + cut(clean(label), MAX_TAB_LABEL)
        for at, label in enumerate(labels)
    ]
    lo, hi = _tab_window([len(name) + 2 for name in names], selected, width - len(prefix))
    windowed = (lo, hi) != (0, len(names))
    spans = [Span(prefix, CYAN)]
    if windowed:
        spans.append(Span("<" if lo > 0 else " ", YELLOW))
    for index in range(lo, hi):
        style = FAILING_TAB if index in failing else PLAIN
        spans.append(Span(f" {names[index]} ", SELECTED_TAB if index == selected else style))
    if windowed:
        spans.append(Span(">" if hi < len(names) else " ", YELLOW))
    return fit(spans, width)


# --------------------------------------------------------------------------- body blocks

Builder: TypeAlias = Callable[[int, int], Sequence[Spans]]  # lines [start, stop) of a block


@attrs.frozen
class Block:
    height: int
    build: Builder


def _lines_block(lines: Sequence[Spans]) -> Block:
    return Block(len(lines), lambda start, stop: lines[start:stop])


def _lazy_block(height: int, make: Callable[[], Sequence[Spans]]) -> Block:
    return Block(height, lambda start, stop: make()[start:stop])


@attrs.define
class _HostRows:
    gpus: list[Gpu] = attrs.Factory(list)
    cpus: list[Cpu] = attrs.Factory(list)
    memory: list[Memory] = attrs.Factory(list)
    storage: list[Storage] = attrs.Factory(list)
    processes: list[GpuProcess] = attrs.Factory(list)


def _index(frame: Frame | None) -> dict[str, _HostRows]:
    """Each host's rows, in frame order; one pass over every section."""
    index: dict[str, _HostRows] = {}
    if frame is None:
        return index

    def rows(host: str) -> _HostRows:
        found = index.get(host)
        if found is None:
            found = index[host] = _HostRows()
        return found

    for gpu in frame.gpus or ():
        rows(gpu.host_id).gpus.append(gpu)
    for cpu in frame.cpus or ():
        rows(cpu.host_id).cpus.append(cpu)
    for memory in frame.memory or ():
        rows(memory.host_id).memory.append(memory)
    for disk in frame.storage or ():
        rows(disk.host_id).storage.append(disk)
    for proc in frame.processes or ():
        rows(proc.host_id).processes.append(proc)
    return index


def _error_block(errors: Sequence[str]) -> list[Block]:
    """The frame's errors, at most five, then ``… N more``."""
    if not errors:
        return []
    lines = [[Span(clean(error), RED)] for error in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        lines.append([Span(f"… {len(errors) - MAX_ERRORS} more", RED)])
    return [_lines_block(lines)]


def _gpu_block(
    gpus: Sequence[Gpu], layout: RowLayout, hosts: str | Sequence[str], t_ms: int | None,
    energy: Energy | None = None,
) -> Block:  # fmt: skip
    """Two lines a GPU, and a health line under each that is not nominal (docs/recording-
    format.md §5.3.3; :func:`~allsmi.domain.screen_rows.health_notes`). ``hosts``: the
    host name of every GPU, or one for all."""

    def host(index: int) -> str:
        return hosts if isinstance(hosts, str) else hosts[index]

    def gpu_lines(gpu: Gpu, layout: RowLayout, host: str) -> tuple[Spans, Spans]:
        joules = None if energy is None else energy.gpu(gpu.host_id, gpu.uuid)
        return _gpu_lines(gpu, layout, host, None if joules is None else format_energy(joules))

    notes = [health_notes(gpu, t_ms) if gpu.health is not None else () for gpu in gpus]
    if not any(notes):  # the common case: two lines a GPU

        def build(start: int, stop: int) -> list[Spans]:
            out: list[Spans] = []
            for index in range(start // 2, (stop + 1) // 2):
                out += gpu_lines(gpus[index], layout, host(index))
            return out[start % 2 :][: stop - start]

        return Block(2 * len(gpus), build)
    starts: list[int] = []  # the first line of each GPU
    height = 0
    for said in notes:
        starts.append(height)
        height += 3 if said else 2

    def build_health(start: int, stop: int) -> list[Spans]:
        first = bisect_right(starts, start) - 1
        out: list[Spans] = []
        index = first
        while index < len(gpus) and starts[index] < stop:
            out += gpu_lines(gpus[index], layout, host(index))
            if notes[index]:
                out.append(health_line(notes[index]))
            index += 1
        return out[start - starts[first] :][: stop - start]

    return Block(height, build_health)


def _gpu_history_block(history: MapView, host: str, gpus: Sequence[Gpu], width: int) -> Block:
    """One line per GPU of the host: its utilization and memory over the last minutes."""
    labels = [(gpu.uuid, f"GPU{gpu.detail.get('index', i)}") for i, gpu in enumerate(gpus)]
    return _lazy_block(len(labels), lambda: gpu_history_lines(history, host, labels, width))


def _host_blocks(rows: _HostRows, layout: RowLayout, host: str) -> list[Block]:
    """CPU rows, memory rows and disks of one host, shown as ``host``."""
    blocks = [_cpu_block(cpu, layout, host) for cpu in rows.cpus]
    blocks += [_memory_block(memory, layout, host) for memory in rows.memory]
    if rows.storage:
        blocks.append(_disk_block(rows.storage, layout.width))
    return blocks


def _cpu_block(cpu: Cpu, layout: RowLayout, host: str) -> Block:
    return _lazy_block(cpu_height(cpu, layout.width), lambda: cpu_lines(cpu, layout, host))


def _memory_block(memory: Memory, layout: RowLayout, host: str) -> Block:
    return _lazy_block(2, lambda: memory_lines(memory, layout, host))


def _disk_block(disks: Sequence[Storage], width: int) -> Block:
    return Block(len(disks), lambda start, stop: [disk_line(d, width) for d in disks[start:stop]])


def _process_block(
    processes: Sequence[GpuProcess], names: HostNames | None, sort: str = "memory"
) -> list[Block]:
    """all-smi's process table, largest GPU memory first or as ``sort`` says (``p``, ``c``,
    ``m``; only the visible rows are built); with a HOST column, under the hosts' display
    names, unless ``names`` is None."""
    ordered = sort_processes(processes, sort)
    with_host = names is not None
    if not ordered:
        return [_lines_block([process_header(with_host), [Span("no GPU processes", PLAIN)]])]

    def build(start: int, stop: int) -> list[Spans]:
        header = [process_header(with_host)] if start == 0 else []
        rows = ordered[max(start - 1, 0) : stop - 1]
        return header + [
            process_line(proc, None if names is None else names.name(proc.host_id)) for proc in rows
        ]

    return [Block(len(ordered) + 1, build)]


def _workload_block(present: Sequence[tuple[str, _HostRows]], with_host: bool) -> list[Block]:
    """Where no process was collected (dcgm-exporter pages have none), the workloads the
    exporter names per GPU (its pod labels); nothing when it names none."""
    lines = [
        line
        for name, rows in present
        for gpu in rows.gpus
        if (line := workload_line(gpu, name if with_host else None)) is not None
    ]
    return [_lines_block([workload_header(with_host), *lines])] if lines else []


def _layout(shown: Sequence[tuple[str, _HostRows]], width: int) -> RowLayout:
    """One identity width for every row of the tab, so the readings line up in columns."""
    natural = 0
    for host, rows in shown:
        for gpu in rows.gpus:
            natural = max(natural, len(gpu.name) + 3 + len(host))
        for cpu in rows.cpus:
            natural = max(natural, len(cpu.cpu_model or "CPU") + 3 + len(host))
    return row_layout(width, natural)


_DEFAULT_VIEW: Final = ViewState()
_SORT_NAMES: Final = {"util": "utilization", "memory": "VRAM used", "pid": "PID", "cpu": "CPU %"}


def _filtered(
    index: Mapping[str, _HostRows],
    names: HostNames,
    hosts: Sequence[str],
    match: Match | None,
    gpu_processes: bool,
) -> tuple[dict[str, _HostRows], list[str]]:
    """The rows the filter and ``f`` leave, and the hosts still shown (in order): the
    matching rules of :mod:`allsmi.domain.host_view`'s header."""
    out: dict[str, _HostRows] = {}
    kept: list[str] = []
    for host in hosts:
        rows = index.get(host)
        hit = match is None or match.host(host, names.shown[host])
        if rows is None:
            if hit:
                kept.append(host)
            continue
        procs = [p for p in rows.processes if p.uses_gpu] if gpu_processes else rows.processes
        gpus = rows.gpus
        if match is not None and not hit:
            by_process = {p.device_uuid for p in procs if match.process(p)}
            matched = {g.uuid for g in gpus if match.gpu(g)}
            gpus = [g for g in gpus if g.uuid in matched or g.uuid in by_process]
            procs = [
                p
                for p in procs
                if p.device_uuid in matched or match.process_gpu(p) or match.process(p)
            ]
            if not gpus and not procs:
                continue
        kept.append(host)
        out[host] = _HostRows(gpus, rows.cpus, rows.memory, rows.storage, list(procs))
    return out, kept


def _lens_line(view: ViewState, hosts: int, gpus: int) -> Block:
    """What the sort keys, ``f`` and the filter changed, and what the filter leaves."""
    parts = []
    if view.gpu_sort != "default":
        parts.append(f"GPUs by {_SORT_NAMES[view.gpu_sort]}")
    if view.process_sort != "memory":
        parts.append(f"processes by {_SORT_NAMES[view.process_sort]}")
    if view.gpu_processes:
        parts.append("GPU processes only")
    if view.filter:
        said = f"{_count(hosts, 'host')}, {_count(gpus, 'GPU')}"
        parts.append(f'filter "{clean(view.filter)}": {said} (/ edits, Esc clears)')
    return _lines_block([[Span("view: ", CYAN), Span(" · ".join(parts), YELLOW)]])


def _host_blocks_at(
    frame: Frame | None, index: Mapping[str, _HostRows], names: HostNames,
    hosts: Sequence[str], width: int, gpu_sort: str, room: int, energy: Energy | None = None,
) -> tuple[list[Block], list[Block]]:  # fmt: skip
    """The All tab's summary, one row per host: those in trouble first and highlighted
    (:func:`~allsmi.domain.host_view.trouble_first`), then the others, as the blocks above
    and below the GPU rows. Like the panels, it stays above them only while the body
    (``room`` lines) keeps ``MIN_BODY`` lines for GPU rows: else the hosts in trouble stay
    above and the others go below the GPU rows, or, where even that does not fit, the whole
    table goes below them."""
    failing = failing_hosts(frame.errors, names.ids) if frame is not None else {}
    summaries: list[HostSummary] = []
    for host in hosts:
        rows = index.get(host)
        gpus = rows.gpus if rows is not None else ()
        joules = None if energy is None else energy.host(host)
        summary = host_summary(
            host, names.shown[host], gpus, rows is not None, failing.get(host), joules
        )
        summaries.append(summary)
    ordered = trouble_first(summaries, gpu_sort)
    columns = host_columns(ordered)
    trouble = [row for row in ordered if row.state != "ok"]
    header = host_header(len(trouble), columns, energy is not None)

    def table(rows: Sequence[HostSummary], title: Spans = header) -> Block:
        silent = [row for row in rows if not row.reporting]
        lines: list[HostSummary | None] = [*silent, None, *(r for r in rows if r.reporting)]

        def build(start: int, stop: int) -> list[Spans]:
            return [
                title if row is None else host_line(row, width, columns, energy is not None)
                for row in lines[start:stop]
            ]

        return Block(len(lines), build)

    if len(ordered) + 1 + MIN_BODY <= room:
        return [table(ordered)], []
    ok = ordered[len(trouble) :]
    if trouble and len(trouble) + 1 + MIN_BODY <= room:
        rest = [Span(f"{_count(len(ok), 'more host')}, ok", HEADER)]
        return [table(trouble)], ([table(ok, rest)] if ok else [])
    return [], [table(ordered)]


def _body(
    frame: Frame | None,
    names: HostNames,
    hosts: Sequence[str],
    width: int,
    history: MapView | None = None,
    view: ViewState = _DEFAULT_VIEW,
    room: int = 1 << 30,
    energy: Energy | None = None,
) -> list[Block]:
    """Errors; on the All tab of a cluster, one summary row per host; on a host's tab of a
    cluster, each GPU's history; each host's GPUs (or ``no data``, which the All tab's host
    rows say instead), in frame order or as the GPU sort says; each host's CPU, memory and
    disk rows; the process table when the frame collected processes. ``hosts`` are the ids
    of the tab; the filter and ``f`` leave some of them and their rows (:func:`_filtered`)."""
    whole, shown = _index(frame), names.shown
    all_tab, host_tab = len(hosts) > 1, len(hosts) == 1 and len(names.ids) > 1
    errors = frame.errors if frame is not None else ()
    index: Mapping[str, _HostRows] = whole
    match = matcher(view.filter)
    if match is not None or view.gpu_processes:
        index, hosts = _filtered(whole, names, hosts, match, view.gpu_processes)
        if match is not None:
            kept = set(hosts)
            errors = tuple(
                e for e in errors if match.text in e.lower() or error_host(e, names.ids) in kept
            )
    present = [(shown[host], index[host]) for host in hosts if host in index]
    layout = _layout(present, width)
    blocks = _error_block(errors)
    if view.lens:
        gpus = sum(len(rows.gpus) for _, rows in present)
        blocks.insert(0, _lens_line(view, len(hosts), gpus))
    if match is not None and not hosts:
        said = "nothing matches the filter (/ edits it, Esc clears it)"
        return [*blocks, _lines_block([[Span(said, YELLOW)]])]
    below: list[Block] = []
    if all_tab and hosts:
        left = room - sum(block.height for block in blocks)  # what errors leave
        above, below = _host_blocks_at(
            frame, whole, names, hosts, width, view.gpu_sort, left, energy
        )
        blocks += above
    if history is not None and host_tab and hosts and hosts[0] in index and index[hosts[0]].gpus:
        blocks.append(_gpu_history_block(history, hosts[0], index[hosts[0]].gpus, width))
    t_ms = frame.t_ms if frame is not None else None
    key = gpu_key(view.gpu_sort)
    for host in hosts:
        rows = index.get(host)
        if rows is None and not all_tab:  # the All tab's host rows say it once
            blocks.append(_lines_block([no_data_line(shown[host])]))
        elif rows is not None and rows.gpus and key is None:
            blocks.append(_gpu_block(rows.gpus, layout, shown[host], t_ms, energy))
    if key is not None:
        pairs = sorted(
            ((gpu, shown[host]) for host in hosts if host in index for gpu in index[host].gpus),
            key=lambda pair: key(pair[0]),
        )
        if pairs:
            gpus_sorted = [gpu for gpu, _ in pairs]
            names_sorted = [name for _, name in pairs]
            blocks.append(_gpu_block(gpus_sorted, layout, names_sorted, t_ms, energy))
    blocks += below
    for name, rows in present:
        blocks += _host_blocks(rows, layout, name)
    if frame is not None and frame.processes is not None:
        processes = [proc for _, rows in present for proc in rows.processes]
        blocks += _process_block(processes, names if all_tab else None, view.process_sort)
    elif frame is not None:
        blocks += _workload_block(present, all_tab)
    return blocks or [_lines_block([[Span("no data", RED)]])]


_HELP_KEYS: Final = (
    ("q / Esc", "quit"),
    ("← / →", "previous / next tab"),
    ("↑ / ↓", "scroll one line"),
    ("PgUp / PgDn", "scroll one page"),
    ("Home / End", "top / bottom"),
    ("h / ?", "show / hide this help"),
    # (no "GPU" in upper case here: the help screen is told from the body by it)
    ("d / u / g", "sort devices: frame order / utilization / VRAM used (g: live only)"),
    ("v", "sort devices by VRAM used (live and replay: in replay g goes to a time)"),
    ("p / c / m", "sort processes: PID / CPU % / VRAM (the default)"),
    ("f", "only the processes that use a device (uses_gpu), on / off"),
    ("/", "filter: host, device name or index, user, command; Enter apply, Esc clear"),
    ("A", "alerts: the recent events, newest first; ↑/↓ scroll, A / Esc close"),
    ("R", "energy: start the view's energy count again (live; never the exporter's)"),
    ("All tab", "one row a host: failing, no data, idle-allocated, hot first, highlighted"),
)
_HELP_PAGES: Final = (  # after the replay's keys: the help of a replay at 80×24 keeps them
    ("V / U", "Users: per user nodes, devices, processes, VRAM, power share, longest, command"),
    ("  ↑↓ Enter Esc", "select, drill in (user → its hosts → its processes), back out"),
    ("  u m p o t f", "sort: user, VRAM, power share, nodes, longest; f hides system users"),
    ("  x", "export the Users table as CSV to ~/.cache/allsmi/ (path on the message line)"),
    ("T", "Topology: the NVLink links of the tab's host(s), device × link; T / Esc back"),
)
_HELP_REPLAY: Final = (
    ("SPACE", "play / pause (on the last frame: play from the start)"),
    ("] / [", "next / previous frame (pauses)"),
    ("+ / -", "faster / slower: 0.25x 0.5x 1.0x 2.0x 4.0x 8.0x"),
    ("j / k", "back / ahead 10 s"),
    ("g", f"go to a time: {TIMECODE_FORMS}"),
    ("n / N", "next / previous event: a host lost, GPUs idle, errors, throttling, XID, a gap…"),
    ("e", "the event list (the tab's host only): ↑/↓ PgUp/PgDn Home/End select,"),
    ("", "Enter go there (paused), e / Esc close; other keys act as usual"),
    ("L", "loop on / off"),
    ("G", "jump to the live edge (--follow)"),
)


_HELP_STRIP: Final = (
    ("▁ … █", "mean GPU utilization of the cell (the tab's hosts), 0 … 100 %"),
    ("green", "as busy as usual"),
    ("yellow", "quiet: fewer GPUs busy than usual (an idle node, a hung job)"),
    ("red", "a host missing, errors, or a gap inside the cell"),
    ("┈", "a gap: no frame for over twice the interval"),
    ("░", "not mapped yet (the map is still being built)"),
    ("reverse", "the frame on screen"),
    ("magenta", "behind a cell: an event in it (the tab's host only; n / N, e)"),
)


SELECTED_ROW: Final = Style(fg="black", bg="cyan")
LIST_MIN_ROWS: Final = 5  # event rows the open list keeps however short the body
EVENT_GPU_CELLS: Final = 6  # "GPU12 "
EVENT_KIND_CELLS: Final = 14  # "idle-allocated"


def _event_list_blocks(events: EventListView, rows: int, width: int) -> list[Block]:
    """The event list in ``rows`` body lines: a title saying how the search goes, then one
    event a line (``00:14:32  node-03  GPU3  util-drop  utilization: …``), the selected one
    highlighted, the window moved to show it."""
    count = len(events.events)
    if events.searching:
        state = f"searching… {count} found"
    else:
        state = "no events" if count == 0 else _count(count, "event")
    keys = "↑↓ select  Enter go  e/Esc close"
    lines: list[Spans] = [[Span(f"Events · {state}", HEADER), Span(f"   {keys}", CYAN)]]
    shown = max(0, rows - 1)
    selected = min(max(events.selected, 0), max(count - 1, 0))
    top = max(0, min(max(events.top, selected - shown + 1), selected))
    window = events.events[top : top + shown]
    where = min(max((len(clean(e.where)) for e in window), default=0), MAX_TAB_LABEL)
    for at, event in enumerate(window, start=top):
        gpu = "-" if event.gpu is None else f"GPU{event.gpu}"
        text = (
            f"{format_label(event.offset_ms)}  {cut(clean(event.where), where):<{where}}  "
            f"{cut(clean(gpu), EVENT_GPU_CELLS):<{EVENT_GPU_CELLS}} "
            f"{cut(clean(event.kind), EVENT_KIND_CELLS):<{EVENT_KIND_CELLS}} {clean(event.message)}"
        )
        if at == selected:
            lines.append([Span(f"{cut(text, width):<{width}}", SELECTED_ROW)])
        else:
            lines.append([Span(cut(text, width), PLAIN)])
    return [_lines_block(lines[: max(rows, 0)])]


def _help(replay: bool) -> list[Block]:
    sections: list[tuple[str, Sequence[tuple[str, str]]]] = [("Keys", _HELP_KEYS)]
    if replay:
        sections.append(("Replay keys", _HELP_REPLAY))
    sections.append(("Pages (either key again, or Esc, goes back)", _HELP_PAGES))
    if replay:
        sections.append(("The strip above the status line: the whole recording", _HELP_STRIP))
    lines: list[Spans] = []
    for title, keys in sections:
        lines.append([Span(title, HEADER)])
        lines += [[Span(f"  {key:<13}", YELLOW), Span(text, PLAIN)] for key, text in keys]
    return [_lines_block(lines)]


# --------------------------------------------------------------------------- the screen


@attrs.frozen
class _Slots:
    """Which parts get a line (the vertical budget, README "The screen"). The chrome, by
    priority: status, message, key help, title, tabs. Then the panels, each only while the
    body keeps ``MIN_BODY`` lines (six GPUs); they fold away in the order of ``_slots``
    (the history panel first, then the overview). The timeline strip (replay) comes after
    the key help. The body gets the rest: at 80×24 a replayed cluster shows the strip, the
    overview, the history panel and 12 body lines."""

    message: bool
    keys: bool
    strip: bool
    title: bool
    tabs: bool
    overview: bool
    panel: bool
    body: int


def _slots(height: int, has_message: bool, multi: bool, history: MapView | None) -> _Slots:
    left = height - 1  # the status line
    message = has_message and left >= 1
    left -= message
    keys = left >= 1
    left -= keys
    strip = history is not None and history.span is not None and left >= 1
    left -= strip
    title = left >= 1
    left -= title
    tabs = multi and left >= 1
    left -= tabs
    overview = multi and left >= 2 + MIN_BODY
    left -= 2 * overview
    panel = history is not None and left >= PANEL_HEIGHT + MIN_BODY
    left -= PANEL_HEIGHT * panel
    return _Slots(message, keys, strip, title, tabs, overview, panel, max(left, 0))


@attrs.frozen
class _Plan:
    names: HostNames  # every host (expected first, then the frame's others) and its name
    tab: int  # the selected tab, within range
    slots: _Slots
    blocks: list[Block]
    scroll: int  # clamped to the content


def _plan(
    frame: Frame | None, view: ViewState, size: tuple[int, int], status: Status,
    expected_hosts: Sequence[str], history: MapView | None = None,
    events: EventListView | None = None, alerts: Sequence[Alert] = (),
) -> _Plan:  # fmt: skip
    width, height = size
    names = host_names(frame, expected_hosts)  # once per frame drawn, never per row
    hosts = names.ids
    tab = view.tab % (len(hosts) + 1 if len(hosts) > 1 else 1)
    slots = _slots(height, status.message is not None, len(hosts) > 1, history)
    shown = hosts if tab == 0 else (hosts[tab - 1],)
    scroll = view.scroll
    if view.help:
        blocks = _help(status.replay is not None)
    elif events is not None:  # above the body, never scrolled: the GPUs stay in view below
        rows = 1 + _list_events(slots.body, len(events.events))
        blocks = [
            *_event_list_blocks(events, rows, width),
            *_page_body(
                frame, names, shown, width, history, view, slots.body - rows, status.energy
            ),
        ]
        scroll = 0
    elif view.alerts:  # the alert panel, as the event list: above the body, never scrolled
        rows = 1 + _list_events(slots.body, len(alerts))
        top = alert_top(view.alert_top, len(alerts), rows - 1)
        blocks = [
            _lines_block(alert_panel_lines(alerts, top, rows, width)),
            *_page_body(
                frame, names, shown, width, history, view, slots.body - rows, status.energy
            ),
        ]
        scroll = 0
    else:
        blocks = _page_body(frame, names, shown, width, history, view, slots.body, status.energy)
    total = sum(block.height for block in blocks)
    scroll = min(scroll, max(total - slots.body, 0))
    return _Plan(names, tab, slots, blocks, scroll)


def _page_body(
    frame: Frame | None, names: HostNames, hosts: Sequence[str], width: int,
    history: MapView | None, view: ViewState, rows: int, energy: Energy | None = None,
) -> list[Block]:  # fmt: skip
    """The body of the page open: the GPUs' (:func:`_body`), Users or Topology."""
    if view.page == "gpus":
        return _body(frame, names, hosts, width, history, view, rows, energy)
    blocks: list[Block] = []
    if view.filter:
        said = f'filter "{clean(view.filter)}" (/ edits, Esc clears)'
        blocks.append(_lines_block([[Span("view: ", CYAN), Span(said, YELLOW)]]))
    if view.page == "users":
        page = _users_page(frame, names, hosts, view)
        room = rows - len(blocks)
        return [*blocks, _lines_block(users_lines(page, view.cursor[-1], width, room))]
    return blocks + _topology_blocks(frame, names, hosts, width, matcher(view.filter))


def _users_page(
    frame: Frame | None, names: HostNames, hosts: Sequence[str], view: ViewState
) -> UsersPage:
    """The Users page of the tab's hosts, their processes left by the filter (its host,
    user, command or GPU index matches)."""
    kept = set(hosts)
    match = matcher(view.filter)
    processes = None if frame is None or frame.processes is None else [
        p for p in frame.processes
        if p.host_id in kept and (
            match is None or match.host(p.host_id, names.name(p.host_id))
            or match.process(p) or match.process_gpu(p)
        )
    ]  # fmt: skip
    gpus = [g for g in (frame.gpus or ()) if g.host_id in kept] if frame is not None else []
    if match is not None and processes is None:  # a dcgm frame's pods: by host, GPU, labels
        gpus = [
            g for g in gpus
            if match.host(g.host_id, names.name(g.host_id)) or match.gpu(g)
            or any(match.text in g.detail.get(k, "").lower() for k in ("namespace", "pod"))
        ]  # fmt: skip
    data = users_data(processes, gpus, len(hosts))
    order = tuple(h for h in names.ids if h in kept)
    return UsersPage(data, view.user_sort, view.hide_system, view.drill, order, names.shown)


def _users_of(frame: Frame | None, view: ViewState, expected_hosts: Sequence[str]) -> UsersPage:
    names = host_names(frame, expected_hosts)
    hosts = names.ids
    tab = view.tab % (len(hosts) + 1 if len(hosts) > 1 else 1)
    return _users_page(frame, names, hosts if tab == 0 else (hosts[tab - 1],), view)


def users_table(
    frame: Frame | None, view: ViewState, expected_hosts: Sequence[str] = ()
) -> tuple[tuple[str, ...], list[tuple[str | int | float | bool | None, ...]]]:
    """The Users table as the page shows it (the tab's hosts, the filter, the sort and
    ``f``), every user: the columns and the rows of its CSV export."""
    data = _users_of(frame, view, expected_hosts).data
    return CSV_COLUMNS, [
        csv_cells(row) for row in user_rows(data, view.user_sort, view.hide_system)
    ]


def _topology_blocks(
    frame: Frame | None, names: HostNames, hosts: Sequence[str], width: int, match: Match | None
) -> list[Block]:
    """Each host's NVLink matrix (:mod:`allsmi.domain.topology_view`), a blank line between
    hosts; on the All tab every host's, in the hosts' order (←/→ picks one)."""
    index = _index(frame)
    blocks: list[Block] = []
    for host in hosts:
        name = names.shown[host]
        gpus = index[host].gpus if host in index else []
        if match is not None and not match.host(host, name):
            gpus = [g for g in gpus if match.gpu(g)]
            if not gpus:
                continue

        def make(name: str = name, gpus: Sequence[Gpu] = gpus) -> Sequence[Spans]:
            return [*topology_lines(name, gpus, width), []]

        blocks.append(_lazy_block(topology_height(gpus) + 1, make))
    if not blocks:
        return [
            _lines_block([[Span("nothing matches the filter (/ edits it, Esc clears it)", YELLOW)]])
        ]
    return blocks


def _window(blocks: Sequence[Block], scroll: int, rows: int, width: int) -> list[StyledLine]:
    """Body lines [scroll, scroll + rows): only blocks inside the window are built."""
    out: list[StyledLine] = []
    top = 0
    for block in blocks:
        if top >= scroll + rows:
            break
        end = top + block.height
        if end > scroll:
            start, stop = max(scroll - top, 0), min(block.height, scroll + rows - top)
            out += [fit(spans, width) for spans in block.build(start, stop)]
        top = end
    blank = fit((), width)
    return out[:rows] + [blank] * max(rows - len(out), 0)


def _title(frame: Frame | None, reporting: int, title: str, width: int) -> StyledLine:
    if frame is None:
        facts = "waiting for data"
    else:
        facts = f"{_count(reporting, 'host')}  {_count(len(frame.gpus or ()), 'GPU')}"
    return fit([Span(clean(title), BOLD), Span(f"  {facts}", PLAIN)], width)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


DOTS_RULE: Final = "│ "  # between the overview's cards and its node status dots


def _overview(frame: Frame | None, plan: _Plan, width: int) -> list[StyledLine]:
    """all-smi's cards, then its node status dots right of them, one per host
    (:func:`~allsmi.domain.host_view.status_dots`), where the width leaves room."""
    gpus, cpus, memory = (frame.gpus, frame.cpus, frame.memory) if frame else (None,) * 3
    names = plan.names
    nodes = (names.reporting, len(names.shown))
    lines = overview_lines(gpus or (), cpus or (), memory or (), nodes)
    used = [sum(len(span.text) for span in line) for line in lines]
    start = max(used) + 1
    room = width - start - len(DOTS_RULE)
    if room > 0:
        failing = failing_hosts(frame.errors, names.ids) if frame is not None else {}
        states = [
            "failing" if host in failing else NO_DATA if host in names.silent else "ok"
            for host in names.ids
        ]
        dots = status_dots([dot_state(state) for state in states], room)
        return [
            fit([*line, Span(" " * (start - cells), PLAIN), Span(DOTS_RULE, CYAN), *more], width)
            for line, cells, more in zip(lines, used, dots, strict=True)
        ]
    return [fit(line, width) for line in lines]


FILTER_HINT: Final = "  host, GPU name/index, user, command · Enter apply · Esc clear"


def _footer(
    status: Status, slots: _Slots, width: int, history: MapView | None, host: str | None,
    editing: str | None = None,
) -> list[StyledLine]:  # fmt: skip
    lines: list[StyledLine] = []
    if slots.message and status.message is not None:
        lines.append(fit([Span(clean(status.message), YELLOW)], width))
    if slots.strip and history is not None:
        lines.append(strip_line(history, host, width))
    lines.append(status_line(status, width))
    if slots.keys and editing is not None:  # the filter prompt takes the key-help line
        prompt = [Span("filter: ", YELLOW), Span(f"{clean(editing)}_", BOLD)]
        lines.append(fit([*prompt, Span(FILTER_HINT, CYAN)], width))
    elif slots.keys:
        lines.append(fit([Span(clean(status.keys_help), CYAN)], width))
    return lines


def render(
    frame: Frame | None,
    view: ViewState,
    width: int,
    height: int,
    status: Status,
    *,
    expected_hosts: tuple[str, ...] = (),
    title: str = "allsmi",
    history: MapView | None = None,
    events: EventListView | None = None,
    alerts: Sequence[Alert] = (),
) -> tuple[StyledLine, ...]:
    """The whole screen: exactly ``height`` lines of exactly ``width`` cells. ``history``:
    the map the strip (replay) and the history panel are drawn from; ``events``: the open
    event list, drawn at the top of the body, the frame below it (the help screen goes over
    both); ``alerts``: what the alert panel lists while it is open (``A``; drawn as the
    event list, which goes over it)."""
    if height <= 0:
        return ()
    width = max(width, 0)
    plan = _plan(frame, view, (width, height), status, expected_hosts, history, events, alerts)
    host = plan.names.ids[plan.tab - 1] if plan.tab and len(plan.names.ids) > 1 else None
    lines: list[StyledLine] = []
    if plan.slots.title:
        lines.append(_title(frame, plan.names.reporting, title, width))
    if plan.slots.overview:
        lines += _overview(frame, plan, width)
    if plan.slots.panel and history is not None:
        name = plan.names.shown[host] if host is not None else None
        lines += panel_lines(history, host, width, name)
    if plan.slots.tabs:
        prefix = PAGE_PREFIX.get(view.page, "Tabs: ")
        labels, failing = _labels(plan.names), _failing_tabs(plan.names)
        lines.append(_tab_row(labels, plan.tab, width, failing, prefix))
    lines += _window(plan.blocks, plan.scroll, plan.slots.body, width)
    lines += _footer(status, plan.slots, width, history, host, view.editing)
    return tuple(lines)


def clamp_view(
    frame: Frame | None,
    view: ViewState,
    width: int,
    height: int,
    status: Status,
    *,
    expected_hosts: tuple[str, ...] = (),
    history: MapView | None = None,
    alerts: Sequence[Alert] = (),
) -> ViewState:
    """``view`` with its tab in range and its scroll clamped as :func:`render` would clamp
    it, so that after ``end`` one ``up`` moves one line (the alert panel's first row too,
    against ``alerts``). Builds no text."""
    if height <= 0:
        return view
    plan = _plan(frame, view, (max(width, 0), height), status, expected_hosts, history)
    scroll = view.scroll if view.alerts else plan.scroll  # the panel's plan scrolls no body
    clamped = attrs.evolve(view, tab=plan.tab, scroll=scroll)
    if view.alerts:
        rows = _list_events(plan.slots.body, len(alerts))
        clamped = attrs.evolve(clamped, alert_top=alert_top(view.alert_top, len(alerts), rows))
    if view.page == "users":  # the cursor on its last row, so that one `up` moves one row
        count = len(_users_of(frame, clamped, expected_hosts).rows())
        clamped = _cursor(clamped, min(view.cursor[-1], max(count - 1, 0)))
    return clamped


def event_list_rows(
    frame: Frame | None,
    height: int,
    status: Status,
    *,
    expected_hosts: tuple[str, ...] = (),
    history: MapView | None = None,
    events: int | None = None,
) -> int:
    """How many events the open event list shows at this size (:func:`_list_events`, at
    least one, so the core's window is never empty); ``events``: how many it lists."""
    multi = len(host_names(frame, expected_hosts).ids) > 1
    body = _slots(height, status.message is not None, multi, history).body
    return _list_events(body, events)


def _list_events(body: int, events: int | None) -> int:
    """The event rows of the open list in a body of ``body`` lines: as many as it lists,
    up to half the body (at least :data:`LIST_MIN_ROWS`, at most the body less its title),
    so that the frame's GPUs stay on screen below it; at least one."""
    cap = min(max(LIST_MIN_ROWS, (body - 1) // 2), body - 1)
    return max(1, cap if events is None else min(cap, events))
