"""Summaries (src/allsmi/domain/summary.py): quantization, unknown readings, gaps, missing
hosts, errors naming a host, cells at a coarser width, history with a partial bucket, and
the serialized form's checks."""

from __future__ import annotations

import math

import pytest

from allsmi.domain.model import Cpu, Frame, Gpu, Memory
from allsmi.domain.summary import (
    BUCKET_MS,
    Summary,
    SummaryInvalid,
    bucket_of,
    error_host,
    gpu_readings,
    host_readings,
)

T0 = 1_776_513_600_000  # a bucket boundary (multiple of 10 s)


def gpu(host: str = "n1:9090", uuid: str = "GPU-0", **readings: object) -> Gpu:
    return Gpu(uuid, "H100", "GPU", host, host, host, **readings)  # type: ignore[arg-type]


def frame(t: int, *gpus: Gpu, errors: tuple[str, ...] = (), **sections: object) -> Frame:
    return Frame(t_ms=t, gpus=gpus or None, errors=errors, **sections)  # type: ignore[arg-type]


def test_bucket_of_is_epoch_aligned() -> None:
    assert bucket_of(T0) == T0 // BUCKET_MS
    assert bucket_of(T0 + BUCKET_MS - 1) == bucket_of(T0)
    assert bucket_of(T0 + BUCKET_MS) == bucket_of(T0) + 1
    assert bucket_of(-1) == -1
    assert bucket_of(25, 10) == 2


def test_gpu_readings_are_quantized_to_their_units() -> None:
    row = gpu(
        utilization=73.64,
        used_memory=106_634_859_282,
        total_memory=141_000_000_000,
        temperature=67,
        power_consumption=564.5,
        frequency=1650,
    )
    (readings,) = gpu_readings(frame(T0, row)).values()
    # half percent, per mille, °C, W (half up), MHz
    assert readings == (147, 756, 67, 565, 1650)


def test_readings_are_clamped_to_their_ranges() -> None:
    row = gpu(
        utilization=250.0,
        used_memory=30,
        total_memory=20,
        temperature=400,
        power_consumption=1e12,
        frequency=2**64 - 1,
    )
    (readings,) = gpu_readings(frame(T0, row)).values()
    assert readings == (200, 1_000, 255, 0xFFFF, 0xFFFF)


@pytest.mark.parametrize("bad", [None, -1, -1.0, math.nan, math.inf])
def test_unknown_readings_are_not_counted(bad: float | None) -> None:
    row = gpu(utilization=bad, temperature=bad, power_consumption=bad, frequency=bad)
    (readings,) = gpu_readings(frame(T0, row)).values()
    assert readings == (None, None, None, None, None)
    summary = Summary.of([frame(T0, row), frame(T0 + 1000, gpu(utilization=50.0))])
    assert summary.history("util", T0, 1) == [50.0]
    assert summary.history("temp", T0, 1) == [None]


@pytest.mark.parametrize(("used", "total"), [(5, None), (None, 10), (5, 0), (-1, 10)])
def test_gpu_memory_unknown_without_both_sizes(used: int | None, total: int | None) -> None:
    (readings,) = gpu_readings(frame(T0, gpu(used_memory=used, total_memory=total))).values()
    assert readings[1] is None


def test_host_readings_cpu_mean_and_ram_share() -> None:
    cpus = (
        Cpu("h", "h", "h", index=0, utilization=10.0),
        Cpu("h", "h", "h", index=1, utilization=20.5),
        Cpu("h", "h", "h", index=2, utilization=None),
    )
    memory = (
        Memory("h", "h", "h", index=0, total_bytes=100, used_bytes=25),
        Memory("h", "h", "h", index=1, total_bytes=300, used_bytes=75),
        Memory("g", "g", "g", total_bytes=None, utilization=12.34),
    )
    readings = host_readings(Frame(t_ms=T0, cpus=cpus, memory=memory))
    assert readings == {"h": (31, 250), "g": (None, 123)}  # 15.25 % → 30.5 → 31 half percents


