"""A GPU's health signals through ``/metrics`` and back (docs/recording-format.md §5.3.3): any
``GpuHealth`` the model holds, written by the exporter and read by the remote parser, is the
same ``GpuHealth`` — ``[]`` clock event reasons and ``{}`` XID counts stay apart from
``None``, XID counts keep every code — and a GPU whose health has no reading has none.

Within the stated bounds: violation time and the last XID's time go through float seconds,
exact below 2**51 µs and ms; clock event reasons are listed in canonical order (the known
ones in bit order, then any other name once, as ``clock_event_names`` gives them); label
text holds no control characters (the page drops them); floats are under 2**64 in size, as
for every float family of the page.
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters.prometheus.parser import parse_metrics
from allsmi.adapters.prometheus.writer import render_metrics
from allsmi.domain.model import (
    CLOCK_EVENT_BITS,
    INT_MAX,
    INT_MIN,
    Frame,
    Gpu,
    GpuHealth,
    clock_event_names,
)

TARGET = "node-a:9090"
KNOWN = frozenset(name for _, name in CLOCK_EVENT_BITS)
EXACT = 2**51 - 1  # µs and ms read back exactly below this

INTS = st.none() | st.integers(INT_MIN, INT_MAX)
COUNTS = st.none() | st.integers(0, INT_MAX)
SCALED = st.none() | st.integers(-EXACT, EXACT)
# The page writes floats without an exponent, and the parser takes an integer-looking value
# of 2**64 or more for no reading (tests/adapters/test_prometheus_parse.py): every float
# family's bound, not the health families' own.
FLOATS = st.none() | st.floats(-(2.0**64), 2.0**64, exclude_min=True, exclude_max=True)
FLAGS = st.none() | st.booleans()
OTHER_REASONS = st.lists(
    st.text(alphabet='abz_ "\\é-', min_size=1, max_size=6).filter(lambda n: n not in KNOWN),
    unique=True,
    max_size=2,
)


@st.composite
def clock_events(draw: st.DrawFn) -> tuple[str, ...] | None:
    if draw(st.booleans()):
        return None
    known = clock_event_names(draw(st.integers(0, 0x1FF)))
    return (*known, *draw(OTHER_REASONS))


XID_COUNTS = st.none() | st.dictionaries(
    st.integers(0, 999).map(str), st.integers(0, INT_MAX), max_size=5
)

HEALTH = st.builds(
    GpuHealth,
    clock_events=clock_events(),
    sm_clock_mhz=INTS,
    memory_clock_mhz=INTS,
    power_violation_us=SCALED,
    thermal_violation_us=SCALED,
    ecc_corrected=COUNTS,
    ecc_uncorrected=COUNTS,
    remapped_correctable=COUNTS,
    remapped_uncorrectable=COUNTS,
    remap_pending=FLAGS,
    remap_failure=FLAGS,
    retired_pages=COUNTS,
    pcie_tx_bytes_s=FLOATS,
    pcie_rx_bytes_s=FLOATS,
    pcie_replays=COUNTS,
    nvlink_tx_bytes_s=FLOATS,
    nvlink_rx_bytes_s=FLOATS,
    nvlink_errors=COUNTS,
    encoder_utilization=FLOATS,
    decoder_utilization=FLOATS,
    energy_j=FLOATS,
    xid_counts=XID_COUNTS,
    last_xid=INTS,
    last_xid_ms=SCALED,
)


def gpu(n: int, health: GpuHealth | None) -> Gpu:
    return Gpu(
        uuid=f"GPU-{n}",
        name="H100",
        device_type="GPU",
        host_id=TARGET,
        hostname="node-a",
        instance="node-a",
        utilization=1.0,  # so the GPU is on the page whatever its health
        detail={"index": str(n)},
        health=health,
    )


def read(health: GpuHealth | None) -> GpuHealth | None:
    """What a reader can know of ``health``: nothing, when it holds no reading."""
    if health is None or all(v is None for v in attrs.astuple(health, recurse=False)):
        return None
    return health


@given(st.lists(st.none() | HEALTH, min_size=1, max_size=3))
def test_health_written_to_the_page_reads_back_the_same(healths: list[GpuHealth | None]) -> None:
    frame = Frame(t_ms=0, gpus=tuple(gpu(n, h) for n, h in enumerate(healths)))
    rows = parse_metrics(render_metrics(frame, version="1"), TARGET)
    assert rows.skipped_lines == 0
    assert [g.health for g in rows.gpus] == [read(h) for h in healths]


@given(HEALTH)
def test_the_page_tells_none_active_and_none_seen_from_not_read(health: GpuHealth) -> None:
    for events, counts in (((), {}), (None, None), ((), None), (None, {})):
        given_health = attrs.evolve(health, clock_events=events, xid_counts=counts)
        (back,) = parse_metrics(
            render_metrics(Frame(t_ms=0, gpus=(gpu(0, given_health),)), version="1"), TARGET
        ).gpus
        expected = read(given_health)
        assert back.health == expected
        if expected is not None:
            assert back.health is not None
            assert back.health.clock_events == events
            assert back.health.xid_counts == counts
