"""The ``allsmi`` command line (docs/architecture.md §1, §7.3): parsing, and errors mapped
to exit statuses.

Every failure the user can meet ends here as one line on stderr and a status: 0 success,
1 runtime failure, 2 usage error / unsupported or unreadable input. Never a traceback
(set ``ALLSMI_DEBUG=1`` to see one while developing).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from allsmi import __version__
from allsmi.adapters.recording.files import silence_stdout
from allsmi.domain.errors import AllsmiError, UsageError
from allsmi.domain.hosts import merge_hosts, parse_hostfile
from allsmi.domain.model import DEFAULT_SECTIONS
from allsmi.domain.parse import (
    parse_duration_ms,
    parse_interval_ms,
    parse_max_age_ms,
    parse_size_bytes,
    parse_timecode,
)
from allsmi.domain.replay import parse_speed
from allsmi.domain.sections import include_help, parse_include

Handler = Callable[[argparse.Namespace], int]
# Commands are imported only when run: `allsmi record` never loads the TUI, `--help` is quick.

GC_THRESHOLD = 50_000  # allocations between young-generation collections (CPython: 700)


# Each command's --help ends with these (the README's quick start lines and their kin);
# tests/app/test_help_examples.py parses every one with the real parser.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "view": (
        "allsmi view                                      # live TUI of this machine",
        "allsmi view --hostfile hosts.txt                 # live TUI of a cluster",
        "allsmi view --replay trace.ndjson.zst            # replay a recording",
        "allsmi view --replay trace.ndjson.zst --follow   # watch it while it is recorded",
    ),
    "record": (
        "allsmi record -o trace.ndjson.zst -i 1           # every second until Ctrl-C / SIGTERM",
        "allsmi record -o trace.ndjson.zst --redact-args  # commands as executable names only",
        "allsmi record --source remote --hostfile hosts.txt -i 1 --include gpu,cpu,memory",
        "allsmi record --from-prometheus http://prom:9090 --from now-2h -o past.ndjson.zst",
    ),
    "verify": (
        "allsmi verify trace.ndjson.zst                   # frames, time span, hosts, gaps, damage",
        "allsmi verify --deep trace.ndjson.zst            # and structure every frame",
        "allsmi verify /var/lib/allsmi/                   # each recording, then the merged span",
    ),
    "events": (
        "allsmi events trace.ndjson.zst                   # hosts lost, GPUs gone idle…",
        "allsmi events trace.ndjson.zst --host node-03 --kind util-drop,power-drop",
        "allsmi events trace.ndjson.zst --follow --format json",
    ),
    "status": (
        "allsmi status trace.ndjson.zst                   # recorded now? last frame fresh?",
        "allsmi status trace.ndjson.zst --format json",
    ),
    "snapshot": (
        "allsmi snapshot --pretty                         # one reading of this machine as JSON",
        "allsmi snapshot --format prometheus --include gpu,memory",
        "allsmi snapshot --format csv -o reading.csv",
    ),
    "api": (
        "allsmi api --port 9090                           # this machine as an exporter",
        "allsmi api --bind 0.0.0.0 --token-file /etc/allsmi/token --processes",
    ),
    "mock": (
        "allsmi mock --nodes 100 --failure-nodes 5 --hostfile hosts.txt",
        "allsmi mock --nodes 20 --flavor dcgm,node --incident throttle:3:all:60:120",
    ),
    "demo": (
        "allsmi demo                                      # a simulated hour with an incident",
        "allsmi demo --no-replay                          # only record and verify it",
    ),
}


def _examples(lines: Sequence[str]) -> str:
    return "Examples:\n" + "".join(f"  {line}\n" for line in lines)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, but the Examples epilog keeps its lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("Examples:\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _include_arg(text: str) -> tuple[str, ...]:
    try:
        return parse_include(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="allsmi",
        description=(
            "Watch GPUs, CPUs and memory on this machine or a cluster, record the metric "
            "stream to a compact file, and replay it later in the same TUI."
        ),
    )
    parser.add_argument("--version", action="version", version=f"allsmi {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_view(commands)
    _add_record(commands)
    _add_verify(commands)
    _add_events(commands)
    _add_status(commands)
    _add_snapshot(commands)
    _add_api(commands)
    _add_mock(commands)
    _add_demo(commands)
    for name, command in commands.choices.items():
        if name in EXAMPLES:
            command.epilog = _examples(EXAMPLES[name])
    return parser


def _add_api(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "api",
        help="serve this machine's metrics: /metrics (Prometheus), /snapshot, /events",
        description=(
            "An exporter: /metrics in Prometheus text with all-smi's metric names, /snapshot "
            "as one frame of JSON, /events as server-sent events (one frame per collection). "
            "Binds 127.0.0.1 unless --bind says otherwise; a bearer token from --token-file "
            "or $ALLSMI_TOKEN is then required of every request."
        ),
    )
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=9090, help="port (default 9090; 0 = any free)")
    _add_interval(p, 3000, "seconds between collections (default 3)")
    p.add_argument("--processes", action="store_true", help="also export GPU processes")
    p.add_argument(
        "--token-file",
        metavar="F",
        help="require this bearer token (else $ALLSMI_TOKEN; none = no auth, loopback only)",
    )
    p.set_defaults(handler="allsmi.app.api:run")


def _add_mock(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "mock",
        help="simulate a GPU cluster: N nodes serving /snapshot, /metrics, /events on loopback",
        description=(
            "Start N simulated GPU nodes, each on its own 127.0.0.1 port, and write their "
            "addresses to a hostfile for record/view --hostfile. The last --failure-nodes "
            "nodes misbehave in turn: HTTP 503, hanging, garbage."
        ),
    )
    p.add_argument("--nodes", type=_positive_int, default=10, help="number of nodes (default 10)")
    p.add_argument("--base-port", type=_port, default=10001, help="first port (default 10001)")
    p.add_argument("--gpus", type=_positive_int, default=8, help="GPUs per node (default 8)")
    p.add_argument(
        "--hostfile",
        default="allsmi-mock-hosts.txt",
        metavar="F",
        help="where to write the node list (default ./allsmi-mock-hosts.txt)",
    )
    p.add_argument(
        "--failure-nodes", type=_non_negative_int, default=0, help="failing nodes (default 0)"
    )
    p.add_argument("--seed", type=_non_negative_int, default=0, help="simulation seed")
    p.add_argument(
        "--spread",
        action="store_true",
        help="each node on its own loopback address (127.0.0.2, 127.0.0.3 …), all at "
        "--base-port, as a real cluster's nodes share a port: record --shard then splits "
        "them (it shards by host name, so the nodes of one 127.0.0.1 stay together)",
    )
    p.add_argument(
        "--flavor",
        default="allsmi",
        metavar="F",
        help="the page each node serves: allsmi (/snapshot, /metrics, /events; default), "
        "dcgm (dcgm-exporter's /metrics, GPU health and pod labels), node (node_exporter's "
        "/metrics, collect[] honoured), or dcgm,node (both: dcgm at --base-port and "
        "node_exporter at the next port of each node's own address; implies --spread)",
    )
    p.add_argument(
        "--incident",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, seconds from the start: throttle:NODE:GPU:START_S:LEN_S "
        "(GPU may be 'all') or xid:NODE:GPU:AT_S:CODE; NODE counts from 1 (node-0001), "
        "GPU from 0; repeatable; turns GPU health readings on",
    )
    _add_interval(p, 3000, "seconds between simulation steps (default 3)")
    p.set_defaults(handler="allsmi.app.mock:run")


def _add_view(commands: argparse._SubParsersAction[_Parser]) -> None:

    p = commands.add_parser(
        "view",
        help="the live TUI of this machine, or --replay a recording in the same TUI",
        description=(
            "Live: watch this machine (GPUs via NVML, CPU, memory, disks). Replay: play a "
            "recording back in the same TUI, paused on its first frame. Keys: SPACE "
            "play/pause, ] and [ step one frame, + and - speed, j/k back/ahead 10 s, "
            "g go to a time (HH:MM:SS offset, @HH:MM wall clock, @2026-04-18T14:32:00Z), "
            "n/N next/previous event, e the event list, "
            "G back to the live edge (with --follow), L loop, arrows tabs and scrolling, "
            "h or ? help, q quit. A History panel shows the last minutes as sparklines; in "
            "replay a strip above the status line shows the whole recording (yellow: fewer "
            "GPUs busy than usual, red: hosts missing or errors), built behind the replay."
        ),
    )
    _add_interval(p, None, "seconds between live collections (default 2; 3 for a cluster)")
    _add_hosts(p)
    p.add_argument(
        "--replay",
        metavar="PATH",
        nargs="+",
        help="replay this recording (or rotated set); several PATHs, or a directory of "
        "recordings, play as one timeline (a sharded cluster's recorders: record --shard): "
        "every frame of each, each host's latest row within twice its recording's interval",
    )
    p.add_argument(
        "--speed",
        type=_typed_float(parse_speed),
        default=1.0,
        metavar="X",
        help="playback speed: 0.25, 0.5, 1, 2, 4 or 8 (default 1)",
    )
    p.add_argument(
        "--start",
        metavar="T",
        type=_timecode_arg,
        help="open at T: HH:MM:SS/MM:SS/SS from the first frame, @HH:MM[:SS] local time, "
        "or @2026-04-18T14:32:00Z; beyond the end opens on the last frame",
    )
    p.add_argument("--loop", action="store_true", help="wrap to the start at the end")
    p.add_argument(
        "--follow", action="store_true", help="keep up with a recording still being written"
    )
    history = p.add_argument_group(
        "replay from Prometheus",
        "--replay prometheus+http://HOST:9090 (or prometheus+https://…, --token-file for a "
        "bearer token) plays a Prometheus server's history (or Thanos', Mimir's, "
        "VictoriaMetrics') of allsmi api or all-smi exporters, fetched around the playhead",
    )
    _add_window(history, "the replay")
    p.set_defaults(handler="allsmi.app.view:run")


def _add_window(group: argparse._ArgumentGroup, what: str, dest: str = "window_") -> None:
    """``--from``, ``--to``, ``--step`` and ``--match``: a window of a Prometheus server's
    history (``record --from-prometheus`` and ``view --replay prometheus+http://``)."""
    group.add_argument(
        "--from",
        dest=f"{dest}start",
        metavar="T",
        help=f"start of {what}: now-2h (or -2h), or RFC 3339 like 2026-04-18T12:00:00Z "
        "(default: an hour before --to)",
    )
    group.add_argument(
        "--to", dest=f"{dest}end", metavar="T", help="its end, as --from (default now)"
    )
    group.add_argument(
        "--step",
        dest="step_ms",
        type=_typed(parse_interval_ms),
        metavar="S",
        help="seconds between frames (default: the targets' scrape interval as the server "
        "reports it, else 15)",
    )
    group.add_argument(
        "--match",
        metavar="SELECTOR",
        help="label matchers narrowing the series, e.g. '{job=\"gpu\"}' (at most 50,000 series)",
    )


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:

    p = commands.add_parser(
        "demo",
        help="record a simulated hour of a cluster with an incident to find, then replay it",
        description=(
            "Simulate a 4-node x 8-GPU cluster for one hour, record it through the real "
            "recorder in seconds, and open the replay. Somewhere in that hour an incident "
            "hides: find it. Press n to go to the next event, or e to list them; play at 8x "
            "(SPACE, then + to speed up), step with ] and [, jump with j/k, and press g to "
            "go to a time. Without a terminal, print the "
            "recording's path and its verify summary."
        ),
    )
    p.add_argument(
        "--no-replay", action="store_true", help="only record and verify, do not open the TUI"
    )
    p.set_defaults(handler="allsmi.app.demo:run")


def _typed_float(parse: Callable[[str], float]) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            return parse(text)
        except UsageError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return convert


def _timecode_arg(text: str) -> str:
    try:
        parse_timecode(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _add_verify(commands: argparse._SubParsersAction[_Parser]) -> None:

    p = commands.add_parser(
        "verify",
        help="check a recording: frames, time span, hosts, gaps, damage",
        description=(
            "Read a recording (a file, or a rotated set by its active name) and report its "
            "segments, frames, first/last time, duration, hosts, gaps longer than twice the "
            "interval, skipped lines, a torn tail and whether a seek table was present. "
            "Exit 0 when clean, 1 when damage was found, 2 when it cannot be read. Several "
            "PATHs, or a directory (each rotated set in it once): each recording verified in "
            "turn under a line naming it, then a merged summary (span, hosts, recordings that "
            "overlap no other, hosts in two at once); the exit status is the worst of them."
        ),
    )
    p.add_argument(
        "path",
        metavar="PATH",
        nargs="+",
        help="the recording (its active file name), several, or a directory of them",
    )
    p.add_argument("--deep", action="store_true", help="also structure every frame")
    p.set_defaults(handler="allsmi.app.verify:run")


def _add_events(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "events",
        help="list what happened in recordings: hosts lost, GPUs gone idle, errors, gaps…",
        description=(
            "Read recordings (a file, or a rotated set by its active name) and print their "
            "events in time order, one a line: host-lost/host-back/flapping, errors/"
            "errors-cleared (by host and kind), util-drop/util-back (a GPU from ≥ 30 % to "
            "≤ 5 % for 30 s, noting memory still allocated), temp-warn/temp-slowdown/"
            "temp-crit/temp-ok, power-drop (a host's GPU power down ≥ 40 % and ≥ 50 W a "
            "GPU within 30 s), gap (no frame for over twice the interval), restart (the "
            "recorder started again), throttle/throttle-end (HW slowdown, thermal, power "
            "brake; SW power cap held ≥ 30 s), xid, ecc, remap (from GPU health signals). "
            "Text: offset, recorded time, host, GPU, kind, message. "
            "Several PATHs are separate recordings, each detected on its own (offsets and "
            "--from/--to from its own first frame), merged in time order; each line then "
            "names its PATH. A directory stands for the recordings in it (each rotated set "
            "once), each line naming its file. Exit 0, or 2 when a recording cannot be read "
            "(or a directory holds none) or a filter is wrong."
        ),
    )
    p.add_argument(
        "path",
        metavar="PATH",
        nargs="+",
        help="a recording (its active file name) or a directory of them; several are "
        "listed merged in time order",
    )
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default), or json: one object per line with t, offset_ms, host, gpu, "
        "kind, message (and file, first, when several PATHs or a directory are given)",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="one PATH only: print its events, then keep printing new ones as the recording "
        "grows (a line as each is confirmed, flushed); an event only the recording's end "
        "would confirm (a gap or power-drop still open) is printed once a later frame "
        "confirms it. Ctrl-C or SIGTERM ends it (exit 0)",
    )
    p.add_argument(
        "--host", action="append", metavar="H", help="only this host (id or name; repeatable)"
    )
    p.add_argument(
        "--kind", action="append", metavar="K", help="only these kinds (comma list; repeatable)"
    )
    p.add_argument(
        "--from",
        dest="start",
        metavar="T",
        help="from T on: HH:MM:SS offset, @HH:MM local time or @2026-04-18T14:32:00Z",
    )
    p.add_argument("--to", dest="end", metavar="T", help="up to T (as --from)")
    p.set_defaults(handler="allsmi.app.events:run")


