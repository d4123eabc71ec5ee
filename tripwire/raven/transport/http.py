"""raven's ``HTTPTransport`` (`raven.transport.http`).

Passed as ``transport=`` it selects tripwire's own HTTP transport (a background
worker with retries and rate limits). Its `send` is a plain blocking POST, for
subclasses that call ``super().send``.
"""

from __future__ import annotations

from typing import Any

from tripwire.raven.transport.base import Transport


class HTTPTransport(Transport):
    """Blocking HTTP POST with urllib.

    Args:
        timeout: Seconds to wait for the server.
    """

    scheme = ["sync+http", "sync+https"]

    def __init__(
        self, timeout: Any = 5, verify_ssl: Any = True, ca_certs: Any = None, **kwargs: Any
    ) -> None:
        try:
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            self.timeout = 5.0
        self.verify_ssl = verify_ssl not in (False, "0", "false", "False")
        self.ca_certs = ca_certs

    def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        """POST `data`; raises APIError / RateLimited for error responses."""
        import urllib.error
        import urllib.request

        from tripwire.raven.exceptions import APIError, RateLimited

        # The URL is built from the DSN (http or https), never from user input.
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
        context = None
        if not self.verify_ssl or self.ca_certs:
            import ssl

            context = ssl.create_default_context(cafile=self.ca_certs)
            if not self.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            code, headers_in = exc.code, exc.headers
            exc.close()  # the error holds the response open
            message = headers_in.get("X-Sentry-Error") or f"HTTP {code}"
            if code == 429:
                try:
                    retry_after = float(headers_in.get("Retry-After") or 0)
                except ValueError:
                    retry_after = 0
                raise RateLimited(message, retry_after) from None
            raise APIError(message, code) from None


__all__ = ["HTTPTransport"]
