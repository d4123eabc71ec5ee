"""Safe, bounded reprs: `safe_repr` and the repr and trimming helpers the serializer uses.

``repr()`` of a large builtin container or string costs as much as its size, and a user's
``__repr__`` may raise. `_raw_repr` never raises and builds reprs of builtin containers by
hand, stopping at a character budget; `tripwire.event.serializer` renders leaves with it.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any, Optional

from tripwire.consts import DEFAULT_MAX_VALUE_LENGTH

__all__ = ["BROKEN_REPR", "safe_repr"]

# The placeholder for a repr that raised; the string is the one sentry-sdk sends.
BROKEN_REPR = "<broken repr>"

# Nesting beyond this inside a hand-built repr is reported as a broken repr rather than
# risking the interpreter's recursion limit.
_MAX_REPR_NESTING = 200

# CPython 3.11+ refuses str(int) beyond 4300 digits by default; json.dumps fails the same way.
# Such ints are rendered as broken reprs everywhere, whatever the interpreter's setting.
_HUGE_INT = 10**4300
_NEG_HUGE_INT = -_HUGE_INT

_ENCODE_CHUNK = 1 << 16
# Longer texts get estimated, not measured, lengths in `_meta` (see `_cut`, `_str_repr_len`).
_EXACT_SCAN = 1 << 20

_DictKeys: Any = type({}.keys())
_DictValues: Any = type({}.values())
_DictItems: Any = type({}.items())

_NoneType = type(None)


# --------------------------------------------------------------------------- strings


def _utf8_len(s: str) -> int:
    """Length of `s` in UTF-8 bytes, without copying more than a chunk at a time."""
    if s.isascii():  # O(1) in CPython: compact strings carry an ASCII flag
        return len(s)
    n = len(s)
    if n <= _ENCODE_CHUNK:
        return len(s.encode("utf-8", "surrogatepass"))
    total = 0
    for start in range(0, n, _ENCODE_CHUNK):
        total += len(s[start : start + _ENCODE_CHUNK].encode("utf-8", "surrogatepass"))
    return total


def _utf8_head(data: bytes) -> str:
    """Decode `data`, dropping a multi-byte sequence cut off at its end."""
    end = len(data)
    # Step back over continuation bytes to the last lead byte; drop it if incomplete.
    i = end - 1
    while i >= 0 and end - i <= 4 and (data[i] & 0xC0) == 0x80:
        i -= 1
    if i >= 0:
        lead = data[i]
        need = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if end - i < need:
            data = data[:i]
    return data.decode("utf-8", "surrogatepass")


def _cut(s: str, limit: int) -> tuple[str, int, int]:
    """Trim `s` (known to exceed `limit` UTF-8 bytes) the way Sentry does.

    Returns the trimmed text, the original length in bytes, and where the cut is.
    """
    keep = max(limit - 3, 0)
    if s.isascii():
        return s[:keep] + "...", len(s), keep
    head = s[:keep].encode("utf-8", "surrogatepass")[:keep]
    try:
        text = _utf8_head(head)
    except UnicodeDecodeError:
        text = head.decode("utf-8", "ignore")
    # Past _EXACT_SCAN characters the reported length is the character count (a lower
    # bound): measuring the rest of a string we are throwing away would be a full scan.
    return text + "...", (_utf8_len(s) if len(s) <= _EXACT_SCAN else len(s)), keep


# --------------------------------------------------------------------------- reprs


def _quoted_head(full_has_sq: bool, full_has_dq: bool, head_repr: str, prefix: str) -> str:
    """Turn the repr of a prefix into the opening of the repr of the whole string.

    Python picks the quote character from the whole string's content, so the prefix's own
    choice may differ; fix the quote (and the escaping of ') without re-scanning the input.
    """
    want = '"' if (full_has_sq and not full_has_dq) else "'"
    got = head_repr[len(prefix)]
    body = head_repr[len(prefix) + 1 : -1]
    if want != got and want == "'":
        body = body.replace("'", "\\'")
    return prefix + want + body  # deliberately unterminated: the caller trims it anyway


def _str_repr(s: str, budget: int) -> str:
    """``repr(s)`` for an exact str; for long strings only about `budget` characters of it."""
    if len(s) <= budget:
        return repr(s)
    head = s[:budget]
    return _quoted_head("'" in s, '"' in s, repr(head), "")


def _bytes_repr(b: bytes | bytearray, budget: int) -> str:
    if len(b) <= budget:
        return repr(bytes(b))
    head = bytes(b[:budget])
    return _quoted_head(b"'" in b, b'"' in b, repr(head), "b")


def _int_repr(v: int) -> str:
    if _NEG_HUGE_INT < v < _HUGE_INT:
        return int.__repr__(v)
    raise ValueError("int too large to represent")


class _Overflow(Exception):
    """The repr being built has outgrown its budget."""


# Per-type answers cached (bounded) because walking the MRO for every leaf of every frame
# dominates the cost of rendering it (`tripwire.event.serializer` caches its container test
# the same way, with the same bound).
_TYPE_CACHE_SIZE = 1024
_REPR_KINDS: dict[type, str] = {}


def _container_kind(t: type) -> str | None:
    """Which builtin layout a repr of `t` has, if we can build it ourselves."""
    kind = _REPR_KINDS.get(t)
    if kind is None:
        kind = _find_container_kind(t) or ""
        if len(_REPR_KINDS) >= _TYPE_CACHE_SIZE:
            _REPR_KINDS.clear()
        _REPR_KINDS[t] = kind
    return kind or None


def _find_container_kind(t: type) -> str | None:
    if t is list or t is dict or t is tuple or t is set or t is frozenset or t is deque:
        return t.__name__
    if t is _DictKeys or t is _DictValues or t is _DictItems:
        return "view"
    # Subclasses that keep the builtin __repr__ print exactly like the builtin (no type name).
    if issubclass(t, list) and t.__repr__ is list.__repr__:
        return "list"
    if issubclass(t, dict) and t.__repr__ is dict.__repr__:
        return "dict"
    if issubclass(t, tuple) and t.__repr__ is tuple.__repr__:
        return "tuple"
    return None


_REPR_CHUNK = 64
_FLAT_STR_LEN = 256
_FLAT_TYPES = frozenset((int, float, bool, _NoneType, str, bytes))


def _flat(chunk: list[Any]) -> bool:
    """Whether builtin repr of these items is cheap and equal to ours (no nesting)."""
    for item in chunk:
        t = type(item)
        if t not in _FLAT_TYPES or ((t is str or t is bytes) and len(item) > _FLAT_STR_LEN):
            return False
    return True


def _flat_pairs(chunk: list[tuple[Any, Any]]) -> bool:
    for key, value in chunk:
        t = type(key)
        if t not in _FLAT_TYPES or ((t is str or t is bytes) and len(key) > _FLAT_STR_LEN):
            return False
        t = type(value)
        if t not in _FLAT_TYPES or ((t is str or t is bytes) and len(value) > _FLAT_STR_LEN):
            return False
    return True


class _ReprBuilder:
    """Builds ``repr()`` of builtin containers, stopping once `budget` characters are out."""

    __slots__ = ("active", "parts", "room")

    def __init__(self, budget: int) -> None:
        self.parts: list[str] = []
        self.room = budget
        self.active: set[int] = set()

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.room -= len(text)
        if self.room < 0:
            raise _Overflow

    def items(self, values: Any, level: int) -> None:
        first = True
        it = iter(values)
        while True:
            chunk = list(islice(it, _REPR_CHUNK))
            if not chunk:
                return
            if _flat(chunk):
                # Runs of plain scalars are rendered by the builtin repr, at C speed.
                if not first:
                    self.add(", ")
                first = False
                self.add(list.__repr__(chunk)[1:-1])
                continue
            for item in chunk:
                if not first:
                    self.add(", ")
                first = False
                self.one(item, level)

    def one(self, v: object, level: int) -> None:
        t = type(v)
        if t is str:
            self.add(_str_repr(v, self.room + 1))  # type: ignore[arg-type]
            return
        if t is int:
            self.add(_int_repr(v))  # type: ignore[arg-type]
            return
        if t is bytes:
            self.add(_bytes_repr(v, self.room + 1))  # type: ignore[arg-type]
            return
        if t is float or t is bool or t is _NoneType:
            self.add(repr(v))
            return
        kind = _container_kind(t)
        if kind is None:
            r = repr(v)  # the object's own repr; raising makes the whole repr broken, as in Python
            self.add(r if type(r) is str else str.__str__(r))
            return
        if level > _MAX_REPR_NESTING:
            raise RecursionError("nesting too deep to represent")
        vid = id(v)
        if vid in self.active:
            self.add({"list": "[...]", "dict": "{...}", "tuple": "(...)"}.get(kind, "[...]"))
            return
        self.active.add(vid)
        try:
            self._container(v, kind, level + 1)
        finally:
            self.active.discard(vid)

    def _container(self, v: Any, kind: str, level: int) -> None:
        if kind == "list":
            # The builtin reprs read the storage directly, ignoring an overridden __iter__.
            self.add("[")
            self.items(list.__iter__(v), level)
            self.add("]")
        elif kind == "dict":
            self.add("{")
            first = True
            it = iter(dict.items(v))
            while True:
                chunk = list(islice(it, _REPR_CHUNK))
                if not chunk:
                    break
                if _flat_pairs(chunk):
                    if not first:
                        self.add(", ")
                    first = False
                    self.add(dict.__repr__(dict(chunk))[1:-1])
                    continue
                for key, value in chunk:
                    if not first:
                        self.add(", ")
                    first = False
                    self.one(key, level)
                    self.add(": ")
                    self.one(value, level)
            self.add("}")
        elif kind == "tuple":
            self.add("(")
            self.items(tuple.__iter__(v), level)
            self.add(",)" if tuple.__len__(v) == 1 else ")")
        elif kind == "set" or kind == "frozenset":
            if not v:
                self.add(kind + "()")
                return
            self.add("{" if kind == "set" else "frozenset({")
            self.items(v, level)
            self.add("}" if kind == "set" else "})")
        elif kind == "deque":
            self.add("deque([")
            self.items(v, level)
            self.add("])" if v.maxlen is None else f"], maxlen={v.maxlen})")
        else:  # dict views
            self.add(type(v).__name__ + "([")
            if type(v) is _DictItems:
                first = True
                for key, value in v:
                    if not first:
                        self.add(", ")
                    first = False
                    self.add("(")
                    self.one(key, level)
                    self.add(", ")
                    self.one(value, level)
                    self.add(")")
            else:
                self.items(v, level)
            self.add("])")


def _raw_repr(value: object, budget: int) -> str:
    """``repr(value)`` that never raises and costs about `budget` characters for builtins.

    The result may exceed `budget` (then it is unterminated); callers trim it.
    """
    try:
        t = type(value)
        if t is str:
            return _str_repr(value, budget)  # type: ignore[arg-type]
        if t is int:
            return _int_repr(value)  # type: ignore[arg-type]
        if t is bytes or t is bytearray:
            r = _bytes_repr(value, budget)  # type: ignore[arg-type]
            return r if t is bytes else "bytearray(" + r + ")"
        kind = _container_kind(t)
        if kind is None:
            r = repr(value)
            return r if type(r) is str else str.__str__(r)
        builder = _ReprBuilder(budget)
        try:  # cheaper than contextlib.suppress
            builder.one(value, 0)
        except _Overflow:
            pass
        return "".join(builder.parts)
    except Exception:
        return BROKEN_REPR


def _repr_budget(limit: int) -> int:
    # How many characters of a repr are built. More than `limit` characters always hold more
    # than `limit` bytes, so the visible (trimmed) text is exact; the original length in
    # `_meta` is exact up to the budget and a lower bound beyond it (except for plain strings).
    return max(limit + 16, 4096)


def _str_repr_len(s: str) -> int:
    """Length of ``repr(s)`` without building it, or -1 where that needs a full render.

    Past `_EXACT_SCAN` characters this is the estimate ``len(s) + 2`` (exact unless the
    text needs escapes): checking would cost a slow scan of a string we are about to cut.
    """
    if len(s) > _EXACT_SCAN:
        return len(s) + 2
    if not (s.isascii() and s.isprintable()):
        return -1
    size = len(s) + 2 + s.count("\\")
    if "'" in s and '"' in s:
        size += s.count("'")
    return size


def safe_repr(value: object, max_length: Optional[int] = None) -> str:
    """Return ``repr(value)``, or ``"<broken repr>"`` if that fails; never raises.

    Reprs longer than `max_length` UTF-8 bytes (default ``DEFAULT_MAX_VALUE_LENGTH``) end in
    ``"..."``. Builtin containers, strings and bytes are rendered with a bounded cost.
    """
    limit = DEFAULT_MAX_VALUE_LENGTH if max_length is None else max_length
    r = _raw_repr(value, _repr_budget(limit))
    if len(r) * 4 <= limit or _utf8_len(r) <= limit:
        return r
    return _cut(r, limit)[0]
