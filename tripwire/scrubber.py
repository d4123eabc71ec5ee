"""`EventScrubber`: replaces values under sensitive key names with ``"[Filtered]"``.

As sentry_sdk.scrubber: keys are matched case-insensitively against a denylist, in
the request (headers, cookies, data), extra, user, breadcrumb data, frame locals and
span data. When an event is scrubbed, each replaced value gets the annotation
Sentry shows for it in the event's `_meta`: ``{"rem": [["!config", "s"]]}``.

Events reach the scrubber already serialized (JSON-safe dicts and lists), so the
walk is a single in-place pass with no copies.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, cast

from tripwire.event.meta import annotate, meta_node

# Key names matched ignoring case, and "-" and "_" alike ("X-Forwarded-For" is
# "x_forwarded_for"), as sentry_sdk 2.76 matches them; 2.75 compared case only, so a
# header spelt with dashes slipped past the PII list.
DEFAULT_DENYLIST = [
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "auth",
    "credentials",
    "mysql_pwd",
    "privatekey",
    "private_key",
    "token",
    "session",
    "csrftoken",
    "sessionid",
    "x_csrftoken",
    "set_cookie",
    "cookie",
    "authorization",
    "proxy-authorization",
    "x_api_key",
    "aiohttp_session",
    "connect.sid",
    "csrf_token",
    "csrf",
    "_csrf",
    "_csrf_token",
    "PHPSESSID",
    "_session",
    "symfony",
    "user_session",
    "_xsrf",
    "XSRF-TOKEN",
]

# Checked as well unless send_default_pii is on. (x_forwarded_for is only here, as in
# sentry_sdk 2.76: a client IP, sent when PII is allowed, like ip_address.)
DEFAULT_PII_DENYLIST = [
    "x_forwarded_for",
    "x_real_ip",
    "ip_address",
    "remote_addr",
]

FILTERED = "[Filtered]"

# Deeper than this (only reachable in hand-built data, or a cycle) a nested
# container is filtered whole rather than walked: bounded work, nothing leaks.
_MAX_DEPTH = 100

Path = tuple[Any, ...]


class EventScrubber:
    """Scrubs sensitive values from events, as sentry_sdk.scrubber.EventScrubber.

    Args:
        denylist: key names to filter; defaults to `DEFAULT_DENYLIST`.
        recursive: also filter inside nested dicts and lists (default: only the
            top level of each scrubbed section).
        send_default_pii: when False, the `pii_denylist` names are filtered too.
        pii_denylist: PII key names; defaults to `DEFAULT_PII_DENYLIST`.
    """

    __slots__ = ("_deny", "_deny_source", "denylist", "recursive")

    def __init__(
        self,
        denylist: Optional[list[str]] = None,
        recursive: bool = False,
        send_default_pii: bool = False,
        pii_denylist: Optional[list[str]] = None,
    ) -> None:
        names = list(DEFAULT_DENYLIST if denylist is None else denylist)
        if not send_default_pii:
            names.extend(DEFAULT_PII_DENYLIST if pii_denylist is None else pii_denylist)
        self.denylist: list[str] = _normalized(names)
        self.recursive = recursive
        self._deny: frozenset[str] = frozenset()
        self._deny_source: Optional[tuple[str, ...]] = None

    def _names(self) -> frozenset[str]:
        # `denylist` is a public, mutable list (as in sentry_sdk): follow changes to it.
        source = tuple(self.denylist)
        if source != self._deny_source:
            self._deny = frozenset(_normalized(source))
            self._deny_source = source
        return self._deny

    def _filtered_copy(self, value: object) -> object:
        """`value` with its denylisted keys filtered, in a copy, when recursive.

        For the serializer, which renders a container past its depth limit as its
        repr: the scrubber, which runs after it, cannot filter inside a string.
        """
        if not self.recursive or not isinstance(value, (dict, list, tuple)):
            return value
        return _filtered(value, self._names(), [_COPY_BUDGET], 0)

    # -- plain data ---------------------------------------------------------------

    def scrub_dict(self, d: object) -> None:
        """Filter the values of denylisted keys in `d` in place (no-op if not a dict)."""
        if isinstance(d, dict):
            self._dict(d, self._names(), None, (), 0)

    def scrub_list(self, lst: object) -> None:
        """Scrub the dicts in `lst` (and in nested lists) in place (no-op if not a list)."""
        if isinstance(lst, list):
            self._list(lst, self._names(), None, (), 0)

    # -- event sections -----------------------------------------------------------

    def scrub_request(self, event: dict[str, Any]) -> None:
        """Scrub ``request.headers``, ``request.cookies`` and ``request.data``."""
        request = event.get("request")
        if not isinstance(request, dict):
            return
        deny = self._names()
        for key in ("headers", "cookies", "data"):
            value = request.get(key)
            if isinstance(value, dict):
                self._dict(value, deny, event, ("request", key), 0)
            elif key == "data" and isinstance(value, list):
                self._list(value, deny, event, ("request", key), 0)

    def scrub_extra(self, event: dict[str, Any]) -> None:
        """Scrub ``extra``."""
        self._section(event, "extra")

    def scrub_user(self, event: dict[str, Any]) -> None:
        """Scrub ``user``.

        A denylisted ``user.ip_address`` is removed rather than filtered, as sentry_sdk
        does: the server then does not store an address at all.
        """
        user = event.get("user")
        if isinstance(user, dict):
            deny = self._names()
            if "ip_address" in deny:
                user.pop("ip_address", None)
            self._dict(user, deny, event, ("user",), 0)

    def scrub_breadcrumbs(self, event: dict[str, Any]) -> None:
        """Scrub the ``data`` of each breadcrumb."""
        deny = self._names()
        for crumbs, path in _values(event, "breadcrumbs"):
            for index, crumb in enumerate(crumbs):
                if isinstance(crumb, dict):
                    data = crumb.get("data")
                    if isinstance(data, dict):
                        self._dict(data, deny, event, (*path, index, "data"), 0)

    def scrub_frames(self, event: dict[str, Any]) -> None:
        """Scrub the local variables (``vars``) of every stack frame in the event."""
        deny = self._names()
        self._stacktrace(event.get("stacktrace"), deny, event, ("stacktrace",))
        for key in ("exception", "threads"):
            for values, path in _values(event, key):
                for index, value in enumerate(values):
                    if isinstance(value, dict):
                        self._stacktrace(
                            value.get("stacktrace"), deny, event, (*path, index, "stacktrace")
                        )

    def scrub_spans(self, event: dict[str, Any]) -> None:
        """Scrub the ``data`` of each span of a transaction."""
        spans = event.get("spans")
        if not isinstance(spans, list):
            return
        deny = self._names()
        for index, span in enumerate(spans):
            if isinstance(span, dict):
                data = span.get("data")
                if isinstance(data, dict):
                    self._dict(data, deny, event, ("spans", index, "data"), 0)

    def scrub_event(self, event: dict[str, Any]) -> None:
        """Scrub every section of `event` in place, recording each filter in ``_meta``."""
        if not isinstance(cast(object, event), dict):
            return
        self.scrub_request(event)
        self.scrub_extra(event)
        self.scrub_user(event)
        self.scrub_breadcrumbs(event)
        self.scrub_frames(event)
        self.scrub_spans(event)

    # -- the walk -----------------------------------------------------------------

    def _section(self, event: dict[str, Any], key: str) -> None:
        value = event.get(key)
        if isinstance(value, dict):
            self._dict(value, self._names(), event, (key,), 0)

    def _stacktrace(
        self, stacktrace: object, deny: frozenset[str], event: dict[str, Any], path: Path
    ) -> None:
        if not isinstance(stacktrace, dict):
            return
        frames = stacktrace.get("frames")
        if not isinstance(frames, list):
            return
        for index, frame in enumerate(frames):
            if isinstance(frame, dict):
                local_vars = frame.get("vars")
                if isinstance(local_vars, dict):
                    self._dict(local_vars, deny, event, (*path, "frames", index, "vars"), 0)

    def _dict(
        self,
        d: dict[Any, Any],
        deny: frozenset[str],
        event: Optional[dict[str, Any]],
        path: Path,
        depth: int,
    ) -> None:
        recursive = self.recursive
        # Replacing the value of an existing key while iterating is safe (size unchanged).
        for key, value in d.items():
            if isinstance(key, str) and _key(key) in deny:
                d[key] = FILTERED
                if event is not None:
                    _mark_filtered(event, (*path, key))
            elif recursive and isinstance(value, (dict, list)):
                if depth >= _MAX_DEPTH:
                    d[key] = FILTERED
                    if event is not None:
                        _mark_filtered(event, (*path, key))
                elif isinstance(value, dict):
                    self._dict(value, deny, event, (*path, key), depth + 1)
                else:
                    self._list(value, deny, event, (*path, key), depth + 1)

    def _list(
        self,
        lst: list[Any],
        deny: frozenset[str],
        event: Optional[dict[str, Any]],
        path: Path,
        depth: int,
    ) -> None:
        for index, value in enumerate(lst):
            if not isinstance(value, (dict, list)):
                continue
            if depth >= _MAX_DEPTH:
                lst[index] = FILTERED
                if event is not None:
                    _mark_filtered(event, (*path, index))
            elif isinstance(value, dict):
                self._dict(value, deny, event, (*path, index), depth + 1)
            else:
                self._list(value, deny, event, (*path, index), depth + 1)


_COPY_BUDGET = 10_000  # containers and values copied; past it, or too deep, all is filtered


def _filtered(value: Any, deny: frozenset[str], budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:  # the in-place walk's bound too
        return FILTERED
    if isinstance(value, dict):
        return {
            key: (
                FILTERED
                if isinstance(key, str) and _key(key) in deny
                else _filtered(item, deny, budget, depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_filtered(item, deny, budget, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(_filtered(item, deny, budget, depth + 1) for item in value)
    return value


def _key(name: str) -> str:
    return name.lower().replace("-", "_")


def _normalized(names: Iterable[Any]) -> list[str]:
    # Non-str entries cannot match a key; skip them rather than fail.
    return [_key(name) for name in names if isinstance(name, str)]


def _values(event: dict[str, Any], key: str) -> list[tuple[list[Any], Path]]:
    """The item list of an interface that is ``{"values": [...]}`` or a bare list."""
    container = event.get(key)
    if isinstance(container, dict):
        values = container.get("values")
        if isinstance(values, list):
            return [(values, (key, "values"))]
    elif isinstance(container, list):
        return [(container, (key,))]
    return []


def _mark_filtered(event: dict[str, Any], path: Path) -> None:
    # The value was replaced whole: annotations left on it or below it (a trimmed
    # length, say) no longer describe anything.
    meta_node(event, *path).clear()
    annotate(event, path, {"rem": [["!config", "s"]]})
