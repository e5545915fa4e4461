"""The view model as data (docs/architecture.md §6, the status line and the screen; §8, rule 11)."""

from __future__ import annotations

import itertools
import re
import unicodedata
import zoneinfo
from collections.abc import Sequence
from datetime import timedelta, timezone

import attrs
import pytest

from allsmi.adapters.simulation.simulator import ClusterSimulator, ClusterSpec
from allsmi.domain import replay as r
from allsmi.domain.model import SECTIONS, Cpu, Frame, Gpu, GpuProcess, Memory
from allsmi.domain.screen import (
    CHIP_LIVE,
    CHIP_REPLAY,
    ReplayStatus,
    Status,
    StyledLine,
    ViewState,
    clamp_view,
    format_local,
    render,
    replay_status,
    speed_text,
    status_line,
    tab_labels,
    view_key,
)
from allsmi.domain.screen_rows import GREEN, RED, YELLOW, gauge

T0 = 1_776_513_600_000  # 2026-04-18T12:00:00Z
CEST = zoneinfo.ZoneInfo("Europe/Berlin")
LIVE = Status(live_label="LIVE local", keys_help="h:Help q:Exit")
SIZES = [(80, 24), (200, 60), (40, 10), (20, 3), (20, 2), (7, 1), (0, 4)]


def text(line: StyledLine) -> str:
    return "".join(span.text for span in line)


def texts(lines: Sequence[StyledLine]) -> list[str]:
    return [text(line) for line in lines]


def cells(line: StyledLine) -> int:
    """Terminal cells the painter will use: wide characters would count twice."""
    wide = sum(unicodedata.east_asian_width(c) in "WF" for span in line for c in span.text)
    return len(text(line)) + wide


@pytest.fixture(scope="module")
def cluster() -> ClusterSimulator:
    return ClusterSimulator(ClusterSpec(nodes=100))


@pytest.fixture(scope="module")
def big(cluster: ClusterSimulator) -> Frame:
    return cluster.frame(T0)


def one_host() -> Frame:
    return ClusterSimulator(ClusterSpec(nodes=1, gpus_per_node=2)).frame(T0, SECTIONS)


def gpu(host: str = "a", name: str = "NVIDIA H200", **readings: float | None) -> Gpu:
    return Gpu(
        uuid=f"GPU-{host}", name=name, device_type="GPU", host_id=host, hostname=host,
        instance=host, **readings,  # type: ignore[arg-type]
    )  # fmt: skip


def paused_replay() -> ReplayStatus:
    return ReplayStatus(
        position_ms=754_000,
        duration_ms=3_600_000,
        speed=2.0,
        mode="paused",
        loop=True,
        frame_no=12,
        frame_total=1200,
        recorded_at="2026-04-18 14:32:05 CEST",
        skipped=3,
    )


def body(lines: Sequence[StyledLine]) -> list[str]:
    return [t.rstrip() for t in texts(lines)]


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("case", ["big", "one", "none", "errors", "help"])
def test_render_is_exactly_height_lines_of_width_cells(
    big: Frame, case: str, width: int, height: int
) -> None:
    frame = {"big": big, "one": one_host(), "none": None, "errors": Frame(T0, errors=("x",))}
    status = Status(replay=paused_replay(), message="gap 3h12m", keys_help="SPACE:Play")
    lines = render(
        frame.get(case, big), ViewState(help=case == "help"), width, height, status,
        expected_hosts=("node-01", "node-02"),
    )  # fmt: skip
    assert len(lines) == height
    assert all(cells(line) == width for line in lines)


def test_every_scroll_and_tab_keeps_the_size(big: Frame) -> None:
    for tab in (0, 1, 57, 100, 101, 5000):
        for scroll in (0, 1, 13, 10_000):
            lines = render(big, ViewState(tab=tab, scroll=scroll), 80, 24, LIVE)
            assert len(lines) == 24
            assert {cells(line) for line in lines} == {80}


def test_wide_and_control_characters_in_names_cannot_widen_a_line() -> None:
    frame = Frame(T0, gpus=(gpu("主机\n1", name="GPU\x1b[31m全角 e\u0301"),))
    lines = render(frame, ViewState(), 60, 10, LIVE)
    assert {cells(line) for line in lines} == {60}
    assert any("??" in t for t in texts(lines))