def _typed(parse: Callable[[str], int]) -> Callable[[str], int]:
    """Wrap a domain parser so argparse reports its UsageError as a usage error."""

    def convert(text: str) -> int:
        try:
            return parse(text)
        except UsageError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = parse.__name__
    return convert


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type for a whole number in ``[low, high]``, saying which bound failed."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    return convert


_port = _whole(0, 65535)
_positive_int = _whole(1)
_non_negative_int = _whole(0)


def _add_interval(p: argparse.ArgumentParser, default: int | None, help_text: str) -> None:
    """``-i/--interval S``: fractional seconds, at least 0.1, kept as ms in ``interval_ms``."""
    p.add_argument(
        "-i",
        "--interval",
        dest="interval_ms",
        type=_typed(parse_interval_ms),
        default=default,
        metavar="S",
        help=help_text,
    )


def _add_hosts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hosts",
        nargs="+",
        metavar="H",
        help="cluster hosts: host:port, or a URL (https:// means TLS, verified against the "
        "system's CAs or $SSL_CERT_FILE)",
    )
    p.add_argument(
        "--hostfile",
        metavar="F",
        help="file with one host per line (host:port or URL); # comments and blanks ignored",
    )
    p.add_argument(
        "--token-file",
        metavar="F",
        help="bearer token for the hosts' exporters (else $ALLSMI_TOKEN; never on the "
        "command line, where ps would show it)",
    )


