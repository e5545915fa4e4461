"""The event scan's lean path (allsmi.adapters.recording.eventscan.detection_readings, fed to
Detector.feed_readings by events_by_line) finds exactly the events of the full path (every
line through decode_line, every frame through Detector.feed) over the demo and over
recordings of hostile lines whose damage lies in a field detection reads or in their
structure (nulls, −1 sentinels, missing keys, values of other types, errors naming hosts,
all-smi lines, torn lines, bad times, other schemas); line by line, it reads a line as the
decoder reads it with the fields detection does not read made valid. Its one limit (the map's,
mapscan's module header) is pinned too: a line the decoder refuses only for a field detection
does not read is read with its readings."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from allsmi.adapters import wire
from allsmi.adapters.recording.decoding import sniff
from allsmi.adapters.recording.discovery import discover, open_segment
from allsmi.adapters.recording.eventscan import Readings, detection_readings, events_by_line
from allsmi.adapters.recording.index import parse_header
from allsmi.adapters.recording.mapscan import segment_lines
from allsmi.app.demo import write_demo
from allsmi.domain.errors import RecordingCorrupt, UnsupportedSchema
from allsmi.domain.events import Detector, Event, GpuReading
from allsmi.domain.model import HOST_SECTION_ATTRS, Frame
from allsmi.domain.parse import format_rfc3339_ms

T0 = 1_776_513_600_000


def full_path_events(path: Path) -> list[Event]:
    """The events as the scan found them before its lean path: each line sliced, headers told,
    each data line decoded in full and its frame fed."""
    detector = Detector()
    out: list[Event] = []
    line_no = 0
    for file in discover(path):
        with open_segment(file) as fh:
            codec = sniff(fh.read(8))
            fh.seek(0)
            for raw in segment_lines(fh, codec):
                line_no += 1
                info = wire.slice_line(raw)
                if info is not None and info.kind == wire.KIND_HEADER:
                    out += detector.segment(parse_header(raw, []))
                    continue
                if info is None or info.kind != wire.KIND_DATA:
                    continue
                try:
                    record = wire.decode_line(raw, line_no)
                except (RecordingCorrupt, UnsupportedSchema):
                    continue
                if isinstance(record, Frame):
                    out += detector.feed(record)
    return out + detector.finish()


def scan_events(path: Path) -> list[Event]:
    detector = Detector()
    return [e for found in events_by_line(path, detector) for e in found] + detector.finish()


def gpu_row(host: str, i: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uuid": f"GPU-{host}-{i}", "name": "H100", "device_type": "GPU", "host_id": host,
        "hostname": host, "instance": host, "utilization": 80.5, "temperature": 60,
        "used_memory": 500, "total_memory": 1000, "power_consumption": 400.0,
        "temperature_threshold_slowdown": 90, "temperature_threshold_shutdown": 95,
        "detail": {"index": str(i)},
    }  # fmt: skip
    row.update(fields)
    return row


def data_line(t_s: int, gpus: list[dict[str, Any]] | None, **extra: Any) -> bytes:
    obj: dict[str, Any] = {"schema": 1, "t": _stamp(T0 + t_s * 1000), "seq": t_s}
    obj["source"] = "remote"
    if gpus is not None:
        obj["gpus"] = gpus
    obj.update(extra)
    obj.setdefault("errors", [])
    return orjson.dumps(obj) + b"\n"


def _stamp(t_ms: int) -> str:
    return format_rfc3339_ms(t_ms)


HEADER = (
    b'{"schema":1,"header":true,"writer":"allsmi","format":"chunked-1","all_smi_version":"0",'
    b'"source":"remote","interval_ms":1000,"hosts":["a:1","b:1"],"started_ms":1}\n'
)

# Odd GPU rows: each changes what the full decoder makes of the row, or whether it makes one.
ODD_ROWS: list[dict[str, Any]] = [
    {"utilization": None, "temperature": None, "power_consumption": None},
    {"utilization": -1, "power_consumption": -1},  # all-smi's sentinels in our line
    {"utilization": 2},  # an int in a float field: the frame holds 2.0
    {"utilization": 2.0, "power_consumption": 10},
    {"temperature": 98.7},  # a float in an int field: the decoder truncates it
    {"temperature": True},  # a boolean in an int field
    {"utilization": "3"},  # a string in a float field
    {"utilization": False},
    {"temperature": 0, "temperature_threshold_slowdown": -1},
    {"detail": {"index": 7}},  # a non-string detail value: the decoder makes it "7"
    {"detail": None},
    {"detail": []},
    {"gpm_metrics": {"sm_occupancy": 0.5}},
    {"nvlink_remote_devices": [{"link_index": 0, "remote_type": "gpu"}]},
    {"nvlink_remote_devices": {}},
    {"used_memory": 99_999, "total_memory": 100_000},
    {"used_memory": -5},
    {"total_memory": 1.5e19},  # past what an int reading may hold
    {"extra_key": [1, 2, 3]},
]
MISSING_KEYS = ["uuid", "name", "host_id", "utilization", "detail", "temperature"]
# The fields of a GPU row detection reads (GpuReading's); the decoder's checks of any other
# field are the scan's documented limit.
READ_FIELDS = frozenset(GpuReading.__slots__)
# Damage the decoder refuses in a field detection does not read: (GPU row changes, line keys).
UNREAD_DAMAGE: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"fan_speed_percent": "fast"}, {}),
    ({"gpm_metrics": {"sm_occupancy": "x"}}, {}),
    ({"nvlink_remote_devices": [{"link_index": "zero", "remote_type": "gpu"}]}, {}),
    ({}, {"memory": [{"host_id": "a:1", "hostname": "a", "instance": "a", "index": None}]}),
    (
        {},
        {
            "processes": [
                {"host_id": "a:1", "hostname": "a", "device_id": 0, "device_uuid": "GPU-a:1-0",
                 "pid": "x"}
            ]
        },
    ),
]  # fmt: skip


def hostile_lines() -> list[bytes]:
    """Two hosts over 400 s: idle falls, heat, power falls and errors, broken by odd rows,
    missing keys, odd frame fields and damage on many seconds."""
    lines = [HEADER]
    for t in range(400):
        util = 2.0 if 100 <= t < 180 else 80.0
        temp = 93 if 200 <= t < 230 else 60
        power = 50.0 if 250 <= t < 300 else 400.0
        gpus = [gpu_row("a:1", 0, utilization=util, temperature=temp, power_consumption=power)]
        gpus.append(gpu_row("b:1", 1))
        extra: dict[str, Any] = {}
        if t % 7 == 3:
            gpus[1].update(ODD_ROWS[(t // 7) % len(ODD_ROWS)])
        if t % 11 == 5:
            del gpus[0][MISSING_KEYS[(t // 11) % len(MISSING_KEYS)]]
        if 320 <= t < 330:
            extra["errors"] = ["b:1: timeout", "local: NVML_ERROR_GPU_IS_LOST"]
            gpus.pop()
        if t % 13 == 4:
            extra["memory"] = [{"host_id": "a:1", "hostname": "a", "instance": "a", "index": 0}]
        if t % 17 == 9:  # a row without its host_id; a host_id the decoder makes a string
            host: dict[str, Any] = {} if t % 2 else {"host_id": 7}
            extra["memory"] = [{"hostname": "c", "instance": "c", **host}]
        if t % 19 == 2:
            extra["errors"] = [{"message": "an object"}]
        if t % 23 == 6:
            extra["seq"] = True
        if t % 29 == 8:
            extra["errors"] = None
        if t % 31 == 10:
            extra["cpus"] = None
        if 340 <= t < 350:
            lines.append(data_line(t, None, errors=["a:1: HTTP 503"]))
            continue
        line = data_line(t, gpus, **extra)
        if t % 37 == 1:
            line = line[:-40] + b"\n"  # torn
        if t % 41 == 2:
            line = line.replace(b'"schema":1', b'"schema":2', 1)
        if t % 43 == 3:
            line = line.replace(b'"schema":1,', b'"schema":1.0,', 1)
        if t % 47 == 4:
            line = line.replace(b"12:0", b"12:X", 1)  # a bad time
        lines.append(line)
        if t == 360:  # a restart, then the same seconds again (time does not go back)
            lines.append(HEADER.replace(b'"started_ms":1', b'"started_ms":2'))
    lines.append(b"null\n")
    lines.append(b'{"schema":1,"t":"' + _stamp(T0).encode() + b'","header":true,"hosts":[]}\n')
    lines.append(b'{"schema":1,"t":null}\n')
    # all-smi's shape: sorted keys, timestamp last, −1 sentinels, error objects
    lines.append(
        b'{"errors":[{"kind":"x","message":"b:1 down","section":"gpu"}],"gpus":['
        + orjson.dumps(gpu_row("http://a:1/", 0, utilization=-1, temperature=0))
        + b'],"hostname":"remote","schema":1,"timestamp":"'
        + _stamp(T0 + 401_000).encode()
        + b'"}\n'
    )
    return lines


def test_scan_finds_the_events_of_the_full_decode_over_the_demo(tmp_path: Path) -> None:
    path = tmp_path / "demo.ndjson.zst"
    write_demo(path)
    full = full_path_events(path)
    assert full  # the demo has events to compare
    assert scan_events(path) == full


def test_scan_finds_the_events_of_the_full_decode_over_hostile_lines(tmp_path: Path) -> None:
    path = tmp_path / "odd.ndjson.gz"
    with gzip.open(path, "wb") as fh:
        fh.writelines(hostile_lines())
    full = full_path_events(path)
    kinds = {event.kind for event in full}
    assert {"util-drop", "temp-crit", "power-drop", "errors", "restart"} <= kinds
    assert scan_events(path) == full


def readings_of(frame: Frame) -> tuple[Any, ...]:
    """What detection reads of a frame, as the detector's feed takes it."""
    hosts = [getattr(frame, attr) for attr in HOST_SECTION_ATTRS]
    collected = [rows for rows in hosts if rows is not None]
    present = {row.host_id for rows in collected for row in rows} if collected else None
    gpus = None if frame.gpus is None else [_gpu_fields(gpu) for gpu in frame.gpus]
    return frame.t_ms, gpus, present, list(frame.errors)


