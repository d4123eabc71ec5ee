"""`sentry_sdk.integrations._wsgi_common` / `_asgi_common` for packages built on them.

Framework integrations maintained outside sentry_sdk subclass `RequestExtractor` for
their request object and read ASGI scopes with the `_asgi_common` helpers. The same
script runs on sentry_sdk 2.75 and on tripwire (``import sentry_sdk`` aliased): the
events' ``request`` (and its ``_meta``) and the helpers' outputs must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _lazy import skip_module_without
from _receiver import Receiver
from _side_by_side import run_each

import tripwire
from tripwire.integrations._asgi_common import _get_request_data, _RootPathInPath

if TYPE_CHECKING:
    from tripwire.integrations._wsgi_common import (
        HttpCodeRangeContainer,
        RequestExtractor,
        request_body_within_bounds,
    )

    _ToyExtractor: type[RequestExtractor]

skip_module_without("sentry_sdk")

# The toy request and its extractor, as a third-party framework integration writes them.
_TOY = """
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, on sentry_sdk

from sentry_sdk.integrations._wsgi_common import RequestExtractor


class ToyRequest:
    def __init__(self, body=b"", content_type=None, form=None, files=None, cookies=None,
                 length=True):
        self.environ = {}
        if length:
            self.environ["CONTENT_LENGTH"] = str(len(body or b""))
        if content_type:
            self.environ["CONTENT_TYPE"] = content_type
        self.body = body
        self.form_data = form or {}
        self.uploads = files or {}
        self.cookie_jar = cookies or {}


class ToyExtractor(RequestExtractor):
    def env(self):
        return self.request.environ

    def cookies(self):
        return self.request.cookie_jar

    def raw_data(self):
        if self.request.body is None:  # as Django once the body was read as a stream
            raise ValueError("body already read")
        return self.request.body

    def form(self):
        return self.request.form_data

    def files(self):
        return self.request.uploads

    def size_of_file(self, file):
        return len(file)
"""

_SCRIPT = (
    _TOY
    + """
from sentry_sdk.integrations._wsgi_common import (
    DEFAULT_HTTP_METHODS_TO_CAPTURE, SENSITIVE_ENV_KEYS, SENSITIVE_HEADERS,
    HttpCodeRangeContainer, _filter_headers, _is_json_content_type,
    request_body_within_bounds,
)
from sentry_sdk.integrations._asgi_common import (
    _RootPathInPath, _get_headers, _get_ip, _get_path, _get_query, _get_request_attributes,
    _get_request_data, _get_url,
)
from sentry_sdk.utils import AnnotatedValue


def plain(value):
    if isinstance(value, AnnotatedValue):
        return {"value": plain(value.value), "meta": value.metadata}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


BIG = b'{"k": "' + b"x" * 1500 + b'"}'
REQUESTS = [
    ToyRequest(b'{"sku": "a1", "n": [1, 2]}', "application/json", cookies={"theme": "dark",
               "sessionid": "s3"}),
    ToyRequest(b'{"x": 1}', "application/vnd.api+json; charset=utf-8"),
    ToyRequest(b'"just a string"', "application/json"),
    ToyRequest(b"a=1&b=2", "application/x-www-form-urlencoded", form={"a": "1", "b": "2"},
               files={"upload": b"PNG..."}),
    ToyRequest(b"\\x00\\x01raw bytes", "application/octet-stream"),
    ToyRequest(b"not json", "application/json"),
    ToyRequest(BIG, "application/json"),
    ToyRequest(b'{"chunked": true}', "application/json", length=False),
    ToyRequest(b"", None),
    ToyRequest(None, "application/x-www-form-urlencoded", form={"a": "1"}, length=False),
    ToyRequest(b"--b--", "multipart/form-data", files={"f1": b"1", "f2": b"2"}),
]
HEADERS = {"Host": "example.com", "Authorization": "Bearer t", "X-Forwarded-For": "1.2.3.4",
           "Cookie": "a=b", "X-Custom": "yes", "X-Api-Key": "k", "User-Agent": "toy/1"}
