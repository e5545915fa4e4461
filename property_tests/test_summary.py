"""Summaries (src/allsmi/domain/summary.py): merging any cut is exact, the bytes round-trip,
a damaged payload is refused or consistent, and the queries agree with a slow reference."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from allsmi.domain.model import Cpu, Frame, Gpu, Memory
from allsmi.domain.summary import (
    ACTIVE_UTIL,
    GPU_SERIES,
    HOST_SERIES,
    TOPS,
    UNITS,
    Summary,
    SummaryInvalid,
    bucket_of,
    error_host,
    gpu_readings,
    host_readings,
    quantize,
    share,
)
from property_tests.strategies import frames as any_frames
from property_tests.strategies import summary_gpu

T0 = 1_776_513_600_000
HOSTS = ("a:1", "b:2", "c:3")
WIDTHS = st.sampled_from([1000, 10_000])

reading = st.one_of(
    st.none(),
    st.just(-1.0),
    st.just(math.nan),
    st.floats(0, 120, allow_nan=False),
    st.sampled_from([0.0, 99.5, 1e9]),
)
count = st.one_of(st.none(), st.just(-1), st.integers(0, 2_000))


def gpus(host: str) -> st.SearchStrategy[Gpu]:
    return summary_gpu(host, reading, count)


@st.composite
def a_frame(draw: st.DrawFn, t_ms: int) -> Frame:
    hosts = draw(st.lists(st.sampled_from(HOSTS), unique=True, max_size=3))
    rows = tuple(draw(gpus(h)) for h in hosts for _ in range(draw(st.integers(0, 2))))
    cpus = tuple(Cpu(h, h, h, utilization=draw(reading)) for h in hosts if draw(st.booleans()))
    memory = tuple(
        Memory(h, h, h, total_bytes=draw(count), used_bytes=draw(count), utilization=draw(reading))
        for h in hosts
        if draw(st.booleans())
    )
    errors = draw(
        st.lists(st.sampled_from(["a:1: HTTP 503", "https://c:3: timeout", "nvidia: lost"]))
    )
    return Frame(
        t_ms=t_ms, gpus=rows or None, cpus=cpus or None, memory=memory, errors=tuple(errors)
    )


@st.composite
def runs(draw: st.DrawFn) -> list[Frame]:
    """Time-ordered frames: steady spacing, equal times, and long gaps."""
    steps = draw(
        st.lists(st.sampled_from([0, 300, 1000, 1000, 1000, 2500, 9999, 35_000]), max_size=40)
    )
    t, out = T0 + draw(st.integers(0, 20_000)), []
    for step in steps:
        t += step
        out.append(draw(a_frame(t)))
    return out


expected = st.lists(st.sampled_from([*HOSTS, "z:9"]), max_size=2)


@given(frames=runs(), width=WIDTHS, hosts=expected, seed=st.integers(0, 2**32))
def test_merging_any_cut_into_chunks_is_exact(
    frames: list[Frame], width: int, hosts: list[str], seed: int
) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(frames) + 1), rng.randint(0, len(frames) + 1)))
    bounds = [0, *cuts, len(frames)]
    parts = [Summary.of(frames[a:b], width, hosts) for a, b in pairwise(bounds)]
    while len(parts) > 1:  # neighbours merged in a random grouping, either way round
        i = rng.randrange(len(parts) - 1)
        left, right = parts[i], parts[i + 1]
        if rng.random() < 0.5:
            left.merge(right)
            parts[i : i + 2] = [left]
        else:
            right.merge(left)
            parts[i : i + 2] = [right]
    assert parts[0] == Summary.of(frames, width, hosts)


def _without_gaps(summary: Summary) -> bytes:
    copy = summary.copy()
    copy._gap[:] = type(copy._gap)("I", bytes(4 * len(copy._gap)))
    return copy.to_bytes()


@given(frames=runs(), width=WIDTHS, seed=st.integers(0, 2**32))
def test_merging_any_partition_is_exact_but_for_gaps(
    frames: list[Frame], width: int, seed: int
) -> None:
    rng = random.Random(seed)
    parts = [Summary(width) for _ in range(3)]
    for frame in frames:
        parts[rng.randrange(3)].add(frame)
    rng.shuffle(parts)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    whole = Summary.of(frames, width)
    assert _without_gaps(merged) == _without_gaps(whole)
    assert all(g >= h for g, h in zip(merged._gap, whole._gap, strict=True))


@given(frames=runs(), width=WIDTHS, hosts=expected)
def test_bytes_round_trip(frames: list[Frame], width: int, hosts: list[str]) -> None:
    summary = Summary.of(frames, width, hosts)
    data = summary.to_bytes()
    again = Summary.from_bytes(data)
    assert again == summary
    assert again.to_bytes() == data


@given(frames=st.lists(any_frames, max_size=6))
def test_any_frames_in_any_order_give_a_consistent_summary(frames: list[Frame]) -> None:
    summary = Summary.of(frames)
    summary.check()
    assert Summary.from_bytes(summary.to_bytes()) == summary
    assert sum(summary._frames) == len(frames)


@given(frames=runs(), data=st.data())
def test_a_damaged_payload_is_refused_or_consistent(
    frames: list[Frame], data: st.DataObject
) -> None:
    payload = bytearray(Summary.of(frames, 10_000, ["z:9"]).to_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(0, len(payload) - 1)))
        if kind == "flip" and payload:
            payload[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del payload[at : at + data.draw(st.integers(1, 16))]
        else:
            payload[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        summary = Summary.from_bytes(bytes(payload))
    except SummaryInvalid as err:
        assert "\n" not in str(err)
    else:
        summary.check()
        assert Summary.from_bytes(summary.to_bytes()) == summary


@given(frames=runs(), data=st.data())
def test_a_damaged_payload_read_with_bounds_only_is_refused_or_safe_to_draw_and_merge(
    frames: list[Frame], data: st.DataObject
) -> None:
    """What the map takes at open (check_bounds): whatever it accepts draws means within
    their series' range and merges with itself without overflowing a column."""
    payload = bytearray(Summary.of(frames, 10_000).to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, max(0, len(payload) - 1)))
        if payload:
            payload[at] ^= data.draw(st.integers(1, 255))
    try:
        summary = Summary.from_bytes(bytes(payload), full=False)
    except SummaryInvalid as err:
        assert "\n" not in str(err)
        return
    span = summary.bucket_range()
    if span is None:
        return
    t_end = (span[1] + 1) * 10_000 - 1
    for series in GPU_SERIES + HOST_SERIES:
        limit = TOPS[series] * UNITS[series]
        values = summary.history(series, t_end, span[1] - span[0] + 1)
        assert all(v is None or 0 <= v <= limit for v in values)
    for cell in summary.cells(span[0] * 10_000, t_end + 1, 3):
        assert cell.util_mean is None or 0 <= cell.util_mean <= 100
    twice = summary.copy()
    twice.merge(summary.copy())  # no OverflowError: every sum ≤ frames × top


