"""node_exporter pages into CPU, memory and storage rows (allsmi.adapters.prometheus.node):
pages as node_exporter prints them, asserted field by field; CPU utilization from counter
differences between scrapes (none on the first, none for a counter that went back); and the
loopback scrape of a dcgm-exporter and a node_exporter of one host on two ports, which the
remote source turns into one host."""

from __future__ import annotations

from functools import partial

import anyio
import pytest

from allsmi.adapters.network.scrape import RemoteConfig, frame_host_ids, pair_ids
from allsmi.adapters.network.server import Request, Response, Stream
from allsmi.adapters.prometheus.node import NODE_NAMES, NODE_PATH, NodeState, fold_node
from allsmi.adapters.prometheus.parser import NO_LIMITS, fold_page
from allsmi.app.remote import build_remote_source
from allsmi.domain.model import CoreUtilization, Cpu, Memory, Storage

from .test_dcgm_page import page as dcgm_page
from .test_remote import serving

T0 = 1_776_513_600_000
TARGET = "gpu-01:9100"
PROM = "text/plain; version=0.0.4; charset=utf-8"


def cpu_lines(seconds: dict[int, dict[str, float]]) -> str:
    lines = [
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.",
        "# TYPE node_cpu_seconds_total counter",
    ]
    for cpu, modes in seconds.items():
        lines += [f'node_cpu_seconds_total{{cpu="{cpu}",mode="{m}"}} {v}' for m, v in modes.items()]
    return "\n".join(lines) + "\n"


def modes(idle: float, iowait: float, user: float, system: float) -> dict[str, float]:
    return {"idle": idle, "iowait": iowait, "irq": 0, "nice": 0, "softirq": 1.5, "steal": 0,
            "system": system, "user": user}  # fmt: skip


FIRST = {0: modes(1000, 10, 500, 200), 1: modes(2000, 0, 50, 20)}
SECOND = {0: modes(1006, 11, 511, 212), 1: modes(2027, 0, 52, 21)}  # 30 s of each core

CPU_INFO = (
    'cachesize="32768 KB",core="0",family="25",microcode="0xa0011d1",model="1",'
    'model_name="AMD EPYC 7763 64-Core Processor",package="0",stepping="1",vendor="AuthenticAMD"'
)
UNAME = (
    'domainname="(none)",machine="x86_64",nodename="gpu-01.cluster",'
    'release="5.15.0-105-generic",sysname="Linux",version="#115-Ubuntu SMP"'
)


def filesystem(family: str, *mounts: tuple[str, str, str, str]) -> str:
    """``family``'s samples as node_exporter prints them: (device, fstype, mountpoint, value)."""
    return "".join(
        f'{family}{{device="{device}",device_error="",fstype="{fstype}",mountpoint="{mount}"}} '
        f"{value}\n"
        for device, fstype, mount, value in mounts
    )


REST = (
    f"""# HELP node_cpu_info CPU information from /proc/cpuinfo.
# TYPE node_cpu_info gauge
node_cpu_info{{cpu="0",{CPU_INFO}}} 1
node_cpu_info{{cpu="1",{CPU_INFO}}} 1
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 3.5
# HELP node_load5 5m load average.
# TYPE node_load5 gauge
node_load5 2.25
# HELP node_load15 15m load average.
# TYPE node_load15 gauge
node_load15 1
# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.
# TYPE node_memory_MemTotal_bytes gauge
node_memory_MemTotal_bytes 1.081006698496e+12
# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.
# TYPE node_memory_MemAvailable_bytes gauge
node_memory_MemAvailable_bytes 8.00006698496e+11
# HELP node_memory_MemFree_bytes Memory information field MemFree_bytes.
# TYPE node_memory_MemFree_bytes gauge
node_memory_MemFree_bytes 6e+11
# HELP node_memory_Buffers_bytes Memory information field Buffers_bytes.
# TYPE node_memory_Buffers_bytes gauge
node_memory_Buffers_bytes 1e+09
# HELP node_memory_Cached_bytes Memory information field Cached_bytes.
# TYPE node_memory_Cached_bytes gauge
node_memory_Cached_bytes 1.5e+11
# HELP node_memory_SwapTotal_bytes Memory information field SwapTotal_bytes.
# TYPE node_memory_SwapTotal_bytes gauge
node_memory_SwapTotal_bytes 0
# HELP node_memory_SwapFree_bytes Memory information field SwapFree_bytes.
# TYPE node_memory_SwapFree_bytes gauge
node_memory_SwapFree_bytes 0
# HELP node_memory_Dirty_bytes Memory information field Dirty_bytes.
# TYPE node_memory_Dirty_bytes gauge
node_memory_Dirty_bytes 20480
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
"""
    + filesystem(
        "node_filesystem_avail_bytes",
        ("/dev/nvme0n1p2", "ext4", "/", "4e+11"),
        ("/dev/md0", "xfs", "/raid", "2.5e+13"),
        ("tmpfs", "tmpfs", "/run", "1e+10"),
        ("overlay", "overlay", "/var/lib/docker/overlay2/abc/merged", "4e+11"),
        ("/dev/loop3", "squashfs", "/snap/core20/2318", "0"),
        ("nas:/home", "nfs4", "/home", "9e+12"),
    )
    + """# HELP node_filesystem_size_bytes Filesystem size in bytes.
# TYPE node_filesystem_size_bytes gauge
"""
    + filesystem(
        "node_filesystem_size_bytes",
        ("/dev/nvme0n1p2", "ext4", "/", "1e+12"),
        ("/dev/md0", "xfs", "/raid", "3e+13"),
        ("tmpfs", "tmpfs", "/run", "1e+10"),
    )
    + f"""# HELP node_uname_info Labeled system information as provided by the uname call.
# TYPE node_uname_info gauge
node_uname_info{{{UNAME}}} 1
# HELP node_scrape_collector_success node_exporter: Whether a collector succeeded.
# TYPE node_scrape_collector_success gauge
node_scrape_collector_success{{collector="cpu"}} 1
"""
)


