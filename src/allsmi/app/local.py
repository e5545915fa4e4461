"""Local collection: NVML and psutil readers behind worker threads, one frame per call.

Rules (docs/architecture.md §7.6): blocking reads go through ``anyio.to_thread``, each source
has at most one call in flight and each call a timeout. A read that times out is abandoned,
its thread left to finish; until it does, that source reports ``"<source>: previous read still
running"`` rather than piling up threads. Sample time is stamped by the caller's clock.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
import attrs

from allsmi.adapters.machine.host import HostReader
from allsmi.adapters.machine.nvml import GpuReading, NvmlReader, load_nvml
from allsmi.adapters.machine.processes import ProcessEnricher
from allsmi.domain.derived import with_gpu_power
from allsmi.domain.errors import AllsmiError, SourceUnavailable
from allsmi.domain.model import Chassis, Cpu, Frame, Gpu, GpuProcess, Memory, Storage
from allsmi.domain.sections import SectionRows, build_frame

T = TypeVar("T")

DEFAULT_READ_TIMEOUT_S = 5.0
# psutil's CPU percentages need two samples; this is the gap between them.
CPU_PRIME_S = 0.25


class GuardedCall:
    """Run one blocking source in a worker thread: one call in flight, each with a timeout."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self._busy = False

    async def __call__(self, fn: Callable[[], T]) -> T:
        if self._busy:
            raise SourceUnavailable(f"{self.name}: previous read still running")
        self._busy = True
        started = False

        def run() -> T:
            nonlocal started
            started = True
            try:
                return fn()
            finally:
                self._busy = False

        try:
            with anyio.move_on_after(self.timeout_s) as scope:
                return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        finally:
            if not started:  # cancelled before the worker ran: nothing is in flight
                self._busy = False
        if scope.cancelled_caught:
            raise SourceUnavailable(f"{self.name}: timed out after {self.timeout_s:g}s")
        raise AssertionError("unreachable")  # pragma: no cover


@attrs.frozen
class HostSections:
    cpus: tuple[Cpu, ...] | None
    memory: tuple[Memory, ...] | None
    storage: tuple[Storage, ...] | None
    chassis: tuple[Chassis, ...] | None
    errors: tuple[str, ...] = ()


@attrs.frozen
class GpuSections:
    reading: GpuReading
    processes: tuple[GpuProcess, ...] | None


class LocalSource:
    """This machine: NVML for GPUs and their processes, psutil/sysfs/DMI for the rest."""

    def __init__(
        self,
        include: tuple[str, ...],
        *,
        hostname: str,
        nvml: NvmlReader | None,
        host: HostReader,
        enricher: ProcessEnricher,
        timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        wall_clock_s: Callable[[], float] = time.time,
    ) -> None:
        self.include = include
        self.hostname = hostname
        self._nvml = nvml
        self._nvml_error: str | None = None
        self._host = host
        self._enricher = enricher
        self._gpu_call = GuardedCall("nvidia", timeout_s)
        self._host_call = GuardedCall("psutil", timeout_s)
        self._wall_clock_s = wall_clock_s

    def hosts(self) -> tuple[str, ...]:
        return (self.hostname,)

    def open(self) -> None:
        """Initialise NVML (if GPUs or processes are wanted) and prime CPU percentages."""
        if self._nvml is not None and {"gpu", "process"} & set(self.include):
            try:
                self._nvml.open()
            except SourceUnavailable as err:
                self._nvml_error = str(err)
                self._nvml = None
        if "cpu" in self.include:
            self._host.prime()

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self.open)
        if "cpu" in self.include:
            await anyio.sleep(CPU_PRIME_S)

    async def aclose(self) -> None:
        if self._nvml is not None:
            await anyio.to_thread.run_sync(self._nvml.close)

    async def collect(self, t_ms: int) -> Frame:
        errors: list[str] = []
        gpu_result: list[GpuSections | None] = [None]
        host_result: list[HostSections | None] = [None]

        async def read_gpus() -> None:
            gpu_result[0] = await self._read_gpus(errors)

        async def read_host() -> None:
            host_result[0] = await self._read_host(errors)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_gpus)
            tg.start_soon(read_host)
        return self._assemble(t_ms, gpu_result[0], host_result[0], errors)

    async def _read_gpus(self, errors: list[str]) -> GpuSections | None:
        if not {"gpu", "process"} & set(self.include):
            return None
        if self._nvml is None:
            errors.append(self._nvml_error or "nvidia: NVML not available")
            return None
        reader, enricher = self._nvml, self._enricher
        wants_processes = "process" in self.include
        clock = self._wall_clock_s

        def read_and_enrich() -> GpuSections:
            # Enrichment reads /proc per process: it belongs in the worker, under the timeout.
            reading = reader.read()
            processes = enricher.enrich(reading.processes, clock()) if wants_processes else None
            return GpuSections(reading, processes)

        try:
            result = await self._gpu_call(read_and_enrich)
        except AllsmiError as err:
            errors.append(str(err))
            return None
        errors.extend(result.reading.errors)
        return result

    async def _read_host(self, errors: list[str]) -> HostSections | None:
        wanted = set(self.include)
        if not wanted & {"cpu", "memory", "storage", "chassis"}:
            return None
        host = self._host

        def read_all() -> HostSections:
            found: list[str] = []  # one failing reader costs its own section only

            def section(name: str, read: Callable[[], T]) -> T | None:
                if name not in wanted:
                    return None
                try:
                    return read()
                except AllsmiError as err:
                    found.append(str(err))
                    return None

            return HostSections(
                cpus=section("cpu", host.read_cpu),
                memory=section("memory", host.read_memory),
                storage=section("storage", host.read_storage),
                chassis=section("chassis", host.read_chassis),
                errors=tuple(found),
            )

        try:
            sections = await self._host_call(read_all)
        except AllsmiError as err:
            errors.append(str(err))
            return None
        errors.extend(sections.errors)
        return sections

    def _assemble(
        self,
        t_ms: int,
        gpu: GpuSections | None,
        host: HostSections | None,
        errors: list[str],
    ) -> Frame:
        gpus: tuple[Gpu, ...] | None = gpu.reading.gpus if gpu is not None else None
        chassis = host.chassis if host is not None else None
        if chassis is not None and gpus:
            chassis = tuple(with_gpu_power(c, gpus) for c in chassis)
        rows: SectionRows = {
            "gpu": gpus,  # read for the processes too: build_frame keeps them if included
            "process": gpu.processes if gpu is not None else None,
            "chassis": chassis,
        }
        if host is not None:
            rows = {**rows, "cpu": host.cpus, "memory": host.memory, "storage": host.storage}
        return build_frame(t_ms, rows, include=self.include, source="local", errors=errors)


def local_hostname() -> str:
    return socket.gethostname() or "localhost"


def build_local_source(
    include: tuple[str, ...], timeout_s: float = DEFAULT_READ_TIMEOUT_S
) -> LocalSource:
    """Wire the real readers (the composition root's job, never a default argument)."""
    hostname = local_hostname()
    nvml = NvmlReader(load_nvml(), host_id=hostname, hostname=hostname)
    return LocalSource(
        include,
        hostname=hostname,
        nvml=nvml,
        host=HostReader(host_id=hostname, hostname=hostname),
        enricher=ProcessEnricher(host_id=hostname, hostname=hostname),
        timeout_s=timeout_s,
    )
