"""The bounded serializer: differential against sentry-sdk, properties, and huge inputs."""

from __future__ import annotations

import datetime
import itertools
import json
import re
import subprocess
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tripwire.consts import DEFAULT_MAX_VALUE_LENGTH
from tripwire.event import serializer as ser_mod
from tripwire.event.serializer import BROKEN_REPR, CYCLIC, FAILED, Serializer, safe_repr

# ---------------------------------------------------------------------------------------------
# Shared case table: executed both here and in a sentry-sdk subprocess, under the same module
# name, so classes print identically on both sides.

CASES_SRC = r"""
import collections, collections.abc, dataclasses, datetime, decimal, enum, fractions, uuid

class Color(enum.Enum):
    RED = 1
class IntC(enum.IntEnum):
    A = 5
class StrE(str, enum.Enum):
    S = "sv"
@dataclasses.dataclass
class DC:
    a: int = 1
    b: str = "x"
class Plain:
    pass
class BadRepr:
    def __repr__(self):
        raise ValueError("nope")
class LongRepr:
    def __repr__(self):
        return "R" * 5000
class MyStr(str):
    pass
class BadStr(str):
    def __repr__(self):
        raise ValueError("x")
class MyInt(int):
    pass
class MyDict(dict):
    pass
class MyList(list):
    pass
class ReprNonStr:
    def __repr__(self):
        return 5
class BadIter:
    def __iter__(self):
        raise RuntimeError
class Seq(collections.abc.Sequence):
    def __getitem__(self, i):
        return [1, 2][i]
    def __len__(self):
        return 2
class MyMapping(collections.abc.Mapping):
    def __getitem__(self, k):
        return 1
    def __iter__(self):
        return iter(["a", "b"])
    def __len__(self):
        return 2
class BadMapping(collections.abc.Mapping):
    def __getitem__(self, k):
        raise KeyError(k)
    def __iter__(self):
        return iter(["a", "b"])
    def __len__(self):
        return 2
class BadIterList(list):
    def __iter__(self):
        raise RuntimeError

def custom_repr(o):
    if isinstance(o, Plain):
        return "CUSTOM:Plain"
    if isinstance(o, dict):
        return "CUSTOM:dict"
    if isinstance(o, decimal.Decimal):
        raise ValueError("boom")
    return None

def deep(n, leaf):
    for _ in range(n):
        leaf = {"k": leaf}
    return leaf

def build_cases():
    rec = [1]
    rec.append(rec)
    recd = {"a": 1}
    recd["self"] = recd
    shared = [1]
    def gen():
        yield 1
    utc = datetime.timezone.utc
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    return {
        "int": 3, "neg": -7, "float": 1.5, "nan": float("nan"), "inf": float("inf"),
        "ninf": float("-inf"), "bigint": 10**30, "int400": 10**400, "bool": True, "none": None,
        "str": "hi", "quotes": "it's \"q\"", "sq": "it's", "unicode": "h\u00e9\U0001F600",
        "surrogate": "a\ud800b", "bytes": b"hello\xff", "bytearray": bytearray(b"ab"),
        "decimal": decimal.Decimal("1.10"), "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
        "dtz": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=plus2),
        "dtutc": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc),
        "date": datetime.date(2024, 1, 2), "time": datetime.time(3, 4, 5),
        "td": datetime.timedelta(seconds=5), "enum": Color.RED, "intenum": IntC.A,
        "strenum": StrE.S, "dc": DC(), "plain": Plain(), "badrepr": BadRepr(),
        "longrepr": LongRepr(), "mystr": MyStr("ms"), "badstr": BadStr("bs"), "myint": MyInt(4),
        "mydict": MyDict(a=1), "mylist": MyList([1, 2]), "reprnonstr": ReprNonStr(),
        "tuple": (1, "a"), "tuple1": (1,), "set": {3}, "set12": set(range(12)),
        "frozenset": frozenset({4}), "emptyset": set(), "gen": gen(), "range": range(3),
        "rec": rec, "recd": recd, "shared": {"a": shared, "b": shared},
        "keys": {1: "a", None: "b", (1, 2): "c", b"k": "d", 1.5: "e", True: "f"},
        "deckey": {decimal.Decimal("1"): 1}, "uuid": uuid.UUID(int=5),
        "frac": fractions.Fraction(1, 3), "complex": 1 + 2j, "func": len, "cls": Plain,
        "deque": collections.deque([1, 2]), "od": collections.OrderedDict(a=1),
        "dictvals": {"a": 1}.values(), "badmapping": BadMapping(),
        "bm_in_dict": {"a": 1, "bm": BadMapping()}, "mymapping": MyMapping(), "seq": Seq(),
        "baditer": BadIter(), "baditerlist": BadIterList([1, 2]), "exc": ValueError("x"),
        "emptydict": {}, "emptylist": [], "list10": list(range(10)), "list11": list(range(11)),
        "list200": list(range(200)), "dict200": {str(i): i for i in range(200)},
        "tup12": tuple(range(12)),
        "deep3": deep(3, 1), "deep4": deep(4, 1), "deep5": deep(5, 1), "deep8": deep(8, "x"),
        "deeplist": [[[[[[1]]]]]], "deepempty": deep(4, {}), "deepemptyl": deep(3, {"k": []}),
        "deepleaves": deep(3, {"i": 1, "n": None, "b": b"x", "f": 1.5, "t": True, "s": "s",
                               "dt": datetime.datetime(2020, 1, 1), "o": DC()}),
        "deeprec": deep(3, {"r": rec}), "deeptuple": deep(3, {"t": (1, (2,), "x")}),
        "deepset": deep(3, {"s": {1, 2}, "f": frozenset({3}), "e": set()}),
        "deepdeque": deep(3, {"d": collections.deque([1], maxlen=4)}),
        "deepdict200": deep(3, {"d": {i: str(i) for i in range(200)}}),
        "deepbytes": deep(4, b"leaf"), "deepbadrepr": deep(4, [BadRepr()]),
        "nested_breadth": {"a": list(range(20)), "b": {str(i): i for i in range(20)}},
        "long": "x" * 2000, "longuni": "\u00e9" * 300 + "\U0001F600" * 300,
        "longbytes": b"y" * 3000, "combining": "e\u0301" * 15, "emoji": "\U0001F600" * 25,
        "s18": "b" * 18, "s19": "a" * 19, "s20": "a" * 20, "s21": "a" * 21,
        "withlong": {"l": ["n" * 25, {"m": "z" * 40}]},
    }
"""