def _add_include(
    p: argparse.ArgumentParser,
    default: tuple[str, ...] | None = DEFAULT_SECTIONS,
    default_text: str | None = None,
) -> None:
    """``--include``; ``default`` None: the command fills it in (``default_text`` says how)."""
    p.add_argument(
        "--include",
        type=_include_arg,
        default=default,
        metavar="SECTIONS",
        help=include_help(default_text or ",".join(default or ())),
    )


def _add_record(commands: argparse._SubParsersAction[_Parser]) -> None:

    p = commands.add_parser(
        "record",
        help="record the metric stream to a compact, rotated, crash-safe NDJSON file",
        description=(
            "Collect at a fixed rate and write one JSON line per collection into a "
            "zstd/gzip/plain NDJSON file, rotated by size (and age, with --max-age). Every "
            "frame reaches the disk "
            "within a second; SIGTERM, SIGINT or SIGHUP finish the frame, close the file "
            "cleanly and exit 0. Replay with: allsmi view --replay PATH. Every section is "
            "recorded unless --include narrows it, the GPU processes' full command lines "
            "included (--redact-args keeps executable names only)."
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="recording file; .zst → zstd, .gz → gzip, else plain (default "
        "<user cache dir>/allsmi/records/allsmi-<UTC time>.ndjson.zst). An existing file "
        "is rotated aside and numbering continues.",
    )
    _add_interval(p, None, "seconds between collections, fractional, at least 0.1 (default 3)")
    p.add_argument(
        "--duration",
        dest="duration_ms",
        type=_typed(parse_duration_ms),
        default=0,
        metavar="D",
        help="stop after D (30s, 5m, 1h, 1d, 1h30m, bare seconds; default 0 = until signalled)",
    )
    p.add_argument(
        "--source",
        choices=("local", "remote"),
        default="local",
        help="local: this machine (NVML + psutil); remote: scrape --hosts/--hostfile",
    )
    _add_hosts(p)
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="remote: record only the K-th of N shards of the hosts (1/4 … 4/4), chosen by "
        "sha256 of each host's name modulo N — stable on every machine, and every port of "
        "one host in the same shard — so N recorders split a cluster with no coordination; "
        "replay the N files as one with: allsmi view --replay A B C…",
    )
    every = "every section, as the live view shows them; gpu,cpu,memory,chassis with "
    _add_include(p, None, every + "--from-prometheus")
    p.add_argument(
        "--redact-args",
        action="store_true",
        help="record each process's command as its executable's name only (python3, not "
        "/usr/bin/python3 train.py --token=…): by default whole command lines, arguments "
        "and all, reach the disk",
    )
    p.add_argument(
        "--max-size",
        type=_typed(parse_size_bytes),
        default=100 * 1024 * 1024,
        metavar="SIZE",
        help="rotate when the active file stores SIZE bytes (1K, 10M, 2G; 0 = never; default 100M)",
    )
    p.add_argument(
        "--max-files",
        type=_positive_int,
        default=10,
        metavar="N",
        help="keep at most N files of the set, the active one included (default 10)",
    )
    p.add_argument(
        "--max-age",
        dest="max_age_ms",
        type=_typed(parse_max_age_ms),
        default=0,
        metavar="D",
        help="also delete rotated files whose last frame is older than D (1h, 7d, 2d12h; at "
        "least 1m; default 0 = by size and count only); the active file then also rotates "
        "once it spans D/(max-files − 1), so the age is kept in rotated files",
    )
    p.add_argument(
        "--compress",
        choices=("zstd", "gzip", "none"),
        help="codec, overriding the file extension",
    )
    history = p.add_argument_group(
        "from Prometheus",
        "write a window of a Prometheus server's history (or Thanos, Mimir, VictoriaMetrics) "
        "as a recording, instead of collecting: the all-smi metric families it scraped from "
        "allsmi api or all-smi exporters, one frame per step, hosts by their instance label, "
        "a target with up == 0 that host's error",
    )
    history.add_argument(
        "--from-prometheus",
        metavar="URL",
        help="the server: http://HOST:9090 (or prometheus+http://…, https://…; "
        "--token-file for a bearer token)",
    )
    _add_window(history, "the window", dest="")
    p.set_defaults(handler="allsmi.app.record:run")


