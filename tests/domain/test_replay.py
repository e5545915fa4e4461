"""The replay core, one test per row of the docs/architecture.md §5.4 table (and its notes)."""

from __future__ import annotations

from datetime import timedelta, timezone

import attrs
import pytest

from allsmi.domain import replay as r
from allsmi.domain.errors import UsageError
from allsmi.domain.replay import (
    RENDER,
    FrameShown,
    KeyPressed,
    Land,
    Mode,
    PassToView,
    Quit,
    ReplayState,
    Seek,
    ShowIndex,
    TickElapsed,
    TimelineGrew,
    TimelineRebuilt,
)

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z


def opened(**kw: object) -> ReplayState:
    """A 100-frame, 1 s-interval recording (99 s long), open on frame 0."""
    args: dict[str, object] = {
        "frame_count": 100,
        "first_key_ms": T0,
        "duration_ms": 99_000,
        "interval_ms": 1000,
    }
    args.update(kw)
    state, _ = r.initial(**args)  # type: ignore[arg-type]
    return shown(state, 0)


def shown(state: ReplayState, index: int, gap_after: int = 0) -> ReplayState:
    """What the shell answers after a seek: frame ``index`` of the 1 s recording."""
    t = T0 + index * 1000
    nxt = None if index >= state.last_index else t + 1000 + gap_after
    state, _ = r.step(state, FrameShown(index, t, nxt, t))
    return state


def key(state: ReplayState, name: str) -> tuple[ReplayState, tuple[r.Command, ...]]:
    return r.step(state, KeyPressed(name))


def test_open_is_paused_on_the_first_frame() -> None:
    state, commands = r.initial(100, T0, 99_000)
    assert state.mode is Mode.PAUSED and state.position_ms == 0
    assert commands == (ShowIndex(0), RENDER)  # frame 0 even if others share its time


def test_open_at_start_lands_on_that_second_and_beyond_the_end_on_the_last_frame() -> None:
    state, commands = r.initial(100, T0, 99_000, start="00:15")
    assert commands[0] == Land(14_500, 15_500)  # the frames labelled 00:00:15
    state, commands = r.initial(100, T0, 99_000, start="5:00:00")
    assert state.position_ms == 99_000 and commands[0] == Land(18_000_000 - 500, 18_000_500)
    assert state.message == "5:00:00 is after the end: last frame"


def test_open_at_a_malformed_start_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="invalid timecode"):
        r.initial(100, T0, 99_000, start="12:75")


def test_a_frames_label_is_its_offset_rounded_half_up() -> None:
    assert [r.label_s(ms) for ms in (0, 499, 500, 24_003, 24_499, 24_500, 25_002)] == [
        0, 0, 1, 24, 24, 25, 25,
    ]  # fmt: skip
    assert r.second_window(25) == (24_500, 25_500)
    for ms in range(23_000, 27_000, 7):  # the window of a second holds exactly its labels
        start, until = r.second_window(r.label_s(ms))
        assert start <= ms < until


def test_space_toggles_playing_and_paused() -> None:
    state, _ = key(opened(), "space")
    assert state.mode is Mode.PLAYING
    state, _ = key(state, "space")
    assert state.mode is Mode.PAUSED


def test_space_at_the_end_restarts_from_the_first_frame() -> None:
    state = attrs.evolve(opened(), mode=Mode.END, position_ms=99_000)
    state, commands = key(state, "space")
    assert state.mode is Mode.PLAYING and state.position_ms == 0
    assert commands == (ShowIndex(0), RENDER)


def test_one_space_on_the_last_frame_while_paused_restarts_from_the_first() -> None:
    state = shown(attrs.evolve(opened(), position_ms=99_000), 99)  # paused on the last
    state, commands = key(state, "space")
    assert state.mode is Mode.PLAYING and state.position_ms == 0
    assert commands == (ShowIndex(0), RENDER)
    # Following, the last frame is the live edge: SPACE plays on (into live), no restart.
    following = shown(attrs.evolve(opened(follow=True), position_ms=99_000), 99)
    state, commands = key(following, "space")
    assert state.mode is Mode.PLAYING and commands == (RENDER,)


def test_tick_while_playing_advances_position_by_dt_times_speed() -> None:
    state = attrs.evolve(opened(), mode=Mode.PLAYING, speed=2.0)
    state, commands = r.step(state, TickElapsed(300))
    assert state.position_ms == 600 and commands == (RENDER,)  # no frame due yet
    state, commands = r.step(state, TickElapsed(300))
    assert state.position_ms == 1200 and commands == (Seek(1200), RENDER)  # frame 1 is due