def test_history_in_real_units_per_gpu_host_and_cluster() -> None:
    a = gpu("a:1", "GPU-a", utilization=20.0, power_consumption=100.0)
    b = gpu("b:1", "GPU-b", utilization=60.0, power_consumption=300.0)
    summary = Summary.of([frame(T0, a, b), frame(T0 + BUCKET_MS, a)])
    assert summary.history("util", T0 + BUCKET_MS, 2) == [40.0, 20.0]
    assert summary.history("util", T0 + BUCKET_MS, 2, host="b:1") == [60.0, None]
    assert summary.history("power", T0, 1, gpu=("b:1", "GPU-b")) == [300.0]
    assert summary.history("util", T0 + 5 * BUCKET_MS, 3) == [None, None, None]


def test_history_partial_replaces_the_last_bucket() -> None:
    frames = [frame(T0 + i * 1000, gpu(utilization=float(10 * i))) for i in range(10)]
    whole = Summary.of(frames)
    upto = Summary.of(frames[:3])  # the playhead at the third frame of the bucket
    assert whole.history("util", T0, 1) == [45.0]
    assert whole.history("util", T0, 1, partial=upto) == [10.0]


def test_gaps_inside_and_between_buckets() -> None:
    times = [T0, T0 + 1000, T0 + 2000, T0 + 9000, T0 + 40_000, T0 + 41_000]
    summary = Summary.of([frame(t, gpu(utilization=1.0)) for t in times], interval_ms=1000)
    cells = summary.cells(T0, T0 + 50_000, 5)  # one 10 s bucket a cell
    # 2 s → 9 s inside bucket 0; 9 s → 40 s spans buckets 1 and 2 (empty) to the frame at 40 s
    assert [c.gap for c in cells] == [True, True, True, True, False]
    assert [c.frames for c in cells] == [4, 0, 0, 0, 2]


def test_gap_threshold_defaults_to_the_median_spacing() -> None:
    times = [T0 + i * 1000 for i in range(30)] + [T0 + 45_000]
    summary = Summary.of([frame(t) for t in times])
    assert summary.interval_estimate() == 1000
    assert [c.gap for c in summary.cells(T0, T0 + 50_000, 5)] == [False, False, True, True, True]


def test_missing_host_and_errors_naming_it() -> None:
    hosts = ["a:1", "https://b:2"]
    frames = [
        frame(T0, gpu("a:1"), gpu("b:2")),
        frame(T0 + 1000, gpu("a:1"), errors=("https://b:2: HTTP 503", "nvidia: lost")),
        frame(T0 + BUCKET_MS, gpu("a:1"), gpu("b:2")),
    ]
    summary = Summary.of(frames, expected_hosts=hosts)
    assert summary.hosts == ("a:1", "b:2")
    cluster = summary.cells(T0, T0 + 2 * BUCKET_MS, 2)
    assert [(c.missing, c.errors) for c in cluster] == [(True, True), (False, False)]
    assert [(c.missing, c.errors) for c in summary.cells(T0, T0 + BUCKET_MS, 1, host="a:1")] == [
        (False, False)
    ]
    assert [(c.missing, c.errors) for c in summary.cells(T0, T0 + BUCKET_MS, 1, host="b:2")] == [
        (True, True)
    ]


def test_error_names_only_a_host_of_its_frame() -> None:
    assert error_host("10.0.0.5:9090: HTTP 503", {"10.0.0.5:9090"}) == "10.0.0.5:9090"
    assert error_host("https://n1:443: timeout", {"n1:443"}) == "n1:443"
    assert error_host("nvidia: GPU 3: GPU is lost", {"n1:443"}) is None
    assert error_host("n1:443 down", {"n1:443"}) is None
    # an error of a host neither expected nor with rows creates no host
    summary = Summary.of([frame(T0, gpu("a:1"), errors=("c:3: refused",))])
    assert summary.hosts == ("a:1",)
    assert summary.cells(T0, T0 + BUCKET_MS, 1)[0].errors


def test_expected_host_with_no_rows_is_missing() -> None:
    summary = Summary.of([frame(T0, gpu("a:1"))], expected_hosts=["a:1", "http://z:9/"])
    assert summary.hosts == ("a:1", "z:9")
    assert summary.cells(T0, T0 + BUCKET_MS, 1)[0].missing


