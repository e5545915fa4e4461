"""The local host readers, on this real machine and on fake /proc and /sys trees."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest

from allsmi.adapters.machine.host import (
    HostReader,
    Processor,
    cpu_temperatures,
    is_local_fs,
    parse_cpuinfo,
    platform_type,
    socket_rows,
)
from allsmi.domain.errors import SourceUnavailable

# --------------------------------------------------------------------------- fake trees


def _intel_block(processor: int, package: int, core: int) -> str:
    return (
        f"processor\t: {processor}\n"
        "vendor_id\t: GenuineIntel\n"
        "cpu family\t: 6\n"
        "model\t\t: 106\n"
        "model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n"
        "cpu MHz\t\t: 2000.000\n"
        "cache size\t: 49152 KB\n"
        f"physical id\t: {package}\n"
        "siblings\t: 2\n"
        f"core id\t\t: {core}\n"
        "cpu cores\t: 2\n"
        "flags\t\t: fpu vme de pse tsc: msr\n"
    )


TWO_SOCKET_INTEL = "\n".join(
    _intel_block(n, package, core)
    for n, (package, core) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)])
)

ARM_TWO_CPUS = """processor\t: 0
BogoMIPS\t: 2000.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd4f
CPU revision\t: 0

processor\t: 1
BogoMIPS\t: 2000.00
CPU implementer\t: 0x41
CPU part\t: 0xd4f
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def intel_box(tmp_path: Path) -> HostReader:
    """A 2-socket Intel box: cpuinfo, cpufreq of cpu0, DMI identity with bios_version
    unreadable (a directory stands in for a root-only file: tests run as root) and
    product_version missing."""
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    _write(proc / "cpuinfo", TWO_SOCKET_INTEL)
    cpufreq = sys / "devices/system/cpu/cpu0/cpufreq"
    _write(cpufreq / "base_frequency", "2000000\n")
    _write(cpufreq / "cpuinfo_max_freq", "3200000\n")
    dmi = sys / "class/dmi/id"
    _write(dmi / "product_name", "PowerEdge R750xa\n")
    _write(dmi / "sys_vendor", "Dell Inc.\n")
    _write(dmi / "board_name", "0DW6GP\n")
    (dmi / "bios_version").mkdir()
    return HostReader("node-1:9090", "node-1", proc_root=proc, sys_root=sys)


def _psutil_max_mhz() -> int | None:
    freq = psutil.cpu_freq()
    return round(freq.max) if freq is not None and freq.max > 0 else None


# --------------------------------------------------------------------------- real machine


def test_cpu_on_this_machine_reports_percentages_for_every_logical_cpu() -> None:
    reader = HostReader("local", "local")
    reader.prime()
    time.sleep(0.1)
    (cpu,) = reader.read_cpu()
    assert cpu.utilization is not None
    assert 0.0 <= cpu.utilization <= 100.0
    assert len(cpu.per_core_utilization) == psutil.cpu_count()
    assert all(c.core_type == "Standard" for c in cpu.per_core_utilization)
    assert all(
        c.utilization is not None and 0.0 <= c.utilization <= 100.0
        for c in cpu.per_core_utilization
    )
    assert cpu.total_threads == os.cpu_count()
    assert cpu.total_cores == psutil.cpu_count(logical=False)
    assert cpu.load_average is not None and len(cpu.load_average) == 3
    assert (cpu.host_id, cpu.hostname, cpu.instance) == ("local", "local", "local")


def test_cpu_on_this_machine_reports_socket_threads_summing_to_all_cpus() -> None:
    (cpu,) = HostReader("local", "local").read_cpu()
    if not cpu.per_socket_info:
        pytest.skip("socket membership not exposed on this machine")
    assert cpu.socket_count == len(cpu.per_socket_info)
    assert sum(s.threads or 0 for s in cpu.per_socket_info) == psutil.cpu_count()


def test_prime_makes_the_first_read_measure_real_load() -> None:
    reader = HostReader("local", "local")
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    busy = threading.Thread(target=spin, daemon=True)
    busy.start()
    try:
        reader.prime()
        seen: list[float | None] = []
        for _ in range(25):  # poll: a busy core shows up within a few 0.2 s windows
            time.sleep(0.2)
            (cpu,) = reader.read_cpu()
            seen.append(cpu.utilization)
            if cpu.utilization is not None and cpu.utilization > 0.0:
                break
    finally:
        stop.set()
        busy.join()
    assert seen[-1] is not None and seen[-1] > 0.0, seen