def _gpu_fields(gpu: Any) -> tuple[Any, ...]:
    return tuple((name, getattr(gpu, name), type(getattr(gpu, name))) for name in _READ)


_READ = [name for name in GpuReading.__slots__ if name != "detail"] + ["detail"]


def lean_of(readings: Readings) -> tuple[Any, ...]:
    t_ms, gpus, present, errors = readings
    read = None if gpus is None else [_gpu_fields(g) for g in gpus]
    return t_ms, read, present, list(errors)


def test_lean_reads_the_values_of_every_hostile_line_that_decodes() -> None:
    leaned = 0
    for line_no, raw in enumerate(hostile_lines(), 1):
        if not raw.startswith(b'{"schema":1,"t":"'):
            continue
        readings = detection_readings(raw)
        if readings is None:
            continue
        leaned += 1
        frame = wire.decode_line(raw, line_no)
        assert isinstance(frame, Frame)
        assert lean_of(readings) == readings_of(frame)
    assert leaned > 250  # most lines: a scan takes them without a frame


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.text(max_size=2), st.one_of(st.text(max_size=2), st.integers(0, 9))),
)


@settings(max_examples=300, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from([*gpu_row("a:1", 0), "gpm_metrics"]), _VALUES),
    dropped=st.sets(st.sampled_from(list(gpu_row("a:1", 0)))),
    errors=st.one_of(st.none(), st.lists(st.one_of(st.text(max_size=8), st.integers(0, 9)))),
)
def test_lean_reads_a_line_as_the_decoder_reads_it_with_unread_fields_made_valid(
    changes: dict[str, Any], dropped: set[str], errors: list[Any] | None
) -> None:
    row, repaired = gpu_row("a:1", 0), gpu_row("a:1", 0)
    row.update(copy.deepcopy(changes))
    repaired.update({k: v for k, v in copy.deepcopy(changes).items() if k in READ_FIELDS})
    for key in dropped:
        row.pop(key, None)
        repaired.pop(key, None)
    readings = detection_readings(data_line(5, [row], errors=errors))
    try:
        frame = wire.decode_line(data_line(5, [repaired], errors=errors), 1)
    except (RecordingCorrupt, UnsupportedSchema):
        assert readings is None  # refused for a field detection reads, or for structure
        return
    if readings is not None:
        assert isinstance(frame, Frame)
        assert lean_of(readings) == readings_of(frame)


