"""The local host readers, on this real machine and on fake /proc and /sys trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from statistics import fmean

import psutil
import pytest

from allsmi.adapters.machine.host import (
    CpuWindow,
    HostReader,
    Processor,
    cpu_temperatures,
    cpu_window,
    parse_cpuinfo,
    platform_type,
    socket_rows,
)
from allsmi.domain.errors import SourceUnavailable
from allsmi.domain.filesystems import is_local_fs

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


# --------------------------------------------------------------------------- CPU window

Deltas = Sequence[tuple[float, float]]  # (busy, idle) seconds per CPU over one window


class ScriptedCpuTimes:
    """A per-CPU times source returning scripted cumulative samples in order; counts calls."""

    def __init__(self, *samples: list[dict[str, float]]) -> None:
        self.samples = samples
        self.calls = 0

    def __call__(self) -> list[dict[str, float]]:
        sample = self.samples[self.calls]
        self.calls += 1
        return sample


def cpu_sample(cpus: int) -> list[dict[str, float]]:
    """A cumulative sample of ``cpus`` CPUs, each with some history behind it."""
    return [
        {"user": 40.0 + n, "system": 10.0, "idle": 900.0 - n, "iowait": 2.0} for n in range(cpus)
    ]


def cpu_later(sample: list[dict[str, float]], deltas: Deltas) -> list[dict[str, float]]:
    """``sample`` after a window in which CPU i was busy (user) and idle ``deltas[i]`` s."""
    return [
        {**times, "user": times["user"] + busy, "idle": times["idle"] + idle}
        for times, (busy, idle) in zip(sample, deltas, strict=True)
    ]


def cpu_script(cpus: int, *windows: Deltas) -> ScriptedCpuTimes:
    """A first sample, then one sample after each window."""
    samples = [cpu_sample(cpus)]
    for deltas in windows:
        samples.append(cpu_later(samples[-1], deltas))
    return ScriptedCpuTimes(*samples)


def core_percents(deltas: Deltas) -> list[float]:
    return [round(100 * busy / (busy + idle), 1) for busy, idle in deltas]


def weighted_percent(deltas: Deltas) -> float:
    """Busy over total time summed across all CPUs: the time-weighted mean of the cores."""
    busy = sum(b for b, _ in deltas)
    return round(100 * busy / sum(b + i for b, i in deltas), 1)


def scripted(box: HostReader, script: ScriptedCpuTimes) -> HostReader:
    """The fake box's trees, with the scripted per-CPU times source."""
    return HostReader(box.host_id, box.hostname, box.proc_root, box.sys_root, cpu_times=script)


def test_overall_cpu_is_the_time_weighted_mean_of_the_cores_of_one_window(
    intel_box: HostReader,
) -> None:
    window = [(0.5, 0.5), (0.25, 0.75), (1.5, 0.5), (0.0, 0.5)]  # unequal time per CPU
    reader = scripted(intel_box, cpu_script(4, window))

    reader.prime()
    (cpu,) = reader.read_cpu()

    assert [c.utilization for c in cpu.per_core_utilization] == core_percents(window)
    assert cpu.utilization == weighted_percent(window)


def test_each_socket_is_the_mean_of_its_cores_in_the_same_window(intel_box: HostReader) -> None:
    window = [(0.1, 0.9), (0.4, 0.6), (0.9, 0.1), (0.2, 0.8)]
    reader = scripted(intel_box, cpu_script(4, window))

    reader.prime()
    (cpu,) = reader.read_cpu()

    cores = [c.utilization for c in cpu.per_core_utilization]
    assert cores == core_percents(window)
    by_socket = {0: cores[0:2], 1: cores[2:4]}  # TWO_SOCKET_INTEL: cpus 0,1 | 2,3
    assert {s.socket_id: s.utilization for s in cpu.per_socket_info} == {
        socket: fmean(c for c in members if c is not None) for socket, members in by_socket.items()
    }
    assert cpu.utilization == weighted_percent(window)


def test_one_busy_core_among_idle_ones_gives_overall_above_zero(intel_box: HostReader) -> None:
    # the defect: overall 0.0 beside a socket at 1.9 and a core at 3.8 in one snapshot
    window = [(0.25, 0.0), (0.0, 0.25), (0.0, 0.25), (0.0, 0.25)]
    reader = scripted(intel_box, cpu_script(4, window))

    reader.prime()
    (cpu,) = reader.read_cpu()

    assert cpu.utilization is not None and cpu.utilization > 0.0
    assert cpu.utilization == weighted_percent(window)
    assert [c.utilization for c in cpu.per_core_utilization] == core_percents(window)
    assert [s.utilization for s in cpu.per_socket_info] == [
        fmean(core_percents(window)[0:2]),
        fmean(core_percents(window)[2:4]),
    ]


