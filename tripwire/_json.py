"""The one JSON encoder and decoder of the SDK.

`dumps` turns anything into compact UTF-8 JSON and never raises: the payload is
encoded as-is first (the common case), and only when that fails is a sanitising
pass run over a copy. orjson is used when it is importable; the standard library
path is the reference behaviour and both produce equivalent JSON:

- non-finite floats (NaN, Infinity) become ``null`` (Relay rejects the bare
  tokens the stdlib would write);
- lone surrogates in strings become U+FFFD (they cannot be encoded as UTF-8);
- non-``str`` dict keys are stringified the way ``json`` does (``1`` -> ``"1"``,
  ``True`` -> ``"true"``, ``None`` -> ``"null"``), other keys with ``str()``;
- bytes are decoded as UTF-8 with replacement, sets and tuples become lists,
  enums their value, UUIDs their string and dates their ISO 8601 form;
- anything else becomes its ``repr()`` (or a placeholder if ``repr`` fails);
- cycles become ``"<cyclic>"`` and nesting deeper than `MAX_DEPTH` ``"<max depth>"``.

`loads` differs between the two in one way: orjson reads integers beyond 64 bits
as floats (`loads_exact` always uses the standard library).
"""

from __future__ import annotations

import datetime
import enum
import json
import math
from typing import Any, Callable

from tripwire._log import logger, suppress

# orjson refuses nesting deeper than 255 levels; stay below so that the sanitised copy
# always encodes with either backend.
MAX_DEPTH = 200

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _refuse(obj: object) -> Any:
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _make_c_encoder() -> Any:
    """The C encoder `_ENCODER.encode` builds on every call, built once (None without it).

    Without cycle tracking: a cycle runs into RecursionError, which sends the
    object to the sanitising pass like any other failure.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        return make(
            None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
    except Exception:  # a different signature on some interpreter: use the public API
        return None


_C_ENCODE: Any = _make_c_encoder()
_DECODER = json.JSONDecoder()

# Set on the first call by `_select_backend`: the orjson module, or False without it.
_orjson: Any = None
_dumps_impl: Callable[[object], bytes] | None = None
_loads_impl: Callable[[Any], Any] | None = None


def dumps(obj: object) -> bytes:
    """Encode `obj` as compact UTF-8 JSON. Never raises (see the module docstring)."""
    impl = _dumps_impl
    if impl is None:
        impl = _select_backend()[0]
    return impl(obj)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON from bytes or str.

    Raises:
        ValueError: `data` is not valid JSON (``json.JSONDecodeError`` or orjson's).
    """
    impl = _loads_impl
    if impl is None:
        impl = _select_backend()[1]
    return impl(data)


