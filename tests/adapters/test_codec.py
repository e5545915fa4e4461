"""The one serializer: exact wire shapes, all-smi lines, malformed input, raw slicing."""

from __future__ import annotations

import gc
from collections.abc import Callable

import attrs
import orjson
import pytest

from allsmi.adapters import wire
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.errors import RecordingCorrupt, UnsupportedSchema
from allsmi.domain.model import (
    SECTIONS,
    Cpu,
    Frame,
    Gpu,
    GpuProcess,
    Header,
    IndexLine,
    Memory,
)

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00.000Z


def _gpu(**over: object) -> Gpu:
    fields: dict[str, object] = {
        "uuid": "GPU-1",
        "name": "NVIDIA H200",
        "device_type": "GPU",
        "host_id": "dgx-01:9090",
        "hostname": "dgx-01",
        "instance": "dgx-01",
    }
    fields.update(over)
    return Gpu(**fields)  # type: ignore[arg-type]


def test_data_line_keys_follow_the_design_order() -> None:
    frame = Frame(t_ms=T0, seq=0, source="remote", gpus=(_gpu(),), cpus=(), errors=("x",))
    line = wire.encode_line(frame)
    assert line.startswith(b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","seq":0,"source":"remote",')
    keys = list(orjson.loads(line))
    assert keys == ["schema", "t", "seq", "source", "gpus", "cpus", "errors"]


def test_header_line_is_exactly_the_design_shape() -> None:
    header = Header(
        source="remote", interval_ms=3000, hosts=("dgx-01", "dgx-02"), all_smi_version="0.1.0"
    )
    assert wire.encode_line(header) == (
        b'{"schema":1,"header":true,"writer":"allsmi","format":"chunked-1",'
        b'"all_smi_version":"0.1.0","source":"remote","interval_ms":3000,'
        b'"hosts":["dgx-01","dgx-02"]}\n'
    )


def test_a_recorder_start_time_is_the_header_s_last_key_and_reads_back() -> None:
    header = Header(
        source="remote",
        interval_ms=3000,
        hosts=("dgx-01",),
        all_smi_version="0.1.0",
        started_ms=T0,
    )
    line = wire.encode_line(header)
    assert line.endswith(b'"hosts":["dgx-01"],"started_ms":1776513600000}\n')
    assert wire.decode_line(line, 1) == header
    assert wire.slice_line(line) == wire.LineInfo(wire.KIND_HEADER, None, None)


def test_a_header_without_a_start_time_reads_as_none_and_is_written_without_it() -> None:
    older = b'{"schema":1,"header":true,"writer":"allsmi","interval_ms":1000,"hosts":[]}'
    header = wire.decode_line(older, 1)
    assert isinstance(header, Header) and header.started_ms is None
    assert b"started_ms" not in wire.encode_line(header)


def test_index_line_is_exactly_the_design_shape() -> None:
    index = IndexLine(t_ms=T0 + 3_000_000, seq=1000, byte_offset=1234567)
    assert wire.encode_line(index) == (
        b'{"schema":1,"index":true,"t":"2026-04-18T12:50:00.000Z","seq":1000,'
        b'"byte_offset":1234567}\n'
    )


def test_unavailable_readings_are_written_as_null_never_nan() -> None:
    frame = Frame(t_ms=T0, gpus=(_gpu(utilization=float("nan"), power_consumption=None),))
    gpu = orjson.loads(wire.encode_line(frame))["gpus"][0]
    assert gpu["utilization"] is None and gpu["power_consumption"] is None
    assert b"NaN" not in wire.encode_line(frame)


# all-smi writes sorted keys, `timestamp` near the end, −1/0 sentinels, error objects
# and scrape targets with a scheme (docs/recording-format.md Appendix A).
ALL_SMI_LINE = orjson.dumps(
    {
        "cpus": [
            {
                "architecture": "x86_64",
                "base_frequency_mhz": 2000,
                "cache_size_mb": 32,
                "cpu_model": "Xeon",
                "host_id": "http://10.0.0.5:9090/",
                "hostname": "node-1",
                "index": 0,
                "instance": "node-1",
                "max_frequency_mhz": 3000,
                "per_core_utilization": [
                    {"core_id": 0, "core_type": "Standard", "utilization": 12.5}
                ],
                "per_socket_info": [],
                "platform_type": {"Other": "RISC-V"},
                "power_consumption": None,
                "socket_count": 1,
                "temperature": None,
                "time": "2026-04-20 14:34:56",
                "total_cores": 1,
                "total_threads": 2,
                "utilization": 12.5,
            }
        ],
        "errors": [
            {
                "kind": "timeout",
                "message": "reader exceeded timeout of 5000 ms",
                "section": "chassis",
            }
        ],
        "gpus": [
            {
                "ane_utilization": 0.0,
                "detail": {"driver_version": "550.54"},
                "device_type": "GPU",
                "frequency": 0,
                "host_id": "http://10.0.0.5:9090",
                "hostname": "node-1",
                "instance": "node-1",
                "name": "NVIDIA B200",
                "nvlink_remote_devices": [],
                "power_consumption": -1.0,
                "temperature": 0,
                "time": "2026-04-20 14:34:56",
                "total_memory": 192,
                "used_memory": 7,
                "utilization": -1.0,
                "uuid": "ABCD",
            }
        ],
        "hostname": "remote",
        "memory": [
            {
                "available_bytes": 3,
                "buffers_bytes": 0,
                "cached_bytes": 0,
                "free_bytes": 0,
                "host_id": "10.0.0.5:9090",
                "hostname": "node-1",
                "index": 0,
                "instance": "node-1",
                "swap_free_bytes": 0,
                "swap_total_bytes": 0,
                "swap_used_bytes": 0,
                "time": "x",
                "total_bytes": 4,
                "used_bytes": 1,
                "utilization": 25.0,
            }
        ],
        "processes": [
            {
                "command": "python train.py",
                "cpu_percent": 99.0,
                "cpu_time": 12,
                "device_id": 0,
                "device_uuid": "ABCD",
                "gpu_utilization": 50.0,
                "memory_percent": 1.0,
                "memory_rss": 10,
                "memory_vms": 20,
                "nice_value": 0,
                "pid": 42,
                "ppid": 1,
                "priority": 20,
                "process_name": "python",
                "start_time": "01:02",
                "state": "R",
                "threads": 4,
                "used_memory": 5,
                "user": "mira",
                "uses_gpu": True,
            }
        ],
        "schema": 1,
        "timestamp": "2026-04-20T12:34:56Z",
    },
    option=orjson.OPT_SORT_KEYS,
)


def test_all_smi_line_structures_into_the_same_model_with_sentinels_as_none() -> None:
    frame = wire.decode_line(ALL_SMI_LINE, 7)
    assert isinstance(frame, Frame)
    assert frame.t_ms == 1_776_688_496_000 and frame.source == "remote" and frame.seq is None
    gpu = frame.gpus[0] if frame.gpus else None
    assert gpu == Gpu(
        uuid="ABCD",
        name="NVIDIA B200",
        device_type="GPU",
        host_id="10.0.0.5:9090",
        hostname="node-1",
        instance="node-1",
        utilization=None,
        temperature=None,
        used_memory=7,
        total_memory=192,
        frequency=None,
        power_consumption=None,
        detail={"driver_version": "550.54"},
    )
    assert frame.cpus is not None and frame.cpus[0].host_id == "10.0.0.5:9090"
    assert frame.cpus[0].platform_type == "RISC-V"
    assert frame.cpus[0].per_core_utilization[0].utilization == 12.5
    assert frame.memory == (
        Memory(
            host_id="10.0.0.5:9090",
            hostname="node-1",
            instance="node-1",
            total_bytes=4,
            used_bytes=1,
            available_bytes=3,
            free_bytes=0,
            buffers_bytes=0,
            cached_bytes=0,
            swap_total_bytes=0,
            swap_used_bytes=0,
            swap_free_bytes=0,
            utilization=25.0,
        ),
    )
    assert frame.processes is not None
    assert frame.processes[0] == GpuProcess(
        host_id="remote",
        hostname="remote",
        device_id=0,
        device_uuid="ABCD",
        pid=42,
        process_name="python",
        used_memory=5,
        cpu_percent=99.0,
        memory_percent=1.0,
        memory_rss=10,
        memory_vms=20,
        user="mira",
        state="R",
        start_time="01:02",
        cpu_time=12,
        command="python train.py",
        ppid=1,
        threads=4,
        uses_gpu=True,
        priority=20,
        nice_value=0,
        gpu_utilization=50.0,
    )
    assert frame.errors == ("chassis: reader exceeded timeout of 5000 ms",)
    assert frame.chassis is None and frame.storage is None


def test_all_smi_header_and_index_lines_are_recognised() -> None:
    header = wire.decode_line(
        b'{"all_smi_version":"0.25.0","header":true,"hosts":["http://a:9090/"],'
        b'"interval_ms":3000,"schema":1}',
        1,
    )
    assert header == Header(
        source="local",
        interval_ms=3000,
        hosts=("a:9090",),
        writer=None,
        format=None,
        all_smi_version="0.25.0",
    )
    index = wire.decode_line(b'{"byte_offset":5120,"index":true,"schema":1,"seq":1000}', 2)
    assert index == IndexLine(t_ms=None, seq=1000, byte_offset=5120)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"schema":1,"t":"2026-04-18T12:00:00.000Z"', "invalid JSON"),
        (b"[1,2]", "not a JSON object"),
        (b'{"t":"2026-04-18T12:00:00.000Z"}', "no schema"),
        (b'{"schema":1,"seq":3}', "neither 't' nor 'timestamp'"),
        (b'{"schema":1,"t":"yesterday"}', "bad time"),
        (b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","gpus":"many"}', "gpus"),
        (b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","gpus":[{"uuid":"x"}]}', "gpus"),
        (b'{"schema":1,"t":"2026-04-18T12:00:00.000Z","errors":[1]}', "errors"),
        (b'{"schema":1,"index":true,"seq":-1,"byte_offset":0}', "non-negative"),
        (b'{"schema":1,"header":true,"hosts":"a"}', "hosts"),
        (b'{"schema":1,"header":true,"started_ms":"today"}', "started_ms"),
    ],
)
def test_malformed_line_raises_recording_corrupt_naming_line_and_reason(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(RecordingCorrupt) as caught:
        wire.decode_line(raw, 41)
    assert caught.value.line_no == 41
    assert reason in caught.value.reason
    assert str(caught.value).startswith("line 41: ")


def test_schema_two_raises_unsupported_schema() -> None:
    with pytest.raises(UnsupportedSchema, match="unsupported schema version 2, this allsmi"):
        wire.decode_line(b'{"schema":2,"t":"2026-04-18T12:00:00.000Z"}', 1)


def test_slice_reads_time_of_an_all_smi_line_from_its_end() -> None:
    assert wire.slice_line(ALL_SMI_LINE) == wire.LineInfo(wire.KIND_DATA, 1_776_688_496_000, None)


def test_slice_recognises_headers_of_both_writers() -> None:
    ours = wire.encode_line(Header())
    theirs = b'{"all_smi_version":"0.25.0","header":true,"hosts":[],"schema":1}'
    assert wire.slice_line(ours) == wire.LineInfo(wire.KIND_HEADER, None, None)
    assert wire.slice_line(theirs) == wire.LineInfo(wire.KIND_HEADER, None, None)


def test_slice_falls_back_to_a_parse_for_reordered_keys() -> None:
    reordered = b'{"seq":9,"t":"2026-04-18T12:00:01.500Z","schema":1,"source":"local"}'
    assert wire.slice_line(reordered) == wire.LineInfo(wire.KIND_DATA, T0 + 1500, 9)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage",
        b'{"schema":2,"t":"2026-04-18T12:00:00.000Z"}',
        b'{"schema":1,"t":"yesterday"}',
        b'{"schema":1,"timestamp":5}',
        b'[{"schema":1}]',
    ],
)
def test_slice_of_a_non_recording_line_is_none(raw: bytes) -> None:
    assert wire.slice_line(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"schema":1,"event":true,"at":"2026-04-18T12:00:16.500Z","text":"fan 3 replaced"}',
        b'{"schema":1,"summary":true,"gpus":{"max_util":97}}',
        b'{"schema":1}',
    ],
)
def test_slice_of_a_later_line_kind_is_other_so_readers_skip_it(raw: bytes) -> None:
    # docs/recording-format.md §3.2: a schema-1 object that is no header, no index line and
    # has no t or timestamp is a kind this reader does not know: skipped, not damage
    assert wire.slice_line(raw) == wire.LineInfo(wire.KIND_OTHER, None, None)


