"""The SSRF guard: what a webhook URL may point at, checked with a fake resolver."""

from __future__ import annotations

import pytest

from integrations.ssrf import UrlRefused, url_check, url_parse


def resolver(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http:///nohost", "has no host"),
        ("http://example.com/#frag", "fragment"),
        ("http://exa mple.com/", "spaces or control"),
        ("http://example.com:99999/", "not a valid URL"),
        ("", "required"),
    ],
)
def test_syntax_refusals(url: str, message: str) -> None:
    with pytest.raises(UrlRefused, match=message):
        url_parse(url)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "fd00:ec2::254",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    with pytest.raises(UrlRefused, match="only public addresses"):
        url_check("https://hooks.example.com/x", allowed_hosts=[], resolver=resolver(address))


@pytest.mark.parametrize("literal", ["http://127.0.0.1/x", "http://[::1]/x", "http://10.0.0.5/"])
def test_address_literals_are_checked_without_dns(literal: str) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("a literal needs no DNS")

    with pytest.raises(UrlRefused, match="only public addresses"):
        url_check(literal, allowed_hosts=[], resolver=no_dns)


def test_one_internal_address_among_public_ones_is_refused() -> None:
    with pytest.raises(UrlRefused, match=r"10\.0\.0\.7"):
        url_check(
            "https://hooks.example.com/x",
            allowed_hosts=[],
            resolver=resolver("93.184.215.14", "10.0.0.7"),
        )


def test_public_address_passes_and_is_the_one_to_connect_to() -> None:
    target = url_check(
        "https://hooks.example.com:8443/in?x=1",
        allowed_hosts=[],
        resolver=resolver("93.184.215.14"),
    )
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
        "93.184.215.14",
    )
    assert target.host_header == "hooks.example.com:8443"


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "receiver.local"])
def test_allow_list_by_address_network_or_name(entry: str) -> None:
    target = url_check(
        "http://receiver.local:8080/x", allowed_hosts=[entry], resolver=resolver("127.0.0.1")
    )
    assert target.address == "127.0.0.1"


def test_allow_list_of_one_address_does_not_open_others() -> None:
    with pytest.raises(UrlRefused):
        url_check("http://10.0.0.1/x", allowed_hosts=["127.0.0.1"])


def test_unresolvable_host_is_refused() -> None:
    with pytest.raises(UrlRefused, match="does not resolve"):
        url_check("http://no-such-host.invalid/x", allowed_hosts=[])
