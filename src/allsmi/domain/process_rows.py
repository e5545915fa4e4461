"""What ``allsmi record`` does to a frame's process rows before the frame is written
(docs/recording-format.md §3.1, §5.10): ``--redact-args``, and the per-host cut of an
oversize frame.

Rules this module obeys:
- Pure: frames in, frames out; the shell encodes and measures (:func:`allsmi.app.record.fit_frame`).
- ``--redact-args`` keeps of a process's ``command`` the name of its executable only: the
  basename of its first word (``/usr/bin/python3 train.py --token=…`` → ``python3``). Every
  argument and the executable's directory are dropped; ``process_name`` and every other field
  are kept. A command of only blanks becomes ``""``; an absent one stays ``None``. The first
  word is taken up to the first blank: ``command`` is the argument vector joined by blanks
  (local rows) or an exporter's label (remote rows), so an executable whose path holds a blank
  is cut there too — never an argument kept.
- The cut: a frame over the line cap keeps, of each host's process rows, the
  ``n`` using the most GPU memory (unknown memory counts as none; ties keep the
  collected order), in the order they were collected, and says so in one ``errors``
  entry naming no host (it is the recorder's, not a host's, failure). The steps tried are
  :data:`PROCESS_CUTS`: the first whose frame fits is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from allsmi.domain.model import Frame, GpuProcess

# Processes kept per host when a frame is over the line cap, tried in turn: 64 keeps every
# process of an ordinary GPU node, 8 one per GPU of an 8-GPU node, 1 the heaviest. Measured
# at 1,000 hosts × 8 GPUs (bench/bench_cluster.py --processes): every section with the
# simulator's ~8.5 processes a host is ~15.3 MB, under the 16 MiB cap uncut.
PROCESS_CUTS: Final = (64, 8, 1)


def executable_name(command: str | None) -> str | None:
    """``command`` reduced to its executable's name (module rules)."""
    if command is None:
        return None
    words = command.split(maxsplit=1)
    if not words:
        return ""
    first = words[0].rstrip("/")
    return first.rsplit("/", 1)[-1] or words[0]


def redact_args(frame: Frame) -> Frame:
    """``frame`` with every process's ``command`` reduced to :func:`executable_name`."""
    if not frame.processes:
        return frame
    rows = tuple(_redacted(p) for p in frame.processes)
    return attrs.evolve(frame, processes=rows)


def _redacted(process: GpuProcess) -> GpuProcess:
    name = executable_name(process.command)
    return process if name == process.command else attrs.evolve(process, command=name)


def cut_processes(frame: Frame, keep: int, cap_text: str) -> Frame | None:
    """``frame`` with each host's process rows cut to the ``keep`` using the most GPU memory,
    and an ``errors`` entry saying so (``cap_text``: the cap, as people read it); None when no
    host has more than ``keep`` (the cut would change nothing)."""
    processes = frame.processes or ()
    by_host: dict[str, list[int]] = {}
    for i, process in enumerate(processes):
        by_host.setdefault(process.host_id, []).append(i)
    cut_hosts = [rows for rows in by_host.values() if len(rows) > keep]
    if not cut_hosts:
        return None
    dropped: set[int] = set()
    for rows in cut_hosts:
        ranked = sorted(rows, key=lambda i: -(processes[i].used_memory or 0))  # stable
        dropped.update(ranked[keep:])
    kept = tuple(p for i, p in enumerate(processes) if i not in dropped)
    note = (
        f"recorder: frame over {cap_text}, kept each host's {keep} process"
        f"{'' if keep == 1 else 'es'} using the most GPU memory (dropped {len(dropped)} of "
        f"{len(processes)} on {len(cut_hosts)} host{'' if len(cut_hosts) == 1 else 's'})"
    )
    return attrs.evolve(frame, processes=kept, errors=(*frame.errors, note))


def cuts(frame: Frame, cap_text: str, steps: Iterable[int] = PROCESS_CUTS) -> Iterable[Frame]:
    """The cut frames to try, lightest last, skipping steps that would change nothing. Lazy."""
    for keep in steps:
        cut = cut_processes(frame, keep, cap_text)
        if cut is not None:
            yield cut
