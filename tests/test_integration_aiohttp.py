"""The aiohttp integration, client side: a real `ClientSession` against a loopback server.

The server records the trace headers it received. The differential test runs one
script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _http_scenario import script, shape
from _http_server import Server, crumbs_of, serving, spans_of
from _side_by_side import run_both

import tripwire
from tripwire.integrations.aiohttp import AioHttpIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import aiohttp


@pytest.fixture(autouse=True, scope="module")
def _aiohttp() -> None:
    """aiohttp is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global aiohttp
    import aiohttp


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(
        transport=memory, integrations=[AioHttpIntegration()], default_integrations=False, **options
    )
    return memory


async def fetch(*urls: str, **kwargs: Any) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url, **kwargs) as response:
                await response.read()
                statuses.append(response.status)
    return statuses


def test_requests_get_spans_breadcrumbs_and_headers(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx", op="test") as transaction:
        urls = (server.url + "/p?x=1#frag", server.url + "/missing", server.url + "/fail")
        assert asyncio.run(fetch(*urls)) == [200, 404, 503]
        tripwire.capture_message("after")

    ok, missing, fail = spans_of(memory, "http.client")
    url = server.url + "/p"
    assert ok["description"] == f"GET {url}"
    assert ok["origin"] == "auto.http.aiohttp"
    assert ok["tags"] == {"http.status_code": "200", "status": "ok"}
    data = {k: v for k, v in ok["data"].items() if not k.startswith("thread.")}
    assert list(data.items()) == [
        ("http.method", "GET"),
        ("url", url),
        ("http.query", "x=1"),
        ("http.fragment", "frag"),
        ("http.response.status_code", 200),
        ("reason", "OK"),
    ]
    assert (missing["status"], fail["status"]) == ("not_found", "unavailable")
    crumbs = crumbs_of(memory, "httplib")
    assert list(crumbs[0]["data"].items()) == [
        ("http.query", "x=1"),
        ("http.fragment", "frag"),
        ("url", url),
        ("http.method", "GET"),
        ("http.response.status_code", 200),
        ("reason", "OK"),
    ]
    assert [c.get("level") for c in crumbs] == [None, "warning", "error"]
    assert [h["sentry-trace"] for h in server.received] == [
        f"{transaction.trace_id}-{span['span_id']}-1" for span in (ok, missing, fail)
    ]
    assert "sentry-transaction=tx" in server.received[0]["baggage"]


def test_callers_trace_headers_are_kept_and_other_baggage_appended(server: Server) -> None:
    init(traces_sample_rate=1.0)
    theirs = "00000000000000000000000000000001-0000000000000001-1"
    with tripwire.start_transaction(name="tx") as transaction:
        asyncio.run(fetch(server.url + "/a", headers={"sentry-trace": theirs}))
        asyncio.run(fetch(server.url + "/b", headers={"baggage": "other=1"}))
        asyncio.run(fetch(server.url + "/c", headers={"baggage": "sentry-trace_id=x"}))

    first, second, third = server.received
    assert first["sentry-trace"] == theirs
    assert second["baggage"].startswith(f"other=1,sentry-trace_id={transaction.trace_id},")
    assert third["baggage"] == "sentry-trace_id=x"
    assert third["sentry-trace"].startswith(transaction.trace_id)


def test_no_response_leaves_no_span_and_no_breadcrumb(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        with pytest.raises(aiohttp.ClientConnectionError):
            asyncio.run(fetch("http://127.0.0.1:9/refused"))  # the discard port
        tripwire.capture_message("after")
    assert spans_of(memory, "http.client") == []  # as sentry_sdk: the span is never finished
    assert "breadcrumbs" not in memory.events[0] or crumbs_of(memory, "httplib") == []


def test_no_headers_outside_targets_or_to_the_dsn_host(server: Server) -> None:
    init(traces_sample_rate=1.0, trace_propagation_targets=["elsewhere.example"])
    with tripwire.start_transaction(name="tx"):
        asyncio.run(fetch(server.url + "/not-a-target"))
    init(traces_sample_rate=1.0, dsn=f"http://key@127.0.0.1:{server.server_address[1]}/1")
    with tripwire.start_transaction(name="tx"):
        asyncio.run(fetch(server.url + "/dsn-host"))
    assert [("sentry-trace" in h, "baggage" in h) for h in server.received] == [(False, False)] * 2


def test_inactive_without_the_integration_and_reset_undoes_the_patch(server: Server) -> None:
    original = aiohttp.ClientSession.__init__
    memory = init(traces_sample_rate=1.0)
    assert aiohttp.ClientSession.__init__ is not original
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
    )

    async def trace_configs() -> int:
        async with aiohttp.ClientSession() as session:
            return len(session.trace_configs)

    with tripwire.start_transaction(name="tx"):
        assert asyncio.run(trace_configs()) == 0
        asyncio.run(fetch(server.url + "/p"))
    assert spans_of(memory, "http.client") == []
    assert "sentry-trace" not in server.received[0]
    reset()
    assert aiohttp.ClientSession.__init__ is original


def test_constructor_options_as_sentry_sdk() -> None:
    integration = AioHttpIntegration()
    assert integration.transaction_style == "handler_name"
    assert integration._failed_request_status_codes == frozenset(range(500, 600))
    custom = AioHttpIntegration("method_and_path_pattern", failed_request_status_codes={418})
    assert custom.transaction_style == "method_and_path_pattern"
    assert custom._failed_request_status_codes == {418}
    with pytest.raises(ValueError, match="transaction_style"):
        AioHttpIntegration(transaction_style="url")
    with pytest.raises(TypeError):
        AioHttpIntegration("handler_name", {500})  # type: ignore[misc]
    assert "server-side transactions" in (AioHttpIntegration.__doc__ or "").replace("\n", " ")


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(script(("aiohttp",)), tmp_path)
    expected, found = shape(sentry), shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert found["received"] == expected["received"]
    assert len(found["spans"]) == 6  # 3 transactions x (GET, POST 501)
