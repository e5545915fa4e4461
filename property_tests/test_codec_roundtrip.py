"""Round trips through the one serializer: ``decode(encode(x)) == x`` for every line kind."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters import wire
from allsmi.domain.model import (
    Chassis,
    CoreUtilization,
    Cpu,
    Fan,
    Frame,
    Gpu,
    GpuProcess,
    Header,
    IndexLine,
    Memory,
    Storage,
)

from .strategies import frames, headers, index_lines


@given(frames)
def test_frame_round_trips_through_a_line(frame: Frame) -> None:
    line = wire.encode_line(frame)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert wire.decode_line(line, 1) == frame


@given(headers)
def test_header_round_trips_through_a_line(header: Header) -> None:
    assert wire.decode_line(wire.encode_line(header), 1) == header


@given(index_lines)
def test_index_line_round_trips_through_a_line(index: IndexLine) -> None:
    assert wire.decode_line(wire.encode_line(index), 1) == index


@given(frames)
def test_slice_of_a_frame_line_gives_its_time_and_seq(frame: Frame) -> None:
    info = wire.slice_line(wire.encode_line(frame))
    assert info == wire.LineInfo(wire.KIND_DATA, frame.t_ms, frame.seq)


@given(index_lines)
def test_slice_of_an_index_line_gives_its_time_and_seq(index: IndexLine) -> None:
    info = wire.slice_line(wire.encode_line(index))
    assert info == wire.LineInfo(wire.KIND_INDEX, index.t_ms, index.seq)


@given(
    st.one_of(
        st.from_type(Gpu),
        st.from_type(Cpu),
        st.from_type(Memory),
        st.from_type(Chassis),
        st.from_type(GpuProcess),
        st.from_type(Storage),
    )
)
def test_every_row_class_round_trips_through_the_converter(row: object) -> None:
    data = wire.converter.unstructure(row)
    assert wire.converter.structure(data, type(row)) == row


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
ROW_CLASSES = (Gpu, Cpu, Memory, Chassis, GpuProcess, Storage, CoreUtilization, Fan)


def _outcome(convert: Callable[[], object]) -> tuple[str, object]:
    try:
        return "ok", convert()
    except Exception:
        return "rejected", None


@given(st.sampled_from(ROW_CLASSES).flatmap(st.from_type), st.data())
def test_the_generated_row_hooks_agree_with_the_detailed_converter(
    row: object, data: st.DataObject
) -> None:
    """Any field of a valid row replaced by any JSON value (or dropped): whatever the fast
    path (generated hooks) accepts, the detailed converter accepts as the same row. (Where the
    fast path refuses, the codec asks the detailed converter, so its verdict is final.)"""
    obj = wire.converter.unstructure(row)
    key = data.draw(st.sampled_from(sorted(obj)))
    if data.draw(st.booleans()):
        del obj[key]
    else:
        obj[key] = data.draw(json_values)
    fast = _outcome(lambda: wire._fast.structure(dict(obj), type(row)))
    if fast[0] == "ok":
        assert _outcome(lambda: wire.converter.structure(dict(obj), type(row))) == fast
