"""``Gpu.health`` from the NVML reader, through the real pynvml over the fake C library
(tests/fixtures/fake_nvml.c): every health call, "not supported" asked once per device, the
old driver's "throttle" name, counter rates, and XID events arriving between cycles.

The fake's values are listed in fake_nvml.c; each expected value below is written out by hand.
Nothing sleeps for a fixed time: the fake's clock is advanced by the test, and XID events are
awaited by polling the reader's state.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from allsmi.adapters.machine.nvml import NvmlReader, load_nvml
from allsmi.domain.model import Gpu, GpuHealth

HOST = "dgx-01"
XID_WAIT_MS = 20
SEEN_MS = 1_776_513_600_123  # the injected wall clock: when an XID is received
NOT_SUPPORTED = 3
NO_PERMISSION = 4
UNKNOWN = 999
HALF_SECOND_US = 500_000
POLL_DEADLINE_S = 10.0


def calls(lib: ctypes.CDLL, symbol: str) -> int:
    """How often the fake library's C function ``symbol`` was called."""
    counter = lib.fake_call_count
    counter.argtypes = [ctypes.c_char_p]
    counter.restype = ctypes.c_uint
    return int(counter(symbol.encode()))


def field_requests(lib: ctypes.CDLL, field_id: int) -> int:
    return int(lib.fake_field_requests(ctypes.c_uint(field_id)))


def refuse(lib: ctypes.CDLL, index: int, symbol: str, code: int) -> None:
    lib.fake_set_unsupported(ctypes.c_uint(index), symbol.encode(), ctypes.c_int(code))


def advance(lib: ctypes.CDLL, us: int) -> None:
    lib.fake_advance_us(ctypes.c_ulonglong(us))


def queue_xid(lib: ctypes.CDLL, index: int, code: int) -> int:
    """Queue an XID on GPU ``index``; answers how many event sets it went to."""
    return int(lib.fake_queue_xid(ctypes.c_uint(index), ctypes.c_ulonglong(code)))


def health(reader: NvmlReader) -> tuple[GpuHealth | None, ...]:
    reading = reader.read()
    assert reading.errors == ()
    return tuple(gpu.health for gpu in reading.gpus)


def opened() -> NvmlReader:
    reader = NvmlReader(
        load_nvml(), host_id=HOST, hostname=HOST, xid_wait_ms=XID_WAIT_MS, wall_ms=lambda: SEEN_MS
    )
    reader.open()
    return reader


@pytest.fixture
def reader(fake_nvml: ctypes.CDLL) -> Iterator[NvmlReader]:
    nvml = opened()
    try:
        yield nvml
    finally:
        nvml.close()


def xid_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "allsmi-nvml-xid"]