def test_cells_at_a_coarser_width_aggregate_mean_and_max() -> None:
    frames = [
        frame(T0 + i * 5000, gpu(utilization=float(u)))
        for i, u in enumerate([10, 20, 30, 40, 50, 60, 70, 80])
    ]  # two frames a bucket, four buckets
    (cell,) = Summary.of(frames).cells(T0, T0 + 40_000, 1)
    assert (cell.frames, cell.util_mean, cell.util_max) == (8, 45.0, 80.0)
    halves = Summary.of(frames).cells(T0, T0 + 40_000, 2)
    assert [(c.util_mean, c.util_max) for c in halves] == [(25.0, 40.0), (65.0, 80.0)]


def test_frame_before_the_first_bucket_is_counted() -> None:
    late, early = frame(T0 + 5 * BUCKET_MS, gpu(utilization=10.0)), frame(T0, gpu(utilization=30.0))
    summary = Summary.of([late, early])
    assert summary.bucket_range() == (bucket_of(T0), bucket_of(T0) + 5)
    assert summary == Summary.of([early, late])


def test_merge_of_chunks_equals_one_summary() -> None:
    frames = [frame(T0 + i * 700, gpu(f"h{i % 3}:1", utilization=float(i))) for i in range(60)]
    left, right = Summary.of(frames[:17]), Summary.of(frames[17:])
    right.merge(left)
    assert right == Summary.of(frames)


def test_merge_refuses_another_width() -> None:
    with pytest.raises(ValueError, match="widths differ"):
        Summary(10_000).merge(Summary(1_000))


def test_round_trip_and_nbytes() -> None:
    frames = [frame(T0 + i * 1000, gpu(utilization=5.0)) for i in range(25)]
    summary = Summary.of(frames, expected_hosts=["n1:9090", "x:1"])
    data = summary.to_bytes()
    assert Summary.from_bytes(data) == summary
    # 3 buckets: 32 B cluster + 2 hosts × 16 B + 1 GPU × 32 B each (the stats kept: KEPT)
    assert summary.nbytes() == 3 * (32 + 2 * 16 + 32)