def test_height_below_three_keeps_the_status_line_first() -> None:
    status = Status(replay=paused_replay(), keys_help="KEYS")
    assert texts(render(None, ViewState(), 30, 1, status))[0].startswith("REPLAY | ")
    two = texts(render(None, ViewState(), 30, 2, status))
    assert two[0].startswith("REPLAY | ") and two[1].startswith("KEYS")
    assert render(None, ViewState(), 30, 0, status) == ()


# --------------------------------------------------------------------------- status line


def test_status_line_of_a_paused_replay_reads_as_in_design() -> None:
    line = status_line(Status(replay=paused_replay()), 200)
    assert text(line).rstrip() == (
        "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 2026-04-18 14:32:05 CEST | loop"
        " | frame 12/1200 | skipped 3"
    )
    assert line[0].text == "REPLAY" and line[0].style == CHIP_REPLAY


def test_status_line_shows_the_frames_label_its_offset_rounded_half_up() -> None:
    for offset, shown in ((24_003, "00:00:24"), (24_499, "00:00:24"), (24_500, "00:00:25")):
        line = status_line(Status(replay=attrs.evolve(paused_replay(), position_ms=offset)), 200)
        assert text(line).startswith(f"REPLAY | {shown} / 01:00:00 |")
    at_end = attrs.evolve(paused_replay(), position_ms=3_599_700, duration_ms=3_599_700)
    assert "| 01:00:00 / 01:00:00 |" in text(status_line(Status(replay=at_end), 200))


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (94, "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 2026-04-18 14:32:05 CEST | loop"
             " | frame 12/1200"),
        (90, "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 14:32:05 CEST | loop"
             " | frame 12/1200"),
        (80, "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 14:32:05 CEST | loop | 12/1200"),
        (70, "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 14:32:05 CEST | loop"),
        (60, "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | loop"),
        (40, "REPLAY | 00:12:34 / 01:00:00 | 2.0x | pa"),
    ],
)  # fmt: skip
def test_a_narrow_status_line_drops_parts_in_the_stated_order(width: int, expected: str) -> None:
    """80 columns keep REPLAY, position / duration, speed and mode; the recorded date goes
    first, then the word "frame", then "skipped", then n/N, then the recorded time."""
    replay = attrs.evolve(paused_replay(), skipped=0)
    assert text(status_line(Status(replay=replay), width)).rstrip() == expected


def test_eighty_columns_keep_position_speed_mode_and_the_frame_count() -> None:
    line = text(status_line(Status(replay=paused_replay()), 80)).rstrip()
    assert line == "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 14:32:05 CEST | loop | 12/1200"


def test_status_line_leaves_out_loop_when_off_and_skipped_when_zero() -> None:
    line = status_line(Status(replay=attrs.evolve(paused_replay(), loop=False, skipped=0)), 200)
    assert text(line).rstrip() == (
        "REPLAY | 00:12:34 / 01:00:00 | 2.0x | paused | 2026-04-18 14:32:05 CEST | frame 12/1200"
    )


def test_status_line_while_typing_a_timecode() -> None:
    line = status_line(Status(replay=attrs.evolve(paused_replay(), pending="14:3")), 200)
    assert text(line).rstrip() == (
        "REPLAY | go to: 14:3_  (HH:MM:SS, MM:SS, SS, @HH:MM[:SS], @2026-04-18T14:32:00Z;"
        " Enter seek, Esc cancel)"
    )


def test_live_edge_of_a_followed_recording_shows_the_live_chip() -> None:
    line = status_line(Status(replay=attrs.evolve(paused_replay(), mode="live")), 200)
    assert line[0].text == "LIVE" and line[0].style == CHIP_LIVE
    assert "| live |" in text(line)


def test_live_view_chip_is_the_live_label_in_black_on_green() -> None:
    line = status_line(Status(live_label="LIVE 100 hosts"), 40)
    assert line[0].text == "LIVE 100 hosts" and line[0].style == CHIP_LIVE
    assert "REPLAY" not in text(line)


def test_speeds_print_on_the_ladder() -> None:
    assert [speed_text(s) for s in r.SPEEDS] == ["0.25x", "0.5x", "1.0x", "2.0x", "4.0x", "8.0x"]


def test_status_line_is_cut_to_the_width() -> None:
    assert text(status_line(Status(replay=paused_replay()), 12)) == "REPLAY | 00:"