SCOPES = [
    {"type": "http", "method": "post", "scheme": "https", "path": "/items/3",
     "root_path": "/api", "query_string": b"q=caf%C3%A9&email=a%40b.c&token=t",
     "server": ("10.0.0.1", 8443), "client": ("10.0.0.9", 5555),
     "headers": [(b"host", b"shop.test"), (b"x-forwarded-for", b"9.9.9.9, 8.8.8.8"),
                 (b"authorization", b"Bearer t"), (b"accept", b"a"), (b"accept", b"b"),
                 (b"cookie", b"theme=dark")]},
    {"type": "websocket", "path": "/api/ws", "root_path": "/api", "query_string": b"",
     "server": ("ws.test", 80), "client": ("127.0.0.1", 1),
     "headers": [(b"x-real-ip", b"7.7.7.7")]},
    {"type": "http", "method": "GET", "path": "/p", "headers": [], "client": None},
]


def request_of(i):
    current = {}

    def processor(event, hint):
        ToyExtractor(REQUESTS[current["i"]]).extract_into_event(event)
        return event

    return current, processor


OPTIONS = [
    {},
    {"send_default_pii": True},
    {"max_request_body_size": "small"},
    {"max_request_body_size": "never"},
    {"max_request_body_size": "always"},
    {"data_collection": {"user_info": True, "cookies": {"mode": "allowlist", "terms": ["theme"]},
                         "url_query_params": {"mode": "denylist", "terms": ["email"]},
                         "http_headers": {"request": {"mode": "denylist", "terms": ["custom"]}}}},
    {"data_collection": {"http_bodies": [], "cookies": {"mode": "off"}}},
]
for n, options in enumerate(OPTIONS):
    sentry_sdk.init(transport=KEEP, default_integrations=False, **options)
    current, processor = request_of(0)
    # A scope of its own: `Scope.clear()` (next_scenario) keeps sentry_sdk's processors.
    with sentry_sdk.isolation_scope() as scope:
        scope.add_event_processor(processor)
        for i in range(len(REQUESTS)):
            current["i"] = i
            sentry_sdk.capture_message(f"request {i}")
    client = sentry_sdk.get_client()
    NOTES.append({
        "filtered": plain(_filter_headers(HEADERS)),
        "filtered_plain": plain(_filter_headers(HEADERS, use_annotated_value=False)),
        "within": [request_body_within_bounds(client, size) for size in (0, 1000, 1001, 10**4,
                                                                         10**4 + 1)],
        "asgi_data": [plain(_get_request_data(s, rule)) for s in SCOPES
                      for rule in _RootPathInPath],
        "asgi_attributes": [plain(_get_request_attributes(s, rule)) for s in SCOPES
                            for rule in _RootPathInPath],
    })
    if n == 0:
        NOTES.append({
            "within_no_client": request_body_within_bounds(None, 0),
            "json_types": [_is_json_content_type(ct) for ct in (
                None, "", "application/json", "application/json; charset=utf-8",
                "application/problem+json", "text/json", "application/jsonp", "text/x+json")],
            "codes": [c in HttpCodeRangeContainer([404, range(500, 503), {418}])
                      for c in (404, 405, 418, 500, 502, 503, "500")],
            "methods": list(DEFAULT_HTTP_METHODS_TO_CAPTURE),
            "sensitive": [list(SENSITIVE_ENV_KEYS), list(SENSITIVE_HEADERS)],
            "headers": [_get_headers(s) for s in SCOPES],
            "query": [_get_query(s) for s in SCOPES],
            "ip": [_get_ip(s) for s in SCOPES],
            "path": [_get_path(s, rule) for s in SCOPES for rule in _RootPathInPath],
            "url": [_get_url(SCOPES[0], "http", None, "/x"), _get_url(SCOPES[0], "http", "h", "/x"),
                    _get_url(SCOPES[1], "ws", None, "/y"), _get_url(SCOPES[2], "http", None, "/z"),
                    _get_url({"server": ("a", 443), "scheme": "https"}, "http", None, "/")],
        })
    if n < len(OPTIONS) - 1:
        next_scenario()
finish()
"""
)


def _requests(items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    """Each event's message, ``request`` and the ``_meta`` of its request."""
    return [
        (
            item["payload"].get("message") or item["payload"].get("logentry"),
            item["payload"].get("request"),
            item["payload"].get("_meta", {}).get("request"),
        )
        for item in items
        if item["type"] == "event"
    ]


