"""The Topology tab: a host's NVLink links as a GPU × link matrix (issue #20; all-smi's
Topology tab, docs/architecture.md §6).

Rules this module obeys:
- Pure: the standard library and attrs only; one frame is judged from itself alone.
- Read from each GPU's ``nvlink_remote_devices`` (``link_index``, ``remote_type``,
  ``bandwidth_mb_s``). A row per GPU (its index), a column per link index from 0 to the
  largest any GPU of the host lists.
- A cell is the link's state and remote device: a link listed ``active`` — or listed
  without a state (readers that list the active links only) — is **up** (green) and names
  what is at its other end: ``GPU``, ``SW`` (an NVSwitch), ``NPU`` (an IBM NPU), ``?``
  (unknown). A link listed ``inactive``, or an index below the largest that a GPU does not
  list, is **down** (red ``down``, ``·`` where cells are narrow).
- After the links, each GPU's count of links up and their summed bandwidth where known; a
  legend line under the matrix.
- A host whose GPUs list no link reads ``no NVLink data``; a host without GPUs ``no GPUs``.
- Cells narrow with the width (5, 4, 3 then 2 cells, the names shortened to one letter),
  and where even that does not fit, the links past the edge are cut and the line says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from allsmi.domain.model import Gpu
from allsmi.domain.screen_rows import GREEN, HEADER, PLAIN, RED, YELLOW, Span, Spans, clean

NO_NVLINK: Final = "no NVLink data"
REMOTE_NAMES: Final = {"gpu": "GPU", "switch": "SW", "ibmnpu": "NPU", "unknown": "?"}
DOWN: Final = "down"
LABEL_CELLS: Final = 7  # "GPU15  "
TAIL_CELLS: Final = 18  # "  18 up 900.0GB/s"
LEGEND: Final = "up (green): the remote device, GPU, SW NVSwitch, NPU, ? unknown · down (red, ·)"


def _index(gpu: Gpu, at: int) -> str:
    index = gpu.detail.get("index", "")
    return index if index else str(at)


def link_count(gpus: Sequence[Gpu]) -> int:
    """The matrix's columns: one past the largest link index any GPU lists (0: no data)."""
    return max((link.link_index + 1 for g in gpus for link in g.nvlink_remote_devices), default=0)


def _cell_text(name: str, cells: int) -> str:
    """A remote name (or ``down``) in ``cells`` cells, a space included."""
    room = cells - 1
    if len(name) > room:
        name = "·" if name == DOWN else name[0]
    return f"{name:<{room}} "


def cell_width(links: int, width: int) -> int:
    """The widest cell (5, 4, 3, 2) that fits every link column beside the GPU label."""
    for cells in (5, 4, 3, 2):
        if LABEL_CELLS + links * cells <= width:
            return cells
    return 2


def _bandwidth(mb_s: int) -> str:
    return f"{mb_s / 1000:.1f}GB/s" if mb_s >= 1000 else f"{mb_s}MB/s"


def topology_lines(host: str, gpus: Sequence[Gpu], width: int) -> list[Spans]:
    """A title line naming ``host``, then the header and one line per GPU; or the title
    and ``no NVLink data`` (``no GPUs``)."""
    title = [Span(f"NVLink · {clean(host)}", HEADER)]
    if not gpus:
        return [title, [Span("  no GPUs", YELLOW)]]
    links = link_count(gpus)
    if links == 0:
        return [title, [Span(f"  {NO_NVLINK}", YELLOW)]]
    cells = cell_width(links, width)
    shown = max(min(links, (width - LABEL_CELLS) // cells), 1)
    tail = LABEL_CELLS + shown * cells + TAIL_CELLS <= width
    if shown < links:
        title.append(Span(f"  (links 0-{shown - 1} of {links} shown: widen the terminal)", RED))
    head = "".join(f"{'L' + str(i) if cells > 3 else str(i):<{cells}}" for i in range(shown))
    header = [Span(f"{'':<{LABEL_CELLS}}{head}" + ("  UP  BANDWIDTH" if tail else ""), HEADER)]
    lines: list[Spans] = [title, header]
    for at, gpu in enumerate(gpus):
        by_index = {link.link_index: link for link in gpu.nvlink_remote_devices}
        spans: list[Span] = [Span(f"{'GPU' + _index(gpu, at):<{LABEL_CELLS}}", PLAIN)]
        for index in range(shown):
            link = by_index.get(index)
            if link is None or link.state == "inactive":
                spans.append(Span(_cell_text(DOWN, cells), RED))
            else:
                name = REMOTE_NAMES.get(link.remote_type.lower(), "?")
                spans.append(Span(_cell_text(name, cells), GREEN))
        if tail:
            up = [link for link in by_index.values() if link.state != "inactive"]
            known = [link.bandwidth_mb_s for link in up if link.bandwidth_mb_s]
            speed = _bandwidth(sum(known)) if known else "-"
            spans.append(Span(f"  {len(up):>2}  {speed}", PLAIN))
        lines.append(_merged(spans))
    lines.append([Span(LEGEND, PLAIN)])
    return lines


def _merged(spans: Sequence[Span]) -> Spans:
    """Neighbouring spans of one style as one (a row of links up is one span to paint)."""
    out: list[Span] = []
    for span in spans:
        if out and out[-1].style == span.style:
            out[-1] = Span(out[-1].text + span.text, span.style)
        else:
            out.append(span)
    return out


def topology_height(gpus: Sequence[Gpu]) -> int:
    """The lines :func:`topology_lines` makes for these GPUs (without building them)."""
    return 3 + len(gpus) if gpus and link_count(gpus) else 2