def test_message_sits_above_the_status_line_and_key_help_is_last() -> None:
    status = Status(replay=paused_replay(), message="gap 3h12m", keys_help="SPACE:Play q:Exit")
    lines = render(None, ViewState(), 100, 12, status)
    assert texts(lines[-3:])[0].rstrip() == "gap 3h12m"
    assert lines[-3][0].style == YELLOW
    assert text(lines[-2]).startswith("REPLAY | 00:12:34")
    assert text(lines[-1]).rstrip() == "SPACE:Play q:Exit"


def test_key_help_is_truncated_to_the_width() -> None:
    lines = render(None, ViewState(), 10, 5, Status(keys_help="h:Help q:Exit <-/->:Tabs"))
    assert text(lines[-1]) == "h:Help q:E"


def test_replay_status_is_read_from_the_replay_core() -> None:
    state, _ = r.initial(100, T0, 99_000, start="00:05", speed=4.0, loop=True, tz=CEST)
    state, _ = r.step(state, r.FrameShown(5, T0 + 5_003, T0 + 6_000, T0 + 5_003, stepped=True))
    status = replay_status(state, CEST, skipped=2)
    assert status.position_ms == 5_003  # the shown frame's offset: its label is 00:00:05
    assert (status.frame_no, status.frame_total, status.mode) == (6, 100, "paused")
    assert status.speed == 4.0
    assert status.recorded_at == "2026-04-18 14:00:05 CEST"
    assert (status.loop, status.skipped, status.pending) == (True, 2, None)


# --------------------------------------------------------------------------- local time


def test_format_local_names_the_zone() -> None:
    assert format_local(T0 + 1_925_000, CEST) == "2026-04-18 14:32:05 CEST"


def test_format_local_falls_back_to_a_utc_offset_for_unnamed_zones() -> None:
    assert format_local(T0 + 1_925_999, zoneinfo.ZoneInfo("Etc/GMT-2")) == (
        "2026-04-18 14:32:05 UTC+02:00"
    )
    minus = timezone(timedelta(hours=-3, minutes=-30))
    assert format_local(T0, minus) == "2026-04-18 08:30:00 UTC-03:30"


def test_format_local_never_raises_out_of_range() -> None:
    assert format_local(10**18, CEST) == f"t={10**18} ms"


# --------------------------------------------------------------------------- readings


def test_missing_readings_are_na_never_zero() -> None:
    frame = Frame(T0, gpus=(gpu(total_memory=141 * 10**9),), cpus=(Cpu("a", "a", "a"),))
    shown = body(render(frame, ViewState(), 120, 20, LIVE))
    gpu_line = next(t for t in shown if t.startswith("GPU"))
    assert "Util:    N/A" in gpu_line and "Temp:   N/A" in gpu_line
    assert "VRAM:  N/A/131.3 GiB" in gpu_line and "Pwr:        N/A" in gpu_line
    assert "0.0%" not in "\n".join(shown) and " 0°C" not in "\n".join(shown)
    assert "CPU  [" in "\n".join(shown) and "]    N/A" in "\n".join(shown)


def test_gpu_line_shows_power_with_its_limit() -> None:
    frame = Frame(T0, gpus=(gpu(power_consumption=450.4, power_limit=700.0, utilization=45.25),))
    line = body(render(frame, ViewState(), 200, 10, LIVE))[1]
    assert "Pwr:  450/700 W" in line and "Util:  45.2%" in line


MIB = 1024**2
H100_80GB = 81559 * MIB  # what NVML reports for an H100 80GB: 79.6 GiB (85.5 decimal GB)
H200_141GB = 143771 * MIB  # an H200 141GB: 140.4 GiB


def outside_names(line: StyledLine) -> str:
    """The line's text without the span that names a device (the one before `` @ ``):
    a product name such as ``H200 141GB HBM3`` keeps the board's own words."""
    spans = [span.text for span in line]
    at = [i for i, t in enumerate(spans) if t == " @ "]
    return "".join(t for i, t in enumerate(spans) if not (at and i == at[0] - 1))


