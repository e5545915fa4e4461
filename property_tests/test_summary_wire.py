"""The map's wire-level reading (adapters/recording/mapscan.py ``summary_inputs``) counts
exactly what ``Summary.add(wire.decode_line(line))`` counts: for our lines of any frame, for
all-smi's shape of them, and for lines whose read fields hold other JSON types (the decoder
then either refuses the line — and the fast path gives no frame — or converts the values)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters import wire
from allsmi.adapters.recording.mapscan import summary_inputs
from allsmi.domain.errors import RecordingCorrupt, UnsupportedSchema
from allsmi.domain.model import Cpu, Frame, Gpu, Memory
from allsmi.domain.parse import format_rfc3339_ms
from allsmi.domain.summary import Summary
from property_tests.strategies import frames as any_frames
from property_tests.strategies import summary_gpu

T0 = 1_776_513_600_000
HOSTS = ("a:1", "b:2")
EXPECTED = st.lists(st.sampled_from([*HOSTS, "z:9"]), max_size=2)

reading = st.one_of(
    st.none(),
    st.just(-1.0),
    st.floats(0, 120, allow_nan=False),
    st.sampled_from([0.0, 99.75, 100.25, 1e9]),
)
count = st.one_of(st.none(), st.sampled_from([-1, 0]), st.integers(0, 2_000), st.just(2**63))


@st.composite
def summary_frames(draw: st.DrawFn) -> Frame:
    """Frames that exercise every reading: sentinels, duplicate GPU keys, shared hosts."""
    hosts = draw(st.lists(st.sampled_from(HOSTS), unique=True, max_size=2))
    gpus = tuple(
        draw(summary_gpu(h, reading, count)) for h in hosts for _ in range(draw(st.integers(0, 3)))
    )
    cpus = tuple(Cpu(h, h, h, utilization=draw(reading)) for h in hosts for _ in range(2))
    memory = tuple(
        Memory(h, h, h, total_bytes=draw(count), used_bytes=draw(count), utilization=draw(reading))
        for h in hosts
        if draw(st.booleans())
    )
    errors = draw(st.lists(st.sampled_from(["a:1: HTTP 503", "https://b:2: x", "nvidia: lost"])))
    return Frame(
        t_ms=T0 + draw(st.integers(0, 50_000)),
        gpus=gpus or None,
        cpus=cpus or None,
        memory=memory,
        errors=tuple(errors),
    )


frames = summary_frames() | any_frames


def fast(line: bytes, expected: list[str]) -> Summary:
    summary = Summary(expected_hosts=expected)
    inputs = summary_inputs(orjson.loads(line))
    if inputs is not None:
        summary.add_readings(*inputs)
    return summary


def decoded(line: bytes, expected: list[str]) -> Summary | None:
    """``Summary.add(wire.decode_line(line))``; None when the decoder refuses the line."""
    try:
        record = wire.decode_line(line, 1)
    except (RecordingCorrupt, UnsupportedSchema):
        return None
    return Summary.of([record] if isinstance(record, Frame) else [], expected_hosts=expected)


@given(frame=frames, expected=EXPECTED)
def test_our_lines_count_as_the_frame_does(frame: Frame, expected: list[str]) -> None:
    line = wire.encode_line(frame)
    assert fast(line, expected) == Summary.of([frame], expected_hosts=expected)


def all_smi_shape(frame: Frame, data: st.DataObject) -> dict[str, Any]:
    """``frame`` as all-smi writes it: ``timestamp``, ``hostname``, −1/0 sentinels, error
    objects, ``http://`` host ids (docs/recording-format.md Appendix A)."""
    obj = wire.frame_to_dict(frame)
    del obj["t"]
    obj.pop("seq", None)
    obj.pop("source", None)
    obj["timestamp"] = format_rfc3339_ms(frame.t_ms).replace(".000Z", "Z")
    obj["hostname"] = "h"
    for key in ("gpus", "cpus", "memory", "chassis", "storage"):
        for row in obj.get(key) or ():
            if data.draw(st.booleans()):
                row["host_id"] = f"http://{row['host_id']}/"
    for gpu in obj.get("gpus") or ():
        if gpu["utilization"] is None:
            gpu["utilization"] = -1
        for key in ("temperature", "frequency"):
            if gpu[key] is None or data.draw(st.booleans()):
                gpu[key] = 0
    for proc in obj.get("processes") or ():
        if data.draw(st.booleans()):
            del proc["host_id"], proc["hostname"]
    obj["errors"] = [
        {"kind": "x", "message": e, "section": data.draw(st.sampled_from(["gpu", "", "a:1"]))}
        if data.draw(st.booleans())
        else e
        for e in frame.errors
    ]
    return obj


@given(frame=frames, expected=EXPECTED, data=st.data())
def test_all_smi_lines_count_as_the_decoder_reads_them(
    frame: Frame, expected: list[str], data: st.DataObject
) -> None:
    line = orjson.dumps(all_smi_shape(frame, data), option=orjson.OPT_SORT_KEYS)
    want = decoded(line, expected)
    assert want is not None
    assert fast(line, expected) == want


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(-3, 300, allow_nan=False),
    st.sampled_from(["50", "x", "", [], {}, 2**64 - 1, -(2**63), 1e300]),
)
READ_FIELDS = {
    "gpus": (
        "host_id",
        "uuid",
        "utilization",
        "temperature",
        "used_memory",
        "total_memory",
        "frequency",
        "power_consumption",
        "name",
    ),
    "cpus": ("host_id", "utilization"),
    "memory": ("host_id", "used_bytes", "total_bytes", "utilization"),
}


@given(frame=summary_frames(), expected=EXPECTED, data=st.data(), foreign=st.booleans())
def test_odd_values_in_read_fields_are_refused_or_converted_as_the_decoder_does(
    frame: Frame, expected: list[str], data: st.DataObject, foreign: bool
) -> None:
    obj = all_smi_shape(frame, data) if foreign else wire.frame_to_dict(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        target = data.draw(st.sampled_from(["gpus", "cpus", "memory", "line"]))
        if target == "line":
            key = data.draw(st.sampled_from(["seq", "errors", "timestamp" if foreign else "t"]))
            obj[key] = data.draw(odd_values | st.lists(odd_values, max_size=2))
            continue
        rows = obj.get(target)
        if not rows:
            continue
        row = rows[data.draw(st.integers(0, len(rows) - 1))]
        field = data.draw(st.sampled_from(READ_FIELDS[target]))
        if data.draw(st.booleans()):
            row[field] = data.draw(odd_values)
        else:
            row.pop(field, None)
    line = orjson.dumps(obj)
    want = decoded(line, expected)
    got = summary_inputs(orjson.loads(line))
    if want is None:
        assert got is None
    else:
        assert fast(line, expected) == want


def test_a_huge_float_reading_is_clamped_as_the_decoder_does() -> None:
    line = wire.encode_line(
        Frame(
            t_ms=T0,
            gpus=(Gpu("g", "x", "GPU", "a:1", "a", "a", utilization=1e300, temperature=2**62),),
        )
    )
    got = fast(line, [])
    assert got == decoded(line, [])
    assert got.history("util", T0, 1) == [100.0] and got.history("temp", T0, 1) == [255.0]