def test_tick_while_paused_keeps_position() -> None:
    state, commands = r.step(opened(), TickElapsed(5000))
    assert state.position_ms == 0 and commands == ()


def test_gaps_longer_than_ten_intervals_are_skipped_with_a_message() -> None:
    state = shown(
        attrs.evolve(opened(duration_ms=20_000_000), mode=Mode.PLAYING, position_ms=3000),
        3,
        gap_after=3 * 3600_000 + 12 * 60_000 - 1000,
    )
    state, commands = r.step(state, TickElapsed(1000))
    assert state.message == "gap 3h12m"
    assert state.position_ms == 4000 + 3 * 3600_000 + 12 * 60_000 - 1000
    assert isinstance(commands[0], Seek)


def test_a_gap_of_ten_intervals_or_less_plays_in_real_time() -> None:
    state = attrs.evolve(opened(duration_ms=200_000), mode=Mode.PLAYING, position_ms=3000)
    state = shown(state, 3, gap_after=9000)
    state, _ = r.step(state, TickElapsed(1000))
    assert state.message is None and state.position_ms == 4000


def test_close_bracket_pauses_and_shows_the_next_frame_by_seq() -> None:
    state = attrs.evolve(shown(opened(), 5), mode=Mode.PLAYING)
    state, commands = key(state, "]")
    assert state.mode is Mode.PAUSED and commands == (ShowIndex(6), RENDER)


def test_open_bracket_pauses_and_shows_the_previous_frame_by_seq() -> None:
    state, commands = key(shown(opened(), 5), "[")
    assert state.mode is Mode.PAUSED and commands == (ShowIndex(4), RENDER)


def test_stepping_stops_at_the_ends() -> None:
    _, commands = key(opened(), "[")
    assert commands == (RENDER,)
    _, commands = key(shown(opened(), 99), "]")
    assert commands == (RENDER,)


def test_close_bracket_on_the_last_frame_wraps_with_loop() -> None:
    _, commands = key(shown(opened(loop=True), 99), "]")
    assert commands == (ShowIndex(0), RENDER)


def test_a_step_moves_the_playhead_to_the_frame_shown() -> None:
    state = opened()
    state, _ = r.step(state, FrameShown(7, T0 + 7000, T0 + 8000, T0 + 7000, stepped=True))
    assert state.cursor == 7 and state.position_ms == 7000


def test_plus_and_minus_walk_the_speed_ladder_and_stop_at_the_ends() -> None:
    state = opened()
    for expected in (2.0, 4.0, 8.0, 8.0):
        state, _ = key(state, "+")
        assert state.speed == expected
    assert state.message == "fastest speed"
    for expected in (4.0, 2.0, 1.0, 0.5, 0.25, 0.25):
        state, _ = key(state, "-")
        assert state.speed == expected
    assert state.message == "slowest speed"


def test_j_and_k_land_ten_seconds_away_clamped_to_the_recording() -> None:
    state, commands = key(opened(), "k")
    assert commands == (Land(9_500, 10_500), RENDER)  # the frames labelled 00:00:10
    state = shown(state, 10)
    assert state.position_ms == 9_500  # the driver answered unstepped: kept at the window
    state, commands = key(state, "j")
    assert commands == (Land(-500, 500), RENDER)
    state, commands = key(shown(state, 0), "j")
    assert state.position_ms == 0 and commands == (Land(-500, 500), RENDER)  # clamped
    state, commands = key(attrs.evolve(state, position_ms=95_000), "k")
    assert state.position_ms == 98_500 and commands == (Land(98_500, 99_500), RENDER)


def test_k_after_k_crosses_a_gap_with_no_frames() -> None:
    """A window with no frame shows the last frame before it, and the playhead stays at the
    window, so the next ``k`` goes on from there instead of landing on that frame again."""
    state, commands = key(opened(), "k")
    assert commands[0] == Land(9_500, 10_500)
    # The shell found no frame in [9.5 s, 10.5 s): it answers with the frame before (0),
    # unstepped. The playhead stays at the window, not at that frame.
    state = shown(state, 0, gap_after=60_000)
    assert state.cursor == 0 and state.position_ms == 9_500
    state, commands = key(state, "k")
    assert commands[0] == Land(19_500, 20_500)  # on from 10 s, not 10 s after frame 0


