"""The timeline: frames numbered across chunks, their times and seek keys, and the
generation that tells a holder of an index to find its frame again."""

from __future__ import annotations

from array import array

from allsmi.adapters.recording.decoding import Start
from allsmi.adapters.recording.index import Chunk
from allsmi.adapters.recording.timeline import Timeline

T0 = 1_776_513_600_000


def chunk(count: int | None, t_first: int, segment: int = 0) -> Chunk:
    return Chunk(segment=segment, start=Start(0), first_index=0, count=count, t_first=t_first)


def loaded(times: list[int], segment: int = 0) -> Chunk:
    c = chunk(len(times), times[0], segment)
    c.times, c.keys = array("q", times), array("q", times)
    return c


def test_chunks_are_numbered_in_order_and_frames_found_by_index() -> None:
    timeline = Timeline()
    timeline.extend([chunk(3, T0), chunk(5, T0 + 3000), chunk(2, T0 + 8000)])
    assert timeline.frame_count == 10
    assert [c.first_index for c in timeline.chunks] == [0, 3, 8]
    assert [timeline.chunk_of(i) for i in (0, 2, 3, 7, 8, 9)] == [0, 0, 1, 1, 2, 2]
    assert timeline.chunk_starts() == [(0, T0), (3, T0 + 3000), (8, T0 + 8000)]


def test_learning_a_chunk_keys_its_frames_by_the_running_maximum_of_their_times() -> None:
    timeline = Timeline()
    timeline.extend([loaded([T0, T0 + 5000]), chunk(3, T0 + 6000)])
    changed = timeline.learn(1, [T0 + 6000, T0 + 1000, T0 + 7000])  # the clock went back
    assert not changed and timeline.generation == 0
    second = timeline.chunks[1]
    assert list(second.times or ()) == [T0 + 6000, T0 + 1000, T0 + 7000]
    assert list(second.keys or ()) == [T0 + 6000, T0 + 6000, T0 + 7000]


def test_keys_continue_from_the_chunk_before() -> None:
    timeline = Timeline()
    timeline.extend([loaded([T0, T0 + 9000]), chunk(2, T0 + 9000)])
    timeline.learn(1, [T0 + 4000, T0 + 10_000])  # a concatenation whose clock restarts
    assert list(timeline.chunks[1].keys or ()) == [T0 + 9000, T0 + 10_000]


def test_a_chunk_holding_fewer_frames_than_promised_renumbers_and_bumps_the_generation() -> None:
    timeline = Timeline()
    timeline.extend([chunk(25, T0), chunk(25, T0 + 25_000), chunk(25, T0 + 50_000)])
    assert timeline.learn(0, [T0 + i * 1000 for i in range(20)])  # 20 of the 25 promised
    assert timeline.generation == 1
    assert [c.first_index for c in timeline.chunks] == [0, 20, 45]
    assert timeline.frame_count == 70


def test_a_count_first_learned_is_no_rebuild() -> None:
    timeline = Timeline()
    timeline.extend([chunk(None, T0)])  # the last chunk a marker chain found
    assert not timeline.learn(0, [T0, T0 + 1000])
    assert timeline.generation == 0 and timeline.frame_count == 2


def test_seeking_by_key_lands_on_the_last_frame_at_or_before_it() -> None:
    timeline = Timeline()
    timeline.extend([loaded([T0, T0, T0 + 1000]), loaded([T0 + 2000, T0 + 2000, T0 + 5000])])
    assert timeline.chunk_by_key(T0 - 1) == 0  # before the start: the first chunk
    assert timeline.chunk_by_key(T0 + 2000) == 1
    assert timeline.index_by_key(0, T0) == 1  # the last of two frames sharing a time
    assert timeline.index_by_key(1, T0 + 4999) == 4
    assert timeline.index_by_key(1, T0 + 10**9) == 5
    assert timeline.index_by_key(0, T0 - 1) == 0  # none at or before: the first frame


def test_a_growing_last_chunk_takes_frames_and_a_new_chunk_follows_it() -> None:
    timeline = Timeline()
    timeline.extend([loaded([T0, T0 + 1000])])
    growing = chunk(0, T0 + 2000)
    growing.times, growing.keys = array("q"), array("q")
    timeline.append(growing)
    timeline.add_frame(growing, T0 + 2000)
    timeline.add_frame(growing, T0 + 1500)  # back in time: its key stays
    assert timeline.frame_count == 4 and growing.first_index == 2
    assert list(growing.keys) == [T0 + 2000, T0 + 2000]
    assert timeline.chunk_of(3) == 1 and timeline.last_key() == T0 + 2000
    assert timeline.generation == 0  # growing at the end renumbers nothing


def test_removing_chunks_says_how_many_frames_went_and_renumbers() -> None:
    timeline = Timeline()
    first, second, third = loaded([T0] * 3), loaded([T0 + 1] * 4, 1), loaded([T0 + 2] * 2, 1)
    timeline.extend([first, second, third])
    assert timeline.remove([first]) == 3
    assert timeline.generation == 1
    assert [c.first_index for c in timeline.chunks] == [0, 4] and timeline.frame_count == 6
    assert first not in timeline and second in timeline
    assert timeline.segment_span(1) == (0, 1) and timeline.segment_span(0) is None


def test_replacing_a_segments_chunks_is_a_rebuild() -> None:
    timeline = Timeline()
    timeline.extend([loaded([T0] * 3), loaded([T0 + 1] * 3, 1), loaded([T0 + 2] * 3, 2)])
    timeline.replace(1, 1, [loaded([T0 + 1] * 2, 1), loaded([T0 + 1] * 2, 1)])
    assert timeline.generation == 1
    assert [c.first_index for c in timeline.chunks] == [0, 3, 5, 7]
    assert timeline.frame_count == 10


def test_chunks_added_and_not_taken_are_truncated_without_a_rebuild() -> None:
    timeline = Timeline()
    kept, taken = loaded([T0] * 3), [chunk(10, T0 + 1), chunk(10, T0 + 2)]
    timeline.extend([kept, *taken])
    assert timeline.truncate(1) == taken
    assert list(timeline.chunks) == [kept] and timeline.frame_count == 3
    assert timeline.generation == 0
