"""The Users tab: who holds the GPUs, per user and then per host (issue #20; all-smi's Users
tab, docs/architecture.md §6).

Rules this module obeys:
- Pure: the standard library and attrs only; one frame is judged from itself alone.
- What is counted: the processes that use a GPU (``uses_gpu``) of the hosts in view. A user
  with none is not listed. A process without a user counts under ``?``.
- Per user: NODES, the hosts it runs on; GPUs, the distinct (host, GPU) pairs; PROCS, the
  distinct (host, PID) pairs; VRAM, the GPU memory of its processes (unknown counts 0);
  POWER*, its **share** of the power of the GPUs its processes run on — a GPU's power split
  evenly among the distinct users with a process on it (``*``: a share, not a reading; a GPU
  without a power reading adds nothing, and a user whose GPUs all lack one reads ``N/A``);
  LONGEST, the longest elapsed time of its processes (``start_time`` is elapsed
  ``[[HH:]MM:]SS[.f]``; unreadable counts as unknown); CMD, the command of its process using
  the most GPU memory (the first in frame order on a tie); JOBS, the Slurm job ids that its
  processes' cgroup paths name (``…/job_<id>/…``).
- :class:`~allsmi.domain.model.GpuProcess` carries no cgroup path, so JOBS is empty for
  every frame today (:func:`process_cgroup`); :func:`slurm_job` reads one once it does.
- A dcgm-exporter frame has no processes (``processes`` not collected) but its GPUs name the
  pod they serve (``detail``: ``namespace``, ``pod``, ``container``): then each namespace is
  a "user" and each (host, pod) a "process"; LONGEST is unknown and CMD is
  ``pod/container``. The table says NAMESPACE and PODS instead of USER and PROCS.
- A system user is ``root`` or a numeric UID under 1000 (all-smi's rule); ``f`` hides them.
- Sorts (all-smi's ``u m p n t``; here ``o`` for nodes, since the replay's ``n`` is its
  next-event key): ``vram`` (the default), ``power``, ``nodes``, ``longest`` largest first,
  unknown last; ``user`` by name. Ties by name.
- Drill-down: a user → its hosts (in the hosts' order) → its processes on that host
  (largest GPU memory first).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from allsmi.domain.model import Gpu, GpuProcess
from allsmi.domain.parse import format_elapsed
from allsmi.domain.screen_rows import (
    CYAN,
    HEADER,
    PLAIN,
    YELLOW,
    Span,
    Spans,
    Style,
    binary,
    clean,
    cut,
    power_total,
)

USER_SORTS: Final = ("vram", "user", "power", "nodes", "longest")
USER_SORT_KEYS: Final = {"u": "user", "m": "vram", "p": "power", "o": "nodes", "t": "longest"}
SYSTEM_UID_BELOW: Final = 1000
NO_USER: Final = "?"
NO_NAMESPACE: Final = "(no namespace)"
_JOB: Final = re.compile(r"(?:^|/)job_(\d+)(?:/|$)")
_ELAPSED: Final = re.compile(r"^(?:(?:([0-9]{1,9}):)?([0-9]{1,9}):)?([0-9]{1,9})(?:\.[0-9]*)?$")


@attrs.frozen
class Work:
    """One process (or, on a dcgm-exporter frame, one pod on one GPU) as the tab counts it."""

    host: str  # id
    gpu: str  # the GPU's uuid
    gpu_index: int
    key: str  # the PID (or the pod), unique on its host
    user: str
    vram: int
    elapsed_s: int | None
    command: str
    job: str | None
    pid: int | None = None
    cpu: float | None = None


@attrs.frozen
class UserRow:
    """A user's line (or, drilled into a user, one host's line: ``user`` is then the host id
    and ``nodes`` 1)."""

    user: str
    nodes: int
    gpus: int
    gpu_indices: tuple[int, ...]
    processes: int
    vram: int
    power: float | None
    longest_s: int | None
    top_command: str
    jobs: tuple[str, ...]
    system: bool


@attrs.frozen
class UsersData:
    """The tab's data for the hosts in view: every user's work, and the power share each
    piece of work gets."""

    works: tuple[Work, ...]
    shares: Mapping[str, float | None]  # "<host>\0<gpu uuid>" → the power each user gets
    workloads: bool  # from dcgm pod labels, not processes
    collected: bool  # processes were collected (or pods named)
    reporting: int  # hosts in view with a process (or pod)
    hosts: int  # hosts in view


def slurm_job(cgroup: str | None) -> str | None:
    """The Slurm job id a cgroup path names (``/slurm/uid_1000/job_4242/step_0`` → ``4242``)."""
    if not cgroup:
        return None
    found = _JOB.search(cgroup)
    return found.group(1) if found else None


def process_cgroup(proc: GpuProcess) -> str | None:
    """The process's cgroup path: the model carries none yet (module header), so None."""
    return None


