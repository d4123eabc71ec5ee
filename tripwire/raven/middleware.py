"""raven's WSGI middleware (`raven.middleware.Sentry`).

``application = Sentry(application, client)`` captures exceptions raised by the
application (while it is called and while its response is iterated or closed),
with the request as the event's ``request``, and re-raises them. The client's
context is cleared after each request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, Optional
from urllib.parse import quote

from tripwire.raven.base import Client

_ENV_KEYS = ("REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT")


def get_headers(environ: Mapping[Any, Any]) -> Iterator[tuple[str, str]]:
    """The request headers found in a WSGI environ, as (Title-Case name, value)."""
    for key, value in environ.items():
        if not isinstance(key, str):
            continue
        if key.startswith("HTTP_") and key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            yield key[5:].replace("_", "-").title(), str(value)
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            yield key.replace("_", "-").title(), str(value)


def get_environ(environ: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The server-side environ values worth sending (address, server name and port)."""
    for key in _ENV_KEYS:
        if key in environ:
            yield key, environ[key]


def get_current_url(
    environ: Mapping[str, Any],
    root_only: bool = False,
    strip_querystring: bool = False,
    host_only: bool = False,
) -> str:
    """The URL of the request described by `environ`."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "")
        port = str(environ.get("SERVER_PORT", ""))
        if port and (scheme, port) not in (("http", "80"), ("https", "443")):
            host = f"{host}:{port}"
    url = f"{scheme}://{host}"
    if host_only:
        return url + "/"
    url += quote(str(environ.get("SCRIPT_NAME", "")).rstrip("/")) + "/"
    if not root_only:
        url += quote(str(environ.get("PATH_INFO", "")).lstrip("/"))
        query = environ.get("QUERY_STRING")
        if query and not strip_querystring:
            url += "?" + str(query)
    return url


class Sentry:
    """WSGI middleware capturing the wrapped application's exceptions.

    Args:
        application: The WSGI application.
        client: The raven client (a new `Client()` from ``SENTRY_DSN`` if None).
    """

    def __init__(self, application: Callable[..., Any], client: Optional[Client] = None) -> None:
        self.application = application
        self.client = client if client is not None else Client()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Run the application with the request in the client's context."""
        try:
            self.client.context.activate()
            self.client.http_context(self.get_http_context(environ))
        except Exception:
            pass
        try:
            iterable = self.application(environ, start_response)
        except Exception:
            self.handle_exception(environ)
            self._clear()
            raise
        return ClosingIterator(self, iterable, environ)

    def get_http_context(self, environ: Mapping[str, Any]) -> dict[str, Any]:
        """The event's ``request`` for this environ."""
        return {
            "method": environ.get("REQUEST_METHOD"),
            "url": get_current_url(environ, strip_querystring=True),
            "query_string": environ.get("QUERY_STRING"),
            "headers": dict(get_headers(environ)),
            "env": dict(get_environ(environ)),
        }

    def handle_exception(self, environ: Optional[Mapping[str, Any]] = None) -> Optional[str]:
        """Capture the exception being handled."""
        return self.client.captureException()

    def _clear(self) -> None:
        try:
            self.client.context.clear()
        except Exception:
            pass


class ClosingIterator:
    """The response iterable, capturing errors raised while iterating or closing it."""

    def __init__(self, sentry: Sentry, iterable: Iterable[Any], environ: Mapping[str, Any]) -> None:
        self.sentry = sentry
        self.iterable = iterable
        self.environ = environ
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.iterable
        except Exception:
            self.sentry.handle_exception(self.environ)
            raise

    def close(self) -> None:
        """Close the wrapped iterable, then clear the client's context."""
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self.iterable, "close", None)
            if close is not None:
                close()
        except Exception:
            self.sentry.handle_exception(self.environ)
            raise
        finally:
            self.sentry._clear()


__all__ = ["ClosingIterator", "Sentry", "get_current_url", "get_environ", "get_headers"]
