"""Route names for Django URLs: ``/polls/{poll_id}/results/`` for the path that matched.

As sentry_sdk 2.75 names Django transactions in the ``url`` style (its
``RavenResolver``): the URL resolvers are walked as a regex search, level by level
(an `include()` is a level), and the patterns that matched are joined, each written
readably: ``path()`` routes with their converters removed (``<int:pk>`` becomes
``{pk}``), regex routes with named groups as ``{name}``, other groups as ``{var}``,
optional groups inlined and anchors and escapes dropped.

Each pattern's text is computed once; tripwire also remembers the name of recent
paths, so a request usually costs one dictionary lookup.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from django.urls import get_resolver
from django.urls.resolvers import RoutePattern

_CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
_NON_CAPTURING = re.compile(r"\(\?:([^)]+)\)")
_NAMED = re.compile(r"\(\?P<(\w+)>[^)]+\)+")
_UNNAMED = re.compile(r"\([^)]+\)")
_ALTERNATIVE = re.compile(r"\[([^\]]+)\|([^\]]+)\]")
_STRIPPED = ("^", "$", "?", "\\A", "\\Z")

# Names of recently seen paths, per resolver; cleared when it reaches this size.
_PATH_CACHE_SIZE = 2048


def get_regex(resolver_or_pattern: Any) -> Any:
    """The compiled regex of a URL pattern or resolver."""
    try:
        return resolver_or_pattern.regex
    except AttributeError:
        return resolver_or_pattern.pattern.regex


def _readable(pattern: Any) -> str:
    inner = getattr(pattern, "pattern", None)
    if isinstance(inner, RoutePattern):
        return _CONVERTER.sub(lambda m: "{" + m.group(1) + "}", str(inner._route))
    text: str = get_regex(pattern).pattern
    text = _NON_CAPTURING.sub(lambda m: m.group(1), text)
    text = _NAMED.sub(lambda m: "{" + m.group(1) + "}", text)
    text = _UNNAMED.sub("{var}", text)
    text = _ALTERNATIVE.sub(lambda m: m.group(1), text)
    for token in _STRIPPED:
        text = text.replace(token, "")
    return text.replace("//", "/").replace("\\", "")


class RavenResolver:
    """Turns a request path into its route name (sentry_sdk's class of that name)."""

    def __init__(self) -> None:
        self._cache: dict[Any, str] = {}
        self._paths: dict[tuple[Any, str], Optional[str]] = {}

    def _resolve(
        self, resolver: Any, path: str, parents: Optional[list[Any]] = None
    ) -> Optional[str]:
        match = get_regex(resolver).search(path)
        if not match:
            return None
        if parents is None:
            parents = [resolver]
        elif resolver not in parents:
            parents = [*parents, resolver]
        rest = path[match.end() :]
        for pattern in resolver.url_patterns:
            if not pattern.callback:  # an include(): one level down
                found = self._resolve(pattern, rest, parents)
                if found:
                    return found
                continue
            if not get_regex(pattern).search(rest):
                continue
            name = self._cache.get(pattern)
            if name is None:
                name = "".join(_readable(p) for p in parents) + _readable(pattern)
                if not name.startswith("/"):
                    name = "/" + name
                self._cache[pattern] = name
            return name
        return None

    def resolve(self, path: str, urlconf: Any = None) -> Optional[str]:
        """The route name of `path` under `urlconf` (default: the settings'), or None."""
        resolver = get_resolver(urlconf)
        key = (resolver, path)
        paths = self._paths
        try:
            return paths[key]
        except KeyError:
            pass
        found = self._resolve(resolver, path)
        if len(paths) >= _PATH_CACHE_SIZE:
            paths.clear()
        paths[key] = found
        return found


LEGACY_RESOLVER = RavenResolver()

__all__ = ["LEGACY_RESOLVER", "RavenResolver", "get_regex"]