@pytest.mark.parametrize("width", [80, 120, 200])
def test_no_decimal_byte_unit_appears_anywhere_on_screen(width: int) -> None:
    cluster = ClusterSimulator(ClusterSpec(nodes=8, gpus_per_node=8))
    frame = cluster.frame(T0, SECTIONS)
    lines = render(frame, ViewState(), width, 1000, LIVE, expected_hosts=cluster.hosts)
    shown = "\n".join(body(lines))
    # every kind of row is on screen: overview, GPUs, host memory, disks, processes
    assert "VRAM " in shown and "RAM " in shown and "GPU 7 " in shown
    assert "MEM Host memory" in shown and "    Disk /" in shown and "COMMAND" in shown
    assert "GiB" in shown and "TiB" in shown
    assert width < 120 or "H200 141GB HBM3" in shown  # names stay as the board names them
    decimal = [t for t in map(outside_names, lines) if re.search(r"(?<!i)[GT]B", t)]
    assert decimal == []


def test_a_byte_count_shows_its_binary_figure_on_every_row() -> None:
    hosts = ("a", "b")
    gpus = tuple(gpu(h, total_memory=H100_80GB, used_memory=H100_80GB) for h in hosts)
    procs = (GpuProcess("a", "a", 0, "GPU-a", pid=7, used_memory=H100_80GB),)
    frame = Frame(T0, source="remote", gpus=gpus, processes=procs)
    wide = body(render(frame, ViewState(), 200, 20, LIVE, expected_hosts=hosts))
    assert "VRAM 159.3/159.3GiB" in wide[1]  # the overview: 2 × 79.6 GiB
    gpu_line = next(t for t in wide if t.startswith("GPU"))
    assert "VRAM:  79.6/79.6 GiB" in gpu_line
    assert wide[wide.index(gpu_line) + 1].endswith("]  79.6/80GiB")  # the Mem gauge
    process = wide[next(i for i, t in enumerate(wide) if "COMMAND" in t) + 1]
    assert process.split()[:2] == ["a", "7"] and " 79.6GiB " in process
    compact = body(render(frame, ViewState(), 80, 20, LIVE, expected_hosts=hosts))
    assert "VRAM: 79.6/80GiB" in next(t for t in compact if t.startswith("GPU"))
    assert "85.5" not in "\n".join(wide + compact)  # the decimal figure is nowhere


@pytest.mark.parametrize("width", [80, 200])
def test_vram_keeps_its_field_width_on_the_largest_boards(width: int) -> None:
    """The total gives up its decimal first, then the used, so the readings after VRAM keep
    their place (an H200 at 126.1 of 140.4 GiB)."""
    used = round(126.1 * 1024**3)
    frames = [
        Frame(T0, gpus=(gpu(total_memory=t, used_memory=u, power_consumption=450.0),))
        for t, u in ((H100_80GB, 0), (H100_80GB, H100_80GB), (H200_141GB, used))
    ]
    gpu_lines = [body(render(f, ViewState(), width, 10, LIVE))[1] for f in frames]
    assert len({line.index("Temp:") for line in gpu_lines}) == 1
    assert all(line.endswith("W") for line in gpu_lines)
    assert ("126.1/140 GiB" if width == 200 else "126/140GiB") in gpu_lines[2]


def test_gauges_are_coloured_by_level() -> None:
    def colour(value: float) -> object:
        return gauge("Util", value, "", 30)[1].style

    assert (colour(59.9), colour(60), colour(84.9), colour(85), colour(100)) == (
        GREEN, YELLOW, YELLOW, RED, RED,
    )  # fmt: skip
    empty = gauge("Util", None, "N/A", 30)
    assert empty[1].text == "" and len(text(tuple(empty))) == 30


# --------------------------------------------------------------------------- no data, errors


def test_a_host_missing_from_the_frame_is_no_data_with_no_stale_numbers() -> None:
    hosts = ("a", "b")
    before = Frame(T0, gpus=(gpu("a", utilization=11.0), gpu("b", utilization=77.7)))
    after = Frame(T0 + 1000, gpus=(gpu("a", utilization=12.0),))
    render(before, ViewState(), 120, 30, LIVE, expected_hosts=hosts)
    shown = body(render(after, ViewState(), 120, 30, LIVE, expected_hosts=hosts))
    assert "b: no data" in shown
    about_b = [t for t in shown[4:-2] if "b" in t.replace(":", " ").split()]
    assert about_b == ["b: no data"]
    assert "77.7" not in "\n".join(shown)


