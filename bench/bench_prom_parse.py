"""Cost of reading a ``/metrics`` page (docs/architecture.md §3.3: ``prometheus_client``'s
parser, unless a benchmark shows ours must be faster).

The page is one simulator node (8 GPUs, 64 cores, chassis, 2 disks; processes off, as
``all-smi api`` defaults) rendered with ``render_metrics`` — about the size of a real
all-smi page for such a node. Each case handles the same node 100 times; the table gives
ms per 100 pages, min / median over ``rounds`` rounds:

- ``parse_metrics``: grammar + mapping to model rows — what we ship (the fast reader for
  pages in the everyday shape, ``prometheus_client`` for any other);
- ``fast reader (grammar)``: ``allsmi.adapters.prometheus.exposition.plain_samples`` alone — exactly
  ``prometheus_client``'s samples (a property test checks it), or it steps aside;
- ``prometheus_client grammar``: ``text_string_to_metric_families`` alone, samples listed;
- ``all-smi regex``: all-smi's line regex ``^all_smi_([^{]+)\\{([^}]+)\\} ([\\d.]+)$`` and a
  quote-aware label split (a regex here) with unescaping, into (name, labels, value) — the
  grammar only, and lossy (no exponents, negatives, NaN, ``}`` in values);
- ``orjson.loads``: the same node's ``/snapshot`` JSON (``encode_line``) to dicts;
- ``decode_line``: that JSON all the way to model rows (``allsmi.adapters.wire``).

Run: ``.venv/bin/python bench/bench_prom_parse.py [rounds]`` (default 15). Prints a table;
asserts nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable

import orjson
from prometheus_client.parser import text_string_to_metric_families

from allsmi.adapters.prometheus.exposition import plain_samples
from allsmi.adapters.prometheus.parser import parse_metrics
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.adapters.wire import decode_line, encode_line
from common import T0, fmt_min_med

PAGES = 100
SECTIONS = ("gpu", "cpu", "memory", "chassis", "storage")  # all-smi api's default set
ALL_SMI_LINE = re.compile(r"^all_smi_([^{]+)\{([^}]+)\} ([\d.]+)$")
LABEL = re.compile(r'\s*([^=,\s]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
UNESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n", "\\r": "\r"}
UNESCAPE = re.compile(r"\\[\\\"nr]")


def all_smi_regex(text: str) -> list[tuple[str, dict[str, str], float]]:
    out: list[tuple[str, dict[str, str], float]] = []
    for raw in text.splitlines():
        match = ALL_SMI_LINE.match(raw.strip())
        if match is None:
            continue
        name, block, value = match.groups()
        labels = {}
        for key, val in LABEL.findall(block):
            if "\\" in val:
                val = UNESCAPE.sub(lambda m: UNESCAPES[m.group(0)], val)
            labels[key] = val
        try:
            out.append((name, labels, float(value)))
        except ValueError:
            continue
    return out


def client_grammar(text: str) -> list[object]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def time_rounds(job: Callable[[], object], rounds: int) -> list[float]:
    job()  # warm caches and imports
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(PAGES):
            job()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    sim = ClusterSimulator(ClusterSpec(nodes=1))
    sim.advance(30_000)
    frame = sim.frame(T0, SECTIONS)
    page = render_metrics(frame, version="0.1.0")
    line = encode_line(frame)
    rows = parse_metrics(page, "node-01:9090")
    assert rows.skipped_lines == 0 and len(rows.gpus) == 8  # the bench measures a clean page
    samples = sum(1 for s in page.splitlines() if s and not s.startswith("#"))
    print(
        f"page: 1 node x 8 GPUs, {len(page.encode()):,} bytes, {page.count(chr(10))} lines "
        f"({samples} samples); /snapshot JSON: {len(line):,} bytes"
    )
    print(f"all-smi regex keeps {len(all_smi_regex(page))} of {samples} samples")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("parse_metrics", lambda: parse_metrics(page, "node-01:9090")),
        ("fast reader (grammar)", lambda: plain_samples(page)),
        ("prometheus_client grammar", lambda: client_grammar(page)),
        ("all-smi regex (grammar)", lambda: all_smi_regex(page)),
        ("orjson.loads /snapshot", lambda: orjson.loads(line)),
        ("decode_line /snapshot", lambda: decode_line(line, 1)),
    ]
    print(f"\nms per {PAGES} pages, min / median over {rounds} rounds")
    print(f"{'case':<27} {'min / median':>21} {'per page':>10}")
    for name, job in cases:
        times = time_rounds(job, rounds)
        per_page = min(times) / PAGES
        print(f"{name:<27} {fmt_min_med(times)} {per_page:>8.3f}ms")


if __name__ == "__main__":
    main()
