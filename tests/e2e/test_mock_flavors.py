"""``allsmi mock --flavor dcgm|node|dcgm,node`` run as a user would: the pages fetched over
loopback parse, carry the documented families, pass promtool but for the lints a real
dcgm-exporter or node_exporter page gets too, and injected incidents show at their times."""

from __future__ import annotations

import random
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import assert_one_line_error, poll, run_allsmi, start_allsmi

ATTEMPTS: Final = 5
# What promtool says of the real exporters' pages too: their names are not ours to change.
EXPORTER_LINTS: Final = re.compile(
    r"^\S+ (label names|metric names) should be written in 'snake_case' not 'camelCase'$"
    r'|^\S+ counter metrics should have "_total" suffix$'
    r"|^\S+ metric name should not include type 'counter'$"
)
HW_SLOWDOWN_AND_SW_THERMAL: Final = 0x08 | 0x20


class Mock:
    """``allsmi mock`` with ``args``, on a random free base port (retried when taken)."""

    def __init__(self, tmp: Path, *args: str, nodes: int = 2) -> None:
        self.hostfile = tmp / "hosts"
        for _ in range(ATTEMPTS):
            self.base = random.randrange(20_000, 30_000)
            self.proc = start_allsmi(
                "mock", "--nodes", str(nodes), "--gpus", "4", "--interval", "0.2",
                "--base-port", str(self.base), "--hostfile", str(self.hostfile), *args,
            )  # fmt: skip
            poll(self._up_or_gone, timeout=30, what="the mock to write its hostfile")
            if self.proc.poll() is None:
                return
            _, err = self.proc.communicate(timeout=10)
            if "already in use" not in err:
                pytest.fail(f"allsmi mock exited {self.proc.returncode}: {err}")
        pytest.fail(f"allsmi mock could not bind its ports in {ATTEMPTS} attempts")

    def _up_or_gone(self) -> bool:
        return self.proc.poll() is not None or self.hostfile.exists()

    def targets(self) -> list[str]:
        lines = self.hostfile.read_text().splitlines()
        return [line for line in lines if line and not line.startswith("#")]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=20)
        return self.proc.returncode


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def page(
    http: httpx.Client, target: str, query: str = ""
) -> dict[str, list[tuple[dict[str, str], float]]]:
    reply = http.get(f"http://{target}/metrics{query}")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(reply.text)


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def assert_promtool_finds_only_exporter_lints(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        return  # scripts/setup-system installs it; without it the parser above has checked
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode in (0, 3), done.stderr  # 3: lint findings only
    for line in (done.stdout + done.stderr).splitlines():
        assert EXPORTER_LINTS.match(line), f"promtool: {line}"


def gpu_values(
    parsed: dict[str, list[tuple[dict[str, str], float]]], name: str
) -> dict[str, float]:
    return {labels["gpu"]: value for labels, value in parsed[name]}


def test_dcgm_flavor_serves_dcgm_exporters_page_and_nothing_else(
    tmp_path: Path, http: httpx.Client
) -> None:
    mock = Mock(tmp_path, "--flavor", "dcgm")
    targets = mock.targets()
    assert targets == [f"127.0.0.1:{mock.base}", f"127.0.0.1:{mock.base + 1}"]
    for number, target in enumerate(targets, start=1):
        parsed = page(http, target)
        for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_SM_CLOCK"):
            assert sorted(gpu_values(parsed, name)) == ["0", "1", "2", "3"], name
        for labels, _ in parsed["DCGM_FI_DEV_GPU_UTIL"]:
            assert labels["Hostname"] == f"node-{number:04d}"
            assert labels["device"] == f"nvidia{labels['gpu']}"
            assert labels["UUID"].startswith("GPU-")
            assert {"modelName", "container", "namespace", "pod"} <= set(labels)
        assert http.get(f"http://{target}/snapshot").status_code == 404
        assert http.get(f"http://{target}/events").status_code == 404
    pods = {labels["pod"] for labels, _ in page(http, targets[0])["DCGM_FI_DEV_GPU_UTIL"]}
    assert pods == {"train-llama3-0001-0"}  # the first node's GPUs are held by one pod
    assert_promtool_finds_only_exporter_lints(http.get(f"http://{targets[0]}/metrics").text)
    assert mock.stop() == 0


def test_node_flavor_serves_node_exporters_page_with_collect_filters(
    tmp_path: Path, http: httpx.Client
) -> None:
    mock = Mock(tmp_path, "--flavor", "node")
    target = mock.targets()[0]
    parsed = page(http, target)
    for name in ("node_cpu_seconds_total", "node_load1", "node_memory_MemTotal_bytes"):
        assert name in parsed, name
    assert parsed["node_uname_info"][0][0]["nodename"] == "node-0001"
    filtered = page(http, target, "?collect[]=meminfo&collect[]=uname")
    assert "node_memory_MemAvailable_bytes" in filtered and "node_uname_info" in filtered
    assert "node_cpu_seconds_total" not in filtered and "node_load1" not in filtered
    refused = http.get(f"http://{target}/metrics?collect[]=nvidia")
    assert refused.status_code == 400 and "missing collector: nvidia" in refused.text
    assert http.get(f"http://{target}/snapshot").status_code == 404

    def idle_seconds() -> float:
        return sum(
            v
            for labels, v in page(http, target)["node_cpu_seconds_total"]
            if labels["mode"] == "idle"
        )

    first = idle_seconds()
    poll(lambda: idle_seconds() > first, timeout=10, what="the CPU counters to grow")
    assert_promtool_finds_only_exporter_lints(http.get(f"http://{target}/metrics").text)
    assert mock.stop() == 0


def test_dcgm_node_pairs_pages_per_address_and_shows_injected_incidents(
    tmp_path: Path, http: httpx.Client
) -> None:
    mock = Mock(
        tmp_path, "--flavor", "dcgm,node",
        "--incident", "throttle:2:1:1:1.5", "--incident", "xid:1:3:0.5:79",
    )  # fmt: skip
    base = mock.base
    assert mock.targets() == [
        f"127.0.0.2:{base}", f"127.0.0.2:{base + 1}", f"127.0.0.3:{base}", f"127.0.0.3:{base + 1}"
    ]  # fmt: skip
    node2_dcgm, node2_node = f"127.0.0.3:{base}", f"127.0.0.3:{base + 1}"
    assert page(http, node2_node)["node_uname_info"][0][0]["nodename"] == "node-0002"
    assert {labels["Hostname"] for labels, _ in page(http, node2_dcgm)["DCGM_FI_DEV_GPU_UTIL"]} == {
        "node-0002"
    }

    def reasons() -> dict[str, float]:
        return gpu_values(page(http, node2_dcgm), "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")

    poll(lambda: reasons()["1"] == HW_SLOWDOWN_AND_SW_THERMAL, timeout=15, what="the throttle")
    assert all(int(v) & 0x8 == 0 for gpu, v in reasons().items() if gpu != "1")
    poll(lambda: int(reasons()["1"]) & 0x8 == 0, timeout=15, what="the throttle to end")
    violation = gpu_values(page(http, node2_dcgm), "DCGM_FI_DEV_THERMAL_VIOLATION_total")
    assert violation["1"] == 1_500_000  # µs: exactly the episode's length
    xids = gpu_values(page(http, f"127.0.0.2:{base}"), "DCGM_FI_DEV_XID_ERRORS")
    assert xids == {"0": 0, "1": 0, "2": 0, "3": 79}
    assert mock.stop() == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--flavor", "prometheus"), "--flavor 'prometheus'"),
        (("--flavor", "allsmi,dcgm"), "--flavor 'allsmi,dcgm'"),
        (("--incident", "throttle:1:0:5"), "expected throttle:NODE:GPU"),
        (("--incident", "throttle:3:0:5:10"), "NODE must be a whole number in 1..2"),
        (("--incident", "throttle:1:9:5:10"), "GPU must be a whole number in 0..7"),
        (("--incident", "throttle:1:0:5:0"), "LEN_S must be seconds, more than 0"),
        (("--incident", "xid:1:all:5:79"), "GPU must be a whole number"),
        (("--incident", "xid:1:0:soon:79"), "must be seconds"),
        (("--incident", "xid:1:0:5:-3"), "CODE must be a whole number"),
    ],
)
def test_bad_flavors_and_incidents_are_one_line_usage_errors(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    hostfile = tmp_path / "hosts"
    result = run_allsmi("mock", "--nodes", "2", "--hostfile", str(hostfile), *args)
    assert says in assert_one_line_error(result, 2)
    assert not hostfile.exists()
