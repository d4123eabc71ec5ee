"""The httpx integration: real sync and async clients against a loopback server.

The server records the trace headers it received. The differential test runs one
script on sentry_sdk 2.75 and on tripwire, each in its own interpreter (their httpx
integrations patch httpx for the whole process).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _http_scenario import script, shape
from _http_server import Server, crumbs_of, serving, spans_of
from _side_by_side import run_both

import tripwire
from tripwire.integrations.httpx import HttpxIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import httpx


@pytest.fixture(autouse=True, scope="module")
def _httpx() -> None:
    """HTTPX is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global httpx
    import httpx


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(
        transport=memory, integrations=[HttpxIntegration()], default_integrations=False, **options
    )
    return memory


def no_thread(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("thread.")}


async def async_get(url: str, **kwargs: Any) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(url, **kwargs)).status_code


def test_sync_and_async_requests_get_spans_breadcrumbs_and_headers(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx", op="test") as transaction:
        with httpx.Client() as client:
            assert client.get(server.url + "/sync?x=1#frag").status_code == 200
        assert asyncio.run(async_get(server.url + "/async?y=2")) == 200
        tripwire.capture_message("after")

    first, second = spans_of(memory, "http.client")
    for span, path, query, fragment in (
        (first, "/sync", "x=1", "frag"),
        (second, "/async", "y=2", ""),
    ):
        url = server.url + path
        assert span["description"] == f"GET {url}"
        assert span["origin"] == "auto.http.httpx"
        assert span["status"] == "ok"
        assert span["tags"] == {"http.status_code": "200", "status": "ok"}
        assert list(no_thread(span["data"]).items()) == [
            ("http.method", "GET"),
            ("url", url),
            ("http.query", query),
            ("http.fragment", fragment),
            ("http.response.status_code", 200),
            ("reason", "OK"),
        ]
    crumbs = crumbs_of(memory, "httplib")
    assert [c["type"] for c in crumbs] == ["http", "http"]
    assert list(crumbs[0]["data"].items()) == [
        ("http.method", "GET"),
        ("http.response.status_code", 200),
        ("reason", "OK"),
        ("url", server.url + "/sync"),
        ("http.query", "x=1"),
        ("http.fragment", "frag"),
    ]
    assert [h["sentry-trace"] for h in server.received] == [
        f"{transaction.trace_id}-{first['span_id']}-1",
        f"{transaction.trace_id}-{second['span_id']}-1",
    ]
    for headers in server.received:
        assert headers["baggage"].startswith(f"sentry-trace_id={transaction.trace_id},")
        assert "sentry-transaction=tx" in headers["baggage"]


def test_error_status_and_no_response(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        with httpx.Client() as client:
            assert client.get(server.url + "/missing").status_code == 404
            assert client.get(server.url + "/fail").status_code == 503
            with pytest.raises(httpx.ConnectError):
                client.get("http://127.0.0.1:9/refused")  # the discard port
        tripwire.capture_message("after")

    missing, fail, refused = spans_of(memory, "http.client")
    assert (missing["status"], fail["status"]) == ("not_found", "unavailable")
    assert refused["status"] == "internal_error"
    assert refused["tags"] == {"status": "internal_error"}
    assert "http.response.status_code" not in refused["data"]
    # No breadcrumb for a request that got no response.
    assert [c.get("level") for c in crumbs_of(memory, "httplib")] == ["warning", "error"]


def test_credentials_filtered_and_existing_baggage_kept(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    port = server.server_address[1]
    with tripwire.start_transaction(name="tx") as transaction:
        with httpx.Client() as client:
            client.get(
                f"http://user:secret@127.0.0.1:{port}/p",
                headers={"baggage": "other=1,sentry-trace_id=stale"},
            )

    (span,) = spans_of(memory, "http.client")
    assert span["description"] == f"GET http://[Filtered]:[Filtered]@127.0.0.1:{port}/p"
    assert "secret" not in str(span)
    (headers,) = server.received
    baggage = headers["baggage"].split(",")
    assert baggage[0] == "other=1"
    assert f"sentry-trace_id={transaction.trace_id}" in baggage
    assert "sentry-trace_id=stale" not in baggage


def test_no_headers_outside_targets_or_to_the_dsn_host(server: Server) -> None:
    memory = init(traces_sample_rate=1.0, trace_propagation_targets=["elsewhere.example"])
    with tripwire.start_transaction(name="tx"):
        with httpx.Client() as client:
            client.get(server.url + "/not-a-target")
    init(traces_sample_rate=1.0, dsn=f"http://key@127.0.0.1:{server.server_address[1]}/1")
    with tripwire.start_transaction(name="tx"):
        asyncio.run(async_get(server.url + "/dsn-host"))
    assert [("sentry-trace" in h, "baggage" in h) for h in server.received] == [(False, False)] * 2
    assert len(spans_of(memory, "http.client")) == 1


def test_without_tracing_the_propagation_context_is_sent(server: Server) -> None:
    init()
    with httpx.Client() as client:
        client.get(server.url + "/p")
    trace_id = tripwire.get_current_scope().get_trace_context()["trace_id"]
    (headers,) = server.received
    assert headers["sentry-trace"].startswith(trace_id + "-")
    assert headers["sentry-trace"].count("-") == 1  # no sampling decision


def test_inactive_without_the_integration_and_reset_undoes_the_patch(server: Server) -> None:
    original_sync, original_async = httpx.Client.send, httpx.AsyncClient.send
    memory = init(traces_sample_rate=1.0)
    assert httpx.Client.send is not original_sync
    assert httpx.AsyncClient.send is not original_async
    # A client without the integration: httpx runs as unpatched.
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
    )
    with tripwire.start_transaction(name="tx"):
        with httpx.Client() as client:
            client.get(server.url + "/p")
        tripwire.capture_message("after")
    assert spans_of(memory, "http.client") == []
    assert "breadcrumbs" not in memory.events[0] or crumbs_of(memory, "httplib") == []
    assert "sentry-trace" not in server.received[0]
    reset()
    assert httpx.Client.send is original_sync
    assert httpx.AsyncClient.send is original_async


def test_import_tripwire_does_not_import_httpx() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.httpx import HttpxIntegration\n"
        "from tripwire.integrations.aiohttp import AioHttpIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', "
        "integrations=[HttpxIntegration(), AioHttpIntegration()])\n"
        "assert 'httpx' not in sys.modules and 'aiohttp' not in sys.modules\n"
        "import httpx, aiohttp\n"
        "assert getattr(httpx.Client.send, '__tripwire_httpx__', False)\n"
        "assert getattr(aiohttp.ClientSession.__init__, '__tripwire_aiohttp__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(script(("httpx",)), tmp_path)
    expected, found = shape(sentry), shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert found["received"] == expected["received"]
    assert len(found["spans"]) == 10  # 3 transactions x (sync, 404, async) + refused
