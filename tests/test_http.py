"""The polite client against real servers on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harvester import USER_AGENT
from harvester.http import (
    CrossHostRedirect,
    HttpConnectError,
    HttpPolicy,
    HttpStatusError,
    HttpTimeout,
    NotJson,
    PoliteClient,
    ResponseTooLarge,
    TruncatedBody,
    parse_retry_after,
    redact,
    register_secret,
)
from tests.fakes.servers import FakeServer, Reply, misbehaviour

FAST = HttpPolicy(rate_per_host=0, retries=2, backoff_base_s=0.01, backoff_max_s=0.05, read_timeout_s=0.5,
                  connect_timeout_s=0.5, total_timeout_s=5, max_bytes=100_000)


class Echo(FakeServer):
    def route(self, path, query):
        if path == "/redirect-same":
            return Reply(302, b"", headers={"Location": "/ok"})
        if path == "/redirect-other":
            host_port = self.url.split("://")[1].split(":")[1]
            return Reply(302, b"", headers={"Location": f"http://localhost:{host_port}/ok"})
        return Reply.json({"path": path, "query": query})


@pytest.fixture()
def server():
    with Echo() as srv:
        yield srv


def test_user_agent_and_json(server):
    with PoliteClient(FAST) as client:
        assert client.get_json(f"{server.url}/ok", {"a": 1}) == {"path": "/ok", "query": {"a": "1"}}
    assert server.hits[0].headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("harvest/")


def test_rate_limit_spaces_requests_per_host(server):
    with PoliteClient(HttpPolicy(rate_per_host=10)) as client:
        start = time.monotonic()
        for _ in range(5):
            client.get(f"{server.url}/ok")
        elapsed = time.monotonic() - start
    assert elapsed >= 0.38  # 5 requests at 10/s: 4 gaps of 0.1 s
    assert len(server.hits) == 5
    # (The server's own arrival times are not checked: on a busy machine its thread may note two requests late.)


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_rate_limiter_gives_each_host_its_own_slots(monkeypatch):
    import harvester.http as http_module
    from harvester.http import HostRateLimiter

    clock = _FakeClock()
    monkeypatch.setattr(http_module, "time", clock)
    limiter = HostRateLimiter(rate_per_host=10)
    for _ in range(3):
        limiter.wait("a.example")
    assert clock.sleeps == [0.1, 0.1]  # the first request goes at once, then one every 0.1 s
    limiter.wait("b.example")  # another host is not held up by the first
    assert clock.sleeps == [0.1, 0.1]
    limiter.set_rate("a.example", 2)  # e.g. robots.txt asked for a crawl delay
    clock.now += 0.1  # a's next slot (already booked at 10/s) has come
    limiter.wait("a.example")
    limiter.wait("a.example")
    assert clock.sleeps == [0.1, 0.1, 0.5]


def test_429_retry_after_is_honoured(server):
    server.queue("/busy", misbehaviour("429", retry_after="1"))
    with PoliteClient(FAST) as client:
        assert client.get_json(f"{server.url}/busy")["path"] == "/busy"
    first, second = server.hits_for("/busy")
    assert second.at - first.at >= 0.95


def test_500_retried_then_success(server):
    server.queue("/flaky", misbehaviour("500"), misbehaviour("500"))
    with PoliteClient(FAST) as client:
        assert client.get_json(f"{server.url}/flaky")["path"] == "/flaky"
    assert len(server.hits_for("/flaky")) == 3


def test_500_forever_gives_status_error(server):
    server.queue("/down", *[misbehaviour("500")] * 3)
    with PoliteClient(FAST) as client, pytest.raises(HttpStatusError) as info:
        client.get(f"{server.url}/down")
    assert info.value.status == 500 and "after 3 attempts" in str(info.value)


def test_readme_tells_the_retries_the_final_errors_count(server):
    defaults = HttpPolicy()
    policy = replace(FAST, retries=defaults.retries, connect_retries=defaults.connect_retries)
    server.queue("/down", *[misbehaviour("500")] * (policy.retries + 1))
    with PoliteClient(policy) as client, pytest.raises(HttpStatusError, match=f"after {policy.retries + 1} attempts"):
        client.get(f"{server.url}/down")
    with Echo() as gone:
        url = gone.url
    connect_attempts = policy.connect_retries + 1
    with PoliteClient(policy) as client, pytest.raises(HttpConnectError, match=f"after {connect_attempts} attempts"):
        client.get(f"{url}/x")
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())  # unwrapped
    assert (f"**Retries**: up to {policy.retries} ({policy.retries + 1} attempts in all, as a final error says), "
            f"or {policy.connect_retries} ({connect_attempts} attempts) when the host cannot be reached at all") in readme


def test_404_is_not_retried(server):
    server.queue("/gone", misbehaviour("404"))
    with PoliteClient(FAST) as client, pytest.raises(HttpStatusError) as info:
        client.get(f"{server.url}/gone")
    assert info.value.status == 404 and len(server.hits_for("/gone")) == 1


def test_slow_response_times_out(server):
    server.queue("/slow", *[misbehaviour("slow", slow_s=1.5)] * 3)
    with PoliteClient(FAST) as client, pytest.raises(HttpTimeout, match="timed out"):
        client.get(f"{server.url}/slow")


def test_truncated_body(server):
    server.queue("/cut", *[misbehaviour("truncated")] * 3)
    with PoliteClient(FAST) as client, pytest.raises(TruncatedBody):
        client.get(f"{server.url}/cut")


@pytest.mark.parametrize("kind", ["oversized", "oversized-stream"])
def test_oversized_body_is_capped_while_streaming(server, kind):
    server.queue("/big", misbehaviour(kind))
    with PoliteClient(FAST) as client, pytest.raises(ResponseTooLarge, match="100,000-byte cap"):
        client.get(f"{server.url}/big")


def test_html_where_json_expected(server):
    server.queue("/page", Reply.html("<!DOCTYPE html><html><body>hello</body></html>"))
    with PoliteClient(FAST) as client, pytest.raises(NotJson) as info:
        client.get_json(f"{server.url}/page")
    assert info.value.is_html and "HTML page" in str(info.value)


def test_redirects_same_host_followed_other_host_refused(server):
    with PoliteClient(FAST) as client:
        assert client.get_json(f"{server.url}/redirect-same")["path"] == "/ok"
        with pytest.raises(CrossHostRedirect, match="another host"):
            client.get(f"{server.url}/redirect-other")
    with PoliteClient(HttpPolicy(rate_per_host=0, allow_cross_host_redirects=True)) as client:
        assert client.get_json(f"{server.url}/redirect-other")["path"] == "/ok"


def test_unreachable_host():
    with Echo() as gone:
        url = gone.url
    with PoliteClient(FAST) as client, pytest.raises(HttpConnectError, match="connection to 127.0.0.1 failed"):
        client.get(f"{url}/x")


def test_key_redacted_from_errors_and_logs(server, caplog):
    key = "sk-redact-me-7f3a"
    caplog.set_level(logging.DEBUG)
    server.queue("/api", *[misbehaviour("500")] * 3)
    with PoliteClient(FAST, secrets=[key]) as client, pytest.raises(HttpStatusError) as info:
        client.get(f"{server.url}/api", {"key": key})
    assert key not in str(info.value) and "key=***" in info.value.url
    assert server.hits_for("/api")[0].path.endswith(f"key={key}")  # it was really sent
    assert caplog.records and all(key not in r.getMessage() for r in caplog.records)
    assert any("key=***" in r.getMessage() for r in caplog.records)


def test_redact_forms():
    register_secret("abc-secret")
    assert redact("https://user:pw@host/x?key=abc-secret&b=1") == "https://***@host/x?key=***&b=1"
    assert redact("oops abc-secret") == "oops ***"


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
