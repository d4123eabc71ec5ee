"""httpx2 integration: outgoing requests of `httpx2.Client` and `httpx2.AsyncClient`.

httpx2 (Pydantic's continuation of httpx) has httpx's client API, and sentry_sdk 2.75's
``httpx2`` integration is its ``httpx`` one under another name; so is this one (see
`tripwire.integrations.httpx` for what a request records): spans with origin
``auto.http.httpx2``, ``httplib`` breadcrumbs and the trace headers.

`send` of both clients is patched when httpx2 is imported (at once if it is; set-up
raises `DidNotEnable` if httpx2 is not installed).
"""

from __future__ import annotations

from types import ModuleType

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations.httpx import patch_clients

ORIGIN = "auto.http.httpx2"
_MARK = "__tripwire_httpx2__"


class Httpx2Integration(Integration):
    """Spans, breadcrumbs and trace propagation for httpx2 requests."""

    identifier = "httpx2"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch `Client.send` and `AsyncClient.send` once httpx2 is imported."""
        import importlib.util

        if importlib.util.find_spec("httpx2") is None:
            raise DidNotEnable("httpx2 is not installed")
        when_imported("httpx2", _patch_httpx2)


def _patch_httpx2(module: ModuleType) -> None:
    patch_clients(module, Httpx2Integration, ORIGIN, _MARK)


__all__ = ["Httpx2Integration"]