def test_every_health_call_is_made_once_per_device_and_cycle_and_pcie_throughput_never(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    cycles = 3
    for _ in range(cycles):
        reader.read()

    per_cycle = {
        "nvmlDeviceGetCurrentClocksEventReasons": 2,
        "nvmlDeviceGetCurrentClocksThrottleReasons": 0,  # the current name is there
        "nvmlDeviceGetClockInfo": 6,  # graphics, SM, memory
        "nvmlDeviceGetViolationStatus": 4,  # power, thermal
        "nvmlDeviceGetTotalEccErrors": 4,  # corrected, uncorrected
        "nvmlDeviceGetRemappedRows": 2,
        "nvmlDeviceGetFieldValues": 2,  # one batch per device
        "nvmlDeviceGetEncoderUtilization": 2,
        "nvmlDeviceGetDecoderUtilization": 2,
        "nvmlDeviceGetTotalEnergyConsumption": 2,
        "nvmlDeviceGetPcieThroughput": 0,  # samples 20 ms per call: counters instead
    }
    assert {name: calls(fake_nvml, name) for name in per_cycle} == {
        name: n * cycles for name, n in per_cycle.items()
    }
    once = {"nvmlEventSetCreate": 1, "nvmlDeviceRegisterEvents": 2}
    assert {name: calls(fake_nvml, name) for name in once} == once


def test_rates_come_from_counter_differences_from_the_second_cycle_on(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    first = health(reader)
    advance(fake_nvml, HALF_SECOND_US)
    second = health(reader)

    def rates(h: GpuHealth | None) -> tuple[float | None, ...]:
        assert h is not None
        return (h.pcie_tx_bytes_s, h.pcie_rx_bytes_s, h.nvlink_tx_bytes_s, h.nvlink_rx_bytes_s)

    assert [rates(h) for h in first] == [(None, None, None, None)] * 2
    assert [rates(h) for h in second] == [
        # B/s as the fake counts them; NVLink counts KiB: 100,000,000 KiB/s → bytes
        (2_000_000_000.0, 1_000_000_000.0, 102_400_000_000.0, 51_200_000_000.0),
        (4_000_000.0, 6_000_000.0, None, None),  # GPU 1 has no NVLink
    ]


def test_a_counter_that_went_backwards_gives_no_rate_for_that_cycle(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    health(reader)
    advance(fake_nvml, HALF_SECOND_US)
    fake_nvml.fake_restart_counters(ctypes.c_uint(0))  # a driver reload: counters from 0

    restarted = health(reader)
    advance(fake_nvml, HALF_SECOND_US)
    after = health(reader)

    assert restarted[0] is not None
    assert restarted[1] is not None
    assert (restarted[0].pcie_tx_bytes_s, restarted[0].nvlink_rx_bytes_s) == (None, None)
    assert restarted[1].pcie_tx_bytes_s == 4_000_000.0  # the other GPU is unaffected
    assert after[0] is not None
    assert (after[0].pcie_tx_bytes_s, after[0].nvlink_rx_bytes_s) == (
        2_000_000_000.0,
        51_200_000_000.0,
    )


@pytest.mark.parametrize("code", [NOT_SUPPORTED, NO_PERMISSION], ids=["not-supported", "perm"])
def test_a_refused_call_reads_as_none_and_is_not_asked_again_of_that_device(
    fake_nvml: ctypes.CDLL, reader: NvmlReader, code: int
) -> None:
    refuse(fake_nvml, 1, "nvmlDeviceGetRemappedRows", code)
    refuse(fake_nvml, 1, "nvmlDeviceGetTotalEnergyConsumption", code)

    cycles = [health(reader) for _ in range(3)]

    for _, gpu1 in cycles:
        assert gpu1 is not None
        assert (gpu1.remapped_correctable, gpu1.remap_pending, gpu1.energy_j) == (None, None, None)
        assert gpu1.clock_events == ("gpu_idle",)  # the rest of the device is still read
    # GPU 0 asked every cycle, GPU 1 only on the first
    assert calls(fake_nvml, "nvmlDeviceGetRemappedRows") == 3 + 1
    assert calls(fake_nvml, "nvmlDeviceGetTotalEnergyConsumption") == 3 + 1


def test_any_other_error_reads_as_none_and_is_asked_again_next_cycle(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    refuse(fake_nvml, 1, "nvmlDeviceGetRemappedRows", UNKNOWN)

    cycles = [health(reader) for _ in range(3)]

    assert all(gpu1 is not None and gpu1.remap_failure is None for _, gpu1 in cycles)
    assert calls(fake_nvml, "nvmlDeviceGetRemappedRows") == 3 + 3


def test_a_field_refused_in_its_own_return_is_left_out_of_later_batches(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    for _ in range(3):
        reader.read()

    # GPU 0 refuses the retired-page fields, GPU 1 the NVLink ones: each asked once there
    assert field_requests(fake_nvml, 29) == 1 + 3  # retired pages (single-bit)
    assert field_requests(fake_nvml, 138) == 3 + 1  # NVLink TX KiB
    assert field_requests(fake_nvml, 38) == 3 + 1  # NVLink CRC flit errors
    assert field_requests(fake_nvml, 197) == 3 + 3  # PCIe TX bytes: both, every cycle


def test_a_driver_too_old_for_the_event_reasons_name_falls_back_to_throttle_reasons(
    fake_nvml_old_driver: ctypes.CDLL,
) -> None:
    reader = opened()
    try:
        cycles = [health(reader) for _ in range(3)]
    finally:
        reader.close()

    for gpu0, gpu1 in cycles:
        assert gpu0 is not None
        assert gpu1 is not None
        assert (gpu0.clock_events, gpu1.clock_events) == (
            ("sw_power_cap", "hw_slowdown"),
            ("gpu_idle",),
        )
    assert calls(fake_nvml_old_driver, "nvmlDeviceGetCurrentClocksThrottleReasons") == 2 * 3


def test_the_current_name_not_supported_is_not_retried_under_the_old_name(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    refuse(fake_nvml, 0, "nvmlDeviceGetCurrentClocksEventReasons", NOT_SUPPORTED)

    gpu0, _ = health(reader)
    health(reader)

    assert gpu0 is not None
    assert gpu0.clock_events is None
    assert calls(fake_nvml, "nvmlDeviceGetCurrentClocksThrottleReasons") == 0
    assert calls(fake_nvml, "nvmlDeviceGetCurrentClocksEventReasons") == 1 + 2


def _poll_health(
    reader: NvmlReader, done: Callable[[tuple[GpuHealth | None, ...]], bool]
) -> tuple[GpuHealth | None, ...]:
    """Read cycles until ``done(healths)`` holds (the XID thread delivers asynchronously)."""
    deadline = time.monotonic() + POLL_DEADLINE_S
    while True:
        healths = health(reader)
        if done(healths) or time.monotonic() > deadline:
            return healths
        time.sleep(0.002)


def test_xid_events_arriving_between_cycles_are_counted_per_device_and_code(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    before = health(reader)
    assert queue_xid(fake_nvml, 0, 79) == 1
    assert queue_xid(fake_nvml, 1, 48) == 1
    assert queue_xid(fake_nvml, 0, 79) == 1
    assert queue_xid(fake_nvml, 0, 13) == 1

    def all_four(healths: tuple[GpuHealth | None, ...]) -> bool:
        counts = [h.xid_counts for h in healths if h is not None and h.xid_counts is not None]
        return sum(n for c in counts for n in c.values()) == 4

    gpu0, gpu1 = _poll_health(reader, all_four)

    assert [h.xid_counts if h is not None else None for h in before] == [{}, {}]
    assert gpu0 is not None
    assert gpu1 is not None
    assert (gpu0.xid_counts, gpu0.last_xid, gpu0.last_xid_ms) == ({"79": 2, "13": 1}, 13, SEEN_MS)
    assert (gpu1.xid_counts, gpu1.last_xid, gpu1.last_xid_ms) == ({"48": 1}, 48, SEEN_MS)


def test_a_device_that_refuses_xid_registration_has_no_xid_reading(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    refuse(fake_nvml, 1, "nvmlDeviceRegisterEvents", NOT_SUPPORTED)

    gpu0, gpu1 = health(reader)

    assert gpu0 is not None
    assert gpu1 is not None
    assert (gpu0.xid_counts, gpu1.xid_counts) == ({}, None)
    assert queue_xid(fake_nvml, 1, 79) == 0  # no set listens to GPU 1
    assert gpu1.clock_events == ("gpu_idle",)  # and the rest of it is read


def test_close_stops_the_xid_thread_and_frees_the_event_set(fake_nvml: ctypes.CDLL) -> None:
    reader = opened()
    reader.read()
    assert len(xid_threads()) == 1

    reader.close()

    assert xid_threads() == []
    assert calls(fake_nvml, "nvmlEventSetFree") == 1
    assert queue_xid(fake_nvml, 0, 79) == 0  # the set is gone


def test_a_gpu_without_health_answers_has_no_health_object(
    fake_nvml: ctypes.CDLL, reader: NvmlReader
) -> None:
    fake_nvml.fake_set_gpu_mode(ctypes.c_uint(1), ctypes.c_int(1))  # every optional query refused

    gpus: tuple[Gpu, ...] = reader.read().gpus

    assert gpus[0].health is not None
    assert gpus[1].health is None