@given(rows=st.lists(st.sampled_from(HOSTS).flatmap(gpus), max_size=40))
def test_readings_taken_a_series_at_a_time_are_each_row_s_own(rows: list[Gpu]) -> None:
    """gpu_readings quantizes whole series in C where it can: the same values, row by
    row, as quantize() and share() give (the first row of a key counts)."""
    expected: dict[tuple[str, str], tuple[int | None, ...]] = {}
    for g in rows:
        expected.setdefault(
            (g.host_id, g.uuid),
            (
                quantize(g.utilization, 2, 200),
                share(g.used_memory, g.total_memory),
                quantize(g.temperature, 1, 255),
                quantize(g.power_consumption, 1, 0xFFFF),
                quantize(g.frequency, 1, 0xFFFF),
            ),
        )
    got = gpu_readings(Frame(t_ms=T0, gpus=tuple(rows) or None))
    assert got == expected


@st.composite
def steady(draw: st.DrawFn) -> list[Frame]:
    """Frames of one cluster's GPU keys, each once a frame (the recorder's usual frame),
    any subset of them in any order, readings of every kind."""
    keys = [(h, f"g{i}") for h in HOSTS for i in range(3)]
    frames = []
    for k in range(draw(st.integers(1, 6))):
        order = draw(st.permutations(keys))[: draw(st.integers(0, len(keys)))]
        rows = tuple(
            Gpu(
                uuid=uuid, name="x", device_type="GPU", host_id=host, hostname=host,
                instance=host, utilization=draw(reading), temperature=draw(count),
                used_memory=draw(count), total_memory=draw(count), frequency=draw(count),
                power_consumption=draw(reading),
            )
            for host, uuid in order
        )  # fmt: skip
        frames.append(Frame(t_ms=T0 + k * 4000, gpus=rows or None))
    return frames