def _load(src: str) -> dict[str, Any]:
    # A real module (dataclasses look their class's module up in sys.modules).
    module = types.ModuleType("tw_cases")
    sys.modules["tw_cases"] = module
    exec(compile(src, "<tw_cases>", "exec"), module.__dict__)
    return module.__dict__


_NS = _load(CASES_SRC)
CASES: dict[str, Any] = _NS["build_cases"]()
BadRepr = _NS["BadRepr"]
BadMapping = _NS["BadMapping"]
LongRepr = _NS["LongRepr"]

# Configurations run through both implementations; the case lists avoid object reprs with
# memory addresses where strings get trimmed (the cut position would depend on the address).
_TRIM_CASES = [
    "str",
    "quotes",
    "unicode",
    "bytes",
    "bytearray",
    "decimal",
    "dt",
    "dtz",
    "longrepr",
    "long",
    "longuni",
    "longbytes",
    "combining",
    "emoji",
    "s18",
    "s19",
    "s20",
    "s21",
    "withlong",
    "deep8",
    "deepleaves",
    "deepdict200",
    "keys",
    "list200",
    "tuple",
]
_CUSTOM_CASES = [
    "int",
    "str",
    "bytes",
    "plain",
    "decimal",
    "dt",
    "deep5",
    "deep8",
    "deepleaves",
    "emptydict",
    "mydict",
    "list11",
    "enum",
    "none",
    "tuple",
]
CONFIGS: list[dict[str, Any]] = [
    {"name": "default", "options": {}, "cases": list(CASES)},
    {"name": "limit20", "options": {"max_value_length": 20}, "cases": _TRIM_CASES},
    {"name": "limit7", "options": {"max_value_length": 7}, "cases": _TRIM_CASES},
    {"name": "custom", "options": {"custom_repr": True}, "cases": _CUSTOM_CASES},
]