def _corrupt(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


def test_from_bytes_refuses_inconsistent_payloads() -> None:
    summary = Summary.of([frame(T0, gpu(utilization=5.0)), frame(T0 + 100, gpu())])
    data = summary.to_bytes()
    cases = {
        "truncated": data[:-1],
        "no header": data[:10],
        "bad magic": _corrupt(data, 0, b"XXXX"),
        "version 4": _corrupt(data, 4, b"\x04\x00"),
        "version 2": _corrupt(data, 4, b"\x02\x00"),
        "version 1": _corrupt(data, 4, b"\x01\x00"),
        "unknown flag": _corrupt(data, 6, b"\x02\x00"),
        "trailing bytes": data + b"\x00",
        "width 0": _corrupt(data, 8, b"\x00\x00\x00\x00"),
    }
    for name, payload in cases.items():
        with pytest.raises(SummaryInvalid) as err:
            Summary.from_bytes(payload)
        assert "\n" not in str(err.value), name


def test_check_finds_each_inconsistency() -> None:
    def fresh() -> Summary:
        return Summary.of([frame(T0, gpu(utilization=5.0)), frame(T0 + 100, gpu(utilization=9.0))])

    def mutate(field: str, value: int) -> str:
        summary = fresh()
        target = summary._gpu_stats["util"] if field in ("n", "s", "lo", "hi") else summary
        getattr(target, field if target is not summary else f"_{field}")[0] = value
        with pytest.raises(SummaryInvalid) as err:
            summary.check()  # what from_bytes runs on every summary it reads
        return str(err.value)

    assert "frame" in mutate("frames", 0)
    assert "times outside" in mutate("t_first", T0 - 1)
    assert "times outside" in mutate("t_last", T0 + BUCKET_MS)
    assert "gap" in mutate("gap", 101)
    assert "util" in mutate("n", 3)  # over the host's 2 frames
    assert "util" in mutate("hi", 3)  # a max under the mean
    assert "util" in mutate("s", 100)  # sum over n × max


def test_check_bounds_refuses_what_could_overflow_or_leave_a_range_and_leaves_the_rest() -> None:
    def fresh() -> Summary:
        return Summary.of([frame(T0, gpu(utilization=5.0)), frame(T0 + 100, gpu(utilization=9.0))])

    def bounds(column: str, value: int) -> str | None:
        summary = fresh()
        getattr(summary._gpu_stats["util"], column)[0] = value
        try:
            summary.check_bounds()
        except SummaryInvalid as err:
            return str(err)
        return None

    assert bounds("n", 3) == "summary buckets: a count over its bucket's frames"
    assert bounds("s", 2 * 200 + 1) == "summary buckets: a sum over its frames times its top"
    assert bounds("hi", 201) == "summary buckets: a max over its top"
    # a sum over n × max: within bounds (check() alone refuses it), and drawn clamped
    assert bounds("s", 2 * 200) is None
    lying = fresh()
    lying._gpu_stats["util"].n[0] = 1
    lying._gpu_stats["util"].s[0] = 400
    lying.check_bounds()
    assert lying.history("util", T0, 1) == [100.0]
    with pytest.raises(SummaryInvalid):
        lying.check()


def test_check_span_refuses_frames_outside_the_chunk() -> None:
    summary = Summary.of([frame(T0 + 10), frame(T0 + 20)])
    summary.check_span(T0 + 10, T0 + 20)
    with pytest.raises(SummaryInvalid, match="outside"):
        summary.check_span(T0 + 11, T0 + 20)


def _ring_frame(i: int) -> Frame:
    return frame(
        T0 + i * 1000,
        gpu(utilization=i % 100, temperature=40 + i % 30),
        gpu(uuid="GPU-1", utilization=50),
        errors=("n1:9090: timeout",) if i % 7 == 0 else (),
    )


def test_trim_before_forgets_older_buckets_and_keeps_the_rest_exact() -> None:
    frames = [_ring_frame(i) for i in range(0, 60)]
    whole = Summary.of(frames)
    kept = Summary.of(frames[30:])
    whole.trim_before(bucket_of(frames[30].t_ms))
    assert whole == kept
    assert whole.bucket_range() == kept.bucket_range()
    whole.trim_before(bucket_of(frames[30].t_ms))  # nothing before it now: unchanged
    assert whole == kept


def test_history_asked_again_after_a_change_reads_the_change() -> None:
    """Bucket means are cached for repeated paints; adding, merging or trimming drops the
    buckets they change, so the next answer is the new one."""
    frames = [_ring_frame(i) for i in range(25)]
    live = Summary.of(frames[:15])
    end = frames[24].t_ms
    assert live.history("util", end, 3) == Summary.of(frames[:15]).history("util", end, 3)
    live.add(frames[15])  # the same bucket as frames 10..14, and a new one
    assert live.history("util", end, 3) == Summary.of(frames[:16]).history("util", end, 3)
    rest = Summary.of(frames[16:])
    live.merge(rest)
    assert live.history("util", end, 3) == Summary.of(frames).history("util", end, 3)
    live.trim_before(bucket_of(frames[20].t_ms))
    assert live.history("util", end, 3) == Summary.of(frames[20:]).history("util", end, 3)


def test_merging_a_later_batch_appends_it_and_equals_the_whole() -> None:
    """A scan's next batch (starting in the map's last bucket or after it, bringing a new
    GPU) is appended (module header: merging), the shared bucket joined exactly."""
    frames = [_ring_frame(i) for i in range(40)]
    extra = frame(frames[-1].t_ms + 1000, gpu(uuid="GPU-9", utilization=30))
    the_map = Summary.of(frames[:25])  # frames 20..24 share a bucket with 25..29
    before = the_map.buckets
    the_map.merge(Summary.of([*frames[25:], extra]))
    assert the_map == Summary.of([*frames, extra])
    assert the_map.buckets[: len(before)] == before


def test_a_strip_that_begins_inside_a_bucket_draws_that_bucket_from_its_first_cell() -> None:
    """A recording's first frame seldom falls on a bucket's start: its first bucket is drawn
    from the first cell (a recording shorter than a bucket is drawn at all)."""
    first = T0 + 7_400  # 7.4 s into its bucket
    frames = [frame(first + i * 1000, gpu(utilization=50.0)) for i in range(5)]
    cells = Summary.of(frames).cells(first, frames[-1].t_ms + 1, 8)
    assert cells[0].frames == 3 and cells[0].util_mean == 50.0  # 7.4, 8.4, 9.4 s
    assert sum(c.frames for c in cells) == 5  # every frame in some cell
