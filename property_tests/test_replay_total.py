"""Every replay state × every event: a valid state comes back, nothing raises (h2 style)."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import attrs
from hypothesis import given
from hypothesis import strategies as st

from allsmi.domain import replay as r

KEYS = [
    *r.KEYS,
    "enter",
    "backspace",
    "left",
    "right",
    "up",
    "down",
    "pgup",
    "pgdn",
    "h",
    "?",
    "tab",
    "0",
    "9",
    ":",
    "@",
    "T",
    "Z",
    "x",
    "é",
    "",
]


@st.composite
def states(draw: st.DrawFn) -> r.ReplayState:
    count = draw(st.integers(1, 10**6))
    duration = draw(st.integers(0, 10**11))
    first = draw(st.integers(0, 2**45))
    state, _ = r.initial(
        count,
        first,
        duration,
        start=draw(st.none() | st.integers(0, 10**9).map(str) | st.sampled_from(["@12:00", "1.5"])),
        speed=draw(st.sampled_from(r.SPEEDS)),
        loop=draw(st.booleans()),
        follow=draw(st.booleans()),
        interval_ms=draw(st.none() | st.integers(1, 10**7)),
        tz=draw(st.sampled_from([None, UTC, timezone(timedelta(hours=-7))])),
        indexing=draw(st.none() | st.integers(0, 99)),
    )
    return attrs.evolve(
        state,
        cursor=draw(st.integers(0, count - 1)),
        cursor_t_ms=draw(st.integers(0, 2**46)),
        cursor_key_ms=draw(st.integers(0, 2**46)),
        next_key_ms=draw(st.none() | st.integers(0, 2**46)),
        mode=draw(st.sampled_from(list(r.Mode))),
        pending=draw(st.none() | st.text(alphabet="0123456789:@-T", max_size=12)),
        message=draw(st.none() | st.text(max_size=5)),
        position_ms=draw(st.integers(0, duration)),
    )


events = st.one_of(
    st.builds(r.KeyPressed, st.sampled_from(KEYS) | st.text(max_size=3)),
    st.builds(r.TickElapsed, st.integers(-(10**6), 10**10)),
    st.builds(
        r.FrameShown,
        st.integers(-5, 2 * 10**6),
        st.integers(0, 2**46),
        st.none() | st.integers(0, 2**46),
        st.integers(0, 2**46),
        st.booleans(),
    ),
    st.builds(
        r.TimelineGrew,
        st.integers(-5, 2 * 10**6),
        st.integers(-(10**6), 10**12),
        st.integers(-5, 10**6),
        st.none() | st.integers(0, 2**46),
    ),
    st.builds(
        r.TimelineRebuilt,
        st.integers(-5, 2 * 10**6),
        st.integers(-(10**6), 10**12),
        st.integers(0, 2**46),
        st.integers(-5, 10**6),
    ),
    st.builds(r.RecorderChanged, st.booleans()),
    st.builds(r.IndexProgress, st.none() | st.integers(0, 99), st.none() | st.integers(0, 10**7)),
    st.builds(r.Resized, st.integers(0, 500), st.integers(0, 200)),
)


def check_invariants(state: r.ReplayState, commands: tuple[r.Command, ...]) -> None:
    assert 0 <= state.position_ms <= state.duration_ms
    assert 0 <= state.cursor < state.frame_count
    assert state.speed in r.SPEEDS
    for command in commands:
        assert isinstance(command, r.Seek | r.Land | r.ShowIndex | r.Render | r.PassToView | r.Quit)
        if isinstance(command, r.Land):
            assert command.from_ms < command.until_ms
        if isinstance(command, r.Seek):
            assert 0 <= command.position_ms <= state.duration_ms
        if isinstance(command, r.ShowIndex):
            assert 0 <= command.index < state.frame_count


@given(states(), st.lists(events, min_size=1, max_size=8))
def test_every_state_and_event_gives_a_valid_state(
    state: r.ReplayState, sequence: list[r.Event]
) -> None:
    for event in sequence:
        state, commands = r.step(state, event)
        check_invariants(state, commands)


@given(states(), st.sampled_from(KEYS))
def test_timecode_entry_captures_every_key(state: r.ReplayState, key: str) -> None:
    typing = attrs.evolve(state, pending="12")
    after, commands = r.step(typing, r.KeyPressed(key))
    if key not in ("enter", "esc"):
        assert after.pending is not None
        assert not any(
            isinstance(c, r.Quit | r.PassToView | r.ShowIndex | r.Land) for c in commands
        )