SENTRY_SCRIPT = r"""
import json, sys, types
import sentry_sdk
from sentry_sdk.transport import Transport

payload = json.loads(sys.stdin.read())
module = types.ModuleType("tw_cases")
sys.modules["tw_cases"] = module
exec(compile(payload["cases_src"], "<tw_cases>", "exec"), module.__dict__)
ns = module.__dict__
captured = []

class Capture(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                captured.append(json.loads(item.payload.get_bytes()))

def frame(v):
    try:
        1 / 0
    except Exception:
        sentry_sdk.capture_exception()

results = {}
for config in payload["configs"]:
    options = dict(config["options"])
    if options.pop("custom_repr", False):
        options["custom_repr"] = ns["custom_repr"]
    sentry_sdk.init(dsn="https://k@o1.ingest.sentry.io/1", transport=Capture,
                    default_integrations=False, **options)
    cases = ns["build_cases"]()
    out = results[config["name"]] = {}
    for name in config["cases"]:
        captured.clear()
        with sentry_sdk.isolation_scope() as scope:
            scope.set_extra("v", cases[name])
            frame(cases[name])
        sentry_sdk.flush()
        event = captured[-1]
        frames = event["exception"]["values"][0]["stacktrace"]["frames"]
        meta = event.get("_meta", {})
        frame_meta = meta.get("exception", {}).get("values", {}).get("0", {}).get(
            "stacktrace", {}).get("frames", {}).get(str(len(frames) - 1), {})
        out[name] = {"extra": event["extra"], "extra_meta": meta.get("extra", {}),
                     "vars": frames[-1]["vars"], "vars_meta": frame_meta.get("vars", {})}

print(json.dumps(results))
"""

EVENT_SRC = r"""
def build_event():
    import datetime
    def D():
        return {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}, "wide": list(range(12)),
                "s": "x" * 40, "b": b"bytes", "p": Plain(),
                "when": datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)}
    return {
        "message": "m",
        "level": "warning",
        "extra": {"x": D(), **{"k%02d" % i: i for i in range(12)}},
        "request": {"data": D(), "headers": D(), "url": "u" * 40, "other": D()},
        "breadcrumbs": {"values": [{"message": "b" * 40, "data": D(), "other": D(),
                                    **{"z%02d" % i: i for i in range(12)}}]},
        "tags": {"t": "t" * 40, "p": Plain()},
        "user": {"u": D(), "id": 5},
        "fingerprint": ["f" * 40, Plain()],
        "modules": {"m": "1.0"},
        "custom": D(),
    }
"""

EVENT_SCRIPT = r"""
import json, sys, types
import sentry_sdk
from sentry_sdk.transport import Transport

payload = json.loads(sys.stdin.read())
module = types.ModuleType("tw_cases")
sys.modules["tw_cases"] = module
exec(compile(payload["cases_src"], "<tw_cases>", "exec"), module.__dict__)
ns = module.__dict__
captured = []

class Capture(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type == "event":
                captured.append(json.loads(item.payload.get_bytes()))

results = {}
for name, options in payload["configs"].items():
    options = dict(options)
    if options.pop("custom_repr", False):
        options["custom_repr"] = ns["custom_repr"]
    sentry_sdk.init(dsn="https://k@o1.ingest.sentry.io/1", transport=Capture,
                    default_integrations=False, **options)
    captured.clear()
    with sentry_sdk.isolation_scope():
        sentry_sdk.capture_event(ns["build_event"]())
    sentry_sdk.flush()
    results[name] = captured[-1]
print(json.dumps(results))
"""