def _damaged(t_s: int, damage: tuple[dict[str, Any], dict[str, Any]] | None) -> bytes:
    row_changes, line_keys = damage or ({}, {})
    return data_line(t_s, [gpu_row("a:1", 0, **row_changes)], **line_keys)


def test_lean_reads_a_line_damaged_only_in_a_field_detection_does_not_read() -> None:
    """The documented limit (eventscan's module header): such a line is read with its
    readings, where the decoder refuses it."""
    for damage in UNREAD_DAMAGE:
        raw = _damaged(5, damage)
        try:
            wire.decode_line(raw, 1)
        except RecordingCorrupt:
            pass
        else:
            raise AssertionError(f"the decoder structures {damage}")
        readings = detection_readings(raw)
        assert readings is not None, damage
        frame = wire.decode_line(_damaged(5, None), 1)
        assert isinstance(frame, Frame)
        assert lean_of(readings) == readings_of(frame)


def test_scan_reads_a_recording_with_unread_field_damage_as_if_repaired(tmp_path: Path) -> None:
    """The limit over a file: 20 frames damaged only in fields detection does not read are
    skipped by the full path (a gap) and read by the scan (no gap), as the undamaged file."""
    damaged, repaired = tmp_path / "damaged.ndjson.gz", tmp_path / "repaired.ndjson.gz"
    for path, harm in ((damaged, True), (repaired, False)):
        with gzip.open(path, "wb") as fh:
            fh.write(HEADER)
            for t in range(60):
                damage = UNREAD_DAMAGE[t % len(UNREAD_DAMAGE)] if harm and 20 <= t < 40 else None
                fh.write(_damaged(t, damage))
    assert "gap" in {event.kind for event in full_path_events(damaged)}
    found = scan_events(damaged)
    assert "gap" not in {event.kind for event in found}
    assert found == full_path_events(repaired)


def test_orjson_reads_no_integer_a_reading_may_not_hold() -> None:
    """detection_readings leaves integers unbounded because orjson reads larger ones as floats
    (eventscan._gpus)."""
    too_big = orjson.loads(b"[18446744073709551616, -9223372036854775809]")
    assert [type(v) for v in too_big] == [float, float]


def test_a_gpu_of_an_empty_host_id_is_followed_across_frames(tmp_path: Path) -> None:
    """A GPU row whose host_id is "" (the decoder takes it) keeps its state from frame to
    frame like any other: one temp-crit while it stays hot, not one per frame."""
    path = tmp_path / "empty-host.ndjson.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(HEADER)
        fh.writelines(data_line(t, [gpu_row("", 0, temperature=93)]) for t in range(10))
    found = scan_events(path)
    assert [event.kind for event in found if event.kind.startswith("temp")] == ["temp-crit"]
    assert found == full_path_events(path)
