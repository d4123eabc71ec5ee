"""The bounded serializer: user data to JSON-safe values, trimmed at the edges of the event.

sentry-sdk runs one generic clean-up pass over a finished event. tripwire instead serializes
user data where it enters the event, so this module is on hot paths (frame variables are
rendered for every frame of every exception) and must never be dominated by input size:
containers are iterated with ``islice`` up to the breadth limit, strings are sliced before
they are encoded, and reprs of builtin containers are built by hand with a character budget
(`tripwire.event._repr`).
The output shapes, placeholders and ``_meta`` annotations follow what sentry-sdk 2.x sends.

Deliberate differences from sentry-sdk 2.75:

* ``max_value_length=None`` means ``DEFAULT_MAX_VALUE_LENGTH`` (sentry-sdk: never trim).
* Reprs of builtin containers and long strings stop at a budget; past it the ``len`` in
  ``_meta`` is a lower bound (or an estimate for strings over ``_EXACT_SCAN`` characters).
* Ints over 4300 digits are ``"<broken repr>"`` (sentry-sdk drops the whole event).
* Years before 1000 are zero-padded (``0999-...``, valid ISO 8601; sentry-sdk prints
  ``999-...``); a dict key whose ``str()`` raises falls back to its repr (sentry-sdk fails
  the whole dict); a custom_repr result that is not a str is ignored (sentry-sdk sends it).
* Non-databag values have safety caps (``VALUE_MAX_DEPTH``, ``VALUE_MAX_BREADTH``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from itertools import islice
from typing import Any, Callable, Optional

from tripwire.consts import DEFAULT_MAX_VALUE_LENGTH, MAX_DATABAG_BREADTH, MAX_DATABAG_DEPTH
from tripwire.event._repr import (
    _HUGE_INT,
    _NEG_HUGE_INT,
    _TYPE_CACHE_SIZE,
    BROKEN_REPR,
    _cut,
    _NoneType,
    _raw_repr,
    _repr_budget,
    _str_repr,
    _str_repr_len,
    _utf8_len,
    safe_repr,
)
from tripwire.event.annotated import AnnotatedValue
from tripwire.event.meta import merge_meta as _merge_meta

__all__ = ["BROKEN_REPR", "CYCLIC", "FAILED", "Serializer", "global_repr_processors", "safe_repr"]

# Placeholders; the strings are the ones sentry-sdk sends, so Sentry's UI treats them alike.
# (BROKEN_REPR, for a repr that raised, comes from `tripwire.event._repr`.)
CYCLIC = "<cyclic>"
FAILED = "<failed to serialize, use init(debug=True) to see error logs>"

# Safety caps for non-databag values (tags, user, contexts, whole events). sentry-sdk has no
# such caps; these only stop hostile or accidental giants (deep recursion, huge lists).
VALUE_MAX_DEPTH = 64
VALUE_MAX_BREADTH = 10_000

# `tripwire.serializer.add_global_repr_processor` (sentry_sdk's hook) appends here. Each is
# called as processor(value, hint) for the values of databags and frame variables; a result
# other than NotImplemented is used as the value. Empty, it costs one truth test per value.
global_repr_processors: list[Callable[[Any, dict[str, Any]], Any]] = []

_VARS_SCALARS = frozenset((str, int, float, bool, _NoneType, bytes))
_CONTAINERS: tuple[type, ...] = (Mapping, list, tuple, set, frozenset)


# --------------------------------------------------------------------------- _meta


def _trim_note(size: int, keep: int) -> dict[str, Any]:
    return {"len": size, "rem": [["!limit", "x", keep, keep + 3]]}


def _annotate(pmeta: dict[str, Any], key: str | int, note: dict[str, Any]) -> None:
    """Set the annotation of child `key` of the `_meta` node `pmeta`."""
    skey = key if type(key) is str else str(key)
    node = pmeta.get(skey)
    if node is None:
        pmeta[skey] = {"": note}
    else:
        node[""] = note


def add_sequence_type(ty: type) -> None:
    """Serialize instances of `ty` as lists (`tripwire.serializer.add_repr_sequence_type`)."""
    global _CONTAINERS
    if ty not in _CONTAINERS:
        _CONTAINERS = (*_CONTAINERS, ty)
        _CONTAINER_TYPES.clear()


def _processed(v: object, remaining_depth: int) -> Any:
    """The first global repr processor's answer for `v`, or NotImplemented."""
    hint = {"remaining_depth": remaining_depth}
    for processor in global_repr_processors:
        result = processor(v, hint)
        if result is not NotImplemented:
            return result
    return NotImplemented


