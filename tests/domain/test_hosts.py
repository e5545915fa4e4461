"""Host lists: hostfile lines, scrape targets and host ids."""

from __future__ import annotations

import re

import pytest

from allsmi.domain.errors import UsageError
from allsmi.domain.hosts import host_ids, merge_hosts, parse_hostfile, scrape_target


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
