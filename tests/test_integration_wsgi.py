"""SentryWsgiMiddleware around plain WSGI applications, driven by werkzeug's test client.

What is asserted is what reaches the transport: the error events (request part under
the PII rules, mechanism, the request's own tags), the `http.server` transactions
(name, source, status, continued trace) and the request-mode session aggregates.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from werkzeug.test import Client

import tripwire
from tripwire.integrations.wsgi import (
    SentryWsgiMiddleware,
    _ScopedResponse,
    get_client_ip,
    get_request_url,
    wsgi_decoding_dance,
)
from tripwire.testing import MemoryTransport

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"
DSN = "http://key@example.com/1"

StartResponse = Callable[..., Any]


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("dsn", DSN)
    tripwire.init(transport=memory, default_integrations=False, **options)
    return memory


def client_of(app: Any) -> Client:
    """werkzeug's test client, sending the Cookie header as given (no cookie jar)."""
    return Client(app, use_cookies=False)


def hello(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    tripwire.set_tag("path", environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def boom(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    tripwire.set_tag("path", environ["PATH_INFO"])
    raise ValueError("boom")


def not_found(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    start_response("404 Not Found", [])
    return [b""]


def test_unhandled_error_has_the_request_and_is_re_raised() -> None:
    memory = init()
    client = client_of(SentryWsgiMiddleware(boom))
    with pytest.raises(ValueError, match="boom"):
        client.get(
            "/p/x?a=1",
            headers={
                "Authorization": "Bearer s3cret",
                "X-Forwarded-For": "10.0.0.1",
                "User-Agent": "ua",
            },
            environ_overrides={"HTTP_COOKIE": "sid=1", "REMOTE_ADDR": "192.0.2.7"},
        )
    (event,) = memory.events
    (exception,) = event["exception"]["values"]
    assert exception["mechanism"] == {"type": "wsgi", "handled": False}
    assert event["tags"] == {"path": "/p/x"}
    assert event["transaction"] == "generic WSGI request"
    assert event["transaction_info"] == {"source": "route"}
    request = event["request"]
    assert request["url"] == "http://localhost/p/x"
    assert request["method"] == "GET"
    assert request["query_string"] == "a=1"
    assert request["env"] == {"SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    headers = request["headers"]
    assert headers["User-Agent"] == "ua"
    assert headers["Host"] == "localhost"
    # Without send_default_pii: credentials, cookies and the client's address removed.
    # (sentry_sdk leaves X-Forwarded-For "" marked "x"; tripwire's scrubber then
    # substitutes it, as any value under a sensitive key.)
    for name in ("Authorization", "Cookie", "X-Forwarded-For"):
        assert headers[name] == "[Filtered]"
        assert event["_meta"]["request"]["headers"][name] == {"": {"rem": [["!config", "s"]]}}
    assert "s3cret" not in str(event) and "10.0.0.1" not in str(event)
    assert "192.0.2.7" not in str(event)
    assert "user" not in event
    # Nothing set while serving leaked into the scope outside.
    assert "path" not in tripwire.get_isolation_scope()._tags


def test_with_pii_the_ip_headers_and_remote_addr_are_sent() -> None:
    memory = init(send_default_pii=True)
    client = client_of(SentryWsgiMiddleware(boom))
    with pytest.raises(ValueError):
        client.get(
            "/",
            headers={"X-Forwarded-For": "10.0.0.1, 10.0.0.2"},
            environ_overrides={"HTTP_COOKIE": "sid=1", "REMOTE_ADDR": "192.0.2.1"},
        )
    with pytest.raises(ValueError):
        client.get("/", headers={"X-Real-Ip": "10.0.0.9"})
    with pytest.raises(ValueError):
        client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    first, second, third = memory.events
    assert first["user"] == {"ip_address": "10.0.0.1"}
    assert first["request"]["headers"]["X-Forwarded-For"] == "10.0.0.1, 10.0.0.2"
    assert first["request"]["env"]["REMOTE_ADDR"] == "192.0.2.1"
    # The default scrubber still filters credentials, as sentry_sdk's does.
    assert first["request"]["headers"]["Cookie"] == "[Filtered]"
    assert second["user"] == {"ip_address": "10.0.0.9"}
    assert third["user"] == {"ip_address": "192.0.2.7"}


def test_a_user_set_in_the_app_keeps_its_own_ip() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        tripwire.set_user({"id": "7", "ip_address": "203.0.113.5"})
        raise ValueError("boom")

    memory = init(send_default_pii=True)
    with pytest.raises(ValueError):
        client_of(SentryWsgiMiddleware(app)).get("/")
    assert memory.events[0]["user"] == {"id": "7", "ip_address": "203.0.113.5"}


def test_data_collection_filters_the_query_and_headers() -> None:
    memory = init(data_collection={"url_query_params": {"mode": "denylist", "terms": ["q"]}})
    with pytest.raises(ValueError):
        client_of(SentryWsgiMiddleware(boom)).get(
            "/?q=secret&page=2&token=t",
            headers={"X-Api-Key": "k"},
            environ_overrides={"HTTP_COOKIE": "a=1", "REMOTE_ADDR": "192.0.2.1"},
        )
    request = memory.events[0]["request"]
    assert request["query_string"] == "q=%5BFiltered%5D&page=2&token=%5BFiltered%5D"
    assert request["headers"]["X-Api-Key"] == "[Filtered]"
    assert request["headers"]["Cookie"] == "[Filtered]"
    # data_collection's user_info defaults to on: the peer goes with the event.
    assert memory.events[0]["user"] == {"ip_address": "192.0.2.1"}


def test_transaction_per_request_with_status_and_continued_trace() -> None:
    memory = init(traces_sample_rate=1.0)
    client = client_of(SentryWsgiMiddleware(hello, span_origin="auto.http.test"))
    response = client.get(
        "/a",
        headers={
            "sentry-trace": f"{TRACE_ID}-{PARENT}-1",
            "baggage": f"sentry-trace_id={TRACE_ID},sentry-sample_rand=0.5,other=x",
        },
    )
    assert response.data == b"hello"
    client_of(SentryWsgiMiddleware(not_found)).get("/missing")
    first, second = memory.transactions
    assert first["transaction"] == "generic WSGI request"
    assert first["transaction_info"] == {"source": "route"}
    trace = first["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.test",
        "ok",
    )
    assert trace["data"]["http.response.status_code"] == 200
    assert first["tags"] == {"path": "/a", "http.status_code": "200"}
    assert first["request"]["url"] == "http://localhost/a"
    assert second["contexts"]["trace"]["status"] == "not_found"
    assert second["contexts"]["trace"]["trace_id"] != TRACE_ID
    assert second["contexts"]["response"] == {"status_code": 404}


def test_w3c_traceparent_is_continued_and_errors_join_the_trace() -> None:
    memory = init(traces_sample_rate=1.0)
    with pytest.raises(ValueError):
        client_of(SentryWsgiMiddleware(boom)).get(
            "/", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}
        )
    (event,) = memory.events
    (transaction,) = memory.transactions
    assert event["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert event["contexts"]["trace"]["span_id"] == transaction["contexts"]["trace"]["span_id"]
    assert transaction["contexts"]["trace"]["status"] == "internal_error"


def test_without_tracing_errors_still_carry_the_incoming_trace() -> None:
    memory = init()
    with pytest.raises(ValueError):
        client_of(SentryWsgiMiddleware(boom)).get(
            "/", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}"}
        )
    (event,) = memory.events
    assert event["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert event["contexts"]["trace"]["parent_span_id"] == PARENT
    assert memory.transactions == []


def test_methods_not_captured_get_no_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    client = client_of(SentryWsgiMiddleware(hello))
    client.head("/")
    client.options("/")
    assert memory.transactions == []
    client = client_of(SentryWsgiMiddleware(hello, http_methods_to_capture=("HEAD",)))
    client.head("/")
    client.get("/")
    assert [t["request"]["method"] for t in memory.transactions] == ["HEAD"]


def test_nested_middleware_applies_once() -> None:
    memory = init(traces_sample_rate=1.0)
    inner = SentryWsgiMiddleware(boom)
    with pytest.raises(ValueError):
        client_of(SentryWsgiMiddleware(inner)).get("/")
    assert len(memory.events) == 1
    assert len(memory.transactions) == 1


def test_errors_while_iterating_or_closing_are_captured_in_the_request_scope() -> None:
    closed: list[str] = []

    class Body:
        def __init__(self, fail_in: str) -> None:
            self.fail_in = fail_in

        def __iter__(self) -> Iterator[bytes]:
            yield b"one"
            tripwire.add_breadcrumb(message="in iteration")
            if self.fail_in == "iter":
                raise KeyError("while iterating")
            yield b"two"

        def close(self) -> None:
            closed.append(tripwire.get_isolation_scope()._tags.get("path", "?"))
            if self.fail_in == "close":
                raise OSError("while closing")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        tripwire.set_tag("path", environ["PATH_INFO"])
        start_response("200 OK", [])
        return Body(environ["PATH_INFO"].strip("/"))

    memory = init()
    client = client_of(SentryWsgiMiddleware(app))
    with pytest.raises(KeyError):
        client.get("/iter", buffered=True)
    with pytest.raises(OSError, match="while closing"):
        client.get("/close", buffered=True)
    iterating, closing = memory.events
    assert iterating["exception"]["values"][0]["type"] == "KeyError"
    assert iterating["exception"]["values"][0]["mechanism"] == {"type": "wsgi", "handled": False}
    assert iterating["tags"] == {"path": "/iter"}
    assert [c["message"] for c in iterating["breadcrumbs"]["values"]] == ["in iteration"]
    assert closing["tags"] == {"path": "/close"}
    assert closing["request"]["url"] == "http://localhost/close"
    assert closed == ["/iter", "/close"]
    assert tripwire.get_isolation_scope()._tags == {}


def test_file_responses_are_passed_through() -> None:
    class File(io.BytesIO):
        pass

    body = File(b"data")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
        start_response("200 OK", [])
        return body

    init()
    middleware = SentryWsgiMiddleware(app)
    environ = {"REQUEST_METHOD": "GET", "wsgi.file_wrapper": object(), "PATH_INFO": "/"}
    assert middleware(environ, lambda *a: None) is body
    del environ["wsgi.file_wrapper"]
    assert isinstance(middleware(environ, lambda *a: None), _ScopedResponse)


def test_system_exit_zero_is_not_an_error() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
        raise SystemExit(int(environ["PATH_INFO"].strip("/")))

    memory = init()
    client = client_of(SentryWsgiMiddleware(app))
    for code in (0, 3):
        with pytest.raises(SystemExit):
            client.get(f"/{code}")
    (event,) = memory.events
    assert event["exception"]["values"][0]["value"] == "3"


def test_sessions_are_aggregated_per_request() -> None:
    memory = init(release="r1")
    ok, fail = client_of(SentryWsgiMiddleware(hello)), client_of(SentryWsgiMiddleware(boom))

    def handled(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        tripwire.capture_exception(ValueError("handled"))
        start_response("200 OK", [])
        return []

    for _ in range(3):
        ok.get("/")
    with pytest.raises(ValueError):
        fail.get("/")
    client_of(SentryWsgiMiddleware(handled)).get("/")
    tripwire.flush()
    (aggregate,) = [json.loads(item.get_bytes()) for item in memory.items("sessions")]
    assert aggregate["attrs"]["release"] == "r1"
    (bucket,) = aggregate["aggregates"]
    assert {k: v for k, v in bucket.items() if k != "started"} == {
        "exited": 3,
        "errored": 1,
        "crashed": 1,
    }


def test_inactive_client_passes_requests_through() -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"x"]

    assert client_of(SentryWsgiMiddleware(app)).get("/q").data == b"x"
    assert calls == ["/q"]


def test_url_and_ip_helpers() -> None:
    environ = {
        "wsgi.url_scheme": "http",
        "SERVER_NAME": "internal",
        "SERVER_PORT": "8080",
        "SCRIPT_NAME": "/app/",
        "PATH_INFO": "/caf\xc3\xa9",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "example.com:443",
        "REMOTE_ADDR": "127.0.0.1",
    }
    assert get_request_url(environ) == "http://internal:8080/app/caf\xe9"
    assert get_request_url(environ, use_x_forwarded_for=True) == "https://example.com/app/caf\xe9"
    environ["HTTP_HOST"] = "front:80"
    assert get_request_url(environ) == "http://front/app/caf\xe9"
    assert get_client_ip(environ) == "127.0.0.1"
    environ["HTTP_X_FORWARDED_FOR"] = " 1.1.1.1 , 2.2.2.2"
    assert get_client_ip(environ) == "1.1.1.1"


def test_paths_are_decoded_without_losing_the_url() -> None:
    environ = {"wsgi.url_scheme": "http", "HTTP_HOST": "h", "PATH_INFO": "/nope\xff"}
    assert get_request_url(environ) == "http://h/nope\ufffd"  # not UTF-8: replaced
    environ["PATH_INFO"] = "/\u20ac"  # text already decoded, not latin-1: kept
    assert get_request_url(environ) == "http://h/\u20ac"
    assert wsgi_decoding_dance("\u20ac/caf\xc3\xa9") == "\u20ac/caf\xc3\xa9"


def test_the_request_is_reported_as_it_arrived() -> None:
    # Middleware below ours that rewrites the environ (werkzeug's ProxyFix, a
    # framework decoding PATH_INFO to text) changes nothing reported: sentry_sdk
    # reports the request as it reached its middleware.
    from werkzeug.middleware.proxy_fix import ProxyFix

    def decoding(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        environ["PATH_INFO"] = environ["SCRIPT_NAME"] + path + "\u20ac"
        environ["QUERY_STRING"] = "rewritten"
        environ["HTTP_USER_AGENT"] = "rewritten"
        return boom(environ, start_response)

    memory = init(send_default_pii=True, traces_sample_rate=1.0)
    app = SentryWsgiMiddleware(ProxyFix(decoding, x_for=1, x_proto=1, x_host=1, x_prefix=1))
    with pytest.raises(ValueError):
        client_of(app).get(
            "/caf%C3%A9?a=1",
            headers={
                "User-Agent": "ua",
                "X-Forwarded-For": "9.9.9.9",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "public.example",
                "X-Forwarded-Prefix": "/app",
            },
            environ_overrides={"REMOTE_ADDR": "10.0.0.1"},
        )
    (event,) = memory.events
    assert event["tags"] == {"path": "/app/caf\xe9\u20ac"}  # the app saw its changes
    (transaction,) = memory.transactions
    for request in (event["request"], transaction["request"]):
        assert request["url"] == "http://localhost/caf\xe9"
        assert request["query_string"] == "a=1"
        assert request["env"] == {
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "10.0.0.1",
        }
        assert request["headers"]["Host"] == "localhost"
        assert request["headers"]["User-Agent"] == "ua"
    assert event["user"] == {"ip_address": "9.9.9.9"}


def test_use_x_forwarded_for_names_the_url() -> None:
    memory = init()
    with pytest.raises(ValueError):
        client_of(SentryWsgiMiddleware(boom, use_x_forwarded_for=True)).get(
            "/x", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"}
        )
    assert memory.events[0]["request"]["url"] == "https://shop.example/x"


def test_traces_sampler_sees_the_environ() -> None:
    seen: list[tuple[str, str]] = []

    def sampler(context: dict[str, Any]) -> float:
        seen.append((context["wsgi_environ"]["PATH_INFO"], context["transaction_context"]["op"]))
        return 0.0 if context["wsgi_environ"]["PATH_INFO"] == "/skip" else 1.0

    memory = init(traces_sampler=sampler)
    client = client_of(SentryWsgiMiddleware(hello))
    client.get("/skip")
    client.get("/keep")
    assert seen == [("/skip", "http.server"), ("/keep", "http.server")]
    assert [t["request"]["url"] for t in memory.transactions] == ["http://localhost/keep"]
