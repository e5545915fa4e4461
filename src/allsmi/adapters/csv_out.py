"""A frame as the ``snapshot --format csv`` table (all-smi's columns; docs/architecture.md §3.7).

One row per device across sections, in the section order of the model (gpu, cpu, memory,
chassis, process, storage), under all-smi's default columns plus ``host_id`` so rows of a
cluster frame stay apart. The header is written even when there are no rows.

Rules it obeys:
- Written with the stdlib :mod:`csv` module: RFC 4180 quoting (a cell with a comma, quote
  or line break is quoted, quotes doubled) and CRLF record ends.
- A reading that is ``None``, NaN or ±Inf, or a column that does not apply to the section,
  is an empty cell. Integers are plain, floats their shortest round-trip ``repr``.
- ``index`` is the row's own index where the model has one (cpu, memory, storage) and its
  position in the section otherwise, as all-smi injects it (``snapshot/mod.rs``).
- ``name`` is the GPU name, the CPU model, the mount point or the process name; memory
  uses ``used_bytes``/``total_bytes``; storage reports ``total - available`` as used.
- :func:`render_table` writes any other table (the TUI's Users export) the same way; a bool
  cell is ``true``/``false``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from allsmi.domain.model import Frame

__all__ = ["COLUMNS", "render_csv", "render_table"]

COLUMNS: Final = (
    "section",
    "index",
    "host_id",
    "hostname",
    "name",
    "uuid",
    "utilization",
    "used_memory",
    "total_memory",
    "temperature",
    "power_consumption",
)

Cell = str | int | float | None


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is one
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, str) and value[:1] in _FORMULA_LEADS:
        return "'" + value  # a spreadsheet would run "=…" (a command line, a user name)
    return str(value)


_FORMULA_LEADS: Final = ("=", "+", "-", "@", "\t", "\r")


def _minus(total: int | None, part: int | None) -> int | None:
    return None if total is None or part is None else total - part


def _rows(frame: Frame) -> Iterator[dict[str, Cell]]:
    """Each device as its cells by column; a column left out does not apply."""
    for i, g in enumerate(frame.gpus or ()):
        yield {
            "section": "gpu",
            "index": i,
            "host_id": g.host_id,
            "hostname": g.hostname,
            "name": g.name,
            "uuid": g.uuid,
            "utilization": g.utilization,
            "used_memory": g.used_memory,
            "total_memory": g.total_memory,
            "temperature": g.temperature,
            "power_consumption": g.power_consumption,
        }
    for c in frame.cpus or ():
        yield {
            "section": "cpu",
            "index": c.index,
            "host_id": c.host_id,
            "hostname": c.hostname,
            "name": c.cpu_model,
            "utilization": c.utilization,
            "temperature": c.temperature,
            "power_consumption": c.power_consumption,
        }
    for m in frame.memory or ():
        yield {
            "section": "memory",
            "index": m.index,
            "host_id": m.host_id,
            "hostname": m.hostname,
            "utilization": m.utilization,
            "used_memory": m.used_bytes,
            "total_memory": m.total_bytes,
        }
    for i, ch in enumerate(frame.chassis or ()):
        yield {
            "section": "chassis",
            "index": i,
            "host_id": ch.host_id,
            "hostname": ch.hostname,
            "power_consumption": ch.total_power_watts,
        }
    for i, p in enumerate(frame.processes or ()):
        yield {
            "section": "process",
            "index": i,
            "host_id": p.host_id,
            "hostname": p.hostname,
            "name": p.process_name,
            "uuid": p.device_uuid,
            "utilization": p.gpu_utilization,
            "used_memory": p.used_memory,
        }
    for s in frame.storage or ():
        yield {
            "section": "storage",
            "index": s.index,
            "host_id": s.host_id,
            "hostname": s.hostname,
            "name": s.mount_point,
            "used_memory": _minus(s.total_bytes, s.available_bytes),
            "total_memory": s.total_bytes,
        }


def render_csv(frame: Frame) -> str:
    """The frame's devices as CSV text: a header line, then one line per device."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for cells in _rows(frame):
        writer.writerow([_cell(cells.get(column)) for column in COLUMNS])
    return buffer.getvalue()


def render_table(columns: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Any table (the TUI's Users export) as CSV text under the same rules: a header line,
    then one line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for cells in rows:
        writer.writerow([_cell(cell) for cell in cells])
    return buffer.getvalue()
