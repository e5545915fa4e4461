"""A ``/metrics`` page's caps at the parser: each one holds exactly at its value and breaks
one past it, on every path (the fast reader, the vendor's grammar, line by line), and the
reading stops where a cap is passed instead of reading the rest of the page."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsmi.adapters.network.scrape import (
    HOST_LIMITS,
    MAX_GPUS,
    MAX_PAGE_LINES,
    MAX_PROCESSES,
    MAX_SERIES,
)
from allsmi.adapters.prometheus.parser import (
    NO_LIMITS,
    OverLimit,
    PageLimits,
    _lines,
    _pieces,
    parse_metrics,
)

SMALL = PageLimits(lines=40, series=20, gpus=4, processes=6)


def gpu_lines(count: int, series_each: int = 1) -> str:
    families = ("utilization", "temperature_celsius", "memory_used_bytes")[:series_each]
    return "".join(
        f'all_smi_gpu_{family}{{gpu="H100",gpu_uuid="GPU-{i}",gpu_index="{i}"}} 1\n'
        for i in range(count)
        for family in families
    )


def process_lines(count: int) -> str:
    return "".join(
        f'all_smi_process_memory_used_bytes{{pid="{pid}",device_id="0",name="p"}} 1\n'
        for pid in range(count)
    )


# --------------------------------------------------------------------------- series


@pytest.mark.parametrize(
    ("line", "skipped"),
    [("up 1", 0), ('up{a="b"}\t1', 0), ("up{", SMALL.series)],
    ids=["fast reader", "vendor grammar", "line by line"],
)
def test_series_past_the_cap_raise_on_every_path(line: str, skipped: int) -> None:
    """A tab makes the page not plain (the vendor reads it); an open brace makes the vendor
    refuse it, so each line is tried alone — and each attempt counts as a series."""
    at_cap = f"{line}\n" * SMALL.series
    assert parse_metrics(at_cap, "h", SMALL).skipped_lines == skipped  # at the cap: read
    with pytest.raises(OverLimit, match=f"^over {SMALL.series} series$"):
        parse_metrics(at_cap + f"{line}\n", "h", SMALL)


def test_reading_stops_at_the_first_series_past_the_cap() -> None:
    """What follows the 21st series — a bad line that would send the page to the vendor, then
    more lines than the line cap — is never read: the series cap is what is reported."""
    page = "up 1\n" * (SMALL.series + 1) + "up\t{{\n" + "\n" * (10 * SMALL.lines)
    with pytest.raises(OverLimit, match=f"^over {SMALL.series} series$"):
        parse_metrics(page, "h", SMALL)


def test_comments_do_not_count_as_series_but_count_as_lines() -> None:
    page = "# HELP up x\n# TYPE up gauge\n" * 10 + "up 1\n" * SMALL.series
    parse_metrics(page, "h", SMALL)  # 40 lines, 20 series
    with pytest.raises(OverLimit, match=f"^over {SMALL.lines} lines$"):
        parse_metrics("# a comment\n" + page, "h", SMALL)


# --------------------------------------------------------------------------- lines


@pytest.mark.parametrize("filler", ["\n", "#\n", "# HELP up x\n"], ids=["blank", "#", "HELP"])
def test_a_flood_of_lines_that_are_no_series_raises_at_the_line_cap(filler: str) -> None:
    parse_metrics(filler * SMALL.lines, "h", SMALL)
    with pytest.raises(OverLimit, match=f"^over {SMALL.lines} lines$"):
        parse_metrics(filler * (SMALL.lines + 1), "h", SMALL)


def test_a_million_blank_lines_raise_at_the_line_cap_of_the_host_limits() -> None:
    with pytest.raises(OverLimit, match=f"^over {MAX_PAGE_LINES} lines$"):
        parse_metrics("\n" * 1_000_000, "h", HOST_LIMITS)


@given(text=st.text(alphabet="ab\n", max_size=60), most=st.integers(0, 12), piece=st.integers(1, 9))
def test_lines_are_split_in_pieces_exactly_as_split_would(text: str, most: int, piece: int) -> None:
    """Lines are ``text.split("\\n")``; a final empty one (after the last newline) is no line."""
    parts = text.split("\n")
    count = len(parts) - (parts[-1] == "")
    if count <= most:
        assert list(_pieces(text, most, piece)) == parts
        assert list(_lines(text, most)) == parts
    else:
        with pytest.raises(OverLimit, match=f"^over {most} lines$"):
            list(_pieces(text, most, piece))
        with pytest.raises(OverLimit):
            list(_lines(text, most))


# --------------------------------------------------------------------------- GPUs, processes


def test_gpus_are_counted_by_device_not_by_series() -> None:
    rows = parse_metrics(gpu_lines(SMALL.gpus, series_each=3), "h", SMALL)
    assert len(rows.gpus) == SMALL.gpus
    with pytest.raises(OverLimit, match=f"^over {SMALL.gpus} GPUs$"):
        parse_metrics(gpu_lines(SMALL.gpus + 1), "h", SMALL)


def test_the_gpu_cap_stops_the_reading_at_the_257th_gpu() -> None:
    """20,000 GPUs on one page under a 300-line cap: had the reading gone on past the 257th
    GPU, the 301st line would have raised instead."""
    limits = PageLimits(lines=300, series=MAX_SERIES, gpus=MAX_GPUS, processes=MAX_PROCESSES)
    with pytest.raises(OverLimit, match=f"^over {MAX_GPUS} GPUs$"):
        parse_metrics(gpu_lines(20_000), "h", limits)


def test_processes_past_the_cap_raise_unless_processes_are_not_recorded() -> None:
    page = gpu_lines(1) + process_lines(SMALL.processes + 1)
    with pytest.raises(OverLimit, match=f"^over {SMALL.processes} processes$"):
        parse_metrics(page, "h", SMALL)
    rows = parse_metrics(page, "h", SMALL, processes=False)
    assert len(rows.gpus) == 1
    assert rows.processes == ()
    assert len(parse_metrics(process_lines(SMALL.processes), "h", SMALL).processes) == 6


def test_core_readings_repeated_across_cpus_count_against_the_series_cap() -> None:
    """Two CPUs of one model share its cores (all-smi's page names no CPU index on them):
    4 CPUs x 6 cores hand out 24 readings from 10 series — more than the 20 a page may
    carry, which a hostile page of 100,000 CPUs x 100,000 cores would turn into 10^10."""
    cpus = "".join(f'all_smi_cpu_utilization{{instance="h",index="{i}"}} 1\n' for i in range(4))
    cores = "".join(
        f'all_smi_cpu_core_utilization{{instance="h",core_id="{c}"}} 1\n' for c in range(6)
    )
    rows = parse_metrics(cpus + cores, "h")
    assert [len(cpu.per_core_utilization) for cpu in rows.cpus] == [6, 6, 6, 6]
    with pytest.raises(OverLimit, match=f"^over {SMALL.series} series$"):
        parse_metrics(cpus + cores, "h", SMALL)


def test_no_limits_reads_everything() -> None:
    rows = parse_metrics(gpu_lines(300) + process_lines(10), "h", NO_LIMITS)
    assert (len(rows.gpus), len(rows.processes)) == (300, 10)