def elapsed_seconds(text: str | None) -> int | None:
    """``[[HH:]MM:]SS[.f]`` → whole seconds (hours may exceed 99); None when unreadable."""
    if not text:
        return None
    found = _ELAPSED.match(text.strip())
    if found is None:
        return None
    hours, minutes, seconds = (int(part) if part else 0 for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def is_system(user: str) -> bool:
    return user == "root" or (_small_number(user) and int(user) < SYSTEM_UID_BELOW)


def _gpu_key(host: str, gpu: str) -> str:
    return f"{host}\0{gpu}"


def _works(processes: Iterable[GpuProcess]) -> list[Work]:
    return [
        Work(
            host=proc.host_id,
            gpu=proc.device_uuid,
            gpu_index=proc.device_id,
            key=str(proc.pid),
            user=proc.user or NO_USER,
            vram=max(proc.used_memory or 0, 0),
            elapsed_s=elapsed_seconds(proc.start_time),
            command=proc.command or proc.process_name or "",
            job=slurm_job(process_cgroup(proc)),
            pid=proc.pid,
            cpu=proc.cpu_percent,
        )
        for proc in processes
        if proc.uses_gpu
    ]


def _pod_works(gpus: Iterable[Gpu]) -> list[Work]:
    out: list[Work] = []
    for at, gpu in enumerate(gpus):
        pod = gpu.detail.get("pod")
        if not pod:
            continue
        index = gpu.detail.get("index", "")
        container = gpu.detail.get("container")
        out.append(
            Work(
                host=gpu.host_id,
                gpu=gpu.uuid,
                gpu_index=int(index) if _small_number(index) else at,
                key=pod,
                user=gpu.detail.get("namespace") or NO_NAMESPACE,
                vram=max(gpu.used_memory or 0, 0),
                elapsed_s=None,
                command=f"{pod}/{container}" if container else pod,
                job=None,
            )
        )
    return out


def users_data(
    processes: Sequence[GpuProcess] | None, gpus: Sequence[Gpu], hosts: int
) -> UsersData:
    """The tab's data from the processes and GPUs of the hosts in view (``processes`` None:
    not collected; then the GPUs' pod labels, if any)."""
    works = _works(processes) if processes is not None else _pod_works(gpus)
    pods = processes is None and bool(works)
    users_on: dict[str, set[str]] = {}
    for work in works:
        users_on.setdefault(_gpu_key(work.host, work.gpu), set()).add(work.user)
    power = {_gpu_key(g.host_id, g.uuid): g.power_consumption for g in gpus}
    shares: dict[str, float | None] = {}
    for key, users in users_on.items():
        watts = power.get(key)
        known = watts is not None and math.isfinite(watts)
        shares[key] = max(watts, 0.0) / len(users) if known and watts is not None else None
    return UsersData(
        works=tuple(works),
        shares=shares,
        workloads=pods,
        collected=processes is not None or pods,
        reporting=len({work.host for work in works}),
        hosts=hosts,
    )


def _row(name: str, works: Sequence[Work], shares: Mapping[str, float | None]) -> UserRow:
    gpus = {_gpu_key(w.host, w.gpu) for w in works}
    known = [s for key in gpus if (s := shares.get(key)) is not None]
    elapsed = [w.elapsed_s for w in works if w.elapsed_s is not None]
    top = max(works, key=lambda w: w.vram)  # the first of the largest
    jobs = sorted({w.job for w in works if w.job is not None}, key=lambda j: (len(j), j))
    return UserRow(
        user=name,
        nodes=len({w.host for w in works}),
        gpus=len(gpus),
        gpu_indices=tuple(sorted({w.gpu_index for w in works})),
        processes=len({(w.host, w.key) for w in works}),
        vram=sum(w.vram for w in works),
        power=sum(known) if known else None,
        longest_s=max(elapsed) if elapsed else None,
        top_command=top.command,
        jobs=tuple(jobs),
        system=is_system(name),
    )


def _desc(value: float | None) -> tuple[bool, float]:
    return (True, 0.0) if value is None else (False, -value)


def sort_users(rows: Sequence[UserRow], how: str) -> list[UserRow]:
    """The module header's sorts; ties by name."""
    by_name = sorted(rows, key=lambda r: r.user)
    if how == "user":
        return by_name
    if how == "power":
        return sorted(by_name, key=lambda r: _desc(r.power))
    if how == "nodes":
        return sorted(by_name, key=lambda r: -r.nodes)
    if how == "longest":
        return sorted(by_name, key=lambda r: _desc(r.longest_s))
    return sorted(by_name, key=lambda r: -r.vram)


def user_rows(data: UsersData, how: str = "vram", hide_system: bool = False) -> list[UserRow]:
    """One row per user, sorted; without the system users under ``hide_system``."""
    by_user: dict[str, list[Work]] = {}
    for work in data.works:
        by_user.setdefault(work.user, []).append(work)
    rows = [_row(user, works, data.shares) for user, works in by_user.items()]
    if hide_system:
        rows = [row for row in rows if not row.system]
    return sort_users(rows, how)


def host_rows(data: UsersData, user: str, order: Sequence[str]) -> list[UserRow]:
    """The user's hosts, one row each (``user`` holds the host id), in ``order``."""
    by_host: dict[str, list[Work]] = {}
    for work in data.works:
        if work.user == user:
            by_host.setdefault(work.host, []).append(work)
    rank = {host: at for at, host in enumerate(order)}
    hosts = sorted(by_host, key=lambda h: (rank.get(h, len(rank)), h))
    return [_row(host, by_host[host], data.shares) for host in hosts]


def process_rows(data: UsersData, user: str, host: str) -> list[Work]:
    """The user's processes (or pods) on ``host``, largest GPU memory first."""
    mine = [w for w in data.works if w.user == user and w.host == host]
    return sorted(mine, key=lambda w: -w.vram)


def longest_text(seconds: int | None) -> str:
    return "-" if seconds is None else format_elapsed(seconds)


def gpu_list(indices: Sequence[int]) -> str:
    """``0-3,6``: runs of consecutive indices joined."""
    parts: list[str] = []
    start = prev = None
    for index in [*indices, None]:
        if index is not None and prev is not None and index == prev + 1:
            prev = index
            continue
        if start is not None and prev is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = index
    return ",".join(parts)


CSV_COLUMNS: Final = (
    "user",
    "system",
    "nodes",
    "gpus",
    "processes",
    "vram_bytes",
    "power_share_w",
    "longest_s",
    "top_command",
    "slurm_jobs",
)


def csv_cells(row: UserRow) -> tuple[str | int | float | bool | None, ...]:
    """A user's row as :data:`CSV_COLUMNS` cells (None: unknown)."""
    return (
        row.user,
        row.system,
        row.nodes,
        row.gpus,
        row.processes,
        row.vram,
        None if row.power is None else round(row.power, 3),
        row.longest_s,
        row.top_command,
        " ".join(row.jobs),
    )


# --------------------------------------------------------------------------- the page

USER_CELLS: Final = 22
HOST_CELLS: Final = 16
JOBS_CELLS: Final = 12
JOBS_FROM_WIDTH: Final = 120  # the JOBS column only where the command keeps its room
SELECTED: Final = Style(fg="black", bg="cyan")
SYSTEM: Final = Style(fg="white")
_SORT_COLUMN: Final = {"user": "USER", "nodes": "NODES", "vram": "VRAM", "power": "POWER*"}
_SORT_WORDS: Final = {"vram": "VRAM", "user": "user", "power": "power share", "nodes": "nodes"}
USERS_KEYS: Final = "Enter drill in · Esc back · u/m/p/o/t sort · f system users · x export CSV"


@attrs.frozen
class UsersPage:
    """What the Users page shows at one level: ``drill`` () the users, (user,) that user's
    hosts, (user, host) its processes there."""

    data: UsersData
    sort: str
    hide_system: bool
    drill: tuple[str, ...]
    order: tuple[str, ...]  # host ids in the hosts' order
    names: Mapping[str, str]  # host id → display name

    def rows(self) -> Sequence[UserRow | Work]:
        """The selectable rows of this level."""
        if not self.drill:
            return user_rows(self.data, self.sort, self.hide_system)
        if len(self.drill) == 1:
            return host_rows(self.data, self.drill[0], self.order)
        return process_rows(self.data, self.drill[0], self.drill[1])

    def pick(self, cursor: int) -> str | None:
        """The user (top level) or host (a user's level) at ``cursor``: what Enter opens;
        None at the process level or without rows."""
        rows = self.rows() if len(self.drill) < 2 else ()
        if not rows:
            return None
        row = rows[min(max(cursor, 0), len(rows) - 1)]
        return row.user if isinstance(row, UserRow) else None


def _show(text: str, cells: int) -> str:
    return cut(clean(text), cells)


def _watts(value: float | None) -> str:
    return "N/A" if value is None else power_total(value)


Column = tuple[str, int]  # label, cells (right-aligned, one space before)


def _columns(level: int, wide: bool, workloads: bool) -> list[Column]:
    procs = "PODS" if workloads else "PROCS"
    if level == 0:
        columns = [("NODES", 6), ("GPUs", 5), (procs, 6), ("VRAM", 10), ("POWER*", 9)]
    else:
        columns = [("GPUs", 12), (procs, 6), ("VRAM", 10), ("POWER*", 9)]
    columns.append(("LONGEST", 11))
    return [*columns, ("JOBS", JOBS_CELLS + 1)] if wide else columns


def _values(row: UserRow, level: int) -> dict[str, str]:
    return {
        "NODES": str(row.nodes),
        "GPUs": str(row.gpus) if level == 0 else gpu_list(row.gpu_indices),
        "PROCS": str(row.processes),
        "PODS": str(row.processes),
        "VRAM": binary(row.vram),
        "POWER*": _watts(row.power),
        "LONGEST": longest_text(row.longest_s),
        "JOBS": ",".join(row.jobs) or "-",
    }


def _header(first: str, cells: int, columns: Sequence[Column], sort: str | None, last: str) -> str:
    def label(name: str) -> str:
        return ("▼" if sort is not None and _SORT_COLUMN.get(sort) == name else "") + name

    head = f"{label(first):<{cells}}"
    return head + "".join(f"{label(name):>{w}}" for name, w in columns) + f"  {last}"


def _line(first: str, cells: int, row: UserRow, level: int, columns: Sequence[Column]) -> str:
    values = _values(row, level)
    body = "".join(f"{_show(values[name], w - 1):>{w}}" for name, w in columns)
    return f"{_show(first, cells):<{cells}}{body}  {clean(row.top_command) or '-'}"


def _process_header(workloads: bool, wide: bool) -> str:
    key = f"{'POD':<24}" if workloads else f"{'PID':>8}"
    jobs = f" {'JOB':>{JOBS_CELLS}}" if wide else ""
    return f"{key} {'GPU':>4} {'VRAM':>9} {'CPU%':>6} {'LONGEST':>10}{jobs}  COMMAND"


def _process_line(work: Work, workloads: bool, wide: bool) -> str:
    key = f"{_show(work.key, 24):<24}" if workloads else f"{work.key:>8}"
    cpu = "N/A" if work.cpu is None or not math.isfinite(work.cpu) else f"{work.cpu:.1f}"
    jobs = f" {_show(work.job or '-', JOBS_CELLS):>{JOBS_CELLS}}" if wide else ""
    return (
        f"{key} {work.gpu_index:>4} {binary(work.vram):>9} {cpu:>6} "
        f"{longest_text(work.elapsed_s):>10}{jobs}  {clean(work.command) or '-'}"
    )


def _banner(page: UsersPage, rows: Sequence[UserRow | Work]) -> Spans:
    data, drill = page.data, page.drill
    who = "namespace" if data.workloads else "user"
    units = "pods" if data.workloads else "processes"
    if not drill:
        sort = _SORT_WORDS.get(page.sort, page.sort)
        system = "system users hidden" if page.hide_system else "system users shown"
        text = (
            f"Users · {len(rows)} {who}s · {len(data.works)} {units} · "
            f"{data.reporting}/{data.hosts} hosts reporting · by {sort} · {system}"
        )
        return [Span(text, HEADER), Span(f"   {USERS_KEYS}", CYAN)]
    users = [r for r in user_rows(data) if r.user == drill[0]]
    if len(drill) == 1:
        said = f"{who} {clean(drill[0])}"
    else:
        host = page.names.get(drill[1], drill[1])
        said = f"{who} {clean(drill[0])} on {clean(host)}"
        users = [r for r in host_rows(data, drill[0], page.order) if r.user == drill[1]]
    facts = ""
    if users:
        row = users[0]
        facts = (
            f" · {row.nodes} node{'s' * (row.nodes != 1)} · {row.gpus} GPUs · "
            f"{row.processes} {units} · VRAM {binary(row.vram)} · POWER* {_watts(row.power)}"
        )
    keys = "Enter its processes on a host · Esc back" if len(drill) == 1 else "Esc back"
    return [Span(f"{said}{facts}", HEADER), Span(f"   {keys}", CYAN)]


def _empty(page: UsersPage) -> str:
    data = page.data
    if page.drill:
        return f"{clean(page.drill[0])}: nothing here in this frame (Esc back)"
    if not data.collected:
        return (
            "no process data in this frame: processes were not collected "
            "(record and the live view collect them by default)"
        )
    if data.works and page.hide_system:
        return "only system users here (f shows them)"
    return "no GPU processes on the hosts in view"


def users_lines(page: UsersPage, cursor: int, width: int, rows: int) -> list[Spans]:
    """The page in at most ``rows`` lines: a banner, the table's header, then the rows
    around ``cursor`` (highlighted), which stays in view."""
    if rows <= 0:
        return []
    listed = page.rows()
    lines: list[Spans] = [_banner(page, listed)]
    if not listed:
        return [*lines, [Span(_empty(page), YELLOW)]][:rows]
    data, level = page.data, len(page.drill)
    wide = width >= JOBS_FROM_WIDTH
    texts: list[str]
    styles: list[Style]
    if level == 2:
        works = [w for w in listed if isinstance(w, Work)]
        header = _process_header(data.workloads, wide)
        texts = [_process_line(w, data.workloads, wide) for w in works]
        styles = [PLAIN] * len(texts)
    else:
        users = [r for r in listed if isinstance(r, UserRow)]
        columns = _columns(level, wide, data.workloads)
        if level == 0:
            first = "NAMESPACE" if data.workloads else "USER"
            cells = _cells([r.user for r in users], len(first), USER_CELLS)
            firsts = [NO_USER if r.user == NO_USER else r.user for r in users]
            header = _header(first, cells, columns, page.sort, "CMD (top-1 by GPU mem)")
        else:
            firsts = [page.names.get(r.user, r.user) for r in users]
            cells = _cells(firsts, 4, HOST_CELLS)
            header = _header("HOST", cells, columns, None, "CMD (top-1 by GPU mem)")
        texts = [_line(f, cells, r, level, columns) for f, r in zip(firsts, users, strict=True)]
        styles = [SYSTEM if r.system and level == 0 else PLAIN for r in users]
    lines.append([Span(header, HEADER)])
    room = max(rows - len(lines), 0)
    selected = min(max(cursor, 0), len(texts) - 1)
    top = (
        max(0, selected - room + 1) if level < 2 else min(max(cursor, 0), max(len(texts) - room, 0))
    )
    for at in range(top, min(top + room, len(texts))):
        if at == selected and level < 2:
            lines.append([Span(f"{cut(texts[at], width):<{width}}", SELECTED)])
        else:
            lines.append([Span(texts[at], styles[at])])
    return lines[:rows]


def _cells(names: Iterable[str], least: int, most: int) -> int:
    """The first column's cells: its longest name, at least ``least`` (its label), at most
    ``most``, and one space after."""
    return min(max([least, *(len(clean(n)) for n in names)]), most) + 1


def _small_number(text: str) -> bool:
    """ASCII digits ``int()`` reads quickly (``"²"`` is a digit to ``str.isdigit``, and a
    5,000-digit one is past ``int()``'s limit)."""
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()
