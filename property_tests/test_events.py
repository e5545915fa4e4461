"""Event detection (src/allsmi/domain/events.py) over any frames: every answer is ordered by
time and stamped at or before the frame that confirmed it, events are of the known kinds with
one-line messages, and feeding one detector frame by frame gives what ``detect`` gives."""

from __future__ import annotations

import math

import attrs
from hypothesis import given
from hypothesis import strategies as st

from allsmi.domain.events import KINDS, Detector, Event, detect
from allsmi.domain.model import Cpu, Frame, Gpu
from property_tests.strategies import frames as any_frames
from property_tests.strategies import summary_gpu

T0 = 1_776_513_600_000
HOSTS = ("a:1", "b:2", "c:3")
ERRORS = (
    "a:1: timeout after 5s",
    "a:1: HTTP 503",
    "b:2: connection refused",
    "nvidia: GPU 0: GPU is lost",
    "c:3: invalid /snapshot (not a JSON object)",
)

reading = st.one_of(
    st.none(),
    st.just(-1.0),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(0, 120, allow_nan=False),
    st.sampled_from([0.0, 2.0, 50.0, 99.5, 1e9]),
)
count = st.one_of(st.none(), st.sampled_from([-1, 0]), st.integers(0, 200))


@st.composite
def cluster_gpu(draw: st.DrawFn, host: str) -> Gpu:
    """A GPU of ``host`` with readings near and past every threshold, sentinels included."""
    return attrs.evolve(
        draw(summary_gpu(host, reading, count)),
        temperature_threshold_slowdown=draw(st.sampled_from([None, 0, 87, 90])),
        temperature_threshold_shutdown=draw(st.sampled_from([None, 0, 95])),
        detail=draw(st.sampled_from([{}, {"index": "0"}])),
    )


@st.composite
def cluster_frames(draw: st.DrawFn) -> list[Frame]:
    """Time-ordered frames of a few hosts that come and go, with errors and gaps."""
    out: list[Frame] = []
    t = T0
    for _ in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([0, 1000, 1000, 1000, 3000, 15_000, 70_000]))
        hosts = draw(st.lists(st.sampled_from(HOSTS), max_size=3, unique=True))
        gpus = tuple(g for h in hosts for g in draw(st.lists(cluster_gpu(h), max_size=3)))
        out.append(
            Frame(
                t_ms=t,
                gpus=gpus if draw(st.booleans()) or gpus else None,
                cpus=tuple(Cpu(h, h, h) for h in hosts),
                errors=tuple(draw(st.lists(st.sampled_from(ERRORS), max_size=2))),
            )
        )
    return out


def fed(
    frames: list[Frame], expected: tuple[str, ...], interval_ms: int | None
) -> tuple[list[tuple[int, list[Event]]], list[Event]]:
    """Each frame's time with the detector's answer to it, and ``finish``'s answer."""
    detector = Detector(expected, interval_ms)
    answers = [(frame.t_ms, detector.feed(frame)) for frame in frames]
    return answers, detector.finish()


def check_answers(answers: list[tuple[int, list[Event]]], last: list[Event]) -> None:
    latest = None
    for t, events in answers:
        latest = t if latest is None else max(latest, t)
        assert [e.t_ms for e in events] == sorted(e.t_ms for e in events)
        assert all(e.t_ms <= latest for e in events)
    assert [e.t_ms for e in last] == sorted(e.t_ms for e in last)
    assert latest is not None or not last
    assert all(latest is not None and e.t_ms <= latest for e in last)


def check_events(events: list[Event]) -> None:
    assert [e.t_ms for e in events] == sorted(e.t_ms for e in events)
    for event in events:
        assert event.kind in KINDS
        assert event.message and "\n" not in event.message


@given(
    cluster_frames(),
    st.sampled_from([(), HOSTS]),
    st.sampled_from([None, 1000]),
)
def test_cluster_frames_answers_are_ordered_and_stamped_at_or_before_confirmation(
    frames: list[Frame], expected: tuple[str, ...], interval_ms: int | None
) -> None:
    answers, last = fed(frames, expected, interval_ms)

    check_answers(answers, last)
    fed_events = sorted([e for _, events in answers for e in events] + last, key=lambda e: e.t_ms)
    events = detect(frames, expected, interval_ms)
    assert fed_events == events
    check_events(events)


@given(st.lists(any_frames, max_size=8), st.sampled_from([None, 100, 86_400_000]))
def test_any_frames_answers_are_ordered_and_events_are_of_known_kinds(
    frames: list[Frame], interval_ms: int | None
) -> None:
    frames.sort(key=lambda f: f.t_ms)
    answers, last = fed(frames, (), interval_ms)

    check_answers(answers, last)
    check_events(detect(frames, (), interval_ms))


@given(cluster_frames(), st.integers(0, 40), st.integers(0, 40))
def test_splitting_the_frames_and_feeding_one_detector_gives_what_detect_gives(
    frames: list[Frame], cut_a: int, cut_b: int
) -> None:
    lo, hi = sorted((min(cut_a, len(frames)), min(cut_b, len(frames))))
    detector = Detector(HOSTS, 1000)
    events: list[Event] = []
    for part in (frames[:lo], frames[lo:hi], frames[hi:]):
        for frame in part:
            events += detector.feed(frame)
    events += detector.finish()

    assert sorted(events, key=lambda e: e.t_ms) == detect(frames, HOSTS, 1000)
