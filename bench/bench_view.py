"""Cost of the pure view: ``render`` wall time (min / median over N runs, ms) of a 100-host × 8-GPU
simulator frame at 200×60 and 80×24, on the All tab (top and scrolled to the end), on one host's
tab, and with the help screen; plus ``clamp_view``, which the shell may call after each key.

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

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain.screen import (
    SCROLL_END,
    ReplayStatus,
    Status,
    ViewState,
    clamp_view,
    render,
)

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


if __name__ == "__main__":
    main()