def test_no_data_line_is_red(big: Frame) -> None:
    lines = render(big, ViewState(), 120, 30, LIVE, expected_hosts=("gone",))
    line = next(line for line in lines if text(line).startswith("gone: no data"))
    assert line[0].style == RED


def test_errors_are_shown_at_the_top_of_the_body_in_red() -> None:
    errors = tuple(f"h{i}: connection refused" for i in range(7))
    frame = Frame(T0, gpus=(gpu(),), errors=errors)
    lines = render(frame, ViewState(), 100, 30, LIVE)
    shown = body(lines)
    assert shown[1:7] == [*errors[:5], "… 2 more"]
    assert all(line[0].style == RED for line in lines[1:7])


def test_errors_only_frame_shows_errors_and_no_data_for_each_host() -> None:
    frame = Frame(T0, source="remote", errors=("a: timed out", "b: HTTP 503"))
    shown = body(render(frame, ViewState(), 80, 24, LIVE, expected_hosts=("a", "b")))
    assert shown[4:8] == ["a: timed out", "b: HTTP 503", "a: no data", "b: no data"]
    assert shown[1].startswith("Nodes 0/2  GPUs 0  GPU Util N/A  VRAM N/A  RAM N/A")


def test_a_section_not_collected_is_absent() -> None:
    frame = attrs.evolve(one_host(), cpus=None, processes=None)
    shown = body(render(frame, ViewState(), 120, 40, LIVE))
    assert not any(t.startswith("CPU") for t in shown)
    assert not any("COMMAND" in t for t in shown)
    assert any(t.startswith("GPU") for t in shown) and any(t.startswith("MEM") for t in shown)


def test_no_frame_yet_is_no_data() -> None:
    assert "no data" in body(render(None, ViewState(), 40, 10, LIVE))


# --------------------------------------------------------------------------- the screen


def test_single_host_has_no_overview_and_no_tab_row() -> None:
    shown = body(render(one_host(), ViewState(), 120, 40, LIVE))
    assert shown[0] == "allsmi  1 host  2 GPUs"
    assert shown[1].startswith("GPU 0  H200 141GB HBM3 @ node-01")  # the index, as in processes
    assert not any(t.startswith(("Tabs:", "Nodes")) for t in shown)


def test_single_host_shows_cpu_memory_disk_and_processes_by_gpu_memory() -> None:
    frame = one_host()
    shown = body(render(frame, ViewState(), 120, 40, LIVE))
    assert any(t.startswith("CPU ") and "EPYC 9354" in t for t in shown)
    assert any(t.startswith("    Core  ") for t in shown)
    assert any(t.startswith("MEM Host memory @ node-01") for t in shown)
    assert any(t.startswith("    Disk /") for t in shown)
    header = next(i for i, t in enumerate(shown) if "COMMAND" in t)
    assert shown[header].split() == ["PID", "USER", "GPU", "VRAM", "CPU%", "MEM%", "COMMAND"]
    assert frame.processes is not None
    biggest = max(frame.processes, key=lambda p: p.used_memory or 0)
    assert shown[header + 1].split()[0] == str(biggest.pid)


def test_processes_without_a_memory_reading_sort_last() -> None:
    procs = (
        GpuProcess("a", "a", 0, "u", pid=1),
        GpuProcess("a", "a", 0, "u", pid=2, used_memory=5),
        GpuProcess("a", "a", 0, "u", pid=3, used_memory=9),
    )
    shown = body(render(Frame(T0, gpus=(gpu(),), processes=procs), ViewState(), 100, 20, LIVE))
    header = next(i for i, t in enumerate(shown) if "COMMAND" in t)
    assert [t.split()[0] for t in shown[header + 1 : header + 4]] == ["3", "2", "1"]


def test_hundred_hosts_have_101_tabs_windowed_around_the_selected_one(
    cluster: ClusterSimulator, big: Frame
) -> None:
    labels = tab_labels(big, cluster.hosts)
    assert len(labels) == 101 and labels[0] == "All" and labels[-1] == "node-100"
    row = text(render(big, ViewState(tab=50), 200, 60, LIVE, expected_hosts=cluster.hosts)[3])
    assert row.startswith("Tabs: <") and row.rstrip().endswith(">")
    assert " node-50 " in row and " All " not in row and "node-100" not in row
    first = text(render(big, ViewState(), 200, 60, LIVE, expected_hosts=cluster.hosts)[3])
    assert " All " in first and first.rstrip().endswith(">")


