"""Where an operator's input may send the worker: never a cloud's metadata service or a link-local
address by default, and only the hosts REGATTA_OUTBOUND_ALLOW names when it is set."""

from __future__ import annotations

import pytest

from regatta.models import ClusterUpgradeInput, PatchWaveInput
from regatta.rules.outbound import outbound_problem, outbound_urls, parse_allow_list


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.10.1:9090",
    "http://[fe80::1]/",
    "http://100.100.100.200/latest/meta-data/",
])
def test_metadata_and_link_local_addresses_are_refused_by_default(url):
    problem = outbound_problem(url, what="callback_url")
    assert problem is not None and "refused" in problem and "callback_url" in problem


def test_a_name_that_resolves_to_the_metadata_address_is_refused_too():
    assert outbound_problem("http://innocent.example/", resolved=["169.254.169.254"]) is not None
    assert outbound_problem("http://innocent.example/", resolved=["203.0.113.7"]) is None


def test_ordinary_receivers_pass_and_nonsense_is_named():
    assert outbound_problem("https://hooks.example.com/regatta") is None
    assert outbound_problem("http://127.0.0.1:9090") is None  # private addresses allowed (the default outside production)
    assert "not an http(s) URL" in outbound_problem("file:///etc/passwd")


def test_an_allow_list_takes_only_what_it_names():
    allowed = parse_allow_list("*.corp.example, 10.20.0.0/16 prometheus.internal")
    assert allowed == ("*.corp.example", "10.20.0.0/16", "prometheus.internal")
    assert outbound_problem("https://ci.corp.example/hook", allowed=allowed) is None
    assert outbound_problem("http://10.20.3.4:9090", allowed=allowed) is None
    assert outbound_problem("http://prometheus.internal:9090", allowed=allowed) is None
    refused = outbound_problem("https://evil.example/hook", allowed=allowed)
    assert refused is not None and "not in REGATTA_OUTBOUND_ALLOW" in refused
    # A network entry holds only when every address the name resolves to is inside it.
    assert outbound_problem("http://10.30.0.1", allowed=allowed) is not None
    # The metadata services and link-local stay closed whatever the list names, by address or by name.
    assert "never calls" in outbound_problem("http://169.254.169.254/", allowed=("169.254.169.254",))
    assert "never calls" in outbound_problem("http://hooks.corp.example/", allowed=allowed, resolved=["169.254.169.254"])


@pytest.mark.parametrize("url", [
    "http://[::ffff:169.254.169.254]/latest/meta-data/",  # IPv4-mapped
    "http://[::ffff:a9fe:a9fe]/",  # the same, written in hex
    "http://[64:ff9b::169.254.169.254]/",  # NAT64
    "http://[64:ff9b:1::a9fe:a9fe]/",  # local-use NAT64
    "http://[::169.254.169.254]/",  # IPv4-compatible
    "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://[fe80::1%25eth0]/",  # link-local with a zone
    "http://0.0.0.0:8700/",
    "http://[::]/",
])
def test_every_ipv6_form_of_a_forbidden_address_is_forbidden(url):
    assert "never calls" in outbound_problem(url, allowed=("*",), what="callback_url")


def test_private_and_loopback_are_off_where_this_installation_says_so_unless_named():
    for url in ("http://127.0.0.1:9090", "http://10.1.2.3/", "http://192.168.1.1/", "http://[::1]/",
                "http://[::ffff:10.0.0.1]/", "http://100.64.0.1/", "http://[fd12::1]/"):
        problem = outbound_problem(url, private_allowed=False)
        assert problem is not None and "REGATTA_OUTBOUND_PRIVATE" in problem, url
        assert outbound_problem(url) is None, url  # where private addresses are allowed (the dev stack)
    # a public name that resolves inside is refused too; naming the network opens it
    assert outbound_problem("http://hooks.example.com/", resolved=["10.20.0.5"], private_allowed=False) is not None
    assert outbound_problem("http://hooks.example.com/", resolved=["10.20.0.5"], private_allowed=False,
                            allowed=("hooks.example.com", "10.20.0.0/16")) is None
    assert outbound_problem("http://[::ffff:8.8.8.8]/", private_allowed=False) is None  # public, however written


def test_every_url_an_input_names_is_found():
    upgrade = ClusterUpgradeInput.model_validate({
        "cluster": "c", "target_version": "1.31", "callback_url": "https://a.example/cb",
        "drain_policies": [{"owner_webhook": "https://b.example/owner"}],
        "health_checks": [{"name": "errors", "prometheus": {"url": "http://prometheus.$cluster:9090", "query": "up",
                                                           "below": 1}}]})
    assert outbound_urls(upgrade) == [("callback_url", "https://a.example/cb"),
                                      ("health_checks[0].prometheus.url", "http://prometheus.cluster:9090"),
                                      ("drain_policies[0].owner_webhook", "https://b.example/owner")]
    wave = PatchWaveInput.model_validate({"name": "w", "target_version": "1.31", "stages": [
        {"name": "canary", "health_checks": [{"name": "e", "prometheus": {"url": "http://169.254.169.254", "query": "up",
                                                                          "below": 1}}]}]})
    assert [where for where, _ in outbound_urls(wave)] == ["stages[0].health_checks[0].prometheus.url"]


@pytest.mark.parametrize(("url", "says"), [
    ("http://metadata.google.internal./computeMetadata/v1/", "never calls"),  # a trailing dot is the same host
    ("https://h\u00f6oks.example/x.git", "ASCII (punycode"),  # what curl resolves must be what was judged
    ("https://hooks.example.com:99999/x", "no valid port"),
    ("https://token:secret@git.example.com/x.git", "credentials in the URL"),
])
def test_spellings_that_would_connect_elsewhere_than_judged_are_refused(url, says):
    problem = outbound_problem(url, allowed=("*",))
    assert problem is not None and says in problem, problem