def test_memory_on_this_machine_matches_psutil() -> None:
    (memory,) = HostReader("local", "local").read_memory()
    vm = psutil.virtual_memory()
    assert memory.total_bytes == vm.total
    assert memory.swap_total_bytes == psutil.swap_memory().total
    assert memory.utilization is not None and 0.0 <= memory.utilization <= 100.0
    assert memory.buffers_bytes is not None and memory.cached_bytes is not None  # Linux has them
    for value in (memory.used_bytes, memory.available_bytes, memory.free_bytes):
        assert value is not None and 0 <= value <= vm.total


def test_storage_on_this_machine_has_root_and_no_network_mounts() -> None:
    rows = HostReader("local", "local").read_storage()
    mounts = [row.mount_point for row in rows]
    assert "/" in mounts
    assert [row.index for row in rows] == list(range(len(rows)))
    assert len(set(mounts)) == len(mounts)
    fstype = {p.mountpoint: p.fstype for p in psutil.disk_partitions(all=True)}
    for row in rows:
        assert is_local_fs(fstype[row.mount_point], row.mount_point)
        assert not fstype[row.mount_point].startswith(("nfs", "cifs", "lustre", "fuse."))
        assert row.total_bytes is not None and row.total_bytes > 0
        assert row.available_bytes is not None and 0 <= row.available_bytes <= row.total_bytes


def test_chassis_power_is_left_to_the_gpu_sum_not_invented() -> None:
    (chassis,) = HostReader("local", "local").read_chassis()
    assert chassis.total_power_watts is None  # app.local puts in the GPUs' sum
    assert chassis.thermal_pressure is None


def test_unexpected_psutil_failure_becomes_source_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> psutil._ntuples.svmem:  # the vendor failing underneath us
        raise psutil.AccessDenied(pid=None, name="virtual_memory")

    monkeypatch.setattr(psutil, "virtual_memory", broken)
    with pytest.raises(SourceUnavailable, match=r"^psutil: virtual_memory"):
        HostReader("local", "local").read_memory()


# --------------------------------------------------------------------------- fake trees


def test_fake_intel_box_gives_model_sockets_frequencies_and_cache(intel_box: HostReader) -> None:
    (cpu,) = intel_box.read_cpu()
    assert cpu.cpu_model == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert cpu.platform_type == "Intel"
    assert cpu.socket_count == 2
    assert cpu.base_frequency_mhz == 2000
    assert cpu.max_frequency_mhz == 3200
    assert cpu.cache_size_mb == 48
    assert [(s.socket_id, s.cores, s.threads) for s in cpu.per_socket_info] == [
        (0, 2, 2),
        (1, 2, 2),
    ]


def test_fake_intel_box_chassis_identity_skips_unreadable_and_missing_files(
    intel_box: HostReader,
) -> None:
    (chassis,) = intel_box.read_chassis()
    assert chassis.detail == {
        "Product Name": "PowerEdge R750xa",
        "Vendor": "Dell Inc.",
        "Board": "0DW6GP",
    }
    assert (chassis.host_id, chassis.hostname, chassis.instance) == (
        "node-1:9090",
        "node-1",
        "node-1",
    )
    assert chassis.psu_status == ()


def test_cpuinfo_and_sysfs_are_read_once(intel_box: HostReader, tmp_path: Path) -> None:
    (before,) = intel_box.read_cpu()
    _write(tmp_path / "proc/cpuinfo", TWO_SOCKET_INTEL.replace("Gold 6338", "Silver 4314"))
    (after,) = intel_box.read_cpu()
    assert after.cpu_model == before.cpu_model


def test_empty_trees_give_none_not_zero(tmp_path: Path) -> None:
    reader = HostReader("h", "h", proc_root=tmp_path / "proc", sys_root=tmp_path / "sys")
    (cpu,) = reader.read_cpu()
    assert cpu.cpu_model is None
    assert cpu.platform_type is None or cpu.platform_type == "Arm"
    assert cpu.socket_count is None
    assert cpu.per_socket_info == ()
    assert cpu.cache_size_mb is None
    assert cpu.base_frequency_mhz is None
    assert cpu.max_frequency_mhz == _psutil_max_mhz()  # psutil's fallback, or None
    assert cpu.power_consumption is None
    assert len(cpu.per_core_utilization) == psutil.cpu_count()  # psutil still answers
    (chassis,) = reader.read_chassis()
    assert chassis.detail == {}
    assert chassis.inlet_temperature is None or chassis.inlet_temperature != 0


