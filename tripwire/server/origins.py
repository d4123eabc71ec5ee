"""Which web pages may talk to the backend: same origin, and origins named by the user.

A browser attaches an ``Origin`` header to every request a page makes with script
to another origin (``fetch``, ``EventSource``) and to every non-GET request, and
modern browsers add ``Sec-Fetch-Site``. SDKs, curl and the CLI send neither. So:

- a request without ``Origin`` is from a non-browser client, or a navigation, and
  is served; unless it changes state (any method but GET/HEAD/OPTIONS) and
  ``Sec-Fetch-Site`` says a page on another site or origin made it;
- a request with ``Origin`` is served only when that origin is this server's own
  (``http://<Host>``) or one given with ``--allow-origin``; everything else gets a
  403 that says how to allow it (``Origin: null``, from sandboxed frames and
  ``file://`` pages, is never allowed);
- an allowed other origin gets CORS headers, as Sentry's ingest gives browser
  SDKs: its preflights are answered, its responses carry
  ``Access-Control-Allow-Origin: <origin>`` and expose the rate limit headers.

No response ever allows ``*`` or echoes an origin that was not allowed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable, MutableMapping
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a browser SDK sends (Sentry's ingest allows the same request headers).
_ALLOW_HEADERS = (
    "Content-Type, Content-Encoding, X-Sentry-Auth, Authorization, Accept, "
    "X-Requested-With, Origin, Referer, Sentry-Trace, Baggage"
)
_EXPOSE_HEADERS = "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After"
_ALLOW_METHODS = "GET, POST, PUT, OPTIONS"
_MAX_AGE = "3600"


def normalize_origin(value: str) -> str:
    """``HTTP://LocalHost:3000/`` -> ``http://localhost:3000``; ValueError if not an origin."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an origin (expected scheme://host[:port]): {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an origin has no path, query or user: {value!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a bad port
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class OriginPolicy:
    """The origins allowed besides the server's own."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = frozenset(normalize_origin(origin) for origin in allowed)

    def check(
        self, method: str, origin: Optional[str], fetch_site: Optional[str], own: str
    ) -> tuple[bool, bool, str]:
        """(allowed, needs CORS headers, reason when refused) for one request."""
        if origin is None:
            if method in _SAFE_METHODS or fetch_site in (None, "same-origin", "none"):
                return True, False, ""
            return (
                False,
                False,
                f"a {method} from a page on another origin (Sec-Fetch-Site: {fetch_site}) "
                "is refused: the backend changes its data only for its own pages, "
                "non-browser clients and origins started with --allow-origin",
            )
        try:
            normalized = normalize_origin(origin)
        except ValueError:
            normalized = None
        if normalized is not None and normalized == own:
            return True, False, ""
        if normalized is not None and normalized in self.allowed:
            return True, True, ""
        shown = origin[:100]
        return (
            False,
            False,
            f"origin {shown!r} is not allowed: pages of other origins cannot use this "
            f"backend unless it is started with --allow-origin {shown}",
        )


def _own_origin(scope: Scope, host: Optional[str]) -> str:
    scheme = "https" if scope.get("scheme") == "https" else "http"
    if not host:
        return ""
    try:
        return normalize_origin(f"{scheme}://{host}")
    except ValueError:
        return ""


class OriginMiddleware:
    """ASGI middleware applying an `OriginPolicy` to every HTTP request."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: Optional[str] = None
        fetch_site: Optional[str] = None
        host: Optional[str] = None
        preflight = False
        private_network = False
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"sec-fetch-site":
                fetch_site = value.decode("latin-1").strip().lower()
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"access-control-request-method":
                preflight = True
            elif name == b"access-control-request-private-network":
                private_network = value.strip().lower() == b"true"
        method: str = scope.get("method", "GET")
        allowed, cors, reason = self.policy.check(
            method, origin, fetch_site, _own_origin(scope, host)
        )
        if not allowed:
            await _refuse(send, reason)
            return
        if not cors:
            await self.app(scope, receive, send)
            return
        assert origin is not None
        if method == "OPTIONS" and preflight:
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
                (b"access-control-allow-headers", _ALLOW_HEADERS.encode()),
                (b"access-control-max-age", _MAX_AGE.encode()),
                (b"vary", b"Origin"),
                (b"content-length", b"0"),
            ]
            if private_network:
                # Chrome's Private Network Access: a public page's preflight to loopback.
                headers.append((b"access-control-allow-private-network", b"true"))
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", _EXPOSE_HEADERS.encode()),
            (b"vary", b"Origin"),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if not k.lower().startswith(b"access-control-") and k.lower() != b"vary"
                ]
                message["headers"] = kept + extra
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _refuse(send: Send, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"vary", b"Origin"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
