"""NVLink links and MIG instances from the NVML reader, through the real pynvml over the fake
C library (tests/fixtures/fake_nvml.c): links with their remote types, inactive links left
out, "not supported" asked once per device and link, the topology re-read every
``topology_every`` cycles and not in between, and MIG instances as rows of their own in the
dcgm-exporter reader's representation.

The fake's values are listed in fake_nvml.c; each expected value below is written out by hand.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from allsmi.adapters.machine.nvml import NVML_NVLINK_MAX_LINKS, NvmlReader, load_nvml
from allsmi.adapters.prometheus.dcgm import DCGM_NAMES, DcgmState, fold_dcgm
from allsmi.adapters.prometheus.parser import NO_LIMITS, fold_page
from allsmi.domain.model import Gpu, NvLinkRemoteDevice

HOST = "dgx-01"
UUID0 = "GPU-00000000-fake-4000-8000-000000000000"
UUID1 = "GPU-11111111-fake-4000-8000-111111111111"
SYSTEM_DETAIL = {"driver_version": "550.54.15", "cuda_version": "12.4"}
GIB = 1024**3
NOT_SUPPORTED = 3
GPU, IBMNPU, SWITCH, UNKNOWN_TYPE = 0, 1, 2, 0xFF
ACTIVE, INACTIVE, NO_LINK = 1, 0, -1
MODE_LOST = 2


def calls(lib: ctypes.CDLL, symbol: str) -> int:
    """How often the fake library's C function ``symbol`` was called."""
    counter = lib.fake_call_count
    counter.argtypes = [ctypes.c_char_p]
    counter.restype = ctypes.c_uint
    return int(counter(symbol.encode()))


def set_link(lib: ctypes.CDLL, index: int, link: int, state: int, remote: int = SWITCH) -> None:
    lib.fake_set_nvlink(ctypes.c_uint(index), ctypes.c_uint(link), ctypes.c_int(state),
                        ctypes.c_uint(remote))  # fmt: skip


def set_mig(lib: ctypes.CDLL, index: int, enabled: bool, instances: int) -> None:
    lib.fake_set_mig(ctypes.c_uint(index), ctypes.c_int(int(enabled)), ctypes.c_uint(instances))


def refuse(lib: ctypes.CDLL, index: int, symbol: str, code: int = NOT_SUPPORTED) -> None:
    lib.fake_set_unsupported(ctypes.c_uint(index), symbol.encode(), ctypes.c_int(code))


def hgx(lib: ctypes.CDLL, index: int = 0) -> None:
    """GPU ``index`` with 18 active links to NVSwitches, as an HGX H100/H200 board has."""
    for link in range(18):
        set_link(lib, index, link, ACTIVE, SWITCH)


@pytest.fixture
def open_reader(fake_nvml: ctypes.CDLL) -> Iterator[Callable[..., NvmlReader]]:
    opened: list[NvmlReader] = []

    def make(topology_every: int = 60) -> NvmlReader:
        reader = NvmlReader(
            load_nvml(), host_id=HOST, hostname=HOST, xid_wait_ms=20, topology_every=topology_every
        )
        reader.open()
        opened.append(reader)
        return reader

    try:
        yield make
    finally:
        for reader in opened:
            reader.close()


def gpus(reader: NvmlReader) -> tuple[Gpu, ...]:
    reading = reader.read()
    assert reading.errors == ()
    return reading.gpus


# ---- NVLink ---------------------------------------------------------------------------------