_ADDR = re.compile(r"0x[0-9a-fA-F]+")
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _norm(value: Any) -> Any:
    """Blank out memory addresses, which differ between the two processes."""
    if isinstance(value, str):
        return _ADDR.sub("0x?", value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def _make(options: dict[str, Any], ns: dict[str, Any] = _NS) -> Serializer:
    options = dict(options)
    if options.pop("custom_repr", False):
        options["custom_repr"] = ns["custom_repr"]
    return Serializer(**options)


def _run_sentry(script: str, payload: dict[str, Any]) -> Any:
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def sentry_results() -> Any:
    pytest.importorskip("sentry_sdk")
    return _run_sentry(SENTRY_SCRIPT, {"cases_src": CASES_SRC, "configs": CONFIGS})


@pytest.fixture(scope="module")
def sentry_events() -> Any:
    pytest.importorskip("sentry_sdk")
    configs = {"default": {}, "limit20": {"max_value_length": 20}, "custom": {"custom_repr": True}}
    return _run_sentry(EVENT_SCRIPT, {"cases_src": CASES_SRC + EVENT_SRC, "configs": configs})


_PAIRS = [(c["name"], name) for c in CONFIGS for name in c["cases"]]


@pytest.mark.parametrize(("config", "case"), _PAIRS, ids=[f"{c}-{n}" for c, n in _PAIRS])
def test_matches_sentry_extra_and_vars(sentry_results: Any, config: str, case: str) -> None:
    expected = sentry_results[config][case]
    options = next(c["options"] for c in CONFIGS if c["name"] == config)
    serializer = _make(options)
    value = _NS["build_cases"]()[case]  # fresh objects: generators, recursion etc.

    extra_meta: dict[str, Any] = {}
    extra = serializer.databag({"v": value}, extra_meta)
    assert _norm(extra) == _norm(expected["extra"])
    assert extra_meta == expected["extra_meta"]

    vars_meta: dict[str, Any] = {}
    frame_vars = serializer.frame_vars({"v": value}, vars_meta)
    assert _norm(frame_vars) == _norm(expected["vars"])
    assert vars_meta == expected["vars_meta"]


@pytest.mark.parametrize("config", ["default", "limit20", "custom"])
def test_matches_sentry_whole_event(sentry_events: Any, config: str) -> None:
    all_options: dict[str, dict[str, Any]] = {
        "default": {},
        "limit20": {"max_value_length": 20},
        "custom": {"custom_repr": True},
    }
    options = all_options[config]
    ns = _load(CASES_SRC + EVENT_SRC)
    event_in = ns["build_event"]()
    ours = _make(options, ns).event(event_in)
    theirs = sentry_events[config]
    json.dumps(ours, allow_nan=False)
    for key in event_in:
        assert _norm(ours[key]) == _norm(theirs[key]), key
    their_meta = {k: v for k, v in theirs.get("_meta", {}).items() if k in event_in}
    assert ours.get("_meta", {}) == their_meta


# ---------------------------------------------------------------------------------------------
# Behaviour checked directly (including deliberate differences from sentry-sdk).


def test_trim_annotation_shape() -> None:
    meta: dict[str, Any] = {}
    out = Serializer(max_value_length=100).databag({"s": "x" * 2000, "l": list(range(200))}, meta)
    assert out == {"s": "x" * 97 + "...", "l": list(range(10))}
    assert meta == {
        "s": {"": {"len": 2000, "rem": [["!limit", "x", 97, 100]]}},
        "l": {"": {"len": 200}},
    }


def test_default_limit_is_a_safety_cap() -> None:
    # sentry-sdk's default (None) never trims; tripwire caps at DEFAULT_MAX_VALUE_LENGTH.
    cap = DEFAULT_MAX_VALUE_LENGTH
    meta: dict[str, Any] = {}
    out = Serializer().databag({"ok": "a" * cap, "big": "b" * (cap + 1)}, meta)
    assert out["ok"] == "a" * cap
    assert len(out["big"]) == cap and out["big"].endswith("...")
    assert meta == {"big": {"": {"len": cap + 1, "rem": [["!limit", "x", cap - 3, cap]]}}}


def test_databag_root_annotations_merge_into_given_meta() -> None:
    meta: dict[str, Any] = {"": {"note": 1}, "other": {"": {"len": 3}}}
    out = Serializer().databag(list(range(15)), meta)
    assert out == list(range(10))
    assert meta == {"": {"note": 1, "len": 15}, "other": {"": {"len": 3}}}
    leaf_meta: dict[str, Any] = {}
    assert Serializer(max_value_length=5).databag("abcdefgh", leaf_meta) == "ab..."
    assert leaf_meta == {"": {"len": 8, "rem": [["!limit", "x", 2, 5]]}}


def test_value_has_no_databag_limits_but_trims_strings() -> None:
    value = {"a": {"b": {"c": {"d": {"e": {"f": {"g": "x" * 30}}}}}}, "l": list(range(50))}
    meta: dict[str, Any] = {}
    out = Serializer(max_value_length=10).value(value, meta)
    assert out["l"] == list(range(50))
    assert out["a"]["b"]["c"]["d"]["e"]["f"]["g"] == "xxxxxxx..."
    assert meta == {
        "a": {
            "b": {
                "c": {"d": {"e": {"f": {"g": {"": {"len": 30, "rem": [["!limit", "x", 7, 10]]}}}}}}
            }
        }
    }


def test_value_safety_caps() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    meta: dict[str, Any] = {}
    out = Serializer().value(deep, meta)
    json.dumps(out)
    depth = 0
    while isinstance(out, list):
        out = out[0]
        depth += 1
    assert depth == ser_mod.VALUE_MAX_DEPTH
    assert out == BROKEN_REPR  # the repr of the rest nests too deep to build


def test_frame_vars_renders_reprs() -> None:
    class Obj:
        def __repr__(self) -> str:
            return "<Obj>"

    f_locals = {"n": 3, "s": "s", "none": None, "d": {"a": 1}, "l": [1, 2, 3], "o": Obj()}
    assert Serializer().frame_vars(f_locals) == {
        "n": "3",
        "s": "'s'",
        "none": "None",
        "d": {"a": "1"},
        "l": ["1", "2", "3"],
        "o": "<Obj>",
    }


def test_frame_vars_of_a_real_frame() -> None:
    def capture(arg: int) -> dict[str, Any]:
        x = [1, 2]
        text = "t"
        del arg  # gone from the frame, so gone from vars
        result = Serializer().frame_vars(sys._getframe().f_locals)
        result["_used"] = [x, text]
        return result

    result = capture(7)
    assert result == {"x": ["1", "2"], "text": "'t'", "_used": [[1, 2], "t"]}


def test_cycles_through_the_locals_mapping() -> None:
    f_locals: dict[str, Any] = {"a": 1}
    f_locals["me"] = f_locals
    f_locals["l"] = [f_locals]
    assert Serializer().frame_vars(f_locals) == {"a": "1", "me": CYCLIC, "l": [CYCLIC]}


def test_frame_vars_breadth_and_depth_without_structure_meta() -> None:
    meta: dict[str, Any] = {}
    f_locals = {f"v{i}": i for i in range(15)}
    f_locals["v0"] = {"a": {"b": {"c": {"d": {"e": 1}}}}}  # type: ignore[assignment]
    out = Serializer().frame_vars(f_locals, meta)
    assert list(out) == [f"v{i}" for i in range(10)]
    assert out["v0"] == {"a": {"b": {"c": {"d": "{'e': 1}"}}}}
    assert meta == {}


def test_frame_vars_never_raises() -> None:
    class Hostile(Mapping):  # type: ignore[type-arg]
        def __getitem__(self, key: Any) -> Any:
            raise RuntimeError

        def __iter__(self) -> Any:
            raise RuntimeError

        def __len__(self) -> int:
            raise RuntimeError

    assert Serializer().frame_vars(Hostile()) == {}
    assert Serializer().frame_vars(None) == {}  # type: ignore[arg-type]
    assert Serializer().frame_vars({"h": Hostile()}) == {"h": FAILED}


class _Proxy:
    """Like werkzeug's LocalProxy: claims the class of whatever it stands for."""

    def __init__(self, target: Any) -> None:
        self._target = target

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._target)

    def items(self) -> Any:
        return self._target.items()

    def __repr__(self) -> str:
        return f"Proxy({self._target!r})"