def test_g_opens_timecode_entry_that_captures_every_key() -> None:
    state, _ = key(opened(), "g")
    assert state.pending == ""
    for name in ("q", "space", "]", "L", "x"):
        state, commands = key(state, name)
        assert commands == () and state.pending == "" and state.mode is Mode.PAUSED


def test_timecode_entry_edits_and_enter_seeks() -> None:
    state, _ = key(opened(), "g")
    for name in "00:00:157":
        state, _ = key(state, name)
    state, _ = key(state, "backspace")
    assert state.pending == "00:00:15"
    state, commands = key(state, "enter")
    assert state.pending is None and state.position_ms == 14_500
    assert commands == (Land(14_500, 15_500), RENDER)  # the frames labelled 00:00:15


def test_a_wall_clock_second_is_the_frames_recorded_within_it() -> None:
    state = opened()
    assert r.target_window(state, "@12:00:15") == (15_000, 16_000)
    assert r.target_window(state, "@2026-04-18T12:00:15Z") == (15_000, 16_000)
    assert r.target_window(state, "@2026-04-18T12:00:15.250Z") == (15_250, 15_251)  # exact
    assert r.target_window(state, "15.25") == (15_250, 15_251)  # a fraction: that instant


def test_timecode_at_wall_clock_time_seeks_on_the_recording_date() -> None:
    cest = timezone(timedelta(hours=2))
    state, _ = key(opened(tz=cest), "g")
    for name in "@14:00:30":
        state, _ = key(state, name)
    state, _ = key(state, "enter")
    assert state.position_ms == 30_000  # 14:00:30 CEST = 12:00:30Z


def test_escape_cancels_timecode_entry() -> None:
    state, _ = key(opened(), "g")
    state, _ = key(state, "5")
    state, commands = key(state, "esc")
    assert state.pending is None and state.position_ms == 0
    assert Quit() not in commands


def test_a_malformed_timecode_shows_a_message_and_changes_nothing() -> None:
    before = shown(opened(), 4)
    state, _ = key(before, "g")
    for name in "1:2:3:4":
        state, _ = key(state, name)
    state, commands = key(state, "enter")
    assert state.message and "invalid timecode" in state.message
    assert commands == (RENDER,)
    assert attrs.evolve(state, message=None) == before


def test_capital_l_toggles_loop() -> None:
    state, _ = key(opened(), "L")
    assert state.loop
    state, _ = key(state, "L")
    assert not state.loop


def test_reaching_the_end_with_loop_wraps_to_the_first_frame() -> None:
    state = attrs.evolve(shown(opened(loop=True), 99), mode=Mode.PLAYING, position_ms=98_500)
    state, commands = r.step(state, TickElapsed(1000))
    assert state.mode is Mode.PLAYING and state.position_ms == 0
    assert commands == (Seek(0), RENDER)


def test_reaching_the_end_without_loop_pauses_on_the_last_frame() -> None:
    state = attrs.evolve(shown(opened(), 98), mode=Mode.PLAYING, position_ms=98_500)
    state, commands = r.step(state, TickElapsed(1000))
    assert state.mode is Mode.END and state.position_ms == 99_000
    assert commands == (Seek(99_000), RENDER)
    state, commands = r.step(state, TickElapsed(1000))
    assert commands == ()  # ended: time no longer moves


def test_view_keys_pass_through_as_in_live_mode() -> None:
    for name in ("left", "right", "up", "down", "pgup", "pgdn", "h", "tab"):
        _, commands = key(opened(), name)
        assert commands == (PassToView(name),)


def test_q_and_escape_quit_outside_timecode_entry() -> None:
    assert key(opened(), "q")[1] == (Quit(),)
    assert key(opened(), "esc")[1] == (Quit(),)


def test_a_one_frame_recording_ends_at_once_when_played() -> None:
    state, _ = r.initial(1, T0, 0)
    state, _ = key(state, "space")
    state, _ = r.step(state, TickElapsed(16))
    assert state.mode is Mode.END and state.position_ms == 0


def test_a_one_frame_recording_with_loop_does_not_spin() -> None:
    state, _ = r.initial(1, T0, 0, loop=True)
    state, _ = key(state, "space")
    state, _ = r.step(state, TickElapsed(16))
    assert state.mode is Mode.END


def test_a_seek_leaves_live_and_capital_g_returns_to_the_live_edge() -> None:
    state = attrs.evolve(opened(follow=True), mode=Mode.LIVE, position_ms=99_000)
    state, _ = key(state, "j")
    assert state.mode is Mode.PAUSED and state.position_ms == 88_500
    state, commands = key(state, "G")
    assert state.mode is Mode.LIVE and commands == (Seek(99_000), RENDER)