def test_arm_sockets_come_from_sysfs_topology(tmp_path: Path) -> None:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    _write(proc / "cpuinfo", ARM_TWO_CPUS)
    for n in (0, 1):
        topology = sys / f"devices/system/cpu/cpu{n}/topology"
        _write(topology / "physical_package_id", "0\n")
        _write(topology / "core_id", f"{n}\n")
    (cpu,) = HostReader("h", "h", proc_root=proc, sys_root=sys).read_cpu()
    assert cpu.cpu_model == "ARM Neoverse-V2"
    assert cpu.socket_count == 1
    assert [(s.socket_id, s.cores, s.threads) for s in cpu.per_socket_info] == [(0, 2, 2)]
    assert cpu.cache_size_mb is None
    assert cpu.base_frequency_mhz is None


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("fstype", "mountpoint", "local"),
    [
        ("nfs4", "/home", False),
        ("nfs", "/mnt/data", False),
        ("lustre", "/lustre", False),
        ("gpfs", "/gpfs", False),
        ("beegfs", "/beegfs", False),
        ("ceph", "/mnt/cephfs", False),
        ("cifs", "/mnt/share", False),
        ("9p", "/mnt/host", False),
        ("fuse.sshfs", "/mnt/remote", False),
        ("fuse.someday", "/mnt/x", False),
        ("autofs", "/net", False),
        ("ext4", "/", True),
        ("ext4", "/data", True),
        ("xfs", "/scratch", True),
        ("btrfs", "/home", True),
        ("zfs", "/tank", True),
        ("vfat", "/boot/efi", True),
        ("tmpfs", "/dev/shm", False),
        ("devtmpfs", "/dev", False),
        ("proc", "/proc", False),
        ("overlay", "/", True),
        ("overlay", "/var/lib/docker/overlay2/abc/merged", False),
        ("squashfs", "/snap/core/1234", False),
        ("ext4", "/snap/thing", False),
        ("something-new", "/mnt/new", False),
    ],
)
def test_is_local_fs(fstype: str, mountpoint: str, local: bool) -> None:
    assert is_local_fs(fstype, mountpoint) is local


def test_parse_cpuinfo_of_an_intel_box() -> None:
    info = parse_cpuinfo(TWO_SOCKET_INTEL)
    assert info.vendor == "GenuineIntel"
    assert info.cache_size_mb == 48
    assert info.processors == (
        Processor(0, 0, 0),
        Processor(1, 0, 1),
        Processor(2, 1, 0),
        Processor(3, 1, 1),
    )


def test_parse_cpuinfo_of_nothing_is_all_none() -> None:
    info = parse_cpuinfo("")
    assert (info.model, info.vendor, info.cache_size_mb, info.processors) == (
        None,
        None,
        None,
        (),
    )


@pytest.mark.parametrize(
    ("vendor", "model", "machine", "expected"),
    [
        ("GenuineIntel", "Intel(R) Xeon(R)", "x86_64", "Intel"),
        ("AuthenticAMD", "AMD EPYC 9654 96-Core Processor", "x86_64", "Amd"),
        (None, "ARM Neoverse-V2", "aarch64", "Arm"),
        ("CentaurHauls", "VIA Nano", "x86_64", "CentaurHauls"),
        (None, None, "riscv64", None),
    ],
)
def test_platform_type(vendor: str | None, model: str | None, machine: str, expected: str) -> None:
    assert platform_type(vendor, model, machine) == expected


def test_socket_rows_average_their_own_cpus() -> None:
    processors = [Processor(0, 0, 0), Processor(1, 0, 1), Processor(2, 1, 0), Processor(3, 1, 1)]
    rows = socket_rows(
        processors, [10.0, 30.0, 50.0, 100.0], [2000.0, 3000.0, 1000.0, 1000.0], {1: 71}
    )
    assert [(r.socket_id, r.utilization, r.frequency_mhz, r.temperature) for r in rows] == [
        (0, 20.0, 2500, None),
        (1, 75.0, 1000, 71),
    ]


def test_socket_rows_leave_unmappable_lists_as_none() -> None:
    processors = [Processor(0, 0, 0), Processor(1, 1, 0)]
    (first, second) = socket_rows(processors, [10.0], [2000.0], {})
    assert first.utilization is None and first.frequency_mhz is None
    assert socket_rows(processors, [10.0, 20.0], None, {})[0].frequency_mhz is None
    assert (second.cores, second.threads) == (1, 1)
    assert socket_rows([Processor(0, None, 0)], [5.0], None, {}) == ()


def test_cpu_temperatures_from_coretemp_and_k10temp() -> None:
    coretemp = {
        "coretemp": [("Package id 0", 54.0), ("Core 0", 50.0), ("Package id 1", 61.0)],
    }
    assert cpu_temperatures(coretemp, (0, 1)) == {0: 54, 1: 61}
    k10temp = {"k10temp": [("Tctl", 48.9), ("Tccd1", 40.0), ("Tctl", 52.2)]}
    assert cpu_temperatures(k10temp, (0, 1)) == {0: 49, 1: 52}
    assert cpu_temperatures({"acpitz": [("", 27.8)]}, (0,)) == {}