def test_proxies_are_classified_per_instance() -> None:
    s = Serializer()
    assert s.frame_vars({"a": _Proxy({"k": 1}), "b": _Proxy(3)}) == {
        "a": {"k": "1"},
        "b": "Proxy(3)",
    }
    assert s.frame_vars({"b": _Proxy(3), "a": _Proxy({"k": 1})}) == {
        "b": "Proxy(3)",
        "a": {"k": "1"},
    }
    assert s.databag([_Proxy(3), _Proxy({"k": 1})], {}) == ["Proxy(3)", {"k": 1}]


def test_event_meta_merge_and_untouched_parts() -> None:
    s = Serializer(max_value_length=10)
    frames = [{"function": "f", "vars": {"l": list(range(20))}}]
    event: dict[Any, Any] = {
        "_meta": {"extra": {"a": {"": {"rem": [["!config", "s"]]}}}},
        "extra": {"a": "x" * 20, "b": "y" * 20},
        "exception": {"values": [{"stacktrace": {"frames": frames}}]},
        1: "int key",
    }
    out = s.event(event)
    assert out["extra"] == {"a": "xxxxxxx...", "b": "yyyyyyy..."}
    # sentry-sdk leaves vars of a user-supplied event alone; so does tripwire.
    assert out["exception"]["values"][0]["stacktrace"]["frames"] == frames
    assert out["1"] == "int key"
    assert out["_meta"] == {
        "extra": {
            "a": {"": {"rem": [["!limit", "x", 7, 10]], "len": 20}},
            "b": {"": {"len": 20, "rem": [["!limit", "x", 7, 10]]}},
        }
    }
    assert s.event(None) == {}  # type: ignore[arg-type]
    assert s.event(BadMapping()) == {}


