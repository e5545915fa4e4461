"""The merged replay against a list model (docs/architecture.md §5.8).

Random interleavings of shards — 1 to 5 list-backed inputs, each with its own interval, gaps
longer than the staleness limit, clocks that step back (seek keys are the running maximum of
the times), seek-key ties within and across inputs, hosts shared between inputs, hosts that
answer with an error instead of rows — are read through :class:`MergedSource` in random
access orders (jumps, ±1 steps, the first and last frame, seeks by key), and every answer is
compared with a model computed independently from the sorted list of all input frames:

- merged frame *i* is the state after the first *i + 1* of the (seek key, input, own index)
  triples, in that order;
- each input contributes its latest frame among them while merged key − its key ≤
  ``STALE_INTERVALS`` × its interval;
- a host is taken from the contributing frame that speaks of it (rows or an error naming
  it) with the greatest (time, input); its rows and its errors come from that frame only;
  errors naming no host come from every contributing frame; a section is ``None`` only when
  no contributing frame collected it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Literal

import attrs
from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters.recording.merged import STALE_INTERVALS, MergedSource
from allsmi.domain.model import Cpu, Frame, Gpu, Header, Row

HOST_POOL = tuple(f"n{n}:9090" for n in range(6))
HOSTLESS_ERROR = "local collector failed: nvml not found"


class ListInput:
    """A :class:`~allsmi.adapters.recording.merged.MergeInput` backed by lists. Every index
    is checked, so a merge that asks for a frame outside the input fails the test."""

    def __init__(self, interval_ms: int, hosts: Sequence[str], frames: Sequence[Frame]) -> None:
        self._header = Header(source="remote", interval_ms=interval_ms, hosts=tuple(hosts))
        self._frames = list(frames)
        self._keys: list[int] = []
        for frame in self._frames:
            self._keys.append(max(frame.t_ms, self._keys[-1] if self._keys else frame.t_ms))
        self.warnings: list[str] = []
        self.closed = False

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    @property
    def header(self) -> Header | None:
        return self._header

    @property
    def generation(self) -> int:
        return 0

    @property
    def skipped_lines(self) -> int:
        return 0

    def _check(self, index: int) -> int:
        if not 0 <= index < len(self._frames):
            raise IndexError(f"input frame {index} outside 0..{len(self._frames) - 1}")
        return index

    def key_at(self, index: int) -> int:
        return self._keys[self._check(index)]

    def time_at(self, index: int) -> int:
        return self._frames[self._check(index)].t_ms

    def index_at_or_before(self, key_ms: int) -> int:
        return max(0, bisect.bisect_right(self._keys, key_ms) - 1)

    def frame(self, index: int) -> Frame:
        return self._frames[self._check(index)]

    def close(self) -> None:
        self.closed = True


# ----------------------------------------------------------------------------- generation


@attrs.frozen
class Shard:
    interval_ms: int
    hosts: tuple[str, ...]
    frames: tuple[Frame, ...]


def _gpu(host: str, shard: int, index: int) -> Gpu:
    """A row that tells which input frame it came from (its uuid)."""
    return Gpu(
        uuid=f"{host}/{shard}/{index}",
        name="H100",
        device_type="GPU",
        host_id=host,
        hostname=host,
        instance=host,
    )


def _cpu(host: str, shard: int, index: int) -> Cpu:
    return Cpu(host_id=host, hostname=host, instance=host, index=index, cpu_model=f"{shard}")


@st.composite
def shard_frames(draw: st.DrawFn, shard: int) -> Shard:
    """One input: its interval, its hosts, frames with gaps, ties and clocks stepping back."""
    interval = draw(st.integers(1, 6))
    hosts = tuple(draw(st.lists(st.sampled_from(HOST_POOL), min_size=1, max_size=3, unique=True)))
    count = draw(st.integers(1, 30))
    t = draw(st.integers(0, 12))
    frames: list[Frame] = []
    for index in range(count):
        if index:
            step = draw(
                st.sampled_from(["interval", "interval", "interval", "tie", "gap", "back", "any"])
            )
            if step == "interval":
                t += interval
            elif step == "gap":
                t += draw(st.integers(STALE_INTERVALS * interval + 1, 4 * interval + 3))
            elif step == "back":
                t = max(0, t - draw(st.integers(1, 2 * interval)))
            elif step == "any":
                t += draw(st.integers(0, 3 * interval))
        gpus: list[Gpu] = []
        cpus: list[Cpu] = []
        errors: list[str] = []
        for host in hosts:
            answer = draw(st.sampled_from(["rows", "rows", "rows", "error", "absent"]))
            if answer == "rows":
                gpus.append(_gpu(host, shard, index))
                cpus.append(_cpu(host, shard, index))
            elif answer == "error":
                errors.append(f"{host}: timeout after 2 s")
        if draw(st.integers(0, 9)) == 0:
            errors.append(HOSTLESS_ERROR)
        collect_cpus = draw(st.integers(0, 4)) != 0
        frames.append(
            Frame(
                t_ms=t,
                seq=index,
                source="remote",
                gpus=tuple(gpus),
                cpus=tuple(cpus) if collect_cpus else None,
                errors=tuple(errors),
            )
        )
    return Shard(interval, hosts, tuple(frames))


@st.composite
def shard_sets(draw: st.DrawFn) -> list[Shard]:
    count = draw(st.integers(1, 5))
    return [draw(shard_frames(n)) for n in range(count)]


OpKind = Literal["frame", "key", "time", "seek"]
Move = Literal["random", "+1", "-1", "first", "last", "near", "stay"]


@attrs.frozen
class Op:
    kind: OpKind
    move: Move
    value: int  # the index (random) or key (seek) drawn, or the distance (near)


ops = st.lists(
    st.builds(
        Op,
        kind=st.sampled_from(["frame", "frame", "key", "time", "seek"]),
        move=st.sampled_from(["random", "+1", "+1", "-1", "-1", "first", "last", "near", "stay"]),
        value=st.integers(-80, 10**6),
    ),
    min_size=15,
    max_size=60,
)


# ----------------------------------------------------------------------------- the model


@attrs.frozen
class Model:
    """The merged timeline as a list (module header)."""

    shards: list[Shard]
    triples: list[tuple[int, int, int]]  # (seek key, input, own index), in merged order

    @classmethod
    def of(cls, shards: list[Shard]) -> Model:
        triples: list[tuple[int, int, int]] = []
        for n, shard in enumerate(shards):
            key = -1
            for index, frame in enumerate(shard.frames):
                key = max(key, frame.t_ms)
                triples.append((key, n, index))
        return cls(shards, sorted(triples))

    def key_at(self, i: int) -> int:
        return self.triples[i][0]

    def time_at(self, i: int) -> int:
        _, n, index = self.triples[i]
        return self.shards[n].frames[index].t_ms

    def index_at_or_before(self, key_ms: int) -> int:
        return max(0, sum(1 for k, _, _ in self.triples if k <= key_ms) - 1)

    def parts(self, i: int) -> list[tuple[int, int, Frame]]:
        """(input, own index, frame) of each input frame standing at merged frame ``i``."""
        latest: dict[int, tuple[int, int]] = {}  # input → (own index, its key)
        for key, n, index in self.triples[: i + 1]:
            latest[n] = (index, key)
        merged_key = self.triples[i][0]
        return [
            (n, index, self.shards[n].frames[index])
            for n, (index, key) in sorted(latest.items())
            if merged_key - key <= STALE_INTERVALS * self.shards[n].interval_ms
        ]

    def expected(self, i: int) -> tuple[dict[str, dict[str, tuple[Row, ...]] | None], list[str]]:
        """Per section, each host's rows (``None``: not collected), and the errors."""
        parts = self.parts(i)
        owner: dict[str, tuple[int, int]] = {}  # host → (time, input) of its newest frame
        shared: set[str] = set()
        for n, _, frame in parts:
            speaks = {g.host_id for g in frame.gpus or ()}
            speaks |= {c.host_id for c in frame.cpus or ()}
            speaks |= {e.split(": ")[0] for e in frame.errors if e != HOSTLESS_ERROR}
            for host in speaks:
                if host in owner:
                    shared.add(host)
                owner[host] = max(owner.get(host, (-1, -1)), (frame.t_ms, n))
        sections: dict[str, dict[str, tuple[Row, ...]] | None] = {}
        for attr in ("gpus", "cpus"):
            collected = [(n, f) for n, _, f in parts if getattr(f, attr) is not None]
            if not collected:
                sections[attr] = None
                continue
            by_host: dict[str, tuple[Row, ...]] = {}
            for n, frame in collected:
                for row in getattr(frame, attr):
                    if owner[row.host_id][1] == n:
                        by_host[row.host_id] = (*by_host.get(row.host_id, ()), row)
            sections[attr] = by_host
        errors: list[str] = []
        for n, _, frame in parts:
            for error in frame.errors:
                if error == HOSTLESS_ERROR or owner[error.split(": ")[0]][1] == n:
                    errors.append(error)
        return sections, sorted(errors)

    def shared(self, i: int) -> set[str]:
        """Hosts that two standing input frames speak of at merged frame ``i``."""
        seen: dict[str, int] = {}
        for _, _, frame in self.parts(i):
            for host in {*frame.hosts(), *(e.split(": ")[0] for e in frame.errors)}:
                seen[host] = seen.get(host, 0) + 1
        return {h for h, c in seen.items() if c > 1 and h in HOST_POOL}