def test_the_timeline_growing_keeps_live_at_the_edge() -> None:
    state = attrs.evolve(opened(follow=True), mode=Mode.LIVE, position_ms=99_000)
    state, commands = r.step(state, TimelineGrew(103, 102_000))
    assert state.position_ms == 102_000 and commands == (Seek(102_000), RENDER)


def test_a_key_clears_the_previous_message() -> None:
    state, _ = key(opened(), "[")
    assert state.message == "first frame"
    state, _ = key(state, "L")
    assert state.message is None


def test_playing_on_after_the_recording_grew_under_the_last_frame() -> None:
    state = attrs.evolve(shown(opened(follow=True), 99), mode=Mode.PAUSED, position_ms=99_000)
    assert state.next_key_ms is None
    state, commands = r.step(state, TimelineGrew(105, 104_000))
    assert Seek(99_000) in commands  # the shell re-reads the frame after the one on screen
    state, _ = r.step(state, FrameShown(99, T0 + 99_000, T0 + 100_000, T0 + 99_000))
    state, _ = key(state, "space")
    state, commands = r.step(state, TickElapsed(1000))
    assert commands == (Seek(100_000), RENDER)  # the next frame is due: playback moves on


def test_a_malformed_timecode_message_quotes_the_whole_entry() -> None:
    state, _ = key(opened(), "g")
    for name in "12:75":
        state, _ = key(state, name)
    state, _ = key(state, "enter")
    assert state.message == "invalid timecode '12:75'"


def test_a_frame_shows_its_own_time_and_seeks_by_its_key() -> None:
    # a clock that went back: frame 8 was recorded 5 s before frame 7, so its key is 7's
    state = opened()
    state, _ = r.step(state, FrameShown(8, T0 + 7000, T0 + 9000, T0 + 2000, stepped=True))
    assert state.cursor_t_ms == T0 + 2000  # what the status shows: its recorded time
    assert state.cursor_key_ms == T0 + 7000 and state.position_ms == 7000  # where it sits


def test_a_rebuilt_timeline_is_recounted_and_the_frame_found_again() -> None:
    state = shown(attrs.evolve(opened(), position_ms=60_000), 60)
    state, commands = r.step(state, TimelineRebuilt(40, 39_000, T0))
    assert state.frame_count == 40 and state.duration_ms == 39_000
    assert state.cursor == 39 and state.position_ms == 39_000
    assert commands == (Seek(39_000), RENDER)  # the shell finds the frame by its key again


def test_a_rebuilt_timeline_keeps_the_playhead_where_it_was_when_nothing_moved() -> None:
    state = shown(attrs.evolve(opened(), position_ms=20_000), 20)
    state, commands = r.step(state, TimelineRebuilt(100, 99_000, T0))
    assert state.position_ms == 20_000 and commands == (Seek(20_000), RENDER)


def test_a_rebuilt_timeline_keeps_live_at_the_new_edge() -> None:
    state = attrs.evolve(opened(follow=True), mode=Mode.LIVE, position_ms=99_000)
    state, commands = r.step(state, TimelineRebuilt(30, 29_000, T0))
    assert state.mode is Mode.LIVE and state.position_ms == 29_000
    assert commands == (Seek(29_000), RENDER)


def test_a_rebuilt_timeline_whose_start_moved_keeps_the_same_instant_and_says_so() -> None:
    state = shown(attrs.evolve(opened(), position_ms=50_000), 50)
    state, commands = r.step(state, TimelineRebuilt(60, 59_000, T0 + 40_000, dropped=40))
    assert state.first_key_ms == T0 + 40_000 and state.position_ms == 10_000
    assert state.message == "40 oldest frames were evicted by rotation"
    assert commands == (Seek(10_000), RENDER)


# --------------------------------------------------------------------------- the recorder


def live() -> ReplayState:
    return attrs.evolve(shown(opened(follow=True), 99), mode=Mode.LIVE, position_ms=99_000)


def test_the_recorder_stopping_ends_live_and_says_recording_ended() -> None:
    state, commands = r.step(live(), r.RecorderChanged(running=False))
    assert state.mode is Mode.END and state.ended and not state.has_live_edge
    assert state.message == "recording ended" and commands == (RENDER,)
    state, commands = key(state, "G")  # no live edge to go to: the end, said again
    assert state.mode is Mode.END and state.message == "recording ended"