def loads_exact(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON with the standard library, whatever is installed.

    orjson reads integers beyond 64 bits as floats; envelope headers are parsed
    with this so that a parsed envelope serializes back to the same bytes.

    Raises:
        ValueError: `data` is not valid JSON (or not UTF-8).
    """
    return _loads_stdlib(data)


def _select_backend() -> tuple[Callable[[object], bytes], Callable[[Any], Any]]:
    # Imported on first use, not at import time: orjson is optional and `import
    # tripwire` must stay light. Two threads racing here compute the same answer.
    global _orjson, _dumps_impl, _loads_impl
    try:
        import orjson  # lazy: optional accelerator
    except Exception:  # ImportError, or a broken wheel
        _orjson = False
        _dumps_impl, _loads_impl = _dumps_stdlib, _loads_stdlib
    else:
        _orjson = orjson
        _dumps_impl, _loads_impl = _dumps_orjson, _loads_orjson
    return _dumps_impl, _loads_impl


def _dumps_stdlib(obj: object) -> bytes:
    try:
        if _C_ENCODE is not None:
            return "".join(_C_ENCODE(obj, 0)).encode("utf-8")
        return _ENCODER.encode(obj).encode("utf-8")
    except Exception:  # TypeError, ValueError (NaN, cycle), UnicodeEncodeError, RecursionError
        return _dumps_sanitised(obj, None)


def _dumps_orjson(obj: object) -> bytes:
    orjson = _orjson
    try:
        # Datetimes and dataclasses fail over to the sanitising pass so that both
        # backends render them the same way.
        result: bytes = orjson.dumps(
            obj, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        )
        return result
    except Exception:  # non-str keys, big ints, surrogates, unsupported types, depth
        return _dumps_sanitised(obj, orjson)


def _loads_stdlib(data: bytes | bytearray | memoryview | str) -> Any:
    if isinstance(data, memoryview):
        data = data.tobytes()
    if isinstance(data, (bytes, bytearray)):
        # Envelopes are UTF-8 by definition; json.loads would sniff UTF-16/32 too.
        data = bytes(data).decode("utf-8")
    return _DECODER.decode(data)


def _loads_orjson(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return _orjson.loads(data)
    except ValueError:
        # orjson refuses what the standard library reads (lone surrogate escapes,
        # which Python SDKs send for undecodable file names; NaN): both backends
        # must accept the same documents.
        return _loads_stdlib(data)


def _dumps_sanitised(obj: object, orjson: Any) -> bytes:
    try:
        # repr() and friends run user code: keep logging integrations out of it.
        with suppress:
            clean = _Sanitiser().clean(obj, 0)
        if orjson:
            try:
                result: bytes = orjson.dumps(clean)
                return result
            except Exception:  # integers beyond 64 bits: the stdlib handles those
                pass
        return _ENCODER.encode(clean).encode("utf-8")
    except Exception:
        logger.debug("could not encode a payload as JSON", exc_info=True)
        return b"null"


def _fix_str(value: str) -> str:
    """Return `value` as a plain str that encodes as UTF-8 (lone surrogates -> U+FFFD)."""
    if type(value) is not str:
        value = str.__str__(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A round trip through UTF-16 joins valid surrogate pairs and replaces lone ones.
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _safe_repr(value: object) -> str:
    try:
        return _fix_str(repr(value))
    except Exception:
        try:
            name = type(value).__name__
        except Exception:
            name = "object"
        return f"<unrepresentable {name}>"


def _safe_str(value: object) -> str:
    try:
        return _fix_str(str(value))
    except Exception:
        return _safe_repr(value)


class _Sanitiser:
    """One pass that rebuilds a value out of JSON-native types only."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        # ids of the containers on the current path: a repeat is a cycle.
        self.active: set[int] = set()

    def clean(self, value: object, depth: int) -> Any:
        if value is None or value is True or value is False:
            return value
        if isinstance(value, str):
            return _fix_str(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            number = float(value)
            return number if math.isfinite(number) else None
        if isinstance(value, (dict, list, tuple, set, frozenset)):
            return self._container(value, depth)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", "replace")
        return self._other(value, depth)

    def _container(self, value: Any, depth: int) -> Any:
        if depth >= MAX_DEPTH:
            return "<max depth>"
        key = id(value)
        if key in self.active:
            return "<cyclic>"
        self.active.add(key)
        try:
            depth += 1
            if isinstance(value, dict):
                return {_clean_key(k): self.clean(v, depth) for k, v in value.items()}
            return [self.clean(v, depth) for v in value]
        finally:
            self.active.discard(key)

    def _other(self, value: object, depth: int) -> Any:
        # Types orjson encodes natively: render them as it does so both backends agree.
        import uuid  # lazy: only when a UUID is encoded

        if isinstance(value, enum.Enum):
            return self.clean(value.value, depth)
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, (datetime.date, datetime.time)):
            try:
                return _fix_str(value.isoformat())
            except Exception:
                return _safe_repr(value)
        return _safe_repr(value)


def _clean_key(key: object) -> str:
    if isinstance(key, str):
        return _fix_str(key)
    # The same spelling json.dumps gives these keys, so the fast and the sanitised
    # paths agree whichever one encodes a given dict.
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return float.__repr__(key)
    return _safe_str(key)
