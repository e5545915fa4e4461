"""GPU health events (src/allsmi/domain/events.py; docs/recording-format.md §5.3.3) over
generated readings: noise in the health fields that never crosses a threshold (harmless
clock reasons, a SW power cap held less than the threshold, counts that stay or go back,
flags never set, unknown readings) yields no health event; any health readings give events
ordered by time, stamped at or before the frame that confirmed them, with one-line messages
of known kinds, and feeding one detector frame by frame gives what ``detect`` gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from allsmi.domain.events import KINDS, THRESHOLDS, Detector, Event, detect
from allsmi.domain.model import Cpu, Frame, Gpu, GpuHealth

T0 = 1_776_513_600_000
HOST = "n1:9090"
HEALTH_KINDS = frozenset(("throttle", "throttle-end", "xid", "ecc", "remap"))
HARMLESS = ("gpu_idle", "applications_clocks", "sync_boost", "display_clock")
CAP = "sw_power_cap"
ALL_REASONS = (*HARMLESS, CAP, "hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake")
COUNTS = ("ecc_corrected", "ecc_uncorrected", "remapped_correctable", "remapped_uncorrectable")


def gpu(index: int, health: GpuHealth | None) -> Gpu:
    return Gpu(
        f"GPU-{index}", "H100", "GPU", HOST, HOST, HOST, detail={"index": str(index)},
        health=health,
    )  # fmt: skip


@st.composite
def quiet_series(draw: st.DrawFn, frames: int, step_ms: int) -> list[GpuHealth | None]:
    """One GPU's health over ``frames`` frames ``step_ms`` apart that crosses no threshold."""
    counts = {name: draw(st.integers(0, 50)) for name in COUNTS}
    xids = draw(st.none() | st.dictionaries(st.sampled_from(["13", "79", "x"]), st.integers(0, 9)))
    last_xid = draw(st.none() | st.sampled_from([0, 79]))
    last_xid_ms = draw(st.none() | st.just(T0 - 5_000))
    cap_since: int | None = None
    out: list[GpuHealth | None] = []
    for i in range(frames):
        t = i * step_ms
        if draw(st.integers(0, 9)) == 0:
            out.append(None)
            continue
        reasons: tuple[str, ...] | None = draw(
            st.none() | st.lists(st.sampled_from((*HARMLESS, CAP)), unique=True).map(tuple)
        )
        if reasons is not None:
            if CAP in reasons:
                cap_since = t if cap_since is None else cap_since
                if t - cap_since >= THRESHOLDS.throttle_power_cap_ms:
                    reasons, cap_since = tuple(r for r in reasons if r != CAP), None
            else:
                cap_since = None
        fields: dict[str, Any] = {"clock_events": reasons}
        for name in COUNTS:
            move = draw(st.sampled_from(["same", "same", "unknown", "sentinel", "restart"]))
            if move == "restart":
                counts[name] = draw(st.integers(0, counts[name]))
            fields[name] = {"unknown": None, "sentinel": -1}.get(move, counts[name])
        if xids is not None and draw(st.booleans()):
            if draw(st.integers(0, 9)) == 0:  # a restarted recorder: lower counts
                xids = {code: n // 2 for code, n in xids.items() if draw(st.booleans())}
            fields["xid_counts"] = xids
        if draw(st.booleans()):
            fields["last_xid"], fields["last_xid_ms"] = last_xid, last_xid_ms
        fields["remap_pending"] = draw(st.sampled_from([None, False]))
        fields["remap_failure"] = draw(st.sampled_from([None, False]))
        out.append(GpuHealth(**fields))
    return out


@st.composite
def quiet_frames(draw: st.DrawFn) -> list[Frame]:
    frames = draw(st.integers(1, 60))
    step_ms = draw(st.sampled_from([1000, 5000, 15_000]))
    series = [draw(quiet_series(frames, step_ms)) for _ in range(draw(st.integers(1, 3)))]
    return [
        Frame(
            t_ms=T0 + i * step_ms,
            gpus=tuple(gpu(g, s[i]) for g, s in enumerate(series)),
            cpus=(Cpu(HOST, HOST, HOST),),
        )
        for i in range(frames)
    ]


@given(quiet_frames())
def test_health_noise_that_crosses_no_threshold_is_no_event(frames: list[Frame]) -> None:
    events = detect(frames, (HOST,), 1000)

    assert [e for e in events if e.kind in HEALTH_KINDS] == []


count = st.none() | st.integers(-2, 5)
any_health = st.builds(
    GpuHealth,
    clock_events=st.none() | st.lists(st.sampled_from(ALL_REASONS), unique=True).map(tuple),
    ecc_corrected=count,
    ecc_uncorrected=count,
    remapped_correctable=count,
    remapped_uncorrectable=count,
    remap_pending=st.none() | st.booleans(),
    remap_failure=st.none() | st.booleans(),
    xid_counts=st.none()
    | st.dictionaries(st.sampled_from(["13", "79", "x\n1", "999"]), st.integers(-2, 5)),
    last_xid=count,
    last_xid_ms=st.none() | st.integers(T0 - 10_000, T0 + 100_000),
)


@st.composite
def health_frames(draw: st.DrawFn) -> list[Frame]:
    out: list[Frame] = []
    t = T0
    for _ in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([0, 1000, 1000, 10_000, 40_000]))
        gpus = [gpu(g, draw(st.none() | any_health)) for g in draw(st.sets(st.integers(0, 2)))]
        out.append(Frame(t_ms=t, gpus=tuple(gpus), cpus=(Cpu(HOST, HOST, HOST),)))
    return out


@given(health_frames(), st.integers(0, 40))
def test_health_events_are_ordered_stamped_by_their_confirmation_and_one_line(
    frames: list[Frame], cut: int
) -> None:
    detector = Detector((HOST,), 1000)
    latest = None
    fed: list[Event] = []
    for frame in frames:
        answer = detector.feed(frame)
        latest = frame.t_ms if latest is None else max(latest, frame.t_ms)
        assert [e.t_ms for e in answer] == sorted(e.t_ms for e in answer)
        assert all(e.t_ms <= latest for e in answer)
        fed += answer
    fed += detector.finish()

    events = detect(frames, (HOST,), 1000)
    assert sorted(fed, key=lambda e: e.t_ms) == events
    for event in events:
        assert event.kind in KINDS
        assert event.message and "\n" not in event.message
    split = Detector((HOST,), 1000)
    again = [e for f in frames[:cut] for e in split.feed(f)]
    again += [e for f in frames[cut:] for e in split.feed(f)] + split.finish()
    assert sorted(again, key=lambda e: e.t_ms) == events