def test_frame_hosts_lists_each_host_once_in_first_seen_order() -> None:
    frame = Frame(
        t_ms=T0,
        gpus=(_gpu(host_id="b"), _gpu(host_id="a"), _gpu(host_id="b")),
        cpus=(Cpu(host_id="c", hostname="c", instance="c"),),
    )
    assert frame.hosts() == ("b", "a", "c")


def _collections_during(action: Callable[[], object]) -> int:
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        action()
    finally:
        gc.callbacks.remove(count)
    return len(seen)


def test_a_cluster_frame_is_decoded_and_encoded_with_at_most_one_cycle_collection() -> None:
    frame = ClusterSimulator(ClusterSpec(nodes=20)).frame(1_776_513_600_000, SECTIONS)
    line = wire.encode_line(frame)
    threshold = gc.get_threshold()
    gc.set_threshold(100, 10, 10)  # collect often, so that a collection would show
    try:
        # unpaused, parsing alone collects again and again; paused, at most once at the end
        assert _collections_during(lambda: orjson.loads(line)) > 10
        assert _collections_during(lambda: wire.decode_line(line, 1)) <= 1
        assert _collections_during(lambda: wire.encode_line(frame)) <= 1
    finally:
        gc.set_threshold(*threshold)
    assert gc.isenabled()
    assert wire.decode_line(line, 1) == frame


def test_the_collector_pause_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with wire.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with wire.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_boolean_reading_stays_a_boolean_through_a_round_trip() -> None:
    proc = GpuProcess(host_id="h", hostname="h", device_id=0, device_uuid="GPU-1", pid=7)
    for uses_gpu in (True, False):
        line = wire.encode_line(Frame(t_ms=0, processes=(attrs.evolve(proc, uses_gpu=uses_gpu),)))
        again = wire.encode_line(wire.decode_line(line, 1))
        assert orjson.loads(again)["processes"][0]["uses_gpu"] is uses_gpu


@pytest.mark.parametrize("value", [None, 2, "true", []])
def test_a_boolean_field_holding_anything_else_makes_the_line_corrupt(value: object) -> None:
    line = wire.encode_line(Frame(t_ms=0, processes=(GpuProcess("h", "h", 0, "GPU-1", 7),)))
    obj = orjson.loads(line)
    obj["processes"][0]["uses_gpu"] = value
    with pytest.raises(RecordingCorrupt, match="uses_gpu"):
        wire.decode_line(orjson.dumps(obj), 3)
