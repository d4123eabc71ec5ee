"""Cache spans for Django (``cache_spans=True``, or Spotlight with ``DEBUG``), as sentry_sdk 2.75.

Each cache connection made while the option is on gets its `get`, `get_many`, `set`
and `set_many` wrapped: inside a span, a ``cache.get`` / ``cache.put`` span named by
the key(s), with ``cache.key``, ``cache.hit`` (a get that did not return the default),
``cache.item_size`` (the length of the value's text) and ``network.peer.address`` /
``network.peer.port`` from the cache's ``LOCATION``.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tripwire.consts import OP, SPANDATA
from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, _integration, _start_span

METHODS_TO_INSTRUMENT = ["set", "set_many", "get", "get_many"]


def _safe_key(method_name: str, args: Any, kwargs: Any) -> Optional[tuple[Any, ...]]:
    """The key(s) of a call: the first argument (several for `*_many`), else ``key=``."""
    if args:
        first = args[0]
        return tuple(first) if isinstance(first, (dict, list, tuple)) else (first,)
    key = kwargs.get("key")
    if isinstance(key, (list, tuple)):
        return tuple(key) if key else None
    return None if key is None else (key,)


def _decoded(part: Any) -> str:
    if isinstance(part, bytes):
        try:
            return part.decode()
        except UnicodeDecodeError:
            return ""
    return str(part)


def _key_text(key: Optional[tuple[Any, ...]]) -> str:
    return "" if key is None else ", ".join(_decoded(part) for part in key)


def _get_address_port(settings: dict[str, Any]) -> tuple[Optional[str], Optional[int]]:
    location = settings.get("LOCATION")
    if not isinstance(location, str):
        return None, None
    if "://" not in location:
        return location, None
    parts = urlsplit(location)
    # Without credentials.
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}", parts.port


def should_enable_cache_spans() -> bool:
    """Whether new cache connections are instrumented."""
    from django.conf import settings

    from tripwire.scope._current import get_client

    client = get_client()
    integration = _integration()
    if integration is None:
        return False
    if integration.cache_spans is True:
        return True
    return getattr(client, "spotlight", None) is not None and settings.DEBUG is True


def patch_caching(module: ModuleType) -> None:
    """`CacheHandler.create_connection` (module `django.core.cache`)."""
    patch_once(module.CacheHandler, "create_connection", _wrap_create_connection, _MARK)


def _wrap_create_connection(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_connection(self: Any, alias: str) -> Any:
        cache = original(self, alias)
        try:
            if should_enable_cache_spans() and not getattr(cache, _MARK, False):
                address, port = _get_address_port(self.settings[alias or "default"])
                for name in METHODS_TO_INSTRUMENT:
                    setattr(cache, name, _instrument(getattr(cache, name), name, address, port))
                setattr(cache, _MARK, True)
        except Exception:
            pass
        return cache

    return create_connection


def _instrument(
    original: Callable[..., Any], method_name: str, address: Optional[str], port: Optional[int]
) -> Callable[..., Any]:
    is_set = method_name.startswith("set")
    op = OP.CACHE_PUT if is_set else OP.CACHE_GET

    @functools.wraps(original)
    def method(*args: Any, **kwargs: Any) -> Any:
        if _integration() is None:
            return original(*args, **kwargs)
        key = _safe_key(method_name, args, kwargs)
        span = _start_span(op, _key_text(key))
        if span is None:
            return original(*args, **kwargs)
        with span:
            value = original(*args, **kwargs)
            try:
                _describe(span, method_name, args, kwargs, value, key, address, port)
            except Exception:
                pass
            return value

    return method


def _describe(
    span: Any,
    method_name: str,
    args: Any,
    kwargs: Any,
    value: Any,
    key: Any,
    address: Optional[str],
    port: Optional[int],
) -> None:
    if address is not None:
        span.set_data(SPANDATA.NETWORK_PEER_ADDRESS, address)
    if port is not None:
        span.set_data(SPANDATA.NETWORK_PEER_PORT, port)
    if key is not None:
        span.set_data(SPANDATA.CACHE_KEY, key)
    size = None
    if method_name == "get_many":
        hit = value != {}
        span.set_data(SPANDATA.CACHE_HIT, hit)
        if hit:
            size = len(str(value))
    elif method_name == "get":
        default = args[1] if len(args) >= 2 else kwargs.get("default")
        hit = value != default
        span.set_data(SPANDATA.CACHE_HIT, hit)
        if hit:
            size = len(str(value))
    elif len(args) >= 2:
        size = len(str(args[1]))
    elif len(args) == 1:
        size = len(str(args[0]))
    if size is not None:
        span.set_data(SPANDATA.CACHE_ITEM_SIZE, size)


__all__ = ["METHODS_TO_INSTRUMENT", "patch_caching", "should_enable_cache_spans"]