def test_huge_ints_are_broken_reprs() -> None:
    huge = 10**5000
    meta: dict[str, Any] = {}
    s = Serializer()
    assert s.databag({"h": huge, "l": [huge, 1]}, meta) == {"h": BROKEN_REPR, "l": [BROKEN_REPR, 1]}
    assert s.frame_vars({"h": huge}) == {"h": BROKEN_REPR}
    assert s.value(-huge, {}) == BROKEN_REPR
    assert safe_repr([huge]) == BROKEN_REPR  # like repr() itself, which raises


def test_datetimes() -> None:
    utc = datetime.timezone.utc
    s = Serializer()
    year_one = datetime.datetime(1, 1, 1, tzinfo=utc)
    # sentry-sdk prints "1-01-01T..." here; tripwire pads the year as ISO 8601 wants.
    assert s.databag(year_one, {}) == "0001-01-01T00:00:00.000000Z"
    minus = datetime.datetime(
        2024, 1, 1, 23, 30, tzinfo=datetime.timezone(-datetime.timedelta(hours=2))
    )
    assert s.value(minus, {}) == "2024-01-02T01:30:00.000000Z"
    overflow = datetime.datetime.min.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert s.databag(overflow, {}) == repr(overflow)


def test_custom_repr_fallbacks() -> None:
    class P:
        def __repr__(self) -> str:
            return "P()"

    def bad(o: object) -> Any:
        if isinstance(o, P):
            return 42  # not a str: ignored (sentry-sdk would put 42 into the event)
        raise RuntimeError

    s = Serializer(custom_repr=bad)
    assert s.databag({"p": P(), "i": 1}, {}) == {"p": "P()", "i": 1}
    assert s.frame_vars({"p": P(), "i": 1}) == {"p": "P()", "i": "1"}


def test_dict_keys_are_strings() -> None:
    class BadKey:
        def __str__(self) -> str:
            raise ValueError

        def __repr__(self) -> str:
            return "BadKey()"

    # sentry-sdk gives up on the whole dict here; tripwire falls back to the key's repr.
    out = Serializer().databag({BadKey(): 1, 2: 2, "s": 3}, {})
    assert out == {"BadKey()": 1, "2": 2, "s": 3}


def test_str_subclass_with_hostile_methods() -> None:
    class Weird(str):
        def __len__(self) -> int:
            raise RuntimeError

        def encode(self, *args: Any, **kwargs: Any) -> bytes:
            raise RuntimeError

    meta: dict[str, Any] = {}
    out = Serializer(max_value_length=5).databag({"w": Weird("abcdefgh")}, meta)
    assert out == {"w": "ab..."}
    assert type(out["w"]) is str


