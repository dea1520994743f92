"""The SSRF address policy (streams.domain.outbound): every spelling of a forbidden address."""

from __future__ import annotations

import pytest

from streams.config import Settings
from streams.domain.outbound import (
    check_outbound_url,
    is_allowed_host,
    mask_url,
    parse_address,
    refused_address,
)
from streams.errors import ConfigurationError, OutboundRefused

FORBIDDEN = [
    ("127.0.0.1", "loopback"), ("2130706433", "loopback"), ("0x7f000001", "loopback"),
    ("0X7F000001", "loopback"), ("0177.0.0.1", "loopback"), ("0177.0.0.01", "loopback"),
    ("127.1", "loopback"), ("127.0.1", "loopback"), ("0x7f.1", "loopback"), ("127.0.0.1.", "loopback"),
    ("[::1]", "loopback"), ("[0:0:0:0:0:0:0:1]", "loopback"), ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:7f00:1]", "loopback"), ("[64:ff9b::7f00:1]", "loopback"), ("[2002:7f00:1::]", "loopback"),
    ("169.254.169.254", "link-local"), ("2852039166", "link-local"), ("0xa9fea9fe", "link-local"),
    ("[::ffff:169.254.169.254]", "link-local"), ("[fe80::1%25eth0]", "link-local"),
    ("10.0.0.1", "private"), ("012.0.0.1", "private"), ("172.16.5.4", "private"),
    ("192.168.1.1", "private"), ("[fc00::1]", "private"), ("[::ffff:10.1.2.3]", "private"),
    ("224.0.0.1", "multicast"), ("[ff02::1]", "multicast"),
    ("0.0.0.0", "unspecified"), ("0", "unspecified"), ("[::]", "unspecified"),
    ("240.0.0.1", "private"), ("[::7f00:1]", "reserved"), ("100.64.0.1", "not public"),
]


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN)
def test_every_spelling_of_a_forbidden_address_is_refused(host: str, reason: str) -> None:
    address = parse_address(host.replace("%25", "%"))
    assert address is not None and refused_address(address) == reason
    for url in (f"http://{host}/hook", f"https://{host}:5432/x", f"http://user:pw@{host}/"):
        with pytest.raises(OutboundRefused, match=reason):
            check_outbound_url(url, ())


@pytest.mark.parametrize("url", ["http://localhost:6066/data-pipeline/pipeline/setup",
                                 "http://LOCALHOST./x", "http://api.localhost/x"])
def test_names_of_this_machine_are_refused(url: str) -> None:
    with pytest.raises(OutboundRefused, match="names this machine"):
        check_outbound_url(url, ())


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "http:///nohost",
                                 "http://example.org:99999/"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_outbound_url(url, ())


@pytest.mark.parametrize("url", ["https://hooks.example.org/notify", "http://8.8.8.8/x",
                                 "http://[2001:4860:4860::8888]/x", "http://134744072/x"])
def test_public_hosts_pass(url: str) -> None:
    check_outbound_url(url, ())


def test_the_allow_list_opens_exactly_its_hosts() -> None:
    allow = ("127.0.0.1", "Hooks.Internal")
    check_outbound_url("http://127.0.0.1:9000/hook", allow)
    check_outbound_url("http://2130706433:9000/hook", allow)  # the same address, spelled otherwise
    check_outbound_url("http://hooks.internal./x", allow)
    assert is_allowed_host("[::ffff:127.0.0.1]", allow) is False  # another address family
    for url in ("http://127.0.0.2/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(OutboundRefused):
            check_outbound_url(url, allow)


def test_host_names_are_left_to_the_check_after_dns() -> None:
    assert parse_address("hooks.example.org") is None
    assert parse_address("1.2.3.4.5") is None and parse_address("256.1.1.1") is None


def test_openlineage_url_is_checked_when_settings_load() -> None:
    with pytest.raises(ConfigurationError, match="loopback"):
        Settings(dev_mode=True, openlineage_url="http://0x7f000001:5000")
    with pytest.raises(ConfigurationError, match="link-local"):
        Settings(dev_mode=True, openlineage_url="http://169.254.169.254/")
    allowed = Settings(dev_mode=True, openlineage_url="http://127.0.0.1:5000",
                       outbound_allow_hosts="127.0.0.1, marquez.internal")
    assert allowed.outbound_allow_host_list == ("127.0.0.1", "marquez.internal")


@pytest.mark.parametrize(("url", "masked"), [
    ("https://u:p@hooks.example.com:8443/x?token=abc&team=1#frag",
     "https://***@hooks.example.com:8443/x?token=***&team=***#***"),
    ("https://hooks.example.com/x", "https://hooks.example.com/x"),
    ("https://only-user@h.example.com/", "https://***@h.example.com/"),
    ("https://[2001:db8::1]:9000/h?k=v", "https://[2001:db8::1]:9000/h?k=***"),
])
def test_mask_url_cases(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_masking_hides_credentials_and_query_values() -> None:
    masked = mask_url("https://bot:s3cret@hooks.example.org/notify?token=abc123&tag=x#frag")
    assert masked == "https://***@hooks.example.org/notify?token=***&tag=***#***"
    assert "s3cret" not in masked and "abc123" not in masked
    assert mask_url("https://hooks.example.org/notify") == "https://hooks.example.org/notify"