@given(frames=st.one_of(steady(), runs(), st.lists(any_frames, max_size=6)), hosts=expected)
def test_a_frame_added_in_one_pass_counts_as_its_readings_do(
    frames: list[Frame], hosts: list[str]
) -> None:
    """Summary.add takes a frame of known, distinct GPU keys in one pass over its rows; it
    counts exactly what add_readings counts of gpu_readings and host_readings (new keys,
    repeated keys, missing and hostile readings included)."""
    one_pass = Summary.of(frames, 10_000, hosts)
    by_readings = Summary(10_000, hosts)
    for f in frames:
        by_readings.add_readings(f.t_ms, f.hosts(), gpu_readings(f), host_readings(f), f.errors)
    assert one_pass == by_readings


# --------------------------------------------------------------------------- reference


def _known_hosts(frames: Sequence[Frame], expected: Sequence[str]) -> set[str]:
    return {*expected, *(h for f in frames for h in f.hosts())}


def _reference_cells(
    frames: Sequence[Frame],
    width: int,
    expected: Sequence[str],
    t0: int,
    t1: int,
    ncells: int,
    host: str | None,
    interval: int,
) -> list[tuple[int, float | None, float | None, bool, bool, bool, float | None]]:
    span = t1 - t0
    known = _known_hosts(frames, expected)
    by_bucket: dict[int, list[Frame]] = {}
    for f in frames:
        by_bucket.setdefault(bucket_of(f.t_ms, width), []).append(f)

    def cell_of(t: int) -> int:
        return (t - t0) * ncells // span

    count = [0] * ncells
    utils: list[list[int]] = [[] for _ in range(ncells)]
    gap, missing, errors = [False] * ncells, [False] * ncells, [False] * ncells
    busy, read = [0] * ncells, [0] * ncells  # GPU-buckets active (mean ≥ 30 %), with a reading

    def cell_of_bucket(start: int) -> int | None:
        """The cell of the bucket starting at ``start``: where its start falls, or the first
        cell for the bucket holding t0; None for one outside."""
        if t0 <= start < t1:
            return cell_of(start)
        return 0 if start < t0 < start + width else None

    for bucket, group in by_bucket.items():
        start = bucket * width
        found = cell_of_bucket(start)
        if found is None:
            continue
        c = found
        count[c] += len(group)
        per_gpu: dict[tuple[str, str], list[int]] = {}
        for f in group:
            for (h, uuid), q in gpu_readings(f).items():
                if (host is None or h == host) and q[0] is not None:
                    utils[c].append(q[0])
                    per_gpu.setdefault((h, uuid), []).append(q[0])
            named = {error_host(e, {*expected, *f.hosts()}) for e in f.errors}
            if (host is None and f.errors) or (host is not None and host in named):
                errors[c] = True
            absent = (known - set(f.hosts())) if host is None else {host} - set(f.hosts())
            if absent:
                missing[c] = True
        read[c] += len(per_gpu)
        busy[c] += sum(1 for qs in per_gpu.values() if sum(qs) / len(qs) * 0.5 >= ACTIVE_UTIL)
    ordered = sorted(frames, key=lambda f: f.t_ms)
    for a, b in pairwise(ordered):
        if b.t_ms - a.t_ms <= 2 * interval:
            continue
        if bucket_of(a.t_ms, width) == bucket_of(b.t_ms, width):
            inside = cell_of_bucket(bucket_of(a.t_ms, width) * width)
            if inside is not None:
                gap[inside] = True
        else:
            lo, hi = max(a.t_ms + 1, t0), min(b.t_ms - 1, t1 - 1)
            for c in range(cell_of(lo), cell_of(hi) + 1) if lo <= hi else ():
                gap[c] = True
    return [
        (
            count[c],
            sum(utils[c]) / len(utils[c]) * 0.5 if utils[c] else None,
            max(utils[c]) * 0.5 if utils[c] else None,
            gap[c],
            missing[c],
            errors[c],
            busy[c] / read[c] if read[c] else None,
        )
        for c in range(ncells)
    ]


