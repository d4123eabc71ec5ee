"""sentry_sdk 2.75's ``integrations._asgi_common``, for code written against it.

ASGI integrations maintained outside sentry_sdk (and copies of its Starlette, FastAPI
and Litestar integrations) import these helpers to read an ASGI scope: its headers,
query string, url, client address, and the event's ``request`` built from it. The
request data and attributes are `SentryAsgiMiddleware`'s own (tripwire's rules for
`send_default_pii`, `data_collection` and header filtering), not a second copy.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional, Union
from urllib.parse import unquote

from tripwire.integrations._common.web import client_ip
from tripwire.integrations.asgi import SentryAsgiMiddleware
from tripwire.scope._current import get_client
from tripwire.utils import AnnotatedValue

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class _RootPathInPath(Enum):
    """Whether the scope's ``path`` excludes its ``root_path`` (the ASGI spec) or may
    already start with it (Starlette 0.33+)."""

    EXCLUDED = "excluded"
    EITHER = "either"


async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # never called
    return None


# One middleware per root-path rule, used only for its request-reading methods.
_readers: dict[str, SentryAsgiMiddleware] = {}


def _reader(root_path_in_path: Any) -> SentryAsgiMiddleware:
    rule = str(getattr(root_path_in_path, "value", root_path_in_path))
    reader = _readers.get(rule)
    if reader is None:
        reader = SentryAsgiMiddleware(_no_app, asgi_version=3, root_path_in_path=rule)
        _readers[rule] = reader
    return reader


def _get_headers(asgi_scope: Any) -> dict[str, str]:
    """The scope's headers by (lower-case) name, repeated ones joined with ", "."""
    headers: dict[str, str] = {}
    for raw_key, raw_value in asgi_scope["headers"]:
        key = raw_key.decode("latin-1")
        value = raw_value.decode("latin-1")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _get_path(asgi_scope: dict[str, Any], root_path_in_path: _RootPathInPath) -> str:
    """The request's path including the root path the application is mounted at."""
    return _reader(root_path_in_path)._path(asgi_scope)


def _get_url(
    asgi_scope: dict[str, Any],
    default_scheme: str,
    host: Optional[Union[AnnotatedValue, str]],
    path: str,
) -> str:
    """The url without its query string: the `host` given, else the scope's server
    (its port left out when it is the scheme's default), else just `path`."""
    scheme = asgi_scope.get("scheme", default_scheme)
    if host:
        return f"{scheme}://{host}{path}"
    server = asgi_scope.get("server")
    if server is None:
        return path
    server_host, port = server
    if port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{server_host}:{port}{path}"
    return f"{scheme}://{server_host}{path}"


def _get_query(asgi_scope: Any) -> Optional[str]:
    """The query string, percent-decoded; None when there is none."""
    query = asgi_scope.get("query_string")
    if not query:
        return None
    return unquote(query.decode("latin-1"))


def _get_ip(asgi_scope: Any) -> Optional[str]:
    """The client's address: ``X-Forwarded-For``'s first hop, ``X-Real-Ip``, else the
    scope's client."""
    peer = asgi_scope.get("client")
    return client_ip(_get_headers(asgi_scope), peer[0] if peer else None)


def _get_request_data(asgi_scope: Any, root_path_in_path: _RootPathInPath) -> dict[str, Any]:
    """The event's ``request`` from the scope under the current client's options:
    method, headers, query string and url (HTTP and websocket), and the client's
    address as ``env.REMOTE_ADDR`` when personal data may be sent."""
    options = get_client().options
    return _reader(root_path_in_path).request_data(asgi_scope, options)


def _get_request_attributes(asgi_scope: Any, root_path_in_path: _RootPathInPath) -> dict[str, Any]:
    """The request's span attributes from the scope under the current client's options
    (method, filtered headers, and as personal data may be sent: path, query, full url,
    client address)."""
    options = get_client().options
    attributes = _reader(root_path_in_path).request_attributes(asgi_scope, options)
    attributes.pop("network.protocol.name", None)  # the middleware's, not this helper's
    return attributes
