"""raven's ``RequestsHTTPTransport`` (`raven.transport.requests`).

Passed as ``transport=`` it selects tripwire's own HTTP transport; the `requests`
package is not needed.
"""

from __future__ import annotations

from tripwire.raven.transport.http import HTTPTransport


class RequestsHTTPTransport(HTTPTransport):
    """Same as `HTTPTransport` (tripwire does not use `requests`)."""

    scheme = ["requests+http", "requests+https"]


__all__ = ["RequestsHTTPTransport"]