# --------------------------------------------------------------------------- containers

# Per-type answers cached (bounded) because asking an ABC for every leaf of every frame
# dominates the cost of rendering it. Registering a class with an ABC after its instances
# were serialized is not noticed until the cache is cleared; that is accepted.
_CONTAINER_TYPES: dict[type, bool] = {}


def _is_container(v: object, t: type) -> bool:
    """Whether `v` (of type `t`) is serialized as a container (mapping or list-like)."""
    known = _CONTAINER_TYPES.get(t)
    if known is None:
        known = isinstance(v, _CONTAINERS)
        # Proxies (werkzeug's LocalProxy, mocks) fake __class__, so isinstance answers
        # per instance for them: only cache types that keep the default __class__.
        if all("__class__" not in vars(base) for base in t.__mro__[:-1]):
            if len(_CONTAINER_TYPES) >= _TYPE_CACHE_SIZE:
                _CONTAINER_TYPES.clear()
            _CONTAINER_TYPES[t] = known
    return known


def _format_datetime(value: datetime) -> str:
    # Sentry's format: UTC, microseconds, "Z". Naive values are local time, like astimezone().
    v = value.astimezone(timezone.utc)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


# --------------------------------------------------------------------------- event rules

_BAG = "bag"
_EACH_BAG = "each-bag"
_SKIP = "skip"
_TAGS = "tags"

# Sentry's limit for a tag value, in characters (Relay rejects or trims longer ones).
TAG_VALUE_MAX_CHARS = 200
# Relay trims tag keys to this length too; cutting here keeps two long keys that
# share a prefix from colliding after the SDK has merged them.
TAG_KEY_MAX_CHARS = 200
_OMIT: Any = object()

# Event paths sentry-sdk serializes as databags (observed on 2.75): `extra` (bounded from the
# extra dict itself), `request.data`, and every breadcrumb. Frame "vars" in a user-supplied
# event are not trimmed by sentry-sdk; frames built by tripwire get them from `frame_vars`.
_EVENT_RULES: dict[str, Any] = {
    "extra": _BAG,
    "tags": _TAGS,
    "request": {"data": _BAG},
    "breadcrumbs": {"values": _EACH_BAG},
    "_meta": _SKIP,
}


# --------------------------------------------------------------------------- serializer