def test_extractor_and_helpers_match_sentry_sdk(tmp_path: Path) -> None:
    runs = run_each(_SCRIPT, tmp_path)
    assert len(runs) == 7
    for n, (sentry, ours) in enumerate(runs):
        expected, got = _requests(sentry["items"]), _requests(ours["items"])
        assert len(got) == 11
        if n == 5:
            # Under `data_collection` tripwire's event scrubber also records in ``_meta``
            # that the cookie the allowlist filtered was removed (a core difference, not
            # this module's: the same goes for any integration's cookies).
            meta = got[0][2]
            assert meta == {"cookies": {"sessionid": {"": {"rem": [["!config", "s"]]}}}}
            got[0] = (got[0][0], got[0][1], None)
        assert got == expected
        assert ours["notes"] == sentry["notes"]
    # What the comparison covered, as sentry_sdk sends it: JSON body with PII's cookies,
    # form fields with the upload marked removed, a raw body marked removed.
    sentry_pii = _requests(runs[1][0]["items"])
    assert sentry_pii[0][1] == {
        "cookies": {"theme": "dark", "sessionid": "[Filtered]"},
        "data": {"sku": "a1", "n": [1, 2]},
    }
    assert sentry_pii[3][1]["data"] == {"a": "1", "b": "2", "upload": ""}
    assert sentry_pii[3][2] == {"data": {"upload": {"": {"rem": [["!raw", "x"]]}}}}
    assert sentry_pii[4][2] == {"data": {"": {"rem": [["!raw", "x"]]}}}
    # No Content-Length: the body is still read; a body already read as a stream: the
    # form stands; nothing to read: no data.
    assert sentry_pii[7][1]["data"] == {"chunked": True}
    assert sentry_pii[8][1] == {"cookies": {}}
    assert sentry_pii[9][1]["data"] == {"a": "1"}
    small = _requests(runs[2][0]["items"])
    assert small[6][2] == {"data": {"": {"rem": [["!config", "x"]]}}}


class _Toy:
    def __init__(self, body: bytes, content_type: str) -> None:
        self.environ = {"CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type}
        self.body = body


@pytest.fixture(autouse=True, scope="module")
def _wsgi_common() -> None:
    """tripwire's `_wsgi_common` imports Django's request module when Django is installed:
    imported when the module's tests start, not at collection (every xdist worker collects
    every module; tests/_lazy.py), with the extractor built on it."""
    global HttpCodeRangeContainer, RequestExtractor, request_body_within_bounds, _ToyExtractor
    from tripwire.integrations._wsgi_common import (
        HttpCodeRangeContainer,
        RequestExtractor,
        request_body_within_bounds,
    )

    class _ToyExtractor(RequestExtractor):
        """Implements only what a minimal integration does (no form, files, cookies)."""

        def env(self) -> dict[str, Any]:
            return self.request.environ  # type: ignore[no-any-return]

        def raw_data(self) -> bytes:
            return self.request.body  # type: ignore[no-any-return]


def test_an_extractor_in_an_event_processor_reaches_the_receiver(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), send_default_pii=True, default_integrations=False)
    request = _Toy(b'{"order": 7, "items": ["a"]}', "application/json")

    def processor(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event["request"] = {"url": "http://shop.test/orders", "method": "POST"}
        _ToyExtractor(request).extract_into_event(event)
        return event

    tripwire.get_isolation_scope().add_event_processor(processor)
    tripwire.capture_message("order failed")
    tripwire.flush()
    (event,) = rx.events()
    # Cookies not implemented: left out, the body still comes.
    assert event["request"] == {
        "url": "http://shop.test/orders",
        "method": "POST",
        "data": {"order": 7, "items": ["a"]},
    }


def test_without_a_client_nothing_is_extracted() -> None:
    event: dict[str, Any] = {"request": {"url": "u"}}
    _ToyExtractor(_Toy(b"{}", "application/json")).extract_into_event(event)
    assert event == {"request": {"url": "u"}}
    assert request_body_within_bounds(None, 0) is False
    assert 503 in HttpCodeRangeContainer([range(500, 600)])
    # The ASGI helper reads under the current (here inactive) client's defaults.
    scope = {"type": "http", "method": "GET", "path": "/a", "headers": [], "client": ("1.1.1.1", 1)}
    assert _get_request_data(scope, _RootPathInPath.EXCLUDED) == {
        "method": "GET",
        "headers": {},
        "query_string": None,
        "url": "/a",
    }
