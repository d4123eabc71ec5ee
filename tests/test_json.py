"""tripwire._json: compact UTF-8 JSON that never raises, stdlib and orjson alike."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import json
import math
import uuid
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire import _json
from tripwire._json import dumps, loads


def _orjson_dumps() -> Callable[[object], bytes]:
    _json._select_backend()
    if not _json._orjson:
        pytest.skip("orjson is not installed")
    return _json._dumps_orjson


# Every encoder under test: the stdlib reference, and orjson when it is importable.
@pytest.fixture(params=["stdlib", "orjson"])
def encode(request: pytest.FixtureRequest) -> Callable[[object], bytes]:
    if request.param == "orjson":
        return _orjson_dumps()
    return _json._dumps_stdlib


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Kind(str, enum.Enum):
    A = "a"


@dataclasses.dataclass
class Point:
    x: int


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class SurrogateRepr:
    def __repr__(self) -> str:
        return "W\ud800"


Pair = collections.namedtuple("Pair", "a b")


def test_compact_utf8_output(encode: Callable[[object], bytes]) -> None:
    out = encode({"a": [1, 2.5, None, True], "b": "héllo ☃"})
    assert out == '{"a":[1,2.5,null,true],"b":"héllo ☃"}'.encode()
    assert isinstance(out, bytes)


def test_public_dumps_and_loads_round_trip() -> None:
    value = {"a": [1, "x", {"b": None}], "c": -0.5}
    assert loads(dumps(value)) == value
    assert loads(dumps(value).decode()) == value
    assert loads(bytearray(dumps(value))) == value
    assert loads(memoryview(dumps(value))) == value


def test_non_finite_floats_become_null(encode: Callable[[object], bytes]) -> None:
    data = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "ok": 1.5}
    assert loads(encode(data)) == {"nan": None, "inf": None, "ninf": None, "ok": 1.5}
    assert encode(math.nan) == b"null"


def test_lone_surrogates_become_replacement_char(encode: Callable[[object], bytes]) -> None:
    out = encode({"s": "a\ud800b", "k\udfff": "x", "pair": "\ud83d\ude00"})
    out.decode("utf-8")  # valid UTF-8: would raise otherwise
    assert loads(out) == {"s": "a\ufffdb", "k\ufffd": "x", "pair": "\U0001f600"}


def test_non_str_keys_are_stringified_like_json(encode: Callable[[object], bytes]) -> None:
    data = {7: "a", True: "b", None: "c", 2.5: "d", (1, 2): "e", Level.HIGH: "f"}
    assert loads(encode(data)) == {
        "7": "a",
        "true": "b",
        "null": "c",
        "2.5": "d",
        "(1, 2)": "e",
        "3": "f",
    }


def test_unencodable_values_become_safe_strings(encode: Callable[[object], bytes]) -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    data = {
        "bytes": b"ok\xff",
        "set": {1},
        "tuple": (1, 2),
        "named": Pair(1, 2),
        "enum": Color.RED,
        "intenum": Level.HIGH,
        "strenum": Kind.A,
        "uuid": u,
        "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        "date": datetime.date(2024, 1, 2),
        "dataclass": Point(1),
        "obj": SurrogateRepr(),
        "bad": BadRepr(),
        "big": 2**70,
        "cls": int,
    }
    assert loads(encode(data)) == {
        "bytes": "ok\ufffd",
        "set": [1],
        "tuple": [1, 2],
        "named": [1, 2],
        "enum": "red",
        "intenum": 3,
        "strenum": "a",
        "uuid": str(u),
        "dt": "2024-01-02T03:04:05.000006",
        "date": "2024-01-02",
        "dataclass": "Point(x=1)",
        "obj": "W\ufffd",
        "bad": "<unrepresentable BadRepr>",
        "big": 2**70,
        "cls": "<class 'int'>",
    }


def test_cycles_and_deep_nesting_do_not_raise(encode: Callable[[object], bytes]) -> None:
    cyclic: dict[str, Any] = {"a": 1}
    cyclic["self"] = cyclic
    assert loads(encode(cyclic)) == {"a": 1, "self": "<cyclic>"}

    shared = [1]
    assert loads(encode({"x": shared, "y": shared, "bad": b"\xff"})) == {
        "x": [1],
        "y": [1],
        "bad": "\ufffd",
    }

    deep: list[Any] = []
    node = deep
    for _ in range(5000):
        child: list[Any] = []
        node.append(child)
        node = child
    out = loads(encode(deep))
    depth = 0
    while isinstance(out, list) and out:
        out = out[0]
        depth += 1
    # Where the encoder's own recursion guard allows it (CPython 3.13+ stdlib json),
    # the fast path encodes the whole thing; otherwise the sanitising pass cuts it.
    if depth == 5000:
        assert out == []
    else:
        assert out == "<max depth>"
        assert depth == _json.MAX_DEPTH


def test_fast_path_output_is_plain_json() -> None:
    value = {"a": [1, {"b": "c"}], "d": 1e-7, "e": 10**20}
    assert json.loads(_json._dumps_stdlib(value)) == value


def test_stdlib_loads_is_strict_utf8() -> None:
    with pytest.raises(ValueError):
        _json._loads_stdlib(b'"\xff"')
    with pytest.raises(ValueError):
        loads(b"{not json")


def test_backend_is_selected_lazily_and_cached() -> None:
    first = _json._select_backend()
    assert _json._select_backend() == first
    assert _json._dumps_impl is first[0]


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary(max_size=8)
    | st.sampled_from([Color.RED, Level.HIGH, Kind.A, uuid.UUID(int=7), Point(2)])
    | st.builds(BadRepr)
    | st.builds(SurrogateRepr)
)
_keys = st.text() | st.integers() | st.booleans() | st.none() | st.tuples(st.integers())
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_keys, children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_values)
def test_dumps_never_raises_and_emits_valid_utf8_json(value: Any) -> None:
    out = _json._dumps_stdlib(value)
    # Strict: bad UTF-8 fails the decode, a NaN/Infinity token the parse_constant hook.
    json.loads(out.decode("utf-8"), parse_constant=_reject_constant)


def _reject_constant(token: str) -> None:
    raise AssertionError(f"non-JSON token {token}")


@settings(max_examples=150, deadline=None)
@given(_values)
def test_orjson_and_stdlib_agree(value: Any) -> None:
    orjson_dumps = _orjson_dumps()
    assert json.loads(orjson_dumps(value)) == json.loads(_json._dumps_stdlib(value))


def test_loads_exact_keeps_big_integers() -> None:
    big = 2**70
    assert _json.loads_exact(dumps({"n": big})) == {"n": big}
    assert _json.loads_exact('{"a":[1.5]}') == {"a": [1.5]}


@pytest.mark.parametrize("backend", ["stdlib", "orjson"])
def test_both_backends_read_what_the_standard_library_reads(backend: str) -> None:
    # Escaped lone surrogates are what sentry-sdk sends for an undecodable file name;
    # orjson refuses them, so the orjson backend must fall back rather than fail.
    if backend == "orjson":
        _orjson_dumps()
        decode = _json._loads_orjson
    else:
        decode = _json._loads_stdlib
    assert decode(b'{"f": "caf\\udce9.py", "n": NaN}')["f"] == "caf\udce9.py"
    with pytest.raises(ValueError):
        decode(b'{"broken": ')