def read(text: str, state: NodeState) -> dict[str, list[Cpu | Memory | Storage]]:
    folded = fold_page(text, NO_LIMITS, partial(fold_node, limits=NO_LIMITS), NODE_NAMES)
    return folded.rows_of(TARGET, TARGET, "gpu-01", state)


def test_a_node_page_becomes_cpu_memory_and_storage_rows() -> None:
    rows = read(cpu_lines(FIRST) + REST, NodeState())
    assert rows["cpus"] == [
        Cpu(
            host_id=TARGET, hostname="gpu-01.cluster", instance=TARGET,
            cpu_model="AMD EPYC 7763 64-Core Processor", architecture="x86_64",
            socket_count=1, total_cores=1, total_threads=2, utilization=None,
            load_average=(3.5, 2.25, 1.0),
            per_core_utilization=(CoreUtilization(0), CoreUtilization(1)),
        )
    ]  # fmt: skip
    total, free, buffers, cached = 1_081_006_698_496, 600_000_000_000, 10**9, 150 * 10**9
    available = 800_006_698_496
    assert rows["memory"] == [
        Memory(
            TARGET, "gpu-01.cluster", TARGET, total_bytes=total,
            used_bytes=total - free - buffers - cached, available_bytes=available,
            free_bytes=free, buffers_bytes=buffers, cached_bytes=cached, swap_total_bytes=0,
            swap_used_bytes=0, swap_free_bytes=0,
            utilization=100.0 * (total - available) / total,
        )
    ]  # fmt: skip
    assert rows["storage"] == [  # tmpfs, docker's overlay, squashfs and nfs left out
        Storage(TARGET, "gpu-01.cluster", "/", 0, total_bytes=10**12, available_bytes=4 * 10**11),
        Storage(TARGET, "gpu-01.cluster", "/raid", 1, total_bytes=3 * 10**13,
                available_bytes=25 * 10**12),
    ]  # fmt: skip


def test_cpu_utilization_comes_from_the_second_scrape_per_core_and_overall() -> None:
    state = NodeState()
    read(cpu_lines(FIRST), state)
    cpu = read(cpu_lines(SECOND), state)["cpus"][0]
    assert isinstance(cpu, Cpu)
    core0, core1 = cpu.per_core_utilization
    assert core0.utilization == pytest.approx(100 * (1 - 7 / 30))  # idle+iowait rose by 7 of 30
    assert core1.utilization == pytest.approx(100 * (1 - 27 / 30))
    assert cpu.utilization == pytest.approx(100 * 26 / 60)
    assert cpu.hostname == "gpu-01"  # no uname on these pages: the target's host part