def test_after_the_recorder_stopped_playing_reaches_the_end_not_live() -> None:
    state, _ = r.step(live(), r.RecorderChanged(running=False))
    state, _ = key(shown(attrs.evolve(state, mode=Mode.PAUSED, position_ms=98_000), 98), "space")
    state, _ = r.step(state, TickElapsed(5_000))
    assert state.mode is Mode.END
    state, commands = key(state, "space")  # and SPACE there restarts, as for any recording
    assert state.mode is Mode.PLAYING and commands == (ShowIndex(0), RENDER)


def test_a_recorder_started_again_makes_the_end_live_again() -> None:
    ended, _ = r.step(live(), r.RecorderChanged(running=False))
    state, commands = r.step(ended, r.RecorderChanged(running=True))
    assert state.mode is Mode.LIVE and not state.ended and commands == (Seek(99_000), RENDER)
    paused = attrs.evolve(ended, mode=Mode.PAUSED, position_ms=10_000)
    state, _ = r.step(paused, r.RecorderChanged(running=True))
    assert state.mode is Mode.PAUSED and state.position_ms == 10_000 and state.has_live_edge


def test_recorder_news_changes_nothing_when_not_following_or_already_known() -> None:
    plain = opened()
    assert r.step(plain, r.RecorderChanged(running=False)) == (plain, ())
    state = live()
    assert r.step(state, r.RecorderChanged(running=True)) == (state, ())


# --------------------------------------------------------------------------- indexing behind


def indexing(percent: int = 10) -> ReplayState:
    """Open on frame 0 of what is indexed so far (99 s of a longer recording)."""
    state, _ = r.initial(100, T0, 99_000, interval_ms=1000, indexing=percent)
    return shown(state, 0)


def go(state: ReplayState, timecode: str) -> tuple[ReplayState, tuple[r.Command, ...]]:
    for name in ["g", *timecode]:
        state, _ = key(state, name)
    return key(state, "enter")


def test_a_seek_past_what_is_indexed_waits_and_lands_when_the_index_gets_there() -> None:
    state, commands = go(indexing(), "00:05:00")
    assert state.waiting == (299_500, 300_500) and commands == (RENDER,)  # nothing shown yet
    assert state.message is not None and state.message.startswith("indexing — 10 %")
    state, commands = r.step(state, r.IndexProgress(40, 1000))
    assert state.waiting is not None and (state.message or "").startswith("indexing — 40 %")
    state, commands = r.step(state, TimelineGrew(250, 249_000))  # not there yet
    assert state.waiting is not None and commands == (RENDER,)
    state, commands = r.step(state, TimelineGrew(400, 399_000))
    assert state.waiting is None and commands == (Land(299_500, 300_500), RENDER)


def test_a_waiting_seek_past_the_end_lands_on_the_last_frame_when_indexing_is_done() -> None:
    state, _ = go(indexing(), "9:00:00")
    state, commands = r.step(state, r.IndexProgress(None))
    assert state.waiting is None and state.indexing is None
    assert commands[0] == Land(32_399_500, 32_400_500) and state.position_ms == 99_000
    assert state.message == "after the end: last frame"


def test_esc_cancels_a_waiting_seek_and_does_not_quit() -> None:
    state, _ = go(indexing(), "00:05:00")
    state, commands = key(state, "esc")
    assert state.waiting is None and state.message == "seek cancelled"
    assert not any(isinstance(c, Quit) for c in commands)
    state, commands = r.step(state, TimelineGrew(400, 399_000))
    assert not any(isinstance(c, Land) for c in commands)  # nothing lands later


def test_another_move_replaces_a_waiting_seek() -> None:
    state, _ = go(indexing(), "00:05:00")
    state, commands = key(state, "]")
    assert state.waiting is None and commands == (ShowIndex(1), RENDER)
    state, _ = go(indexing(), "00:05:00")
    state, commands = go(state, "00:00:30")  # within what is indexed: lands now
    assert state.waiting is None and commands == (Land(29_500, 30_500), RENDER)


def test_playing_to_the_end_of_what_is_indexed_keeps_playing() -> None:
    state, _ = key(shown(attrs.evolve(indexing(), position_ms=98_000), 98), "space")
    state, _ = r.step(state, TickElapsed(5_000))
    assert state.mode is Mode.PLAYING and state.position_ms == 99_000
    state, _ = key(state, "L")  # loop on: still no wrap while the index grows
    state, _ = r.step(state, TickElapsed(5_000))
    assert state.mode is Mode.PLAYING and state.position_ms == 99_000
    state, _ = r.step(state, r.IndexProgress(None))  # done: the end is the end
    state, _ = r.step(state, TickElapsed(5_000))
    assert state.position_ms == 0  # looped