def test_selected_tab_is_highlighted(cluster: ClusterSimulator, big: Frame) -> None:
    row = render(big, ViewState(tab=3), 200, 60, LIVE, expected_hosts=cluster.hosts)[3]
    selected = [span for span in row if span.style.bg is not None]
    assert [span.text for span in selected] == [" node-03 "]


def test_overview_counts_nodes_and_gpus(cluster: ClusterSimulator, big: Frame) -> None:
    shown = body(render(big, ViewState(), 200, 60, LIVE, expected_hosts=cluster.hosts))
    assert shown[0] == "allsmi  100 hosts  800 GPUs"
    assert shown[1].startswith("Nodes 100/100  GPUs 800  GPU Util ")
    assert "VRAM " in shown[1] and "RAM " in shown[1]
    assert shown[2].startswith("Temp ") and "±" in shown[2] and "Power " in shown[2]


def test_overview_counts_expected_hosts_that_did_not_answer(cluster: ClusterSimulator) -> None:
    frame = ClusterSimulator(ClusterSpec(nodes=3)).frame(T0)
    shown = body(render(frame, ViewState(), 200, 60, LIVE, expected_hosts=cluster.hosts))
    assert shown[1].startswith("Nodes 3/100  GPUs 24 ")


def test_scrolling_to_the_end_shows_the_last_hosts_rows(
    cluster: ClusterSimulator, big: Frame
) -> None:
    view = view_key(ViewState(), "end", 101, 50)
    shown = body(render(big, view, 200, 60, LIVE, expected_hosts=cluster.hosts))
    assert any(t.startswith("MEM Host memory @ node-100") for t in shown)
    assert shown[-3].startswith("    Mem  [")  # the very last body row
    assert not any("@ node-01 " in t for t in shown)


def test_scroll_is_clamped_so_up_after_end_moves_one_line(
    cluster: ClusterSimulator, big: Frame
) -> None:
    args = (big, view_key(ViewState(), "end", 101, 50), 200, 60, LIVE)
    end = clamp_view(*args, expected_hosts=cluster.hosts)
    at_end = render(*args, expected_hosts=cluster.hosts)
    assert render(big, end, 200, 60, LIVE, expected_hosts=cluster.hosts) == at_end
    up = view_key(end, "up", 101, 50)
    assert up.scroll == end.scroll - 1
    shown = body(render(big, up, 200, 60, LIVE, expected_hosts=cluster.hosts))
    assert shown[5:-2] == body(at_end)[4:-3]  # the body (rows 4..-2) moved down one line


def test_host_tab_shows_only_that_hosts_rows(cluster: ClusterSimulator, big: Frame) -> None:
    shown = body(render(big, ViewState(tab=5), 200, 60, LIVE, expected_hosts=cluster.hosts))
    gpu_lines = [t for t in shown if t.startswith("GPU ")]
    assert len(gpu_lines) == 8 and all("@ node-05 " in t for t in gpu_lines)
    assert any(t.startswith("CPU AMD EPYC 9354 32-Core Processor @ node-05") for t in shown)
    assert not any("node-04 " in t or "node-06 " in t for t in shown[4:])


def test_host_tab_of_an_expected_host_without_rows_is_no_data(big: Frame) -> None:
    hosts = ("ghost", "node-01")
    shown = body(render(big, ViewState(tab=1), 120, 30, LIVE, expected_hosts=hosts))
    assert shown[4] == "ghost: no data"
    assert not any(t.startswith(("GPU", "CPU", "MEM")) for t in shown)


def scraped(*hosts: tuple[str, str]) -> Frame:
    """Each ``(host_id, hostname)`` as a scrape answers: a GPU, a CPU, memory, a process."""
    return Frame(
        T0,
        source="remote",
        gpus=tuple(
            Gpu(f"GPU-{i}", "NVIDIA H200", "GPU", i, name, name, detail={"index": "0"})
            for i, name in hosts
        ),
        cpus=tuple(Cpu(i, name, name, cpu_model="EPYC") for i, name in hosts),
        memory=tuple(Memory(i, name, name) for i, name in hosts),
        processes=tuple(
            GpuProcess(i, name, 0, f"GPU-{i}", pid=100 + n, used_memory=n)
            for n, (i, name) in enumerate(hosts)
        ),
    )