@given(
    frames=runs(),
    width=WIDTHS,
    hosts=expected,
    host=st.none() | st.sampled_from([*HOSTS, "z:9", "nowhere"]),
    ncells=st.integers(1, 12),
    offsets=st.tuples(st.integers(-30_000, 200_000), st.integers(1, 400_000)),
    interval=st.sampled_from([500, 1000, 5000]),
)
def test_cells_agree_with_the_frames(
    frames: list[Frame],
    width: int,
    hosts: list[str],
    host: str | None,
    ncells: int,
    offsets: tuple[int, int],
    interval: int,
) -> None:
    t0 = T0 + offsets[0]
    t1 = t0 + offsets[1]
    cells = Summary.of(frames, width, hosts).cells(t0, t1, ncells, host, interval)
    got = [(c.frames, c.util_mean, c.util_max, c.gap, c.missing, c.errors, c.active) for c in cells]
    assert got == _reference_cells(frames, width, hosts, t0, t1, ncells, host, interval)


@given(
    frames=runs(),
    width=WIDTHS,
    series=st.sampled_from([*GPU_SERIES, *HOST_SERIES]),
    who=st.sampled_from(["all", "a:1", "b:2", "gpu"]),
    end=st.integers(0, 200_000),
    n=st.integers(0, 8),
    cut=st.integers(0, 40),
)
def test_history_agrees_with_the_frames(
    frames: list[Frame], width: int, series: str, who: str, end: int, n: int, cut: int
) -> None:
    host = who if who in HOSTS else None
    gpu = ("a:1", "g0") if who == "gpu" and series in GPU_SERIES else None
    t_end = T0 + end
    last = bucket_of(t_end, width)
    # the partial last bucket: its frames up to the cut-th frame of the recording
    upto = [f for f in frames[:cut] if bucket_of(f.t_ms, width) == last]
    partial = Summary.of(upto, width)
    got = Summary.of(frames, width).history(series, t_end, n, host=host, gpu=gpu, partial=partial)

    def mean(group: Sequence[Frame]) -> float | None:
        qs: list[int] = []
        for f in group:
            if series in GPU_SERIES:
                index = GPU_SERIES.index(series)
                for (h, uuid), values in gpu_readings(f).items():
                    wanted = (gpu is None or (h, uuid) == gpu) and (host is None or h == host)
                    if wanted and values[index] is not None:
                        qs.append(values[index] or 0)
            else:
                index = HOST_SERIES.index(series)
                for h, pair in host_readings(f).items():
                    if (host is None or h == host) and pair[index] is not None:
                        qs.append(pair[index] or 0)
        return sum(qs) / len(qs) * UNITS[series] if qs else None

    want = [
        mean([f for f in frames if bucket_of(f.t_ms, width) == b])
        for b in range(last - n + 1, last)
    ]
    if n:
        want.append(mean(upto))
    assert got == want
