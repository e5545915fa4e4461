"""``allsmi record --from-prometheus``: a real Prometheus scrapes a mock cluster while a real
recorder records it; the window read back from Prometheus holds the same hosts and values
(within a step), a stopped node as that host's error, and verifies clean."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.from_prometheus import window_of
from allsmi.app.prom_replay import PrometheusSource
from allsmi.app.replay_driver import ReplayDriver
from allsmi.domain.model import Frame
from allsmi.domain.parse import format_rfc3339_ms
from allsmi.domain.sections import REMOTE_SECTIONS

from .conftest import assert_one_line_error, free_port, poll, run_allsmi, start_allsmi
from .test_cluster import Mock, tab_row
from .test_exporter import prom_query, prometheus, start_api
from .tmux import Tmux

TICK_MS = 3000  # the mock's simulation step: its values hold that long


def frames(path: Path) -> list[Frame]:
    with RecordingSource(path) as source:
        return [source.frame(i) for i in range(source.frame_count)]


def readings(frame: Frame, host: str) -> set[tuple[object, ...]]:
    return {
        (g.uuid, g.utilization, g.temperature, g.used_memory, g.power_consumption)
        for g in frame.gpus or ()
        if g.host_id == host
    }


def lazily_as_the_recording(
    url: str, start: int, end: int, recorded: list[Frame], hosts: list[str]
) -> None:
    """The replay's source over the same window: the same timeline, fetched a run at a
    time as frames are shown, each frame's GPUs as the recording's at its time."""
    now = int(time.time() * 1000)
    window = window_of(url, format_rfc3339_ms(start), format_rfc3339_ms(end), None, None,
                       REMOTE_SECTIONS, now)  # fmt: skip
    with PrometheusSource(window, None, now, points_per_query=3000) as source:
        driver = ReplayDriver.of(source)
        assert driver.frame().t_ms == source.time_at(0) == -(-start // 1000) * 1000
        assert source.frame_count == len(range(source.time_at(0), end + 1, 1000))
        runs = -(-source.frame_count // source.history.per_query)
        assert runs >= 3 and source.fetches <= 2  # the run shown, and perhaps the next one
        by_time = {f.t_ms: f for f in recorded}
        for index in range(source.frame_count):
            shown = source.frame(index)
            if shown.t_ms in by_time:
                assert all(readings(shown, h) == readings(by_time[shown.t_ms], h) for h in hosts), (
                    shown.t_ms
                )
            else:  # the recording left out an instant without samples
                assert not any(readings(shown, h) for h in hosts)
        assert source.fetches == runs  # each run fetched once, the one behind included
        last = source.time_at(source.frame_count - 1)
        assert source.index_at_or_before(last + 999) == source.frame_count - 1
        assert source.index_at_or_before(start - 60_000) == 0
    with PrometheusSource(window, None, now, points_per_query=3000) as source:
        source.frame(0)  # the first run, and the second fetched behind
        far = source.frame_count - 1
        shown = source.frame(far)  # a seek to the end: what is fetched behind is cancelled
        if shown.t_ms in by_time:
            assert all(readings(shown, h) == readings(by_time[shown.t_ms], h) for h in hosts)
        assert source.fetches <= 3 and source.frame(0).t_ms == source.time_at(0)


def in_the_tui_as_a_user(
    url: str, span: tuple[str, ...], stopped_offset_ms: int, sessions: list[Tmux]
) -> None:
    """``view --replay prometheus+http://…`` in a terminal: the cluster's tabs, every node up
    at the start, the stopped one failing once seeked past its stop."""
    tui = Tmux("prom-replay", ["view", "--replay", url, *span], width=160, height=50)
    sessions.append(tui)
    first = tui.wait_for("frame 1/", timeout=30)
    assert "Nodes 5/5" in first and "from Prometheus" in first
    assert "node-0002" in tab_row(first)  # two mocks each have a node-0001: shown by address
    seconds = stopped_offset_ms // 1000 + 4
    tui.send("g")
    tui.send(f"00:00:{seconds:02d}", "Enter")
    after = tui.wait_for(lambda s: f"| 00:00:{seconds:02d} /" in s, timeout=30)
    assert "Nodes 4/5" in after
    tui.send("q")
    tui.wait_for("EXITED rc=0")


def test_a_window_of_prometheus_history_is_the_cluster_a_recorder_saw(
    tmp_path: Path, sessions: list[Tmux]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    steady, doomed = Mock(tmp_path / "a", nodes=3, failing=0), Mock(tmp_path / "b", 1, 0)
    _, api_port = start_api("-i", "1")  # this machine through our own exporter: no GPU here
    exporter = f"127.0.0.1:{api_port}"
    hosts = [steady.host(i) for i in range(3)] + [doomed.host(0), exporter]
    hostfile = tmp_path / "hosts"
    hostfile.write_text("\n".join(hosts) + "\n")
    direct_path, out = tmp_path / "direct.ndjson.zst", tmp_path / "prom.ndjson.zst"
    with prometheus(tmp_path, hosts, honor_labels=False) as port:

        def samples_of(host: str) -> int:
            found = prom_query(port, f'count_over_time(up{{instance="{host}"}}[5m])')
            return int(found[0]["value"][1]) if found else 0

        # Prometheus takes its targets up a few seconds after it is ready: the recorder's
        # window begins once every target has been scraped
        poll(lambda: all(samples_of(h) for h in hosts), timeout=60, what="first scrapes")
        direct = start_allsmi(
            "record", "--source", "remote", "--hostfile", str(hostfile), "-i", "1",
            "-o", str(direct_path),
        )  # fmt: skip
        poll(lambda: samples_of(doomed.host(0)) >= 8, timeout=60, what="8 s of samples")
        stopped_ms = int(time.time() * 1000)
        doomed.stop()
        later = samples_of(doomed.host(0)) + 6
        poll(lambda: samples_of(doomed.host(0)) >= later, timeout=60, what="6 s more")
        direct.send_signal(signal.SIGTERM)
        _, err = direct.communicate(timeout=30)
        assert direct.returncode == 0, err
        seen = frames(direct_path)
        start, end = seen[0].t_ms, seen[-1].t_ms
        url = f"prometheus+http://127.0.0.1:{port}"
        span = ("--from", format_rfc3339_ms(start), "--to", format_rfc3339_ms(end))
        result = run_allsmi("record", "--from-prometheus", url, *span, "-o", str(out))
        assert result.returncode == 0, result.stderr
        replayed = frames(out)
        lazily_as_the_recording(url, start, end, replayed, hosts)
        in_the_tui_as_a_user(url, span, stopped_ms - start, sessions)
    steady.stop()
    assert "reading 5 host(s)" in result.stderr and "every 1 s" in result.stderr
    verified = run_allsmi("verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    with RecordingSource(out) as source:
        assert source.header is not None and set(source.header.hosts) == set(hosts)
        assert source.header.interval_ms == 1000
    assert len(replayed) >= (end - start) // 1000 - 2  # a frame a step, the window through
    lost = f"{doomed.host(0)}: down in Prometheus (up == 0)"
    for frame in replayed:
        near = [d for d in seen if abs(d.t_ms - frame.t_ms) <= TICK_MS + 1000]
        for host in hosts:
            mine = readings(frame, host)
            if not mine or frame.t_ms < start + 2000:
                continue  # Prometheus's first sample may be of a scrape before the recorder's
            if host == doomed.host(0) and frame.t_ms > stopped_ms - 2000:
                continue  # about its stop, each may have caught a last answer the other missed
            # every GPU's readings are those the recorder saw within a step of the mock's
            assert any(mine == readings(d, host) for d in near), (frame.t_ms, host)
        if frame.t_ms >= stopped_ms + 3000:  # Prometheus has scraped it dead twice
            assert lost in frame.errors and not readings(frame, doomed.host(0))
        if frame.t_ms <= stopped_ms - 2000:
            assert lost not in frame.errors and readings(frame, doomed.host(0))
    assert sum(lost in f.errors for f in replayed) >= 3
    assert all(readings(f, steady.host(0)) for f in replayed)
    # our own exporter's page, through Prometheus: this machine's memory, as recorded
    totals = {m.total_bytes for f in seen for m in f.memory or () if m.host_id == exporter}
    rows = [m for f in replayed for m in f.memory or () if m.host_id == exporter]
    assert rows and {m.total_bytes for m in rows} == totals


# --- failures: one line, never a traceback -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["--from-prometheus", "ftp://x"], 2, "'ftp://x' is not a Prometheus URL"),
        (["--from-prometheus", "http://127.0.0.1:1", "--from", "now", "--to", "now-1h"], 2,
         "is not before --to"),
        (["--from-prometheus", "http://127.0.0.1:1", "-i", "1"], 2,
         "--interval and --duration do not go with --from-prometheus"),
        (["--from-prometheus", "http://127.0.0.1:1", "--source", "remote"], 2,
         "--source remote does not go with --from-prometheus"),
        (["--from-prometheus", "http://127.0.0.1:1", "--match", "a{b}"], 2,
         "give label matchers"),
        (["--from", "now-1h"], 2, "--from goes with --from-prometheus"),
        (["--from-prometheus", "http://127.0.0.1:1", "--from", "yesterday"], 2,
         "invalid time 'yesterday'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], code: int, line: str) -> None:
    result = run_allsmi("record", "-o", str(tmp_path / "x.ndjson.zst"), *args)
    assert line in assert_one_line_error(result, code)
    assert not (tmp_path / "x.ndjson.zst").exists()


def test_nobody_listening_is_one_line_and_no_file(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "x.ndjson.zst"
    result = run_allsmi("record", "--from-prometheus", f"http://127.0.0.1:{port}", "-o", str(out))
    line = assert_one_line_error(result, 1)
    assert line == f"allsmi record: Prometheus http://127.0.0.1:{port}: connection refused"
    assert not out.exists()


def test_a_prometheus_without_our_series_says_so(tmp_path: Path) -> None:
    with prometheus(tmp_path, [f"127.0.0.1:{free_port()}"]) as port:  # scrapes nothing alive
        out = tmp_path / "x.ndjson.zst"
        base = f"http://127.0.0.1:{port}"
        result = run_allsmi(
            "record", "--from-prometheus", base, "--match", '{job="x"}', "-o", str(out)
        )
        refused = run_allsmi(
            "record", "--from-prometheus", base, "--match", "{job=x}", "-o", str(out)
        )
    # the server's error points into our query; the line names the user's selector
    assert assert_one_line_error(refused, 1).endswith("(check --match '{job=x}')")
    line = assert_one_line_error(result, 1)
    assert line.startswith(f"allsmi record: Prometheus {base}: no all-smi series between ")
    assert line.endswith('matching {job="x"} (does it scrape `allsmi api` or all-smi exporters?)')
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["--from", "now-1h"], 2, "--from, --to, --step and --match go with --replay prometheus+"),
        (["--replay", "prometheus+http://127.0.0.1:1", "--follow"], 2,
         "--follow is for a recording still being written, not Prometheus"),
        (["--replay", "prometheus+http://127.0.0.1:1", "--from", "soon"], 2, "invalid time 'soon'"),
    ],
)  # fmt: skip
def test_bad_view_input_is_one_line(args: list[str], code: int, line: str) -> None:
    assert line in assert_one_line_error(run_allsmi("view", *args), code)


def test_viewing_a_server_nobody_runs_is_one_line_before_any_terminal() -> None:
    port = free_port()
    result = run_allsmi("view", "--replay", f"prometheus+http://127.0.0.1:{port}")
    line = assert_one_line_error(result, 1)
    assert line == f"allsmi view: Prometheus http://127.0.0.1:{port}: connection refused"


def test_an_export_over_an_existing_recording_is_refused_before_asking(tmp_path: Path) -> None:
    out = tmp_path / "p.ndjson.zst"
    for existing in (out, tmp_path / "p.0001.ndjson.zst"):
        existing.write_bytes(b"recorded before")
        result = run_allsmi(
            "record", "--from-prometheus", f"http://127.0.0.1:{free_port()}", "-o", str(out)
        )
        line = assert_one_line_error(result, 2)  # 2, not a refused connection: never asked
        assert line == (
            f"allsmi record: {out} exists: an export from Prometheus writes a recording of its "
            "own (remove it, or choose another -o)"
        )
        assert existing.read_bytes() == b"recorded before"
        existing.unlink()
