"""FastAPI integration: FastAPI's routes, on top of the Starlette integration.

As sentry_sdk 2.75's ``fastapi`` integration: a FastAPI application is a Starlette
one, so the Starlette integration (auto-enabled with this one) gives each request its
scope, session, transaction and error reporting. This one patches
``fastapi.routing.get_request_handler`` (when `fastapi.routing` is imported; routes
defined before that are not covered) so that, for each route's requests:

- events are named per `transaction_style`: ``url``, the route's path template (its
  routers' prefixes included, after the path templates of the `Mount`s it is in),
  source ``route``; ``endpoint``, the endpoint's qualified name, source
  ``component``; ``generic FastAPI request`` when neither is known;
- events get the cookies (with `send_default_pii`) and the body: JSON, or a form
  whose files are marked removed, bounded by `max_request_body_size` and
  `data_collection`; read only when the request has one, and cached on the request
  for FastAPI to use;
- a sync endpoint, run in the thread pool, keeps the request's scopes (FastAPI copies
  the context into the worker thread) and the transaction records its thread.
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.integrations import DidNotEnable, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations.asgi import mount_prefix, route_path
from tripwire.integrations.starlette import (
    StarletteIntegration,
    _update_active_thread,
    before_endpoint,
    patch_mount,
)
from tripwire.scope._current import get_client
from tripwire.utils import transaction_from_function

_DEFAULT_TRANSACTION_NAME = "generic FastAPI request"
_MARK = "__tripwire_fastapi__"


class FastApiIntegration(StarletteIntegration):
    """Route naming and request data for FastAPI (options as `StarletteIntegration`)."""

    identifier = "fastapi"

    @staticmethod
    def setup_once() -> None:
        """Check FastAPI's version; patch `fastapi.routing` once it is imported.

        Raises:
            DidNotEnable: FastAPI (or Starlette) is not installed, or too old.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("starlette") is None:
            raise DidNotEnable("Starlette is not installed")
        if importlib.util.find_spec("fastapi") is None:
            raise DidNotEnable("FastAPI is not installed")
        _check_minimum_version(FastApiIntegration, package_version("fastapi"), "FastAPI")
        when_imported("fastapi.routing", _patch_routing)
        when_imported("starlette.routing", patch_mount)  # the mounts' path templates

    def _name_and_source(self, scope: Any) -> tuple[str, str]:
        if self.transaction_style == "endpoint":
            endpoint = scope.get("endpoint")
            name = transaction_from_function(endpoint) if endpoint else None
            if name:
                return name, "component"
            return _DEFAULT_TRANSACTION_NAME, "route"
        path = _path(scope)
        if not path:
            return _DEFAULT_TRANSACTION_NAME, "route"
        return path, "route"

    def _http_route(self, scope: Any) -> Optional[str]:
        """The route's path template (``http.route``), whatever the transaction style."""
        return _path(scope)


def _path(scope: Any) -> Optional[str]:
    """The route's path template: its routers' prefixes and its mounts' included."""
    route = scope.get("route")
    if route is None:
        return None
    # FastAPI 0.137+: the path with its routers' prefixes is on the effective route
    # (a mounted application's routes: after the mounts' templates).
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(effective, "path", None)
    if path:
        return mount_prefix(scope) + str(path)
    return route_path(scope, route) or None


def _patch_routing(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module, "get_request_handler", _wrap_get_request_handler, _MARK)


def _wrap_sync_endpoint(call: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(call, _MARK, False):
        return call

    @functools.wraps(call)
    def endpoint(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(FastApiIntegration) is not None:
            _update_active_thread()
        return call(*args, **kwargs)

    setattr(endpoint, _MARK, True)
    return endpoint


def _wrap_get_request_handler(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_request_handler(*args: Any, **kwargs: Any) -> Any:
        dependant = kwargs.get("dependant")
        call = getattr(dependant, "call", None)
        if (
            inspect.isfunction(call)
            and not inspect.iscoroutinefunction(call)
            and not inspect.isgeneratorfunction(call)
            and not inspect.isasyncgenfunction(call)
        ):
            try:
                dependant.call = _wrap_sync_endpoint(call)  # type: ignore[union-attr]
            except Exception:
                pass
        handler = original(*args, **kwargs)

        async def app(request: Any) -> Any:
            integration = get_client().get_integration(FastApiIntegration)
            if integration is not None:
                await before_endpoint(integration, request, integration._namer, True)
            return await handler(request)

        return app

    return get_request_handler


__all__ = ["FastApiIntegration"]
