"""Hypothesis strategies for the schema-1 model: finite floats, bounded ints, real shapes."""

from __future__ import annotations

from typing import TypeVar

from hypothesis import strategies as st

from allsmi.domain.model import (
    Chassis,
    Cpu,
    Frame,
    Gpu,
    GpuProcess,
    Header,
    IndexLine,
    Memory,
    Storage,
)

T = TypeVar("T")

MAX_T_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
t_ms = st.integers(min_value=0, max_value=MAX_T_MS)

# Values are what JSON can carry back exactly: finite floats, 64-bit ints, any text.
st.register_type_strategy(float, finite)
st.register_type_strategy(int, i64)


def rows(cls: type[T], max_size: int = 3) -> st.SearchStrategy[tuple[T, ...] | None]:
    return st.none() | st.lists(st.from_type(cls), max_size=max_size).map(tuple)


frames: st.SearchStrategy[Frame] = st.builds(
    Frame,
    t_ms=t_ms,
    seq=st.none() | st.integers(min_value=0, max_value=2**53),
    source=st.sampled_from(["local", "remote"]),
    gpus=rows(Gpu),
    cpus=rows(Cpu),
    memory=rows(Memory),
    chassis=rows(Chassis),
    processes=rows(GpuProcess),
    storage=rows(Storage),
    errors=st.lists(st.text(max_size=40), max_size=3).map(tuple),
)

headers: st.SearchStrategy[Header] = st.builds(
    Header,
    source=st.sampled_from(["local", "remote"]),
    interval_ms=st.none() | st.integers(min_value=100, max_value=86_400_000),
    hosts=st.lists(
        st.text(min_size=1, max_size=20).filter(
            lambda h: h == h.strip() and not h.endswith("/") and "://" not in h
        ),
        max_size=5,
    ).map(tuple),
)

index_lines: st.SearchStrategy[IndexLine] = st.builds(
    IndexLine,
    t_ms=st.none() | t_ms,
    seq=st.integers(min_value=0, max_value=2**53),
    byte_offset=st.integers(min_value=0, max_value=2**53),
)


@st.composite
def summary_gpu(
    draw: st.DrawFn,
    host: str,
    reading: st.SearchStrategy[float | None],
    count: st.SearchStrategy[int | None],
) -> Gpu:
    """A GPU row of ``host`` whose summarized readings (utilization, memory, temperature,
    power, clock) are drawn from ``reading`` (floats) and ``count`` (integers); its uuid one
    of two, so a frame may repeat a GPU key."""
    return Gpu(
        uuid=draw(st.sampled_from(["g0", "g1"])),
        name="x",
        device_type="GPU",
        host_id=host,
        hostname=host,
        instance=host,
        utilization=draw(reading),
        temperature=draw(count),
        used_memory=draw(count),
        total_memory=draw(count),
        frequency=draw(count),
        power_consumption=draw(reading),
    )