class Serializer:
    """Turns user data into JSON-safe values with Sentry's limits and `_meta` annotations.

    Built once per client; thread-safe (keeps no per-call state).

    Args:
        max_value_length: Strings longer than this many UTF-8 bytes are cut and end in
            ``"..."``. ``None`` means ``DEFAULT_MAX_VALUE_LENGTH``.
        custom_repr: Called for objects that would be rendered with ``repr()``; a returned
            str is used, ``None`` (or an error) falls back to ``repr()``.
        max_depth: Databag nesting limit; values this deep are replaced by their repr.
        max_breadth: Databag items kept per container.
        cut_filter: Applied to a container before it is rendered with ``repr()`` at the
            depth limit (the recursive scrubber's filtered copy: no scrubber can reach
            into a repr string afterwards).
    """

    __slots__ = (
        "_budget",
        "_custom_repr",
        "_cut_filter",
        "_limit",
        "_max_breadth",
        "_max_depth",
        "_quick",
    )

    def __init__(
        self,
        *,
        max_value_length: Optional[int] = None,
        custom_repr: Optional[Callable[[object], Optional[str]]] = None,
        max_depth: int = MAX_DATABAG_DEPTH,
        max_breadth: int = MAX_DATABAG_BREADTH,
        cut_filter: Optional[Callable[[object], object]] = None,
    ) -> None:
        limit = DEFAULT_MAX_VALUE_LENGTH if max_value_length is None else max(max_value_length, 0)
        self._limit = limit
        self._quick = limit // 4  # strings this short fit whatever their encoding
        self._budget = _repr_budget(limit)
        self._custom_repr = custom_repr
        self._max_depth = max_depth
        self._max_breadth = max(max_breadth, 0)
        self._cut_filter = cut_filter

    # ----------------------------------------------------------------- public API

    def databag(self, value: object, meta: dict[str, Any]) -> Any:
        """Serialize a user data bag (extra, request data, breadcrumb, ...).

        Containers deeper than ``max_depth`` become reprs and keep ``max_breadth`` items;
        annotations for what was cut go into `meta`, the `_meta` node of `value`.
        """
        return self._root(value, meta, self._max_depth, self._max_breadth)

    def value(self, value: object, meta: dict[str, Any]) -> Any:
        """Serialize a non-databag user value (tag, user, fingerprint, context, ...).

        Only strings are trimmed; generous depth and breadth caps guard against giants.
        """
        return self._root(value, meta, VALUE_MAX_DEPTH, VALUE_MAX_BREADTH)

    def tags(self, tags: object, meta: dict[str, Any]) -> Any:
        """An event's ``tags`` as the protocol wants them (see `_tags`); never raises.

        Annotations go into `meta` under ``"tags"`` (`meta` is the event's `_meta`).
        """
        try:
            return self._tags(tags, meta, "tags")
        except Exception:
            return FAILED

    def frame_vars(
        self, f_locals: Mapping[str, object], meta: Optional[dict[str, Any]] = None
    ) -> dict[str, Any]:
        """Render a frame's local variables as Sentry's ``vars``.

        Leaves become repr strings (``3`` -> ``"3"``, ``"s"`` -> ``"'s'"``); containers stay
        containers within the databag limits. Like sentry-sdk, only string trimming is
        recorded in `meta` (the `_meta` node of ``vars``), if given.
        """
        try:
            items = islice(f_locals.items(), self._max_breadth)
            return self._vdict(items, 1, meta, {id(f_locals)})
        except Exception:
            return {}

    def event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Serialize a whole user-supplied event dict; never raises.

        Databag rules apply where sentry-sdk applies them (``extra``, ``request.data``,
        each breadcrumb); the rest is serialized like :meth:`value`. Annotations are merged
        into ``result["_meta"]``, together with any `_meta` the event already had.
        """
        try:
            if not isinstance(event, Mapping):
                return {}  # type: ignore[unreachable]
            holder: dict[str, Any] = {}
            out = self._ruled(event, 0, holder, "", set(), _EVENT_RULES)
            if not isinstance(out, dict):
                return {}
            meta: dict[str, Any] = {}
            user_meta = event.get("_meta")
            if user_meta is not None:
                copied = self.value(user_meta, {})
                if isinstance(copied, dict):
                    meta = copied
            ours = holder.get("")
            if ours:
                _merge_meta(meta, ours)
            if meta:
                out["_meta"] = meta
            return out
        except Exception:
            return {}

    # ----------------------------------------------------------------- helpers

    def _root(self, value: object, meta: dict[str, Any], depth: int, breadth: int) -> Any:
        holder: dict[str, Any] = {}
        try:
            out = self._walk(value, 0, holder, "", set(), depth, breadth)
        except Exception:
            return FAILED
        node = holder.get("")
        if node:
            try:
                _merge_meta(meta, node)
            except Exception:
                pass
        return out

    def _fit(self, s: str, pmeta: Optional[dict[str, Any]], key: str | int, size: int = -1) -> str:
        """Return exact str `s`, trimmed to the length limit (annotated in `pmeta`).

        `size` is the original length when `s` is only the head of a longer text.
        """
        limit = self._limit
        if len(s) <= limit and _utf8_len(s) <= limit:
            return s
        text, cut_size, keep = _cut(s, limit)
        if pmeta is not None:
            _annotate(pmeta, key, _trim_note(max(size, cut_size), keep))
        return text

    def _key(self, key: object) -> str:
        """Dict keys become strings (``str(key)``), capped but never annotated."""
        try:
            s = str.__str__(key) if isinstance(key, str) else str(key)
            if type(s) is not str:
                s = str.__str__(s)
        except Exception:
            s = _raw_repr(key, self._budget)
        return s if len(s) <= self._budget else s[: self._budget]

    def _repr(self, v: object) -> str:
        """custom_repr(v) if it gives a str, else the bounded safe repr."""
        cr = self._custom_repr
        if cr is not None:
            try:
                r = cr(v)
                if isinstance(r, str):
                    return r if type(r) is str else str.__str__(r)
            except Exception:
                pass
        return _raw_repr(v, self._budget)

    def _limited(
        self, v: object, pmeta: Optional[dict[str, Any]], key: str | int, struct: bool
    ) -> str:
        """A value past the depth limit: its repr, marked as removed by the limit."""
        if self._cut_filter is not None:
            v = self._cut_filter(v)
        r = self._repr(v)
        if len(r) > self._quick:
            limit = self._limit
            if len(r) > limit or _utf8_len(r) > limit:
                text, size, keep = _cut(r, limit)
                if pmeta is not None:
                    _annotate(pmeta, key, _trim_note(size, keep))
                return text
        if struct and pmeta is not None:
            _annotate(pmeta, key, {"rem": [["!limit", "x"]]})
        return r

    def _bytes(self, v: bytes | bytearray, pmeta: dict[str, Any] | None, key: str | int) -> str:
        # Sentry sends bytes in data bags as text, decoding invalid UTF-8 as U+FFFD.
        n = len(v)
        if n <= self._budget:
            return self._fit(v.decode("utf-8", "replace"), pmeta, key)
        # Decode only a prefix; the reported length is then the byte count.
        text, _, keep = _cut(v[: self._limit + 4].decode("utf-8", "replace"), self._limit)
        if pmeta is not None:
            _annotate(pmeta, key, _trim_note(n, keep))
        return text

    def _walk(
        self,
        v: object,
        depth: int,
        pmeta: dict[str, Any],
        key: str | int,
        seen: set[int],
        max_depth: int,
        max_breadth: int,
    ) -> Any:
        """Serialize `v` (child `key` of the `_meta` node `pmeta`) as data."""
        if depth >= max_depth:
            return self._limited(v, pmeta, key, True)
        if global_repr_processors and max_depth != VALUE_MAX_DEPTH:
            done = _processed(v, max_depth - depth)
            if done is not NotImplemented:
                return done
        c: Any = v
        t = type(c)
        if t is str:
            return c if len(c) <= self._quick else self._fit(c, pmeta, key)
        if c is None or t is bool:
            return c
        if t is int:
            return c if _NEG_HUGE_INT < c < _HUGE_INT else BROKEN_REPR
        if t is float:
            return c if c - c == 0.0 else float.__repr__(c)
        if t is not dict and t is not list and t is not tuple:
            # Subclass checks go by the real type: proxies that fake __class__ (werkzeug's
            # LocalProxy) must not reach the unbound str/int/float methods below.
            if issubclass(t, str):
                return self._fit(str.__str__(c), pmeta, key)
            if issubclass(t, int):  # int subclasses such as IntEnum go out as plain ints
                i = int.__index__(c)
                return i if _NEG_HUGE_INT < i < _HUGE_INT else BROKEN_REPR
            if issubclass(t, float):
                f = float.__float__(c)
                return f if f - f == 0.0 else float.__repr__(f)
            if issubclass(t, (bytes, bytearray)):
                return self._bytes(c, pmeta, key)
            if issubclass(t, datetime):
                try:
                    return _format_datetime(c)
                except Exception:
                    return self._fit(self._repr(c), pmeta, key)
            if t is AnnotatedValue:
                # The value goes out; how the SDK changed it goes into `_meta`.
                settled = self._walk(c.value, depth, pmeta, key, seen, max_depth, max_breadth)
                _annotate(pmeta, key, dict(c.metadata))
                return settled
            if not _is_container(c, t):
                r = self._repr(c)
                return r if len(r) <= self._quick else self._fit(r, pmeta, key)

        vid = id(c)
        if vid in seen:
            return CYCLIC
        seen.add(vid)
        try:
            cmeta: dict[str, Any] = {}
            depth += 1
            out: Any
            if t is dict or isinstance(c, Mapping):
                items = dict.items(c) if issubclass(t, dict) else c.items()
                out = {}
                for k, item in islice(items, max_breadth):
                    skey = k if type(k) is str else self._key(k)
                    try:
                        out[skey] = self._walk(
                            item, depth, cmeta, skey, seen, max_depth, max_breadth
                        )
                    except Exception:
                        out[skey] = FAILED
            else:
                out = []
                append = out.append
                for i, item in enumerate(islice(c, max_breadth)):
                    try:
                        append(self._walk(item, depth, cmeta, i, seen, max_depth, max_breadth))
                    except Exception:  # one bad item must not lose the rest
                        append(FAILED)
            try:
                n = len(c)
            except Exception:
                n = 0
            if n > max_breadth:
                cmeta[""] = {"len": n}
            if cmeta:
                pmeta[key if type(key) is str else str(key)] = cmeta
            return out
        finally:
            seen.discard(vid)

    def _vwalk(
        self,
        v: object,
        depth: int,
        pmeta: Optional[dict[str, Any]],
        key: str | int,
        seen: set[int],
    ) -> Any:
        """Serialize `v` as a frame variable: containers kept, leaves as repr strings."""
        if global_repr_processors:
            done = _processed(v, self._max_depth - depth + 1)
            if done is not NotImplemented:
                return done
        t = type(v)
        if depth < self._max_depth and (
            t is dict or t is list or t is tuple or (t not in _VARS_SCALARS and _is_container(v, t))
        ):
            vid = id(v)
            if vid in seen:
                return CYCLIC
            seen.add(vid)
            try:
                cmeta: Optional[dict[str, Any]] = None if pmeta is None else {}
                breadth = self._max_breadth
                c: Any = v
                out: Any
                if t is dict:
                    items = c.items() if len(c) <= breadth else islice(c.items(), breadth)
                    out = self._vdict(items, depth + 1, cmeta, seen)
                elif t is list or t is tuple:
                    seq = c if len(c) <= breadth else islice(c, breadth)
                    out = self._vlist(seq, depth + 1, cmeta, seen)
                elif isinstance(c, Mapping):
                    items = dict.items(c) if issubclass(t, dict) else c.items()  # type: ignore[arg-type]
                    out = self._vdict(islice(items, breadth), depth + 1, cmeta, seen)
                else:
                    out = self._vlist(islice(c, breadth), depth + 1, cmeta, seen)
                if cmeta:
                    pmeta[key if type(key) is str else str(key)] = cmeta  # type: ignore[index]
                return out
            finally:
                seen.discard(vid)

        if self._custom_repr is None:
            if t is str:
                if len(v) > self._budget:  # type: ignore[arg-type]
                    head = _str_repr(v, self._budget)  # type: ignore[arg-type]
                    return self._fit(head, pmeta, key, _str_repr_len(v))  # type: ignore[arg-type]
                r = repr(v)
            elif t is int and _NEG_HUGE_INT < v < _HUGE_INT:  # type: ignore[operator]
                r = int.__repr__(v)
            elif v is None:
                r = "None"
            else:
                if self._cut_filter is not None:
                    v = self._cut_filter(v)
                r = _raw_repr(v, self._budget)
        else:
            if self._cut_filter is not None:
                v = self._cut_filter(v)
            r = self._repr(v)
        if len(r) <= self._quick:
            return r
        return self._fit(r, pmeta, key)

    # The two loops below inline the common scalar leaves: frame_vars runs for every frame,
    # and a method call per leaf would cost more than rendering the leaf.

    def _vdict(
        self, pairs: Any, depth: int, meta: Optional[dict[str, Any]], seen: set[int]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fast = self._custom_repr is None and not global_repr_processors
        quick = self._quick
        for k, item in pairs:
            skey = k if type(k) is str else self._key(k)
            try:
                t = type(item)
                if not fast:
                    r = self._vwalk(item, depth, meta, skey, seen)
                elif t is str and len(item) <= quick:
                    r = repr(item)
                elif t is int and _NEG_HUGE_INT < item < _HUGE_INT:
                    r = int.__repr__(item)
                elif item is None:
                    r = "None"
                elif t is bool:
                    r = "True" if item else "False"
                else:
                    r = self._vwalk(item, depth, meta, skey, seen)
                if type(r) is str and len(r) > quick:
                    r = self._fit(r, meta, skey)
                out[skey] = r
            except Exception:
                out[skey] = FAILED
        return out

    def _vlist(
        self, values: Any, depth: int, meta: Optional[dict[str, Any]], seen: set[int]
    ) -> list[Any]:
        out: list[Any] = []
        fast = self._custom_repr is None and not global_repr_processors
        quick = self._quick
        for i, item in enumerate(values):
            try:
                t = type(item)
                if not fast:
                    r = self._vwalk(item, depth, meta, i, seen)
                elif t is str and len(item) <= quick:
                    r = repr(item)
                elif t is int and _NEG_HUGE_INT < item < _HUGE_INT:
                    r = int.__repr__(item)
                elif item is None:
                    r = "None"
                elif t is bool:
                    r = "True" if item else "False"
                else:
                    r = self._vwalk(item, depth, meta, i, seen)
                if type(r) is str and len(r) > quick:
                    r = self._fit(r, meta, i)
                out.append(r)
            except Exception:
                out.append(FAILED)
        return out

    def _ruled(
        self,
        v: object,
        depth: int,
        pmeta: dict[str, Any],
        key: str | int,
        seen: set[int],
        rule: Any,
    ) -> Any:
        """Serialize part of an event, switching to databag rules where `rule` says so."""
        if rule == _TAGS:
            return self._tags(v, pmeta, key)
        if rule == _BAG:
            return self._walk(v, 0, pmeta, key, seen, self._max_depth, self._max_breadth)
        if rule == _EACH_BAG:
            if isinstance(v, (list, tuple)):
                cmeta: dict[str, Any] = {}
                out_list = []
                for i, item in enumerate(islice(v, VALUE_MAX_BREADTH)):
                    try:
                        out_list.append(self._ruled(item, depth + 1, cmeta, i, seen, _BAG))
                    except Exception:
                        out_list.append(FAILED)
                if cmeta:
                    pmeta[str(key)] = cmeta
                return out_list
        elif isinstance(rule, dict) and isinstance(v, Mapping) and id(v) not in seen:
            vid = id(v)
            seen.add(vid)
            try:
                cmeta = {}
                out: dict[str, Any] = {}
                for k, item in islice(v.items(), VALUE_MAX_BREADTH):
                    skey = k if type(k) is str else self._key(k)
                    sub = rule.get(skey)
                    try:
                        if sub is None:
                            out[skey] = self._walk(
                                item,
                                depth + 1,
                                cmeta,
                                skey,
                                seen,
                                VALUE_MAX_DEPTH,
                                VALUE_MAX_BREADTH,
                            )
                        elif sub != _SKIP:
                            out[skey] = self._ruled(item, depth + 1, cmeta, skey, seen, sub)
                    except Exception:
                        out[skey] = FAILED
                if cmeta:
                    pmeta[str(key)] = cmeta
                return out
            finally:
                seen.discard(vid)
        return self._walk(v, depth, pmeta, key, seen, VALUE_MAX_DEPTH, VALUE_MAX_BREADTH)

    def _tags(self, v: object, pmeta: dict[str, Any], key: str | int) -> Any:
        """An event's tags: string values of at most `TAG_VALUE_MAX_CHARS` characters.

        The protocol's tag values are strings. A bool, int or float becomes its ``str()``
        (as Relay converts them); None drops the tag (a tag without a value is not
        kept by Sentry); bytes are decoded; anything else becomes its repr (as sentry-sdk
        renders objects; Relay would discard a dict or list). Longer values end in
        ``"..."``, annotated in `_meta` like every trimmed string.
        """
        if isinstance(v, Mapping):
            items: Any = islice(v.items(), VALUE_MAX_BREADTH)
        elif isinstance(v, (list, tuple)):  # the protocol's other form: [key, value] pairs
            items = (
                p
                for p in islice(v, VALUE_MAX_BREADTH)
                if isinstance(p, (list, tuple)) and len(p) == 2
            )
        else:
            return self._walk(v, 0, pmeta, key, set(), VALUE_MAX_DEPTH, VALUE_MAX_BREADTH)
        cmeta: dict[str, Any] = {}
        out: dict[str, str] = {}
        for k, item in items:
            skey = k if type(k) is str else self._key(k)
            if len(skey) > TAG_KEY_MAX_CHARS:
                skey = skey[: TAG_KEY_MAX_CHARS - 3] + "..."
            try:
                value = self._tag_value(item, cmeta, skey)
            except Exception:
                value = FAILED
            if value is not _OMIT:
                out[skey] = value
        if cmeta:
            pmeta[str(key)] = cmeta
        return out

    def _tag_value(self, v: object, pmeta: dict[str, Any], key: str) -> Any:
        t = type(v)
        if t is str:
            s: str = v  # type: ignore[assignment]
        elif v is None:
            return _OMIT
        elif t is bool:
            s = "True" if v else "False"
        elif t is int or t is float:
            s = _raw_repr(v, self._budget)  # "<broken repr>" for ints past 4300 digits
        elif isinstance(v, str):
            s = str.__str__(v)
        elif isinstance(v, (bytes, bytearray)):
            s = bytes(v[: 4 * TAG_VALUE_MAX_CHARS + 4]).decode("utf-8", "replace")
            if len(v) > 4 * TAG_VALUE_MAX_CHARS + 4:
                s += "..."  # long enough to be trimmed below
        else:
            s = self._repr(v)
        size = len(s)
        if size > TAG_VALUE_MAX_CHARS:
            keep = TAG_VALUE_MAX_CHARS - 3
            s = s[:keep] + "..."
            if t is bytes or t is bytearray:
                size = len(v)  # type: ignore[arg-type]
            _annotate(pmeta, key, _trim_note(size, keep))
            return s
        if size > self._quick:
            return self._fit(s, pmeta, key)  # a max_value_length below the tag limit
        return s
