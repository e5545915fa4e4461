"""Merging the frames of several recordings at one instant (docs/architecture.md §5.8), and
the shards a recorder's hosts are split into (``record --shard K/N``).

Rules tested: a host in two parts is taken from the newer part (the later place on a tie)
and reported as shared; an error naming a host goes with that host; an error naming none is
kept from every part; a section is ``None`` only when no part collected it. A target's
shard is sha256 of its host name modulo N — stable across runs and machines, the same for
every port of one host — the N shards partition the targets, and a malformed ``K/N`` is a
usage error.
"""

from __future__ import annotations

import hashlib

import pytest

from allsmi.domain.errors import UsageError
from allsmi.domain.hosts import host_part, parse_shard, select_shard, shard_of
from allsmi.domain.merge import Part, merge_parts
from allsmi.domain.model import Cpu, Frame, Gpu, Memory

T0 = 1_776_513_600_000


def gpu(host: str, uuid: str) -> Gpu:
    return Gpu(
        uuid=uuid, name="H100", device_type="GPU", host_id=host, hostname=host, instance=host
    )


def cpu(host: str, model: str) -> Cpu:
    return Cpu(host_id=host, hostname=host, instance=host, cpu_model=model)


def frame(
    t_ms: int,
    gpus: tuple[Gpu, ...] | None = None,
    *,
    cpus: tuple[Cpu, ...] | None = None,
    errors: tuple[str, ...] = (),
) -> Frame:
    return Frame(t_ms=t_ms, seq=0, source="remote", gpus=gpus, cpus=cpus, errors=errors)


# ----------------------------------------------------------------------------- merge_parts


def test_a_host_in_two_parts_is_taken_from_the_newer() -> None:
    older = frame(T0, (gpu("n1:9090", "old"), gpu("n2:9090", "b")))
    newer = frame(T0 + 500, (gpu("n1:9090", "new"),))
    merged = merge_parts([Part(newer, 0), Part(older, 1)], T0 + 500)
    assert merged.frame.gpus is not None
    assert {g.host_id: g.uuid for g in merged.frame.gpus} == {"n1:9090": "new", "n2:9090": "b"}


def test_a_host_in_two_parts_at_one_time_is_taken_from_the_later_place() -> None:
    first = frame(T0, (gpu("n1:9090", "place 0"),))
    second = frame(T0, (gpu("n1:9090", "place 1"),))
    for parts in ([Part(first, 0), Part(second, 1)], [Part(second, 1), Part(first, 0)]):
        merged = merge_parts(parts, T0)
        assert merged.frame.gpus is not None
        assert [g.uuid for g in merged.frame.gpus] == ["place 1"]


def test_a_host_takes_every_section_from_one_part() -> None:
    older = frame(T0, (gpu("n1:9090", "old"),), cpus=(cpu("n1:9090", "old"),))
    newer = frame(T0 + 1, (gpu("n1:9090", "new"),), cpus=())
    merged = merge_parts([Part(older, 0), Part(newer, 1)], T0 + 1)
    assert merged.frame.gpus is not None
    assert [g.uuid for g in merged.frame.gpus] == ["new"]
    assert merged.frame.cpus == ()  # the newer part collected cpus and has none for n1


def test_an_error_naming_a_host_goes_with_that_host() -> None:
    hosts = ("n1:9090", "n2:9090")
    older = frame(T0, (gpu("n1:9090", "old"),), errors=("n2:9090: timeout after 2 s",))
    newer = frame(T0 + 1, (gpu("n2:9090", "new"),), errors=("http://n1:9090/: connection refused",))
    merged = merge_parts([Part(older, 0), Part(newer, 1)], T0 + 1, hosts=hosts)
    # n1's newest word is the newer part's error; n2's is the newer part's rows
    assert merged.frame.gpus is not None
    assert [g.host_id for g in merged.frame.gpus] == ["n2:9090"]
    assert merged.frame.errors == ("http://n1:9090/: connection refused",)
    assert set(merged.shared) == {"n1:9090", "n2:9090"}


def test_an_error_naming_a_host_only_in_the_headers_still_follows_it() -> None:
    older = frame(T0, errors=("n3:9090: timeout after 2 s",))
    newer = frame(T0 + 1, errors=("n3:9090: HTTP 503",))
    merged = merge_parts([Part(newer, 0), Part(older, 1)], T0 + 1, hosts=("n3:9090",))
    assert merged.frame.errors == ("n3:9090: HTTP 503",)
    assert merged.shared == ("n3:9090",)


def test_an_error_naming_no_host_is_kept_from_every_part() -> None:
    lines = ("gpu collector failed: NVML not loaded", "cpu collector failed: no /proc")
    first = frame(T0, (gpu("n1:9090", "a"),), errors=(lines[0],))
    second = frame(T0 + 1, (gpu("n1:9090", "b"),), errors=(lines[1],))
    merged = merge_parts([Part(first, 0), Part(second, 1)], T0 + 1, hosts=("n1:9090",))
    assert merged.frame.errors == lines


def test_a_section_collected_by_no_part_stays_not_collected() -> None:
    first = frame(T0, (gpu("n1:9090", "a"),))
    second = frame(T0, (gpu("n2:9090", "b"),), cpus=())
    merged = merge_parts([Part(first, 0), Part(second, 1)], T0)
    assert merged.frame.memory is None
    assert merged.frame.processes is None
    assert merged.frame.cpus == ()  # collected by one part, empty there


def test_the_merged_frame_carries_the_time_seq_and_source_given() -> None:
    merged = merge_parts([Part(frame(T0), 0)], T0 + 7, seq=41, source="local")
    assert (merged.frame.t_ms, merged.frame.seq, merged.frame.source) == (T0 + 7, 41, "local")


