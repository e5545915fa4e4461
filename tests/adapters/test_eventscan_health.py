"""A recording scanned for its events (no stored events: a plain file) finds the health
kinds as the detector does on the decoded frames: the scan's fast path leaves rows with
``health`` to the decoder (docs/recording-format.md §5.3.3)."""

from __future__ import annotations

from pathlib import Path

import attrs

from allsmi.adapters import wire
from allsmi.adapters.recording.source import RecordingSource
from allsmi.app.events import events_of
from allsmi.domain.events import detect
from allsmi.domain.model import Frame, Gpu, GpuHealth, Header

INTERVAL_MS = 1000


def frames() -> list[Frame]:
    """One GPU, throttled (HW slowdown) from the 5th to the 9th second, an XID at the 12th."""
    out = []
    for n in range(20):
        throttled = 5 <= n < 9
        health = GpuHealth(
            clock_events=("hw_slowdown",) if throttled else (),
            xid_counts={"79": 1} if n >= 12 else {},
            last_xid=79 if n >= 12 else None,
        )
        gpu = Gpu(
            uuid="GPU-1",
            name="H200",
            device_type="GPU",
            host_id="n1:9400",
            hostname="n1",
            instance="n1",
            utilization=30.0 if throttled else 95.0,
            health=health,
        )
        out.append(Frame(t_ms=1_800_000_000_000 + n * INTERVAL_MS, seq=n, gpus=(gpu,)))
    return out


def test_a_scan_finds_the_health_events_the_detector_finds(tmp_path: Path) -> None:
    path = tmp_path / "health.ndjson"
    header = Header(source="remote", interval_ms=INTERVAL_MS, hosts=("n1:9400",))
    lines: list[Header | Frame] = [header, *frames()]
    path.write_bytes(b"".join(wire.encode_line(line) for line in lines))
    with RecordingSource(path) as source:
        found = events_of(source)
    expected = detect(frames(), ("n1:9400",), INTERVAL_MS)
    kinds = [(e.kind, e.t_ms) for e in found]
    assert kinds == [(e.kind, e.t_ms) for e in expected]
    start = frames()[0].t_ms
    assert ("throttle", start + 5 * INTERVAL_MS) in kinds
    assert ("throttle-end", start + 9 * INTERVAL_MS) in kinds
    assert ("xid", start + 12 * INTERVAL_MS) in kinds
    assert [attrs.asdict(e) for e in found] == [attrs.asdict(e) for e in expected]
