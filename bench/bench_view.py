"""Cost of the pure view: ``render`` wall time (min / median over N runs, ms) of a 100-host × 8-GPU
simulator frame at 200×60 and 80×24, on the All tab (top and scrolled to the end), on one host's
tab, and with the help screen; plus ``clamp_view``, which the shell may call after each key.
Then the map's cost: the same renders with the timeline strip and the history panel drawn from
the map of an hour of that cluster (720 frames at 5 s; the strip's cells cached as the shell
caches them), the difference per render (target: ≤ 5 ms at 200×60), and what one uncached cut
of the map into a 200-cell strip costs.

Only the visible rows are turned into text, so the figures should hardly depend on where the
window is; what grows with the cluster is the one pass that groups rows by host and the
overview's sums.

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_view.py [runs]``. Prints a table; asserts
nothing (docs/architecture.md §9: figures go to the README, never into tests).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.history import MapView
from allsmi.domain.screen import (
    SCROLL_END,
    ReplayStatus,
    Status,
    ViewState,
    clamp_view,
    render,
)
from allsmi.domain.summary import Cell, Summary

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z


def _time_ms(action: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000.0)
    return min(samples), statistics.median(samples)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    sim = ClusterSimulator(ClusterSpec(nodes=100, gpus_per_node=8))
    frame = sim.frame(T0)
    hosts = sim.hosts
    replay = ReplayStatus(754_000, 3_600_000, 2.0, "paused", True, 12, 1200, "2026-04-18", 3)
    status = Status(replay=replay, message="gap 3h12m", keys_help="SPACE:Play q:Exit")
    cases = [
        ("All tab, top", ViewState()),
        ("All tab, end", ViewState(scroll=SCROLL_END)),
        ("host tab 50", ViewState(tab=50)),
        ("help", ViewState(help=True)),
    ]
    print(f"render of a 100-host x 8-GPU frame, ms min / median over {runs} runs")
    print(f"{'case':<16} {'200x60':>17} {'80x24':>17}")
    for name, view in cases:
        cells = []
        for width, height in ((200, 60), (80, 24)):

            def draw(view: ViewState = view, width: int = width, height: int = height) -> object:
                return render(frame, view, width, height, status, expected_hosts=hosts)

            lo, mid = _time_ms(draw, runs)
            cells.append(f"{lo:7.2f} / {mid:<7.2f}")
        print(f"{name:<16} {cells[0]:>17} {cells[1]:>17}")

    def clamp() -> object:
        return clamp_view(
            frame, ViewState(scroll=SCROLL_END), 200, 60, status, expected_hosts=hosts
        )

    lo, mid = _time_ms(clamp, runs)
    print(f"{'clamp_view end':<16} {lo:7.2f} / {mid:<7.2f}")
    _map_cost(sim, hosts, status, runs)


def _map_cost(sim: ClusterSimulator, hosts: tuple[str, ...], status: Status, runs: int) -> None:
    start = time.perf_counter()
    frames = [sim.frame(T0 + i * 5000) for i in range(720)]
    summary = Summary.of(frames, expected_hosts=hosts, interval_ms=5000)
    built = time.perf_counter() - start
    span = (frames[0].t_ms, frames[-1].t_ms)
    cache: dict[tuple[str | None, int], list[Cell]] = {}

    def strip(host: str | None, n: int) -> list[Cell]:
        key = (host, n)
        if key not in cache:
            cache[key] = summary.cells(span[0], span[1] + 1, n, host)
        return cache[key]

    frame = frames[400]
    view = MapView(summary, frame.t_ms, span=span, strip=strip)
    print(
        f"\nthe map: an hour of the cluster, {len(frames)} frames, {summary.nbytes() / 1e6:.1f} MB"
        f" (built in {built:.1f} s); render ms min / median over {runs} runs"
    )
    print(f"{'case':<16} {'without':>17} {'with map':>17} {'added (median)':>15}")
    for name, tab in (("All tab", 0), ("host tab 50", 50)):
        for width, height in ((200, 60), (80, 24)):
            state = ViewState(tab=tab)

            def plain(state: ViewState = state, width: int = width, height: int = height) -> Any:
                return render(frame, state, width, height, status, expected_hosts=hosts)

            def mapped(state: ViewState = state, width: int = width, height: int = height) -> Any:
                return render(
                    frame, state, width, height, status, expected_hosts=hosts, history=view
                )

            without = _time_ms(plain, runs)
            strip(None, width)  # the shell's cache is warm after the first paint
            with_map = _time_ms(mapped, runs)
            label = f"{name} {width}x{height}"
            print(
                f"{label:<16} {without[0]:7.2f} / {without[1]:<7.2f} "
                f"{with_map[0]:7.2f} / {with_map[1]:<7.2f} {with_map[1] - without[1]:>10.2f}"
            )
    lo, mid = _time_ms(lambda: summary.cells(span[0], span[1] + 1, 200), max(3, runs // 10))
    print(f"{'cut into 200 cells (uncached)':<32} {lo:7.2f} / {mid:<7.2f}")


if __name__ == "__main__":
    main()