def _add_status(commands: argparse._SubParsersAction[_Parser]) -> None:
    p = commands.add_parser(
        "status",
        help="is a recording being written, and is its last frame fresh? (for monitoring)",
        description=(
            "Say whether a recorder holds the recording's lock (its pid), the recording's "
            "frames, files and stored bytes, and the age of its last frame. Exit 0 while a "
            "recorder holds the lock and the last frame is younger than three intervals "
            "(at least 3 s); 1 when it is older (stale) or nobody is recording (stopped, "
            "killed); 2 when PATH is not a recording. A zstd set is read by its seek tables, "
            "a gzip or plain one through."
        ),
    )
    p.add_argument("path", metavar="PATH", help="the recording (its active file name)")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (default), or json: one object with path, state (ok, stale, stopped), "
        "pid, frames, files, stored_bytes, last_t, age_ms, interval_ms, stale_after_ms",
    )
    p.set_defaults(handler="allsmi.app.status:run")


def _add_snapshot(commands: argparse._SubParsersAction[_Parser]) -> None:

    p = commands.add_parser(
        "snapshot",
        help="print one reading of this machine (JSON, CSV or Prometheus text)",
        description=(
            "Read this machine once and print it. JSON is one frame of the recording format "
            "(a compact snapshot is a valid one-frame recording). Exit 1 when nothing at all "
            "could be read."
        ),
    )
    p.add_argument(
        "--format",
        choices=("json", "csv", "prometheus"),
        default="json",
        help="output format (default json)",
    )
    _add_include(p)
    p.add_argument("--pretty", action="store_true", help="indent the JSON for reading")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write to PATH (atomically, mode 0600, never through a symlink) instead of stdout",
    )
    p.set_defaults(handler="allsmi.app.snapshot:run")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    target: str | None = getattr(args, "handler", None)
    if target is None:
        _fail(
            "allsmi: error: a command is needed: view, record, verify, events, status, "
            "snapshot, api, mock or demo (see allsmi --help)"
        )
        return 2
    return run_handler(lambda a: _load(target)(_resolve_hosts(a)), args)