def tab_names(lines: Sequence[StyledLine]) -> list[str]:
    row = next(t for t in texts(lines) if t.startswith("Tabs: "))
    return row.removeprefix("Tabs: ").split()


def row_names(lines: Sequence[StyledLine]) -> set[str]:
    """The hosts the GPU, CPU and memory rows name (``… @ <host>``) and the process table's
    HOST column."""
    shown = body(lines)
    named = {m for t in shown for m in re.findall(r" @ (\S+)", t)}
    header = next(i for i, t in enumerate(shown) if "COMMAND" in t)
    table = itertools.takewhile(bool, shown[header + 1 :])  # up to the blank rows
    return named | {t.split()[0] for t in table}


@pytest.mark.parametrize(
    ("hostnames", "shown"),
    [
        (("node-0017", "node-0018"), ["node-0017", "node-0018"]),
        (("gpu-box", "gpu-box"), ["127.0.0.1:10017", "127.0.0.1:10018"]),
    ],
    ids=["distinct hostnames", "one hostname twice"],
)
def test_the_tab_row_and_the_rows_name_a_host_alike(
    hostnames: tuple[str, str], shown: list[str]
) -> None:
    ids = ("127.0.0.1:10017", "127.0.0.1:10018")
    frame = scraped(*zip(ids, hostnames, strict=True))
    everything = render(frame, ViewState(), 200, 40, LIVE, expected_hosts=ids)
    assert tab_names(everything) == ["All", *shown]
    assert row_names(everything) == set(shown)
    assert tab_labels(frame, ids) == ("All", *shown)
    for tab, name in enumerate(shown, start=1):
        lines = render(frame, ViewState(tab=tab), 200, 40, LIVE, expected_hosts=ids)
        selected = [span.text for line in lines for span in line if span.style.bg == "cyan"]
        assert selected == [f" {name} "]
        assert {m for t in body(lines) for m in re.findall(r" @ (\S+)", t)} == {name}


def test_an_expected_host_without_rows_is_named_by_its_id_in_tab_and_no_data_line() -> None:
    ids = ("127.0.0.1:10017", "127.0.0.1:10018")
    frame = scraped((ids[0], "node-0017"))
    lines = render(frame, ViewState(), 200, 40, LIVE, expected_hosts=ids)
    assert tab_names(lines) == ["All", "node-0017", "!127.0.0.1:10018"]  # marked failing
    assert "127.0.0.1:10018: no data" in body(lines)
    assert body(lines)[1].startswith("Nodes 1/2 ")


def test_a_failing_hosts_tab_is_marked_and_red_until_selected() -> None:
    ids = ("127.0.0.1:10017", "127.0.0.1:10018")
    frame = scraped((ids[0], "node-0017"))
    row = next(line for line in render(frame, ViewState(), 200, 40, LIVE, expected_hosts=ids)
               if text(line).startswith("Tabs: "))  # fmt: skip
    failing = next(span for span in row if "127.0.0.1:10018" in span.text)
    healthy = next(span for span in row if "node-0017" in span.text)
    assert failing.text.strip() == "!127.0.0.1:10018" and failing.style.fg == "red"
    assert healthy.style.fg != "red"
    # Every host reporting: no mark anywhere.
    both = scraped((ids[0], "node-0017"), (ids[1], "node-0018"))
    assert "!" not in "".join(
        tab_names(render(both, ViewState(), 200, 40, LIVE, expected_hosts=ids))
    )


def test_eighty_by_twenty_four_keeps_host_and_readings_visible(big: Frame) -> None:
    shown = body(render(big, ViewState(tab=1), 80, 24, LIVE))
    line = next(t for t in shown if t.startswith("GPU"))
    assert "@ node-01" in line and "Util:" in line and "Pwr:" in line and line.endswith("W")


def test_help_replaces_the_body() -> None:
    live = body(render(one_host(), ViewState(help=True), 100, 30, LIVE))
    assert live[1] == "Keys" and not any("GPU" in t for t in live[1:-2])
    assert not any("SPACE" in t for t in live[:-2])
    replay = body(render(one_host(), ViewState(help=True), 100, 30, Status(paused_replay())))
    assert "Replay keys" in replay and any(t.strip().startswith("SPACE") for t in replay)
    assert any(t.strip().startswith("G ") for t in replay)