def test_lone_surrogates_and_non_ascii_trimming() -> None:
    meta: dict[str, Any] = {}
    out = Serializer(max_value_length=6).databag({"s": "\ud800" * 5, "e": "\u00e9" * 5}, meta)
    json.dumps(out)
    assert out == {"s": "\ud800...", "e": "\u00e9..."}
    assert meta["s"][""]["len"] == 15
    assert meta["e"][""]["len"] == 10


def test_safe_repr() -> None:
    rec: list[Any] = [1]
    rec.append(rec)
    assert safe_repr(rec) == "[1, [...]]"
    assert safe_repr(BadRepr()) == BROKEN_REPR
    assert safe_repr("s") == "'s'"
    assert safe_repr(LongRepr(), 10) == "RRRRRRR..."
    assert safe_repr(b"\x00'") == repr(b"\x00'")
    assert safe_repr(bytearray(b"ab")) == "bytearray(b'ab')"


_builtin_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=5)
        | st.frozensets(st.integers(), max_size=4)
        | st.sets(st.integers(), max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(_builtin_data)
def test_safe_repr_equals_repr_for_builtins(value: Any) -> None:
    assert safe_repr(value) == repr(value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab'\"\\\n\u00e9\U0001f600", max_size=40), st.integers(0, 45))
def test_bounded_str_repr_is_prefix_of_repr(text: str, budget: int) -> None:
    out = ser_mod._str_repr(text, budget)
    assert repr(text).startswith(out)
    assert len(out) >= min(budget, len(text))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40) | st.text(max_size=10))
def test_str_repr_len(text: str) -> None:
    size = ser_mod._str_repr_len(text)
    assert size == -1 or size == len(repr(text))


@settings(max_examples=100, deadline=None)
@given(_builtin_data, st.integers(1, 60))
def test_bounded_container_repr_is_prefix_of_repr(value: Any, budget: int) -> None:
    out = ser_mod._raw_repr(value, budget)
    full = repr(value)
    assert full.startswith(out)
    assert out == full or len(out) > budget


# ---------------------------------------------------------------------------------------------
# Properties: arbitrary (hostile) input never raises, yields JSON and stays within the limits.


class _SlowIterMapping(Mapping):  # type: ignore[type-arg]
    """A mapping that claims to be enormous."""

    def __getitem__(self, key: Any) -> Any:
        return key

    def __iter__(self) -> Any:
        return itertools.count()

    def __len__(self) -> int:
        return 10**12


class _Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class _HugeRepr:
    def __repr__(self) -> str:
        return "\u00e9" * 10_000


def _hostile_objects() -> st.SearchStrategy[Any]:
    # Factories, so that hypothesis never has to repr a hostile object itself.
    factories: list[Any] = [
        _Hostile,
        _HugeRepr,
        BadMapping,
        _SlowIterMapping,
        itertools.count,
        lambda: 10**5000,
        lambda: float("nan"),
        lambda: datetime.datetime(2020, 5, 17, 1, 2, 3, tzinfo=datetime.timezone.utc),
        lambda: _NS["MyStr"]("sub"),
        lambda: _NS["IntC"].A,
        _NS["DC"],
        lambda: range(10**9),
        lambda: b"\xff\xfe" * 40,
    ]
    return st.sampled_from(factories).map(lambda factory: factory())


def _with_cycles(value: Any) -> Any:
    if isinstance(value, list) and value:
        value.append(value)
    return value


_any_data = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=80)
    | st.binary(max_size=80)
    | _hostile_objects(),
    lambda children: (
        st.lists(children, max_size=14).map(_with_cycles)
        | st.dictionaries(st.text(max_size=8) | st.integers() | st.none(), children, max_size=14)
        | st.tuples(children, children)
    ),
    max_leaves=60,
)