def test_hosts_in_more_than_one_part_are_reported_once_each() -> None:
    a = frame(T0, (gpu("n1:9090", "a1"), gpu("n1:9090", "a2"), gpu("n2:9090", "x")))
    b = frame(T0 + 1, (gpu("n1:9090", "b"),))
    c = frame(T0 + 2, (gpu("n1:9090", "c"), gpu("n3:9090", "y")))
    merged = merge_parts([Part(a, 0), Part(b, 1), Part(c, 2)], T0 + 2)
    assert merged.shared == ("n1:9090",)
    assert merged.frame.gpus is not None
    assert [g.uuid for g in merged.frame.gpus] == ["x", "c", "y"]


def test_hosts_in_one_part_each_are_not_reported() -> None:
    a = frame(T0, (gpu("n1:9090", "a"),))
    b = frame(T0 + 1, (gpu("n2:9090", "b"),))
    assert merge_parts([Part(a, 0), Part(b, 1)], T0 + 1).shared == ()


# ----------------------------------------------------------------------------- shards


@pytest.mark.parametrize(
    ("text", "shard"),
    [
        ("1/4", (1, 4)),
        ("4/4", (4, 4)),
        ("1/1", (1, 1)),
        (" 2 / 3 ", (2, 3)),
        ("7/65536", (7, 65536)),
    ],
)
def test_a_shard_reads_as_k_of_n(text: str, shard: tuple[int, int]) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "expected K/N"),
        ("2", "expected K/N"),
        ("/", "expected K/N"),
        ("1/", "expected K/N"),
        ("/4", "expected K/N"),
        ("a/b", "expected K/N"),
        ("1/4/2", "expected K/N"),
        ("-1/4", "expected K/N"),
        ("+1/4", "expected K/N"),
        ("1.5/4", "expected K/N"),
        ("1:4", "expected K/N"),
        ("0/4", "K must be 1..4"),
        ("5/4", "K must be 1..4"),
        ("1/0", "N must be 1..65536"),
        ("1/65537", "N must be 1..65536"),
        ("²/4", "expected K/N"),
        ("１/４", "expected K/N"),
        ("1/" + "9" * 5000, "N must be 1..65536"),
        ("9" * 5000 + "/4", "K must be 1..4"),
    ],
)
def test_a_malformed_shard_is_a_usage_error_saying_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        parse_shard(text)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("--shard ")


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("https://GPU-01:9400/", "gpu-01"),
        ("gpu-01:9100", "gpu-01"),
        ("GPU-01", "gpu-01"),
        ("http://gpu-01:9400/metrics", "gpu-01"),
        ("[::1]:9100", "::1"),
        ("10.0.0.7:9090", "10.0.0.7"),
    ],
)
def test_a_targets_host_part_drops_scheme_port_path_and_case(target: str, host: str) -> None:
    assert host_part(target) == host


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 64, 65_536])
@pytest.mark.parametrize("target", ["gpu-01:9400", "https://DGX-07:9100/", "[fe80::1]:9090"])
def test_a_targets_shard_is_sha256_of_its_host_modulo_n(target: str, shards: int) -> None:
    # computed here, not with the module's helpers: the first 8 bytes of sha256 of the host
    # name, big-endian, modulo N, counted from 1 (docs/architecture.md §5.8 — a stable contract)
    name = {"gpu-01:9400": "gpu-01", "https://DGX-07:9100/": "dgx-07", "[fe80::1]:9090": "fe80::1"}
    digest = hashlib.sha256(name[target].encode("utf-8")).hexdigest()
    assert shard_of(target, shards) == int(digest[:16], 16) % shards + 1


def test_every_port_of_one_host_lands_in_one_shard() -> None:
    hosts = [f"node-{n:02d}" for n in range(40)]
    for shards in (2, 3, 5, 16):
        for host in hosts:
            ports = [f"{host}:9400", f"{host}:9100", f"http://{host.upper()}:9090/", host]
            assert len({shard_of(p, shards) for p in ports}) == 1, (host, shards)


def test_the_shards_of_n_partition_the_targets_in_their_order() -> None:
    targets = [f"node-{n:03d}:{port}" for n in range(60) for port in (9400, 9100)]
    for shards in (1, 2, 3, 8, 61):
        split = [select_shard(targets, k, shards) for k in range(1, shards + 1)]
        assert sorted(t for part in split for t in part) == sorted(targets)
        assert sum(len(part) for part in split) == len(targets)  # no target in two shards
        for part in split:
            assert list(part) == [t for t in targets if t in part]  # given order kept
    two = [select_shard(targets, k, 2) for k in (1, 2)]
    assert all(two), "60 hosts in 2 shards leave neither empty"


# --------------------------------------------------------------------------- pairs


def test_a_pairs_second_target_giving_a_section_its_partner_gives_keeps_its_own_id() -> None:
    from allsmi.domain.hosts import claim_rows

    given: dict[tuple[str, str], str] = {}
    first = [Memory(host_id="n1:9400", hostname="n1", instance="n1", used_bytes=1)]
    second = [Memory(host_id="n1:9400", hostname="n1", instance="n1", used_bytes=2)]
    assert claim_rows(given, "n1:9400", False, "memory", list(first)) == first
    kept = claim_rows(given, "n1:9401", True, "memory", list(second))
    assert [(m.host_id, m.used_bytes) for m in kept] == [("n1:9401", 2)]  # nothing dropped
    # a real pair: the partner gives another section, the rows keep the pair's id
    cpu_rows = claim_rows(given, "n1:9401", True, "cpus", [Cpu("n1:9400", "n1", "n1")])
    assert [c.host_id for c in cpu_rows] == ["n1:9400"]