def _shown(frame: Frame) -> tuple[dict[str, dict[str, tuple[Row, ...]] | None], list[str]]:
    """A merged frame in the model's terms: per section, each host's rows; the errors."""
    sections: dict[str, dict[str, tuple[Row, ...]] | None] = {}
    for attr in ("gpus", "cpus"):
        rows: tuple[Row, ...] | None = getattr(frame, attr)
        if rows is None:
            sections[attr] = None
            continue
        by_host: dict[str, tuple[Row, ...]] = {}
        for row in rows:
            by_host[row.host_id] = (*by_host.get(row.host_id, ()), row)
        sections[attr] = by_host
    return sections, sorted(frame.errors)


# ----------------------------------------------------------------------------- the property


def _resolve(op: Op, last: int, total: int) -> int:
    """The merged index ``op`` asks for, from the last one asked for."""
    if op.move == "random":
        return op.value % total
    if op.move == "+1":
        return min(total - 1, last + 1)
    if op.move == "-1":
        return max(0, last - 1)
    if op.move == "first":
        return 0
    if op.move == "last":
        return total - 1
    if op.move == "near":
        return min(total - 1, max(0, last + op.value % 161 - 80))
    return last


@given(shards=shard_sets(), orders=ops)
def test_a_merge_of_shards_reads_as_the_list_model_in_any_access_order(
    shards: list[Shard], orders: list[Op]
) -> None:
    model = Model.of(shards)
    inputs = [ListInput(s.interval_ms, s.hosts, s.frames) for s in shards]
    merged = MergedSource(inputs, [f"shard{n}" for n in range(len(inputs))])
    total = len(model.triples)
    assert merged.frame_count == total
    keys = [k for k, _, _ in model.triples]
    last = 0
    for op in orders:
        if op.kind == "seek":
            key = keys[0] - 2 + op.value % (keys[-1] - keys[0] + 5)
            last = merged.index_at_or_before(key)
            assert last == model.index_at_or_before(key), f"seek {key}"
            continue
        last = _resolve(op, last, total)
        if op.kind == "key":
            assert merged.key_at(last) == model.key_at(last), f"key_at({last})"
        elif op.kind == "time":
            assert merged.time_at(last) == model.time_at(last), f"time_at({last})"
        else:
            shown = merged.frame(last)
            assert shown.t_ms == model.time_at(last), f"frame({last}).t_ms"
            assert shown.seq == last
            assert _shown(shown) == model.expected(last), f"frame({last})"
            for host in model.shared(last):
                assert any(host in line for line in merged.warnings), f"{host} shared, untold"
    merged.close()
    assert all(i.closed for i in inputs)