def test_active_links_are_read_with_their_remote_type(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    for link, remote in enumerate((SWITCH, GPU, IBMNPU, UNKNOWN_TYPE, 7)):
        set_link(fake_nvml, 0, link, ACTIVE, remote)

    first, second = gpus(open_reader())

    assert first.nvlink_remote_devices == (
        NvLinkRemoteDevice(0, "switch", state="active"),
        NvLinkRemoteDevice(1, "gpu", state="active"),
        NvLinkRemoteDevice(2, "ibmnpu", state="active"),
        NvLinkRemoteDevice(3, "unknown", state="active"),
        NvLinkRemoteDevice(4, "unknown", state="active"),  # a type nvml.h does not name
    )
    assert second.nvlink_remote_devices == ()  # GPU 1 has no NVLink


def test_an_inactive_link_is_listed_inactive(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    hgx(fake_nvml)
    set_link(fake_nvml, 0, 5, INACTIVE)

    links = gpus(open_reader())[0].nvlink_remote_devices

    assert [link.link_index for link in links] == list(range(18))
    assert [link.state for link in links] == ["active"] * 5 + ["inactive"] + ["active"] * 12
    assert {link.remote_type for link in links if link.state == "active"} == {"switch"}
    assert links[5].remote_type == "unknown"
    # an inactive link's remote device is never asked: 17 active links, 17 questions
    assert calls(fake_nvml, "nvmlDeviceGetNvLinkRemoteDeviceType") == 17


def test_links_not_supported_are_asked_once_per_device_and_link(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    hgx(fake_nvml)  # GPU 0: links 0..17; 18..35 and every link of GPU 1 answer NOT_SUPPORTED
    reader = open_reader(topology_every=1)  # topology read at every cycle

    for _ in range(4):
        gpus(reader)

    first_cycle = 2 * NVML_NVLINK_MAX_LINKS
    assert calls(fake_nvml, "nvmlDeviceGetNvLinkState") == first_cycle + 3 * 18
    assert calls(fake_nvml, "nvmlDeviceGetNvLinkRemoteDeviceType") == 4 * 18


def test_topology_is_read_on_the_first_cycle_and_every_topology_every_cycles(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    hgx(fake_nvml)
    reader = open_reader(topology_every=3)

    shown = [gpus(reader)[0].nvlink_remote_devices for _ in range(3)]
    set_link(fake_nvml, 0, 2, INACTIVE)  # the link goes down after cycle 3
    shown += [gpus(reader)[0].nvlink_remote_devices for _ in range(3)]

    assert calls(fake_nvml, "nvmlDeviceGetMigMode") == 2 * 2  # cycles 1 and 4, both GPUs
    assert calls(fake_nvml, "nvmlDeviceGetNvLinkRemoteDeviceType") == 18 + 17
    inactive = [[link.link_index for link in links if link.state == "inactive"] for links in shown]
    assert inactive == [[], [], [], [2], [2], [2]]  # seen at cycle 4
    assert all(len(links) == 18 for links in shown)


def test_a_refused_remote_type_reads_unknown_and_is_not_asked_again(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    hgx(fake_nvml)
    refuse(fake_nvml, 0, "nvmlDeviceGetNvLinkRemoteDeviceType")
    reader = open_reader(topology_every=1)

    links = [gpus(reader)[0].nvlink_remote_devices for _ in range(3)][-1]

    assert links == tuple(NvLinkRemoteDevice(link, "unknown", state="active") for link in range(18))
    assert calls(fake_nvml, "nvmlDeviceGetNvLinkRemoteDeviceType") == 1


def test_a_gpu_lost_while_reading_links_is_an_errors_entry(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    hgx(fake_nvml)
    fake_nvml.fake_set_gpu_mode(ctypes.c_uint(0), ctypes.c_int(MODE_LOST))

    reading = open_reader().read()

    assert reading.errors == ("nvidia: GPU 0: GPU is lost",)
    assert [gpu.uuid for gpu in reading.gpus] == [UUID1]


# ---- MIG ------------------------------------------------------------------------------------


def mig_row(gi: int, profile: str, used: int, total: int, slot: int) -> Gpu:
    """GPU 1's instance ``gi`` as the reader should give it (utilization not supported)."""
    return Gpu(
        uuid=f"{UUID1}/{gi}",
        name="Fake A100-SXM4-40GB",
        device_type="GPU",
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        used_memory=used,
        total_memory=total,
        detail={
            "index": "1",
            **SYSTEM_DETAIL,
            "gpu_instance": str(gi),
            "gpu_instance_profile": profile,
            "mig_uuid": f"MIG-11111111-fake-4000-8000-00000000000{slot}",
        },
    )


def test_mig_instances_follow_their_gpu_as_rows_of_their_own(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    # four MIG devices: GPU instances 1, 2 and 9, and a second compute instance of GPU instance 2
    set_mig(fake_nvml, 1, True, 4)

    rows = gpus(open_reader())

    assert [row.uuid for row in rows] == [UUID0, UUID1, f"{UUID1}/1", f"{UUID1}/2", f"{UUID1}/9"]
    assert "mig_mode" not in rows[0].detail
    assert rows[1].detail["mig_mode"] == "enabled"
    assert rows[2:] == (
        mig_row(1, "3g.40gb", 10 * GIB, 40 * GIB, 0),
        mig_row(2, "2g.20gb", 1 * GIB, 20 * GIB, 1),
        mig_row(9, "1g.10gb", 0, 10 * GIB, 2),
    )


def test_a_mig_instance_is_represented_as_the_dcgm_reader_represents_it(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    set_mig(fake_nvml, 1, True, 1)
    from_nvml = gpus(open_reader())[2]
    labels = (
        f'gpu="1",UUID="{UUID1}",modelName="Fake A100-SXM4-40GB",'
        'GPU_I_PROFILE="3g.40gb",GPU_I_ID="1"'
    )
    page = f"DCGM_FI_DEV_FB_USED{{{labels}}} 10240\nDCGM_FI_DEV_FB_FREE{{{labels}}} 30720\n"
    folded = fold_page(page, NO_LIMITS, partial(fold_dcgm, limits=NO_LIMITS), DCGM_NAMES)
    (from_dcgm,) = folded.rows(HOST, HOST, HOST, DcgmState(), 0)

    def face(gpu: Gpu) -> tuple[object, ...]:
        keys = ("index", "gpu_instance", "gpu_instance_profile")
        return (gpu.uuid, gpu.name, gpu.used_memory, gpu.total_memory,
                *(gpu.detail[key] for key in keys))  # fmt: skip

    assert face(from_nvml) == face(from_dcgm)


def test_mig_utilization_where_nvml_gives_it_and_none_asked_once_where_not(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    set_mig(fake_nvml, 1, True, 2)
    reader = open_reader()
    unsupported = [gpus(reader)[2:] for _ in range(3)][-1]
    fake_nvml.fake_set_mig_utilization(ctypes.c_int(1))
    later = open_reader()  # a new reader asks again
    supported = gpus(later)[2:]

    assert [(row.utilization, row.memory_utilization) for row in unsupported] == [(None, None)] * 2
    # 2 GPUs x 3 cycles + 2 instances once each, then 2 GPUs + 2 instances for the new reader
    assert calls(fake_nvml, "nvmlDeviceGetUtilizationRates") == 2 * 3 + 2 + 2 + 2
    assert [(row.utilization, row.memory_utilization) for row in supported] == [
        (61.0, 20.0),
        (7.0, 3.0),
    ]


def test_mig_mode_not_supported_is_asked_once_per_device(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    refuse(fake_nvml, 0, "nvmlDeviceGetMigMode")
    reader = open_reader(topology_every=1)

    for _ in range(3):
        rows = gpus(reader)

    assert len(rows) == 2
    assert calls(fake_nvml, "nvmlDeviceGetMigMode") == 1 + 3  # GPU 0 once, GPU 1 each cycle
    assert calls(fake_nvml, "nvmlDeviceGetMaxMigDeviceCount") == 0  # MIG is off on GPU 1


def test_mig_instances_made_or_destroyed_show_at_the_next_topology_read(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    set_mig(fake_nvml, 1, True, 1)
    reader = open_reader(topology_every=2)

    first = gpus(reader)
    set_mig(fake_nvml, 1, True, 3)
    second, third = gpus(reader), gpus(reader)
    set_mig(fake_nvml, 1, False, 0)
    fourth, fifth = gpus(reader), gpus(reader)

    assert [row.uuid for row in first[2:]] == [f"{UUID1}/1"]
    assert [row.uuid for row in second[2:]] == [f"{UUID1}/1"]
    assert [row.uuid for row in third[2:]] == [f"{UUID1}/1", f"{UUID1}/2", f"{UUID1}/9"]
    # until the next read a gone instance's handle answers nothing: its readings are None
    assert [(row.used_memory, row.total_memory) for row in fourth[2:]] == [(None, None)] * 3
    assert [row.uuid for row in fifth] == [UUID0, UUID1]
    assert "mig_mode" not in fifth[1].detail


def test_a_gpu_lost_with_mig_instances_is_an_errors_entry_without_instance_rows(
    fake_nvml: ctypes.CDLL, open_reader: Callable[..., NvmlReader]
) -> None:
    set_mig(fake_nvml, 1, True, 3)
    reader = open_reader()
    assert len(gpus(reader)) == 5
    fake_nvml.fake_set_gpu_mode(ctypes.c_uint(1), ctypes.c_int(MODE_LOST))

    reading = reader.read()

    assert reading.errors == ("nvidia: GPU 1: GPU is lost",)
    assert [gpu.uuid for gpu in reading.gpus] == [UUID0]
