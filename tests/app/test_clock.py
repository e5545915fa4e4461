"""The one fixed-rate loop (``run_every``) and the four periodic tasks that run on it, on a
simulated clock: deadlines at ``start + k × interval``, overruns skip instead of bursting,
``stop`` and ``duration_ms`` end it, cancellation ends the endless ones."""

from __future__ import annotations

from datetime import UTC
from functools import partial

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters.network.endpoints import FrameFeed
from allsmi.app.api import collect_forever
from allsmi.app.clock import RealClock, SimClock, run_every
from allsmi.app.mock import MockCluster, MockPlan
from allsmi.app.tui import LiveModel
from allsmi.app.view import collect_into
from allsmi.domain.model import Frame

T0 = 1_776_513_600_000
START = 5_000  # monotonic ms at the call: ticks are counted from here, not from 0


@attrs.define
class Ticks:
    """A step that records when it ran and what it was told, and costs simulated time."""

    clock: SimClock
    costs: dict[int, int] = attrs.field(factory=dict)  # step number → ms it takes
    at: list[int] = attrs.field(factory=list)  # monotonic ms at each step's start
    missed: list[int] = attrs.field(factory=list)

    async def __call__(self, missed: int) -> None:
        self.at.append(self.clock.monotonic_ms())
        self.missed.append(missed)
        self.clock.advance(self.costs.get(len(self.at) - 1, 0))
        await anyio.lowlevel.checkpoint()


def ticks(interval_ms: int, costs: dict[int, int], duration_ms: int) -> tuple[Ticks, int]:
    clock = SimClock(T0, START)
    step = Ticks(clock, costs)
    skipped = anyio.run(partial(run_every, clock, interval_ms, step, duration_ms=duration_ms))
    return step, skipped


def test_ticks_fall_at_start_plus_k_intervals() -> None:
    step, skipped = ticks(1000, {k: 37 for k in range(10)}, duration_ms=10_000)
    assert step.at == [START + k * 1000 for k in range(10)]
    assert step.missed == [0] * 10 and skipped == 0


def test_a_slow_step_skips_the_missed_ticks_instead_of_bursting() -> None:
    step, skipped = ticks(1000, {3: 2500}, duration_ms=8000)
    assert [t - START for t in step.at] == [0, 1000, 2000, 3000, 6000, 7000]
    assert step.missed == [0, 0, 0, 0, 2, 0]  # told to the step that follows the overrun
    assert skipped == 2


def test_a_step_that_ends_on_a_deadline_has_missed_it() -> None:
    step, _ = ticks(1000, {0: 1000}, duration_ms=3000)
    assert [t - START for t in step.at] == [0, 2000]
    assert step.missed == [0, 1]


def test_the_deadlines_missed_after_the_last_step_still_count() -> None:
    step, skipped = ticks(1000, {2: 2500}, duration_ms=3000)
    assert len(step.at) == 3 and step.missed == [0, 0, 0]
    assert skipped == 2


def test_duration_bounds_the_steps() -> None:
    step, _ = ticks(250, {}, duration_ms=2000)
    assert [t - START for t in step.at] == [k * 250 for k in range(8)]