# --------------------------------------------------------------------------- view keys


def test_left_and_right_wrap_around_the_tabs() -> None:
    assert view_key(ViewState(), "left", 5, 10).tab == 4
    assert view_key(ViewState(tab=4), "right", 5, 10).tab == 0
    assert view_key(ViewState(tab=1, scroll=7), "right", 5, 10) == ViewState(tab=2)


def test_scrolling_never_goes_negative() -> None:
    assert view_key(ViewState(), "up", 1, 10).scroll == 0
    assert view_key(ViewState(scroll=3), "pgup", 1, 10).scroll == 0
    assert view_key(ViewState(scroll=3), "down", 1, 10).scroll == 4
    assert view_key(ViewState(scroll=3), "pgdn", 1, 10).scroll == 13
    assert view_key(ViewState(scroll=30), "pgup", 1, 10).scroll == 20
    assert view_key(ViewState(scroll=30), "home", 1, 10).scroll == 0
    assert view_key(ViewState(), "end", 1, 10).scroll > 10**6


def test_h_toggles_help_and_unknown_keys_change_nothing() -> None:
    view = ViewState(tab=2, scroll=5)
    assert view_key(view, "h", 3, 10).help is True
    assert view_key(view_key(view, "h", 3, 10), "h", 3, 10).help is False
    for key in ("x", "", "space", "]", "H", "esc"):
        assert view_key(view, key, 3, 10) is view


def test_view_key_is_total_for_odd_counts() -> None:
    for key in ("left", "right", "pgup", "pgdn"):
        for count, page in ((0, 0), (-3, -5), (1, 1)):
            result = view_key(ViewState(tab=2, scroll=1), key, count, page)
            assert result.tab >= 0 and result.scroll >= 0


def test_each_scroll_step_moves_the_body_by_exactly_one_line() -> None:
    frame = one_host()
    full = body(render(frame, ViewState(), 100, 200, LIVE))[1:-2]
    content = len(full) - next(i for i, t in enumerate(reversed(full)) if t)
    for scroll in range(content - 10 + 1):
        window = body(render(frame, ViewState(scroll=scroll), 100, 13, LIVE))[1:-2]
        assert window == full[scroll : scroll + 10]


def test_while_indexing_the_status_says_how_far_and_the_total_is_an_estimate() -> None:
    state, _ = r.initial(100, T0, 99_000, indexing=34)
    state, _ = r.step(state, r.IndexProgress(34, 294))
    line = text(status_line(Status(replay=replay_status(state, CEST)), 200)).rstrip()
    assert "| paused | indexing 34 % |" in line and line.endswith("frame 1/~294")
    state, _ = r.step(state, r.IndexProgress(None))
    line = text(status_line(Status(replay=replay_status(state, CEST)), 200)).rstrip()
    assert "indexing" not in line and line.endswith("frame 1/100")
    narrow = r.step(r.initial(100, T0, 99_000, indexing=34)[0], r.IndexProgress(34, 294))[0]
    line = text(status_line(Status(replay=replay_status(narrow, CEST)), 80)).rstrip()
    assert "indexing 34 %" in line  # kept at 80 columns, with the position and the mode


def test_while_indexing_the_duration_is_the_whole_where_known_else_marked_as_growing() -> None:
    state, _ = r.initial(100, T0, 99_000, indexing=34)
    growing = text(status_line(Status(replay=replay_status(state, CEST)), 200))
    assert growing.startswith("REPLAY | 00:00:00 / ~00:01:39 |")  # indexed so far, and growing
    state, _ = r.step(state, r.IndexProgress(40, 294, whole_ms=293_000))
    whole = text(status_line(Status(replay=replay_status(state, CEST)), 200))
    assert whole.startswith("REPLAY | 00:00:00 / 00:04:53 |")  # the tail told the end: no "~"
    assert state.duration_ms == 99_000  # seeks still wait past what is indexed
    state, _ = r.step(state, r.IndexProgress(None, whole_ms=293_000))
    done = text(status_line(Status(replay=replay_status(state, CEST)), 200))
    assert done.startswith("REPLAY | 00:00:00 / 00:01:39 |")  # done: the timeline's own duration