def _check_bounds(
    value: Any, depth: int, max_depth: int, max_breadth: int, limit: int, budget: int
) -> None:
    if isinstance(value, dict):
        assert depth < max_depth and len(value) <= max_breadth
        for key, item in value.items():
            assert isinstance(key, str) and len(key) <= budget
            _check_bounds(item, depth + 1, max_depth, max_breadth, limit, budget)
    elif isinstance(value, list):
        assert depth < max_depth and len(value) <= max_breadth
        for item in value:
            _check_bounds(item, depth + 1, max_depth, max_breadth, limit, budget)
    elif isinstance(value, str):
        # Placeholders, non-finite floats and datetimes are never trimmed (as in sentry-sdk).
        untrimmed = (FAILED, BROKEN_REPR, CYCLIC, "nan", "inf", "-inf")
        if value not in untrimmed and not _ISO.fullmatch(value):
            assert len(value.encode("utf-8", "surrogatepass")) <= limit
    else:
        assert value is None or type(value) in (bool, int, float)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_data, st.sampled_from([3, 10, 33]))
def test_never_raises_and_stays_bounded(value: Any, limit: int) -> None:
    serializer = Serializer(max_value_length=limit)
    budget = ser_mod._repr_budget(limit)

    meta: dict[str, Any] = {}
    out = serializer.databag({"v": value}, meta)
    json.dumps([out, meta], allow_nan=False)
    _check_bounds(out, 0, 5, 10, limit, budget)

    vmeta: dict[str, Any] = {}
    fv = serializer.frame_vars({"v": value, "w": [value]}, vmeta)
    json.dumps([fv, vmeta], allow_nan=False)
    _check_bounds(fv, 0, 5, 10, limit, budget)

    out = serializer.value(value, {})
    json.dumps(out, allow_nan=False)
    _check_bounds(out, 0, ser_mod.VALUE_MAX_DEPTH, ser_mod.VALUE_MAX_BREADTH, limit, budget)

    event = serializer.event({"extra": {"v": value}, "tags": {"t": value}, "x": value})
    json.dumps(event, allow_nan=False)

    assert isinstance(safe_repr(value, limit), str)


# ---------------------------------------------------------------------------------------------
# Huge inputs are trimmed before they are copied.


def test_huge_inputs_are_trimmed_not_copied() -> None:
    big_list = [0] * 10_000_000
    big_dict = dict.fromkeys(range(1_000_000), 1)
    big_str = "x" * 50_000_000
    serializer = Serializer(max_value_length=1000)

    meta: dict[str, Any] = {}
    out = serializer.databag(
        {"l": big_list, "d": big_dict, "s": big_str, "b": big_str.encode(), "g": itertools.count()},
        meta,
    )
    assert out["l"] == [0] * 10
    assert out["d"] == {str(i): 1 for i in range(10)}
    assert out["s"] == "x" * 997 + "..."
    assert out["b"] == "x" * 997 + "..."
    assert out["g"].startswith("count(0)")
    assert meta == {
        "l": {"": {"len": 10_000_000}},
        "d": {"": {"len": 1_000_000}},
        "s": {"": {"len": 50_000_000, "rem": [["!limit", "x", 997, 1000]]}},
        "b": {"": {"len": 50_000_000, "rem": [["!limit", "x", 997, 1000]]}},
    }

    # Past the depth limit the containers are rendered by a repr that stops at its budget.
    deep = {"a": {"b": {"c": {"l": big_list, "d": big_dict, "s": big_str}}}}
    vmeta: dict[str, Any] = {}
    fv = serializer.frame_vars({"deep": deep, "s": big_str}, vmeta)
    c = fv["deep"]["a"]["b"]["c"]
    assert c["l"] == ("[" + "0, " * 400)[:997] + "..."
    assert c["s"] == "'" + "x" * 996 + "..."
    assert c["d"].startswith("{0: 1, 1: 1") and len(c["d"]) == 1000
    assert fv["s"] == "'" + "x" * 996 + "..."
    assert vmeta["s"] == {"": {"len": 50_000_002, "rem": [["!limit", "x", 997, 1000]]}}
    # The repr of the deep list was built only up to its budget: its length is a lower bound.
    deep_note = vmeta["deep"]["a"]["b"]["c"]["l"][""]
    assert deep_note["len"] > ser_mod._repr_budget(1000)

    assert serializer.value(big_list, {})[-1] == 0
    assert len(serializer.value(big_list, {})) == ser_mod.VALUE_MAX_BREADTH
    assert len(safe_repr(big_list, 100)) == 100
    assert len(safe_repr(big_str)) == DEFAULT_MAX_VALUE_LENGTH