@given(
    interval_ms=st.integers(1, 5000),
    costs=st.lists(st.integers(0, 20_000), min_size=1, max_size=40),
)
def test_each_tick_is_the_first_deadline_after_the_previous_step_ended(
    interval_ms: int, costs: list[int]
) -> None:
    """The model: tick 0 at start; tick i+1 at the first ``start + k × interval`` strictly
    after tick i's step ended; ``missed`` counts the deadlines jumped over."""
    clock = SimClock(T0, START)
    step = Ticks(clock, dict(enumerate(costs)))

    async def main() -> None:
        async def counted(missed: int) -> None:
            await step(missed)
            if len(step.at) == len(costs):
                scope.cancel()

        with anyio.CancelScope() as scope:
            await run_every(clock, interval_ms, counted)

    anyio.run(main)
    expected_at, expected_missed = [START], [0]
    for at, cost in zip(expected_at, costs[:-1], strict=False):
        following = START + ((at + cost - START) // interval_ms + 1) * interval_ms
        expected_missed.append((following - at) // interval_ms - 1)
        expected_at.append(following)
    assert step.at == expected_at
    assert step.missed == expected_missed


def test_stop_set_by_a_step_ends_the_loop_before_the_next() -> None:
    clock = SimClock(T0, START)
    stop = anyio.Event()
    step = Ticks(clock)

    async def main() -> int:
        async def stopping(missed: int) -> None:
            await step(missed)
            if len(step.at) == 3:
                stop.set()

        return await run_every(clock, 1000, stopping, stop=stop)

    assert anyio.run(main) == 0
    assert len(step.at) == 3


def test_stop_set_before_the_start_runs_no_step() -> None:
    clock = SimClock(T0, START)
    step = Ticks(clock)

    async def main() -> None:
        stop = anyio.Event()
        stop.set()
        await run_every(clock, 1000, step, stop=stop)

    anyio.run(main)
    assert step.at == []


def test_stop_ends_a_wait_at_once_on_the_real_clock() -> None:
    steps: list[int] = []

    async def main() -> None:
        stop = anyio.Event()

        async def step(missed: int) -> None:
            steps.append(missed)

        with anyio.fail_after(30):  # guards against a hang only; the wait is an hour
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(run_every, RealClock(), 3_600_000, step, stop=stop))
                await anyio.wait_all_tasks_blocked()
                stop.set()

    anyio.run(main)
    assert steps == [0]


def test_without_at_start_the_first_tick_is_one_interval_in() -> None:
    clock = SimClock(T0, START)
    step = Ticks(clock)

    async def main() -> None:
        await run_every(clock, 1000, step, duration_ms=4000, at_start=False)

    anyio.run(main)
    assert [t - START for t in step.at] == [1000, 2000, 3000]


# --------------------------------------------------------------------------- the callers


@attrs.define
class CountingSource:
    """A frame source stamped by the caller's clock, costing ``cost_ms`` per collection."""

    clock: SimClock
    cost_ms: int = 0
    started: int = 0
    closed: int = 0
    collected_at: list[int] = attrs.field(factory=list)  # monotonic ms

    async def start(self) -> None:
        self.started += 1

    async def collect(self, t_ms: int) -> Frame:
        self.collected_at.append(self.clock.monotonic_ms())
        self.clock.advance(self.cost_ms)
        await anyio.lowlevel.checkpoint()
        return Frame(t_ms=t_ms)

    def hosts(self) -> tuple[str, ...]:
        return ("h",)

    async def aclose(self) -> None:
        self.closed += 1


def until_collected(source: CountingSource, count: int) -> None:
    if len(source.collected_at) >= count:
        raise _Enough


class _Enough(Exception):
    pass


def test_the_exporter_publishes_from_the_start_on_the_interval() -> None:
    clock = SimClock(T0, START)
    source = CountingSource(clock, cost_ms=120)
    feed = FrameFeed()
    published: list[int] = []
    original = feed.publish

    def publish(frame: Frame) -> None:
        published.append(frame.t_ms)
        original(frame)
        until_collected(source, 4)

    feed.publish = publish  # type: ignore[method-assign]
    with pytest.raises(_Enough):
        anyio.run(collect_forever, source, feed, clock, 3000)
    assert source.collected_at == [START + k * 3000 for k in range(4)]
    assert published == [T0 + k * 3000 for k in range(4)]  # stamped with the wall clock
    assert source.started == 1 and source.closed == 1


def test_the_live_view_shows_a_frame_from_the_start_on_the_interval() -> None:
    clock = SimClock(T0, START)
    source = CountingSource(clock, cost_ms=4500)  # slower than the interval: skips one
    scopes: list[anyio.CancelScope] = []

    class Model(LiveModel):
        def show(self, frame: Frame) -> None:
            super().show(frame)
            if len(source.collected_at) == 3:
                scopes[0].cancel()

    model = Model(label="LIVE h", tz=UTC)

    async def main() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await collect_into(model, source, clock, 2000)

    anyio.run(main)
    assert source.collected_at == [START, START + 6000, START + 12_000]
    assert model.frame is not None and model.frame.t_ms == T0 + 12_000
    assert source.started == 1 and source.closed == 1


def test_the_mock_cluster_advances_one_interval_after_the_start() -> None:
    clock = SimClock(T0, START)
    plan = MockPlan(nodes=1, base_port=20000, gpus=1, seed=0, failure_nodes=0, interval_ms=1000)
    cluster = MockCluster(plan)
    published: list[int] = []

    async def main() -> None:
        with anyio.CancelScope() as scope:

            def publish(t_ms: int) -> None:
                published.append(t_ms)
                if len(published) == 3:
                    scope.cancel()

            cluster.publish = publish  # type: ignore[method-assign]
            await cluster.advance_forever(clock)

    anyio.run(main)
    assert published == [T0 + 1000, T0 + 2000, T0 + 3000]
