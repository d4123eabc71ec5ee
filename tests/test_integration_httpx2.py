"""The httpx2 integration: real httpx2 sync and async clients against a loopback server.

httpx2 has httpx's API; the differential test runs the httpx scenario with httpx2 on
sentry_sdk 2.75 (its ``httpx2`` integration) and on tripwire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _http_scenario import script, shape
from _http_server import Server, crumbs_of, serving, spans_of
from _side_by_side import run_both

import tripwire
from tripwire.integrations.httpx2 import Httpx2Integration
from tripwire.testing import MemoryTransport, reset


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(
        transport=memory, integrations=[Httpx2Integration()], default_integrations=False, **options
    )
    return memory


async def async_get(url: str) -> int:
    async with httpx2.AsyncClient() as client:
        status: int = (await client.get(url)).status_code
        return status


def test_requests_get_spans_breadcrumbs_and_headers(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        with httpx2.Client() as client:
            assert client.get(server.url + "/sync?x=1#frag").status_code == 200
            assert client.get(server.url + "/missing").status_code == 404
            with pytest.raises(httpx2.ConnectError):
                client.get("http://127.0.0.1:9/refused")  # the discard port
        assert asyncio.run(async_get(server.url + "/async")) == 200
        tripwire.capture_message("after")
    sync, missing, refused, in_async = spans_of(memory, "http.client")
    assert sync["description"] == f"GET {server.url}/sync"
    assert {s["origin"] for s in (sync, missing, refused, in_async)} == {"auto.http.httpx2"}
    assert (sync["status"], missing["status"], refused["status"]) == (
        "ok",
        "not_found",
        "internal_error",
    )
    assert sync["data"]["http.query"] == "x=1"
    assert sync["data"]["reason"] == "OK"
    assert [c["data"]["http.response.status_code"] for c in crumbs_of(memory, "httplib")] == [
        200,
        404,
        200,
    ]
    assert [h["sentry-trace"] for h in server.received] == [
        f"{transaction.trace_id}-{sync['span_id']}-1",
        f"{transaction.trace_id}-{missing['span_id']}-1",
        f"{transaction.trace_id}-{in_async['span_id']}-1",
    ]


def test_quiet_without_the_integration_and_reset_undoes_the_patch(server: Server) -> None:
    original = httpx2.Client.send, httpx2.AsyncClient.send
    memory = init(traces_sample_rate=1.0)
    assert httpx2.Client.send is not original[0]
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
    )
    with tripwire.start_transaction(name="tx"):
        with httpx2.Client() as client:
            client.get(server.url + "/p")
    assert spans_of(memory, "http.client") == []
    assert "sentry-trace" not in server.received[0]
    reset()
    assert (httpx2.Client.send, httpx2.AsyncClient.send) == original


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    scenario = (
        script(("httpx",))
        .replace("httpx", "httpx2")
        .replace("HttpxIntegration", "Httpx2Integration")
    )
    sentry, ours = run_both(scenario, tmp_path)
    expected, found = shape(sentry), shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert found["received"] == expected["received"]
    assert len(found["spans"]) == 10
    assert {span["origin"] for span in found["spans"]} == {"auto.http.httpx2"}