def test_each_read_measures_from_the_previous_sample_with_one_source_call(
    intel_box: HostReader,
) -> None:
    busy, quiet = [(0.2, 0.0)] * 4, [(0.0, 1.0), (0.1, 0.9), (0.0, 1.0), (0.3, 0.7)]
    script = cpu_script(4, busy, quiet)
    reader = scripted(intel_box, script)

    reader.prime()
    (first,) = reader.read_cpu()
    (second,) = reader.read_cpu()

    assert script.calls == 3  # prime, then one sample per cycle: the cost of a cycle
    assert first.utilization == weighted_percent(busy)
    assert second.utilization == weighted_percent(quiet)  # the busy window is not carried
    assert [c.utilization for c in second.per_core_utilization] == core_percents(quiet)


def test_a_read_with_no_previous_sample_reports_none_not_zero(intel_box: HostReader) -> None:
    reader = scripted(intel_box, cpu_script(4))

    (cpu,) = reader.read_cpu()

    assert cpu.utilization is None
    assert [c.utilization for c in cpu.per_core_utilization] == [None] * 4
    assert [s.utilization for s in cpu.per_socket_info] == [None, None]


def test_a_change_in_cpu_count_skips_one_window_then_measures_again(
    intel_box: HostReader,
) -> None:
    three = cpu_sample(3)  # a CPU went offline between the samples
    window = [(0.1, 0.1), (0.2, 0.0), (0.0, 0.2)]
    script = ScriptedCpuTimes(cpu_sample(4), three, cpu_later(three, window))
    reader = scripted(intel_box, script)

    reader.prime()
    (changed,) = reader.read_cpu()
    (after,) = reader.read_cpu()

    assert changed.utilization is None
    assert [c.utilization for c in changed.per_core_utilization] == [None] * 3
    assert after.utilization == weighted_percent(window)
    assert [c.utilization for c in after.per_core_utilization] == core_percents(window)


def test_cpu_window_counts_iowait_as_idle_guest_once_and_a_backward_counter_as_zero() -> None:
    before = [{"user": 10.0, "system": 5.0, "idle": 80.0, "iowait": 5.0, "guest": 2.0}]
    after = [{"user": 13.0, "system": 6.0, "idle": 84.0, "iowait": 4.0, "guest": 3.0}]
    # user +3 (its guest +1 already inside it), system +1, idle +4, iowait went back: 0
    busy, total = 3.0 + 1.0, 3.0 + 1.0 + 4.0

    assert cpu_window(before, after) == CpuWindow(
        overall=round(100 * busy / total, 1), per_cpu=(round(100 * busy / total, 1),)
    )
    assert cpu_window(after, after) == CpuWindow(overall=None, per_cpu=(None,))  # no time


@pytest.fixture
def one_core_busy() -> Iterator[None]:
    """A thread spinning on one core while the test runs."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    busy = threading.Thread(target=spin, daemon=True)
    busy.start()
    yield
    stop.set()
    busy.join()


@pytest.mark.usefixtures("one_core_busy")
def test_snapshot_overall_cpu_agrees_with_its_own_cores_on_this_machine() -> None:
    exe = Path(sys.executable).with_name("allsmi")
    if not exe.exists():
        pytest.fail("the allsmi command is not installed beside this Python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSMI_")}

    result = subprocess.run(
        [str(exe), "snapshot", "--include", "cpu", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    (cpu,) = json.loads(result.stdout)["cpus"]
    cores = [core["utilization"] for core in cpu["per_core_utilization"]]
    assert len(cores) == psutil.cpu_count()
    overall = cpu["utilization"]
    assert overall is not None and overall > 0.0  # the spinning core, over a real window
    # Within rounding (0.05 on the overall, 0.05 on each core), plus the time weighting:
    # /proc/stat counts 10 ms ticks, so over the >= 0.25 s priming window one CPU's total
    # can be a tick or two off another's (a few %), which moves the weighted mean off the
    # plain one by at most that share of the cores' spread.
    slack = 0.1 + 0.1 * (max(cores) - min(cores))
    assert abs(overall - fmean(cores)) <= slack, (overall, cores)


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
