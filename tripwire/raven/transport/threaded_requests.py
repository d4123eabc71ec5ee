"""raven's ``ThreadedRequestsHTTPTransport`` (`raven.transport.threaded_requests`).

Passed as ``transport=`` it selects tripwire's own HTTP transport.
"""

from __future__ import annotations

from tripwire.raven.transport.threaded import ThreadedHTTPTransport


class ThreadedRequestsHTTPTransport(ThreadedHTTPTransport):
    """Same as `ThreadedHTTPTransport` (tripwire does not use `requests`)."""

    scheme = ["threaded+requests+http", "threaded+requests+https"]


__all__ = ["ThreadedRequestsHTTPTransport"]
