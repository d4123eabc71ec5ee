"""Starlite integration: `Starlite` 1.x applications, on the Litestar integration's code.

As sentry_sdk 2.75's ``starlite`` integration (Starlite is Litestar's former name;
the APIs the integration uses agree). See `tripwire.integrations.litestar` for what
an application built while it is active gets; with Starlite's names: origin
``auto.http.starlite``, mechanism ``starlite``, ``middleware.starlite`` spans tagged
``starlite.middleware_name``, ``generic Starlite request``. Unlike Litestar's, every
exception the ``after_exception`` hook sees is reported, an `HTTPException` of any
status included, and there is no option (as sentry_sdk).
"""

from __future__ import annotations

from typing import Optional

from tripwire.integrations import Integration
from tripwire.integrations.asgi import SentryAsgiMiddleware
from tripwire.integrations.litestar import Framework, make_asgi_middleware


class StarliteIntegration(Integration):
    """Errors, transactions and request data of Starlite applications."""

    identifier = "starlite"
    origin = "auto.http.starlite"

    def __init__(self) -> None:
        self.failed_request_status_codes: frozenset[int] = frozenset()
        self._asgi: Optional[SentryAsgiMiddleware] = None

    @staticmethod
    def setup_once() -> None:
        """Patch Starlite once it is imported.

        Raises:
            DidNotEnable: Starlite is not installed, or older than 1.48.
        """
        from tripwire.integrations import _check_minimum_version
        from tripwire.utils import package_version

        _STARLITE.require()
        _check_minimum_version(StarliteIntegration, package_version("starlite"), "Starlite")
        _STARLITE.setup()

    def asgi_middleware(self) -> SentryAsgiMiddleware:
        """The middleware configuration the applications run in (made once)."""
        middleware = self._asgi
        if middleware is None:
            middleware = self._asgi = make_asgi_middleware(self.origin)
        return middleware


_STARLITE = Framework("starlite", StarliteIntegration, name_at_start=True)

__all__ = ["StarliteIntegration"]