def _load(target: str) -> Handler:
    module, _, function = target.partition(":")
    handler: Handler = getattr(importlib.import_module(module), function)
    _settle_collector()
    return handler


def _settle_collector() -> None:
    """Long-running commands allocate tens of thousands of short-lived objects a cycle (a
    cluster frame), all freed by refcounting. Moving what start-up built out of the cycle
    collector's reach, and letting it run every 50,000 rather than 700 allocations, takes it
    from ~6 ms to ~0 of a 100-host cycle (bench/bench_cluster.py); cyclic garbage, which we
    hardly make, is still collected."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


def _resolve_hosts(args: argparse.Namespace) -> argparse.Namespace:
    """Merge ``--hosts`` and ``--hostfile`` into one tuple of scrape targets in ``args.hosts``."""
    if not hasattr(args, "hosts"):
        return args  # commands without a host list (mock's --hostfile is an output)
    hosts = list(args.hosts or ())
    if args.hostfile:
        try:
            text = Path(args.hostfile).read_text()
        except OSError as err:
            raise UsageError(f"cannot read hostfile {args.hostfile}: {err.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"hostfile {args.hostfile} is not text") from None
        listed = parse_hostfile(text, origin=args.hostfile)
        if not listed:  # only comments and blank lines: say so, not "needs --hosts"
            raise UsageError(f"hostfile {args.hostfile} lists no hosts")
        hosts.extend(listed)
    args.hosts = merge_hosts(hosts)
    return args


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command; map every failure to one stderr line and its exit status."""
    try:
        try:
            return handler(args)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from None
    except AllsmiError as err:
        _fail(f"{_prefix(args)}: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        _fail(f"{_prefix(args)}: interrupted")
        return 130
    except BrokenPipeError:
        # `allsmi snapshot | head`: the reader went away; not an error worth a line.
        silence_stdout()
        return 0
    except Exception as err:
        if os.environ.get("ALLSMI_DEBUG"):
            traceback.print_exc()
        _fail(f"{_prefix(args)}: internal error: {type(err).__name__}: {err}")
        return 1


def _prefix(args: argparse.Namespace) -> str:
    """Every error names its command, ``view --replay``'s too: ``allsmi view: …``
    (docs/architecture.md §7.3)."""
    return f"allsmi {args.command}"


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that matters inside a task group's ExceptionGroup (ours first)."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    ours = [e for e in leaves if isinstance(e, AllsmiError)]
    return (ours or leaves)[0]


def _fail(line: str) -> None:
    sys.stderr.write(line.replace("\n", " ") + "\n")
    sys.stderr.flush()