@given(shards=shard_sets())
def test_a_merge_visited_front_to_back_and_back_to_front_matches_the_model(
    shards: list[Shard],
) -> None:
    model = Model.of(shards)
    merged = MergedSource(
        [ListInput(s.interval_ms, s.hosts, s.frames) for s in shards],
        [f"shard{n}" for n in range(len(shards))],
    )
    total = len(model.triples)
    for i in [*range(total), *reversed(range(total))]:
        assert merged.key_at(i) == model.key_at(i), f"key_at({i})"
        assert merged.time_at(i) == model.time_at(i), f"time_at({i})"
        assert _shown(merged.frame(i)) == model.expected(i), f"frame({i})"


@given(shards=shard_sets(), data=st.data())
def test_a_fresh_merge_lands_on_any_index_and_steps_on_from_there(
    shards: list[Shard], data: st.DataObject
) -> None:
    """The first access to a fresh merge finds its position by bisection (or at the ends);
    the steps after it start from the input frame found there."""
    model = Model.of(shards)
    total = len(model.triples)
    for start in data.draw(st.lists(st.integers(0, total - 1), min_size=1, max_size=8)):
        merged = MergedSource(
            [ListInput(s.interval_ms, s.hosts, s.frames) for s in shards],
            [f"shard{n}" for n in range(len(shards))],
        )
        first = data.draw(st.sampled_from(["frame", "key", "time"]))
        if first == "frame":
            assert _shown(merged.frame(start)) == model.expected(start), f"frame({start})"
        elif first == "key":
            assert merged.key_at(start) == model.key_at(start), f"key_at({start})"
        else:
            assert merged.time_at(start) == model.time_at(start), f"time_at({start})"
        for step in data.draw(st.lists(st.sampled_from([-1, 1]), max_size=4)):
            start = min(total - 1, max(0, start + step))
            assert merged.time_at(start) == model.time_at(start), f"time_at({start})"
            assert _shown(merged.frame(start)) == model.expected(start), f"frame({start})"