def test_a_counter_that_goes_back_gives_no_utilization_then_recovers() -> None:
    state = NodeState()
    read(cpu_lines(FIRST), state)
    rebooted = {0: modes(5, 0, 3, 1), 1: SECOND[1]}
    cpu = read(cpu_lines(rebooted), state)["cpus"][0]
    assert isinstance(cpu, Cpu)
    assert cpu.per_core_utilization[0].utilization is None  # never negative
    assert cpu.per_core_utilization[1].utilization == pytest.approx(100 * (1 - 27 / 30))
    assert cpu.utilization == pytest.approx(100 * 3 / 30)  # the core with both readings
    later = {0: modes(10, 0, 8, 1), 1: SECOND[1]}  # core 1 did not move: no reading
    cpu = read(cpu_lines(later), state)["cpus"][0]
    assert isinstance(cpu, Cpu)
    assert cpu.per_core_utilization[0].utilization == pytest.approx(50.0)
    assert cpu.per_core_utilization[1].utilization is None


def test_state_keeps_only_the_cores_of_the_last_page() -> None:
    state = NodeState()
    read(cpu_lines(FIRST), state)
    assert set(state.cores) == {0, 1}
    read(cpu_lines({1: SECOND[1]}), state)
    assert set(state.cores) == {1}


def test_two_targets_of_one_host_part_are_one_host_and_others_keep_their_ids() -> None:
    targets = ("gpu-01:9400", "n2:9090", "GPU-01:9100", "m:1", "m:2", "m:3")
    assert pair_ids(targets) == {
        "gpu-01:9400": "gpu-01:9400", "GPU-01:9100": "gpu-01:9400", "n2:9090": "n2:9090",
        "m:1": "m:1", "m:2": "m:2", "m:3": "m:3",
    }  # fmt: skip
    assert frame_host_ids(targets) == ("gpu-01:9400", "n2:9090", "m:1", "m:2", "m:3")


# --------------------------------------------------------------------------- loopback


def test_a_dcgm_and_a_node_exporter_of_one_host_are_scraped_as_one_host() -> None:
    asked: list[str] = []
    pages = iter((cpu_lines(FIRST) + REST, cpu_lines(SECOND) + REST))

    async def dcgm_exporter(request: Request) -> Response | Stream:
        if request.path != "/metrics":
            return Response(404, b"404 page not found\n")
        return Response(200, dcgm_page().encode(), content_type=PROM)

    async def node_exporter(request: Request) -> Response | Stream:
        asked.append(f"{request.path}?{request.query}" if request.query else request.path)
        if request.path != "/metrics":
            return Response(404, b"404 page not found\n")
        return Response(200, next(pages).encode(), content_type=PROM)

    async def main() -> None:
        async with serving(dcgm_exporter, node_exporter) as (gpu_target, node_target):
            config = RemoteConfig(hosts=(gpu_target, node_target),
                                  include=("gpu", "cpu", "memory", "storage"))  # fmt: skip
            source = build_remote_source(config)
            try:
                first = await source.collect(T0)
                second = await source.collect(T0 + 30_000)
            finally:
                await source.aclose()
        for frame in (first, second):
            assert frame.errors == ()
            assert frame.hosts() == (gpu_target,)  # one host: the first target's id
            assert frame.gpus is not None and len(frame.gpus) == 2
            assert frame.cpus is not None and len(frame.cpus) == 1
            assert frame.memory is not None and len(frame.memory) == 1
            assert frame.storage is not None and len(frame.storage) == 2
            assert frame.cpus[0].instance == node_target  # the page it came from
        assert first.cpus is not None and first.cpus[0].utilization is None
        assert second.cpus is not None
        assert second.cpus[0].utilization == pytest.approx(100 * 26 / 60)
        assert frame_host_ids((gpu_target, node_target)) == (gpu_target,)
        # Once known as node_exporter, only the collectors read are asked for.
        assert asked == ["/snapshot", "/metrics", NODE_PATH]

    anyio.run(main)


def test_a_node_exporter_refusing_the_collector_filter_is_read_through_the_plain_path() -> None:
    asked: list[str] = []

    async def strict(request: Request) -> Response | Stream:
        asked.append(f"{request.path}?{request.query}" if request.query else request.path)
        if request.path != "/metrics":
            return Response(404, b"404 page not found\n")
        if request.query:
            return Response(400, b"couldn't create filtered metrics handler\n")
        return Response(200, (cpu_lines(FIRST) + REST).encode(), content_type=PROM)

    async def main() -> None:
        async with serving(strict) as (target,):
            source = build_remote_source(RemoteConfig(hosts=(target,), include=("cpu",)))
            try:
                frames = [await source.collect(T0 + i * 1000) for i in range(3)]
            finally:
                await source.aclose()
        assert all(f.errors == () and f.cpus for f in frames)
        assert asked == ["/snapshot", "/metrics", NODE_PATH, "/metrics", "/metrics"]

    anyio.run(main)
