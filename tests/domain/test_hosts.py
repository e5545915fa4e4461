"""Host lists (hostfile lines, scrape targets, host ids) and host identity: the one name a
host is shown under."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allsmi.domain.errors import UsageError
from allsmi.domain.hosts import (
    HostNames,
    host_ids,
    host_names,
    merge_hosts,
    name_hosts,
    parse_hostfile,
    reported_hostnames,
    scrape_target,
)
from allsmi.domain.model import Chassis, Cpu, Frame, Gpu, Memory

T0 = 1_776_513_600_000


def test_a_hostfile_skips_comments_and_blank_lines() -> None:
    text = "# the rack\n\nn1:9090\n  n2:9090   # spare\nhttp://n3:9090/\n"
    assert parse_hostfile(text) == ("n1:9090", "n2:9090", "n3:9090")


def test_a_hostfile_line_with_two_hosts_names_its_line() -> None:
    with pytest.raises(UsageError, match=re.escape("hosts.txt line 2: 'n2 n3' is not one host")):
        parse_hostfile("n1\nn2 n3\n", origin="hosts.txt")


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("n1:9090", "n1:9090"),
        ("http://n1:9090/", "n1:9090"),
        ("HTTP://n1:9090", "n1:9090"),
        ("https://n1:9443/", "https://n1:9443"),
        ("HTTPS://n1:9443", "https://n1:9443"),
        ("  https://[::1]:9443  ", "https://[::1]:9443"),
    ],
)
def test_https_is_kept_in_the_scrape_target_and_plain_http_is_the_default(
    given: str, target: str
) -> None:
    assert scrape_target(given) == target


def test_targets_are_deduplicated_by_host_id_first_seen_wins() -> None:
    targets = merge_hosts(["https://n1:9443", "n2:1", "n1:9443", "http://n2:1/"])
    assert targets == ("https://n1:9443", "n2:1")
    assert host_ids(targets) == ("n1:9443", "n2:1")


def test_an_empty_host_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="empty host name"):
        merge_hosts(["n1", "https:///"])


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("[::1", "Invalid IPv6 URL"),
        ("n1:9090/a b", "not an address"),
        ("n1:99999", "out of range"),
        ("n1:", "empty port"),
        ("ftp://n1:21", "only http:// and https://"),
        ("nœud:9090", "not an address"),
    ],
)
def test_a_host_that_is_no_address_is_refused_by_name(given: str, reason: str) -> None:
    with pytest.raises(UsageError, match=re.escape(f"host {given!r}")) as refused:
        merge_hosts([given])
    assert reason in str(refused.value)


@pytest.mark.parametrize("given", ["[::1]:9090", "https://[fe80::1]:443", "n1:9090/allsmi"])
def test_ipv6_literals_and_path_prefixes_are_addresses(given: str) -> None:
    assert merge_hosts([given]) == (scrape_target(given),)


def test_a_hostfile_line_that_is_no_address_names_the_file_and_line() -> None:
    with pytest.raises(UsageError, match=re.escape("hosts.txt line 3: host 'n2:99999'")):
        parse_hostfile("# rack 1\nn1:9090\nn2:99999\n", origin="hosts.txt")


# --------------------------------------------------------------------------- identity


def gpu(host_id: str, hostname: str, n: int = 0) -> Gpu:
    return Gpu(f"GPU-{host_id}-{n}", "NVIDIA H200", "GPU", host_id, hostname, hostname)


def cluster(*hosts: tuple[str, str]) -> Frame:
    """A frame where each ``(host_id, hostname)`` reports two GPUs, a CPU and memory."""
    return Frame(
        T0,
        source="remote",
        gpus=tuple(gpu(i, name, n) for i, name in hosts for n in (0, 1)),
        cpus=tuple(Cpu(i, name, name) for i, name in hosts),
        memory=tuple(Memory(i, name, name) for i, name in hosts),
    )


def test_unique_hostnames_are_shown_for_their_ids() -> None:
    names = host_names(cluster(("127.0.0.1:10017", "node-0017"), ("127.0.0.1:10018", "node-0018")))
    assert names.ids == ("127.0.0.1:10017", "127.0.0.1:10018")
    assert names.names == ("node-0017", "node-0018")
    assert names.name("127.0.0.1:10018") == "node-0018"
    assert names.reporting == 2


def test_hosts_reporting_the_same_hostname_are_shown_by_their_ids() -> None:
    frame = cluster(("10.0.0.1:9090", "gpu-box"), ("10.0.0.2:9090", "gpu-box"), ("n3:1", "n3"))
    assert host_names(frame).names == ("10.0.0.1:9090", "10.0.0.2:9090", "n3")


def test_the_local_host_is_shown_by_its_host_name() -> None:
    names = host_names(cluster(("dgx-01", "dgx-01")))
    assert (names.ids, names.names) == (("dgx-01",), ("dgx-01",))


def test_a_host_without_rows_is_shown_by_its_id_expected_hosts_first() -> None:
    frame = cluster(("127.0.0.1:10001", "node-0001"), ("127.0.0.1:10099", "node-0099"))
    names = host_names(frame, expected=("127.0.0.1:10001", "127.0.0.1:10002"))
    assert names.ids == ("127.0.0.1:10001", "127.0.0.1:10002", "127.0.0.1:10099")
    assert names.names == ("node-0001", "127.0.0.1:10002", "node-0099")
    assert names.reporting == 2
    assert names.silent == {"127.0.0.1:10002"}  # its tab is marked failing
    none = host_names(None, expected=("a:1", "b:1"))
    assert none == HostNames({"a:1": "a:1", "b:1": "b:1"}, silent=frozenset({"a:1", "b:1"}))


def test_a_host_whose_rows_disagree_or_report_no_hostname_is_shown_by_its_id() -> None:
    frame = Frame(
        T0,
        gpus=(gpu("a:1", "alpha"), gpu("b:1", "")),
        cpus=(Cpu("a:1", "alpha-2", "alpha-2"),),
        chassis=(Chassis("c:1", "gamma", "gamma"),),
    )
    assert host_names(frame).names == ("a:1", "b:1", "gamma")  # chassis rows count, as in hosts()


def test_a_hostname_that_is_another_hosts_id_is_not_shown() -> None:
    frame = cluster(("10.0.0.1:9090", "10.0.0.2:9090"), ("10.0.0.2:9090", "node-2"))
    assert host_names(frame).names == ("10.0.0.1:9090", "node-2")
    expected_only = host_names(cluster(("10.0.0.1:9090", "node-9")), expected=("node-9",))
    assert expected_only.names == ("node-9", "10.0.0.1:9090")  # node-9 has no rows: its id


def test_a_recordings_names_come_from_all_its_frames() -> None:
    first = cluster(("a:1", "alpha"), ("b:1", "beta"))
    renamed = cluster(("a:1", "alpha"), ("b:1", "beta-new"))
    assert name_hosts(reported_hostnames([first, first])).names == ("alpha", "beta")
    assert name_hosts(reported_hostnames([first, renamed])).names == ("alpha", "b:1")


def test_find_names_a_host_by_display_name_or_id_and_answers_its_id() -> None:
    names = host_names(cluster(("127.0.0.1:10017", "node-0017"), ("x:1", "dup"), ("y:1", "dup")))
    assert names.find("node-0017") == "127.0.0.1:10017"
    assert names.find(" http://127.0.0.1:10017/ ") == "127.0.0.1:10017"
    assert names.find("x:1") == "x:1"
    assert names.find("dup") is None  # two hosts report it: neither is shown under it
    assert names.find("node-0018") is None


def test_display_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="two hosts under one name"):
        HostNames({"a": "same", "b": "same"})


_IDS = st.sampled_from(["a", "b", "c", "a:1", "b:1"])
_HOSTNAMES = st.sampled_from(["", "a", "b", "a:1", "node", "node-2"])


@given(
    reports=st.lists(st.tuples(_IDS, _HOSTNAMES), max_size=12),
    expected=st.lists(_IDS, max_size=4),
)
def test_every_host_has_one_name_and_that_name_finds_it(
    reports: list[tuple[str, str]], expected: list[str]
) -> None:
    frame = Frame(T0, gpus=tuple(gpu(i, name, n) for n, (i, name) in enumerate(reports)))
    names = host_names(frame, expected)
    assert len(set(names.names)) == len(names.ids) == len(set(expected) | set(frame.hosts()))
    for host, shown in zip(names.ids, names.names, strict=True):
        assert names.find(shown) == host
        reported = {name for i, name in reports if i == host}
        assert shown == host or reported == {shown}
