"""raven 6.x transports (`raven.transport`) and how ``Client(transport=...)`` is read.

``transport=`` may be:

* None: tripwire's HTTP transport when there is a DSN (as raven's threaded default);
* raven's `HTTPTransport`, `ThreadedHTTPTransport`, `RequestsHTTPTransport` or
  `ThreadedRequestsHTTPTransport` class: the same (tripwire's HTTP transport);
* any other raven-style class (``send(url, data, headers)``): instantiated with the
  DSN's query options; it receives every event as envelope bytes for the DSN's
  envelope endpoint, on the capturing thread (``async_send`` if it is asynchronous);
* a tripwire `Transport` instance or subclass (e.g. `tripwire.testing.MemoryTransport`),
  or a callable taking the event dict: used as tripwire itself uses it.
"""

from __future__ import annotations

from tripwire.raven.transport.base import AsyncTransport, Transport
from tripwire.raven.transport.http import HTTPTransport
from tripwire.raven.transport.requests import RequestsHTTPTransport
from tripwire.raven.transport.threaded import ThreadedHTTPTransport
from tripwire.raven.transport.threaded_requests import ThreadedRequestsHTTPTransport

__all__ = [
    "AsyncTransport",
    "HTTPTransport",
    "RequestsHTTPTransport",
    "ThreadedHTTPTransport",
    "ThreadedRequestsHTTPTransport",
    "Transport",
]
