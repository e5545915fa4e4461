"""The live view's energy session: ``R`` resets what the view shows, and only that."""

from __future__ import annotations

from datetime import UTC

from allsmi.app.tui import LiveModel
from allsmi.domain.model import Frame, Gpu


def frame(t_ms: int, power: float) -> Frame:
    return Frame(t_ms=t_ms, gpus=(Gpu("u0", "H100", "GPU", "h1", "h1", "h1:9090",
                                      power_consumption=power),))  # fmt: skip


def test_r_resets_the_live_views_energy_session_to_the_frame_shown() -> None:
    model = LiveModel("local", UTC)
    for i in range(4):  # 100 W, a second apart: 100 J a step
        model.show(frame(i * 1000, 100.0))
        if i == 1:
            model.key("R")  # 100 J so far, dropped: the session counts on from frame 1
    energy = model.status().energy
    assert energy is not None and energy.gpu("h1", "u0") == 200.0