def test_space_on_the_last_indexed_frame_plays_on_rather_than_restarting() -> None:
    state = shown(attrs.evolve(indexing(), position_ms=99_000), 99)
    state, commands = key(state, "space")
    assert state.mode is Mode.PLAYING and commands == (RENDER,)


def test_a_step_at_the_indexed_end_waits_for_the_next_frame_and_lands_on_it() -> None:
    state = indexing()  # 100 frames indexed of more, playhead on the first
    state, _ = r.step(state, r.FrameShown(index=99, key_ms=T0 + 99_000, next_key_ms=None,
                                          t_ms=T0 + 99_000, stepped=True))  # fmt: skip
    state, commands = r.step(state, r.KeyPressed("]"))
    assert state.waiting is not None and state.message is not None  # not "last frame"
    assert state.message.startswith("indexing —")
    assert not any(isinstance(c, r.ShowIndex) for c in commands)
    state, commands = r.step(state, r.TimelineGrew(150, 149_000))
    assert state.waiting is None
    (land,) = [c for c in commands if isinstance(c, r.Land)]
    assert land.from_ms == 99_001  # the first frame after the one shown


# --------------------------------------------------------------------------- events: n / N


def with_events(complete: bool = True) -> ReplayState:
    state, _ = r.initial(100, T0, 99_000, interval_ms=1000)
    stops = ((20_000, "node-03: util-drop ×8, power-drop"), (45_000, "node-03: util-back ×8"))
    state, commands = r.step(state, r.EventsFound(stops, complete))
    assert commands == ()
    return state


def shown_at(state: ReplayState, offset_ms: int) -> ReplayState:
    at = T0 + offset_ms
    shown = r.FrameShown(
        index=offset_ms // 1000, key_ms=at, next_key_ms=at + 1000, t_ms=at, stepped=True
    )
    return r.step(state, shown)[0]


def test_n_lands_on_the_next_event_and_names_it() -> None:
    state, commands = r.step(with_events(), r.KeyPressed("n"))
    (land,) = [c for c in commands if isinstance(c, r.Land)]
    assert (land.from_ms, land.until_ms) == (20_000, 20_001)  # the frame of its time
    assert state.message == "node-03: util-drop ×8, power-drop" and state.mode is r.Mode.PAUSED
    on_it = shown_at(state, 20_000)
    state, commands = r.step(on_it, r.KeyPressed("n"))  # strictly after the frame shown
    assert next(c for c in commands if isinstance(c, r.Land)).from_ms == 45_000
    state, commands = r.step(shown_at(state, 45_000), r.KeyPressed("N"))
    assert next(c for c in commands if isinstance(c, r.Land)).from_ms == 20_000
    assert state.message == "node-03: util-drop ×8, power-drop"


def test_n_past_the_last_event_says_so_and_whether_events_are_still_looked_for() -> None:
    after = shown_at(with_events(), 60_000)
    state, commands = r.step(after, r.KeyPressed("n"))
    assert state.message == "no event after this frame" and not any(
        isinstance(c, r.Land) for c in commands
    )
    still = shown_at(with_events(complete=False), 60_000)
    state, _ = r.step(still, r.KeyPressed("n"))
    assert state.message == "no event after this frame yet (still looking through the recording)"
    state, _ = r.step(with_events(), r.KeyPressed("N"))  # on the first frame: none before
    assert state.message == "no event before this frame"


def test_n_pauses_playback_and_without_an_event_search_says_so() -> None:
    playing, _ = r.step(with_events(), r.KeyPressed("space"))
    assert playing.mode is r.Mode.PLAYING
    state, _ = r.step(playing, r.KeyPressed("n"))
    assert state.mode is r.Mode.PAUSED
    bare, _ = r.initial(100, T0, 99_000, interval_ms=1000)
    state, _ = r.step(bare, r.KeyPressed("n"))
    assert state.message == "events are not looked for here"


def test_a_search_that_stopped_short_says_why_once_and_n_goes_on_with_what_was_found() -> None:
    state = with_events(complete=False)
    found = state.stops
    state, commands = r.step(state, r.EventsFound(found or (), True, problem="events: gone"))
    assert state.message == "events: gone" and r.RENDER in commands
    state, _ = r.step(state, r.KeyPressed("n"))
    assert state.message == "node-03: util-drop ×8, power-drop"  # the events found still serve
