"""The event list (``e``) of the replay core and its place on screen, and the events marked on
the timeline strip (allsmi.domain.replay "the event list"; allsmi.domain.history, the strip)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

import attrs

from allsmi.domain import replay as r
from allsmi.domain.history import EVENT_BG, MapView, strip_line
from allsmi.domain.model import Frame, Gpu
from allsmi.domain.replay import KeyPressed, ListedEvent, Mode, ReplayState
from allsmi.domain.screen import (
    SELECTED_ROW,
    Status,
    ViewState,
    event_list_rows,
    event_list_view,
    render,
    replay_keys_help,
    replay_status,
)
from allsmi.domain.screen_rows import StyledLine
from allsmi.domain.summary import Cell, Summary

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z
HOSTS = ("n1", "n2")


def event(
    offset_s: int, host: str | None, gpu: str | None = None, kind: str = "util-drop"
) -> ListedEvent:
    where = host or "recording"
    return ListedEvent(offset_s * 1000, host, where, gpu, kind, f"{kind} at {offset_s}s")


EVENTS = (
    event(10, "n1", "0"),
    event(20, "n2", "3"),
    event(30, None, kind="gap"),
    event(40, "n1", "1", "util-back"),
    event(50, "n2", None, "power-drop"),
)


def opened(events: Sequence[ListedEvent] = EVENTS, complete: bool = True) -> ReplayState:
    """A 100 s recording, 1 s a frame, paused on its first frame, its events found."""
    state, _ = r.initial(100, T0, 99_000, interval_ms=1000)
    state = at(state, 0)
    stops = tuple((e.offset_ms, e.label) for e in events)
    state, _ = r.step(state, r.EventsFound(stops, complete, events=tuple(events)))
    return state


def at(state: ReplayState, offset_ms: int) -> ReplayState:
    """The shell's answer: the frame at ``offset_ms`` is on screen."""
    t = T0 + offset_ms
    return r.step(state, r.FrameShown(offset_ms // 1000, t, t + 1000, t, stepped=True))[0]


def press(state: ReplayState, *keys: str) -> tuple[ReplayState, tuple[r.Command, ...]]:
    commands: tuple[r.Command, ...] = ()
    for name in keys:
        state, commands = r.step(state, KeyPressed(name))
    return state, commands


def selected(state: ReplayState) -> ListedEvent:
    assert state.listing is not None
    return r.listed(state)[state.listing.selected]


# --------------------------------------------------------------------------- the core


def test_e_opens_the_list_of_every_event_on_the_first_at_or_after_the_frame_shown() -> None:
    state, commands = press(opened(), "e")
    assert state.listing is not None and r.RENDER in commands
    assert r.listed(state) == EVENTS
    assert selected(state) == EVENTS[0]
    later, _ = press(at(opened(), 35_000), "e")
    assert selected(later) == EVENTS[3]  # the first at or after 00:00:35
    past, _ = press(at(opened(), 90_000), "e")
    assert selected(past) == EVENTS[-1]  # none after: the last


def test_on_a_host_tab_the_list_holds_only_that_hosts_events() -> None:
    state, _ = press(opened(), "e")
    state, commands = r.step(state, r.TabShown("n2"))
    assert r.listed(state) == (EVENTS[1], EVENTS[4]) and r.RENDER in commands
    assert selected(state) == EVENTS[1]
    state, _ = r.step(state, r.TabShown("n1"))
    assert r.listed(state) == (EVENTS[0], EVENTS[3])
    state, _ = r.step(state, r.TabShown(None))  # the cluster: all, the gap included
    assert r.listed(state) == EVENTS


def test_changing_tab_keeps_the_selected_event_where_the_new_tab_lists_it() -> None:
    state, _ = press(opened(), "e", "down", "down", "down")
    assert selected(state) == EVENTS[3]  # n1's util-back
    state, _ = r.step(state, r.TabShown("n1"))
    assert selected(state) == EVENTS[3]


def test_up_down_and_pages_move_the_selection_and_the_window_follows_it() -> None:
    many = tuple(event(s, "n1", str(s % 8)) for s in range(10, 90, 5))  # 16 events
    state, _ = r.step(opened(many), r.ListRows(4))
    state, _ = press(state, "e")
    assert state.listing == r.EventList(selected=0, top=0)
    state, _ = press(state, "down", "down", "down")
    assert state.listing == r.EventList(selected=3, top=0)  # still inside the window
    state, _ = press(state, "down")
    assert state.listing == r.EventList(selected=4, top=1)  # scrolled one row
    state, _ = press(state, "up", "up")
    assert state.listing == r.EventList(selected=2, top=1)  # no scroll inside the window
    state, _ = press(state, "pgdn")
    assert state.listing == r.EventList(selected=6, top=3)
    state, _ = press(state, "end")
    assert state.listing == r.EventList(selected=15, top=12)
    state, _ = press(state, "down")
    assert state.listing == r.EventList(selected=15, top=12)  # stays on the last
    state, _ = press(state, "pgup")
    assert state.listing == r.EventList(selected=11, top=11)
    state, _ = press(state, "home", "up")
    assert state.listing == r.EventList(selected=0, top=0)


def test_fewer_rows_on_screen_move_the_window_to_keep_the_selection_shown() -> None:
    many = tuple(event(s, "n1") for s in range(10, 90, 5))
    state, _ = press(opened(many), "e", *["down"] * 9)
    assert state.listing == r.EventList(selected=9, top=0)  # ten rows by default
    state, _ = r.step(state, r.ListRows(3))
    assert state.listing == r.EventList(selected=9, top=7)


def test_enter_lands_on_the_selected_events_frame_paused_names_it_and_closes_the_list() -> None:
    playing, _ = press(opened(), "space")
    assert playing.mode is Mode.PLAYING
    state, commands = press(playing, "e", "down", "down", "down")
    assert state.mode is Mode.PLAYING and state.listing is not None  # still playing under it
    state, commands = press(state, "enter")
    (land,) = [c for c in commands if isinstance(c, r.Land)]
    assert (land.from_ms, land.until_ms) == (40_000, 40_001)  # the frame of its time
    assert state.mode is Mode.PAUSED and state.listing is None
    assert state.message == "n1 GPU1: util-back: util-back at 40s"
    shown = at(state, 40_000)
    assert shown.cursor_key_ms - shown.first_key_ms == 40_000


def test_esc_and_e_close_the_list_and_esc_does_not_quit_while_it_is_open() -> None:
    state, _ = press(opened(), "e")
    closed, commands = press(state, "esc")
    assert closed.listing is None and not any(isinstance(c, r.Quit) for c in commands)
    closed, commands = press(state, "e")
    assert closed.listing is None and r.RENDER in commands
    _, commands = press(closed, "esc")  # closed: Esc quits as ever
    assert r.Quit() in commands


def test_other_keys_act_as_usual_while_the_list_is_open() -> None:
    state, _ = press(opened(), "e")
    state, commands = press(state, "left")
    assert r.PassToView("left") in commands and state.listing is not None  # tabs change
    state, commands = press(state, "n")
    assert any(isinstance(c, r.Land) for c in commands) and state.listing is not None
    state, commands = press(state, "q")
    assert r.Quit() in commands


def test_events_found_while_the_list_is_open_keep_the_selection_on_its_event() -> None:
    state, _ = press(opened(EVENTS[2:], complete=False), "e", "down")
    assert selected(state) == EVENTS[3]
    stops = tuple((e.offset_ms, e.label) for e in EVENTS)
    state, commands = r.step(state, r.EventsFound(stops, True, events=EVENTS))
    assert selected(state) == EVENTS[3] and r.RENDER in commands


def test_new_events_are_drawn_with_the_list_closed_and_the_same_ones_again_are_not() -> None:
    state = opened(EVENTS[:2], complete=False)
    stops = tuple((e.offset_ms, e.label) for e in EVENTS)
    grown, commands = r.step(state, r.EventsFound(stops, False, events=EVENTS))
    assert r.RENDER in commands  # the strip marks them
    _, commands = r.step(grown, r.EventsFound(stops, True, events=EVENTS))
    assert commands == ()  # nothing new to draw with the list closed


def test_the_open_list_is_redrawn_when_the_search_ends_without_new_events() -> None:
    state, _ = press(opened(EVENTS, complete=False), "e")
    stops = tuple((e.offset_ms, e.label) for e in EVENTS)
    done, commands = r.step(state, r.EventsFound(stops, True, events=EVENTS))
    view = event_list_view(done)
    assert r.RENDER in commands and view is not None and not view.searching


def test_e_without_an_event_search_says_so_and_opens_nothing() -> None:
    bare, _ = r.initial(100, T0, 99_000, interval_ms=1000)
    state, _ = press(bare, "e")
    assert state.listing is None and state.message == "events are not looked for here"


# --------------------------------------------------------------------------- on screen


def frame() -> Frame:
    gpus = tuple(
        Gpu(f"{h}-{i}", "H100", "GPU", h, h, h, utilization=50.0) for h in HOSTS for i in range(2)
    )
    return Frame(t_ms=T0, gpus=gpus)


def screen(state: ReplayState, height: int = 30, width: int = 100) -> list[StyledLine]:
    status = Status(replay=replay_status(state, UTC))
    return list(render(frame(), ViewState(), width, height, status, events=event_list_view(state)))


def text(line: StyledLine) -> str:
    return "".join(span.text for span in line)


def test_the_open_list_shows_one_event_a_line_the_selected_one_highlighted() -> None:
    state, _ = press(at(opened(), 15_000), "e")
    lines = screen(state)
    texts = [text(line) for line in lines]
    title = next(i for i, t in enumerate(texts) if t.startswith("Events · 5 events"))
    rows = texts[title + 1 : title + 6]
    assert rows[0].split() == ["00:00:10", "n1", "GPU0", "util-drop", "util-drop", "at", "10s"]
    assert rows[2].split()[:3] == ["00:00:30", "recording", "-"]
    chosen = lines[title + 2]  # 00:00:20, the first at or after the frame shown
    assert text(chosen).startswith("00:00:20") and chosen[0].style == SELECTED_ROW
    assert lines[title + 1][0].style != SELECTED_ROW


def test_the_list_says_it_is_still_searching_and_says_when_there_are_none() -> None:
    state, _ = press(opened(EVENTS[:2], complete=False), "e")
    assert any(text(x).startswith("Events · searching… 2 found") for x in screen(state))
    none, _ = press(opened(()), "e")
    assert any(text(x).startswith("Events · no events") for x in screen(none))


def test_the_list_takes_at_most_half_the_body_its_rows_are_what_the_core_is_told() -> None:
    """The list sits above the body, the GPUs of the frame on screen still drawn below it;
    the core's window is the rows the list gets."""
    many = tuple(event(s, "n1") for s in range(10, 90, 2))  # 40 events
    state, _ = press(opened(many), "e")
    status = Status(replay=replay_status(state, UTC))
    rows = event_list_rows(frame(), 30, status, events=len(many))
    assert 5 <= rows < 15  # half a 30-line screen's body, or less
    state, _ = r.step(state, r.ListRows(rows))
    state, _ = press(state, "end")
    texts = [text(x) for x in screen(state, height=30)]
    title = next(i for i, t in enumerate(texts) if t.startswith("Events ·"))
    shown = [t for t in texts[title + 1 : title + 1 + rows] if t.startswith("00:")]
    assert len(shown) == rows and shown[-1].startswith("00:01:28")  # the last one, on screen
    below = texts[title + 1 + rows :]
    assert sum("H100" in t for t in below) >= 2  # the frame's GPUs, under the list
    few = event_list_rows(frame(), 30, status, events=2)
    assert few == 2  # a short list takes only its rows


# --------------------------------------------------------------------------- the strip


def strip_of(marks: tuple[tuple[int, str | None], ...], t_ms: int = T0) -> MapView:
    """A 100 s span of busy cells, the frame on screen at ``t_ms``."""
    busy = {"util_mean": 50.0, "util_max": 50.0, "active": 1.0}
    cells = [Cell(frames=1, gap=False, missing=False, errors=False, **busy)] * 100

    def strip(_host: str | None, n: int) -> Sequence[Cell]:
        return cells[:n]

    return MapView(Summary(), t_ms, span=(T0, T0 + 99_999), strip=strip, marks=marks)


def test_a_strip_cell_holding_an_event_is_marked_on_its_tab_only() -> None:
    marks = ((T0 + 42_000, "n1"), (T0 + 70_500, "n2"), (T0 + 80_000, None))
    view = strip_of(marks)
    cluster = strip_line(view, None, 100)
    assert [i for i, span in enumerate(cluster) if span.style.bg == EVENT_BG] == [42, 70, 80]
    n1 = strip_line(view, "n1", 100)
    assert [i for i, span in enumerate(n1) if span.style.bg == EVENT_BG] == [42]
    assert [span.text for span in n1] == [span.text for span in cluster]  # glyphs unchanged


def test_the_playhead_on_a_marked_cell_stays_in_reverse_video() -> None:
    line = strip_line(strip_of(((T0 + 42_000, "n1"),), t_ms=T0 + 42_000), None, 100)
    assert line[42].style.reverse and line[42].style.bg == EVENT_BG
    assert [i for i, span in enumerate(line) if span.style.reverse] == [42]


def test_the_key_help_names_the_event_list_within_80_columns() -> None:
    """``e`` is found at the standard width: the key line up to ``q:Exit`` fits 80 columns
    whether playing or paused, with or without a live edge."""
    for mode in (Mode.PLAYING, Mode.PAUSED):
        for live_edge in (False, True):
            keys = replay_keys_help(mode, live_edge)
            shown = keys[: keys.index("q:Exit") + len("q:Exit")]
            assert "n/N/e:Event" in shown and (len(shown) <= 80 or live_edge)


def test_a_row_too_long_for_the_screen_ends_in_an_ellipsis_selected_or_not() -> None:
    long = tuple(event(s, "n1") for s in (10, 20))
    wide = tuple(attrs.evolve(e, message="x" * 200) for e in long)
    state, _ = press(opened(wide), "e")
    texts = [text(x).rstrip() for x in screen(state, width=60)]
    rows = [t for t in texts if t.startswith("00:00:")]
    assert len(rows) == 2 and all(t.endswith("…") and len(t) == 60 for t in rows)
