"""Exceptions for events: values, chains, groups, mechanisms and the sentry-sdk shape."""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import os
import random
import sys
from typing import Any, Callable

import _sample_frames as sample
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tripwire.event.exceptions import (
    event_from_exception,
    exc_info_from_error,
    exceptions_from_exc_info,
)
from tripwire.event.frames import FrameOptions

# Looked up at run time: the type checker targets Python 3.9, which has no groups.
EG: Any = getattr(builtins, "ExceptionGroup", None)
BEG: Any = getattr(builtins, "BaseExceptionGroup", None)
if BEG is None:  # before 3.11: the backport, when installed, makes groups too
    backport: Any = importlib.util.find_spec("exceptiongroup") and importlib.import_module(
        "exceptiongroup"
    )
    if backport:
        EG, BEG = backport.ExceptionGroup, backport.BaseExceptionGroup
HAS_GROUPS = BEG is not None
# sentry-sdk only knows the built-in groups: the backport's are plain exceptions to it.
SENTRY_GROUPS = hasattr(builtins, "BaseExceptionGroup")
needs_groups = pytest.mark.skipif(not HAS_GROUPS, reason="no ExceptionGroup on this Python")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def render(values: Any) -> dict[str, Any]:
    return {key: repr(value) for key, value in values.items()}


def options(**kwargs: Any) -> FrameOptions:
    kwargs.setdefault("vars_renderer", render)
    kwargs.setdefault("project_root", ROOT)
    return FrameOptions(**kwargs)


BARE = FrameOptions(include_source_context=False, include_local_variables=False)


def caught(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def values_of(error: Any, opts: FrameOptions = BARE, mechanism: Any = None) -> list[dict[str, Any]]:
    info = exc_info_from_error(error)
    assert info is not None
    return exceptions_from_exc_info(info, opts, mechanism)


def summary(values: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(v["type"], v["value"], v["mechanism"]) for v in values]


def functions(value: dict[str, Any]) -> list[str]:
    return [f["function"] for f in value["stacktrace"]["frames"]]


GENERIC = {"type": "generic", "handled": True}


# --- one exception ----------------------------------------------------------------------


def test_single_exception_shape() -> None:
    exc = caught(sample.outer)
    (value,) = values_of(exc, options())
    assert list(value) == ["mechanism", "module", "type", "value", "stacktrace"]
    assert value["mechanism"] == GENERIC
    assert (value["module"], value["type"], value["value"]) == (None, "ValueError", "bad 2")
    assert list(value["stacktrace"]) == ["frames"]
    assert functions(value) == ["caught", "outer", "inner"]
    assert value["stacktrace"]["frames"][-1]["vars"] == {"x": "1", "y": "2"}


class Outer:
    class Nested(Exception):
        pass


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


class BadStrAndRepr(BadStr):
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class NonStrStr(Exception):
    def __str__(self) -> Any:
        return 5


def test_type_module_and_value() -> None:
    (nested,) = values_of(Outer.Nested("q"))
    assert (nested["module"], nested["type"], nested["value"]) == (__name__, "Outer.Nested", "q")
    assert "stacktrace" not in nested  # never raised: no traceback

    assert values_of(KeyError("k"))[0]["value"] == "'k'"
    assert values_of(ValueError("multi\nline"))[0]["value"] == "multi\nline"
    assert values_of(BadStr("x"))[0]["value"] == "BadStr('x')"
    assert values_of(BadStrAndRepr("x"))[0]["value"] == "<broken repr>"
    assert values_of(NonStrStr())[0]["value"] == "NonStrStr()"


def test_odd_module_attributes() -> None:
    class NoModule(Exception):
        pass

    NoModule.__module__ = None  # type: ignore[assignment]
    assert values_of(NoModule("x"))[0]["module"] is None

    class NumberModule(Exception):
        pass

    NumberModule.__module__ = 42  # type: ignore[assignment]
    assert values_of(NumberModule("x"))[0]["module"] == 42


def test_mechanism_is_passed_through_and_copied() -> None:
    mechanism = {"type": "django", "handled": False, "data": {"a": 1}}
    values = values_of(caught(sample.chained), mechanism=mechanism)
    assert [v["mechanism"] for v in values] == [mechanism, mechanism]
    values[0]["mechanism"]["extra"] = 1
    assert "extra" not in values[1]["mechanism"]
    assert "extra" not in mechanism
    # An empty mechanism means the default; a partial one is taken as given.
    assert values_of(ValueError(), mechanism={})[0]["mechanism"] == GENERIC
    assert values_of(ValueError(), mechanism={"handled": False})[0]["mechanism"] == {
        "handled": False
    }


# --- chains -----------------------------------------------------------------------------


def test_explicit_cause_comes_first() -> None:
    values = values_of(caught(sample.chained))
    assert summary(values) == [
        ("ValueError", "bad 2", GENERIC),
        ("RuntimeError", "wrapped", GENERIC),
    ]
    assert functions(values[0]) == ["chained", "outer", "inner"]
    assert functions(values[1]) == ["caught", "chained"]


def test_implicit_context_and_suppressed_context() -> None:
    values = values_of(caught(sample.during))
    assert [v["type"] for v in values] == ["ValueError", "RuntimeError"]
    assert values_of(caught(sample.suppressed))[0]["value"] == "suppressed"
    assert len(values_of(caught(sample.suppressed))) == 1


def test_cause_wins_over_context_and_only_one_is_followed() -> None:
    top = RuntimeError("top")
    top.__context__ = TypeError("context")
    top.__cause__ = ValueError("cause")  # also sets __suppress_context__
    assert [v["value"] for v in values_of(top)] == ["cause", "top"]
    top.__suppress_context__ = False
    assert [v["value"] for v in values_of(top)] == ["context", "top"]


def test_cycles_terminate() -> None:
    a, b = ValueError("a"), TypeError("b")
    a.__context__, b.__context__ = b, a
    assert [v["value"] for v in values_of(a)] == ["b", "a"]
    selfish = ValueError("self")
    selfish.__context__ = selfish
    assert [v["value"] for v in values_of(selfish)] == ["self"]


def test_long_chain_is_fully_walked() -> None:
    exc: BaseException = ValueError("root")
    for i in range(3000):
        nxt = KeyError(i)
        nxt.__context__ = exc
        exc = nxt
    values = values_of(exc)
    assert len(values) == 3001
    assert values[0]["value"] == "root"


# --- exception groups -------------------------------------------------------------------


def chained_mech(exception_id: int, source: str, parent_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "chained",
        "handled": True,
        "exception_id": exception_id,
        "source": source,
        "parent_id": parent_id,
        **extra,
    }


@needs_groups
def test_group_with_context_and_members() -> None:
    def raise_group() -> None:
        errors = []
        for i in range(2):
            try:
                raise ValueError(f"leaf{i}")
            except ValueError as exc:
                errors.append(exc)
        try:
            raise KeyError("ctx")
        except KeyError:
            raise EG("grp", errors)

    values = values_of(caught(raise_group))
    assert summary(values) == [
        ("ValueError", "leaf1", chained_mech(3, "exceptions[1]", 0)),
        ("ValueError", "leaf0", chained_mech(2, "exceptions[0]", 0)),
        ("KeyError", "'ctx'", chained_mech(1, "__context__", 0)),
        (
            "ExceptionGroup",
            "grp",  # the message, without " (2 sub-exceptions)"
            {"type": "generic", "handled": True, "exception_id": 0, "is_exception_group": True},
        ),
    ]
    assert list(values[0]["mechanism"]) == [
        "type",
        "handled",
        "exception_id",
        "source",
        "parent_id",
    ]
    assert functions(values[0]) == ["raise_group"]
    assert functions(values[3]) == ["caught", "raise_group"]


@needs_groups
def test_nested_groups_ids_and_parents() -> None:
    inner = EG("inner", [TypeError("t1"), TypeError("t2")])
    inner.__context__ = OSError("inner-ctx")
    leaf = ValueError("v1")
    leaf.__context__ = KeyError("v1ctx")
    leaf.__context__.__cause__ = IndexError("v1ctxcause")
    outer = EG("outer", [leaf, inner, ValueError("v3")])
    got = [
        (
            v["value"],
            v["mechanism"].get("exception_id"),
            v["mechanism"].get("parent_id"),
            v["mechanism"].get("source"),
        )
        for v in values_of(outer)
    ]
    assert got == [
        ("v3", 8, 0, "exceptions[2]"),
        ("t2", 7, 4, "exceptions[1]"),
        ("t1", 6, 4, "exceptions[0]"),
        ("inner-ctx", 5, 0, "__context__"),  # chained ones always get parent_id 0
        ("inner", 4, 0, "exceptions[1]"),
        ("v1ctxcause", 3, 0, "__cause__"),
        ("'v1ctx'", 2, 0, "__context__"),
        ("v1", 1, 0, "exceptions[0]"),
        ("outer", 0, None, None),
    ]
    assert values_of(outer)[4]["mechanism"]["is_exception_group"] is True


@needs_groups
def test_group_mechanism_keeps_given_fields() -> None:
    group = EG("g", [ValueError(1)])
    values = values_of(group, mechanism={"type": "django", "handled": False, "meta": {}})
    assert [v["mechanism"] for v in values] == [
        {
            "type": "chained",
            "handled": False,
            "meta": {},
            "exception_id": 1,
            "source": "exceptions[0]",
            "parent_id": 0,
        },
        {
            "type": "django",
            "handled": False,
            "meta": {},
            "exception_id": 0,
            "is_exception_group": True,
        },
    ]
    # A mechanism without "type" gets one after the ids.
    values = values_of(group, mechanism={"handled": False})
    assert list(values[0]["mechanism"]) == [
        "handled",
        "exception_id",
        "source",
        "parent_id",
        "type",
    ]
    assert list(values[1]["mechanism"]) == ["handled", "exception_id", "type", "is_exception_group"]


@needs_groups
def test_group_below_a_plain_exception_is_not_expanded() -> None:
    group = EG("outer", [ValueError("v1")])
    top = RuntimeError("wrap")
    top.__cause__ = group
    assert summary(values_of(top)) == [
        ("ExceptionGroup", "outer", {**GENERIC, "is_exception_group": True}),
        ("RuntimeError", "wrap", GENERIC),
    ]


@needs_groups
def test_group_duplicates_and_cycles() -> None:
    dup = ValueError("dup")
    assert [v["value"] for v in values_of(EG("g", [dup, dup]))] == ["dup", "g"]
    group = EG("G0", [ValueError("L")])
    middle = ValueError("M")
    group.__context__, middle.__context__ = middle, group
    assert [v["value"] for v in values_of(group)] == ["L", "M", "G0"]


@needs_groups
def test_group_values_and_broken_message() -> None:

    class Custom(EG):  # type: ignore[misc]
        def __str__(self) -> str:
            return "custom str"

    assert values_of(Custom("msg", [ValueError()]))[-1]["value"] == "msg"
    assert values_of(Custom("", [ValueError()]))[-1]["value"] == "custom str"
    assert values_of(EG("", [ValueError()]))[-1]["value"] == " (1 sub-exception)"

    class BrokenMessage(EG):  # type: ignore[misc]
        @property
        def message(self) -> str:
            raise RuntimeError("no message")

    broken = values_of(BrokenMessage("m", [ValueError()]))
    # Falls back to str(): the backport's __str__ uses .message too, so repr() there.
    assert broken[-1]["value"] in ("m (1 sub-exception)", "BrokenMessage('m', [ValueError()])")
    base = values_of(BEG("bg", [KeyboardInterrupt()]))
    assert [v["type"] for v in base] == ["KeyboardInterrupt", "BaseExceptionGroup"]


@needs_groups
def test_very_long_chain_inside_a_group_does_not_recurse() -> None:
    exc: BaseException = ValueError("root")
    for i in range(5000):
        nxt = KeyError(i)
        nxt.__context__ = exc
        exc = nxt
    values = values_of(EG("g", [exc]))
    assert len(values) == 5002


# --- exc_info and the event -------------------------------------------------------------


def test_exc_info_from_error() -> None:
    assert exc_info_from_error(None) is None  # nothing being handled
    try:
        raise KeyError("now")
    except KeyError:
        info = exc_info_from_error(None)
        assert info == sys.exc_info()
    exc = caught(sample.outer)
    assert exc_info_from_error(exc) == (ValueError, exc, exc.__traceback__)
    assert exc_info_from_error((ValueError, exc, None)) == (ValueError, exc, None)
    assert exc_info_from_error((None, exc, None)) == (ValueError, exc, None)
    assert exc_info_from_error((None, None, None)) is None
    assert exc_info_from_error((ValueError, None, None)) == (ValueError, None, None)
    for junk in ("text", 5, (1, 2), (ValueError, "not an exception", None), (1, 2, 3)):
        assert exc_info_from_error(junk) is None  # type: ignore[arg-type]
    assert exceptions_from_exc_info((ValueError, None, None), BARE) == []


def test_event_from_exception() -> None:
    exc = caught(sample.outer)
    event, hint = event_from_exception(exc, BARE)
    assert list(event) == ["level", "exception"]
    assert event["level"] == "error"
    assert [v["type"] for v in event["exception"]["values"]] == ["ValueError"]
    assert hint == {"exc_info": (ValueError, exc, exc.__traceback__)}
    event, hint = event_from_exception(None, BARE)
    assert event == {"level": "error", "exception": {"values": []}}
    assert hint == {"exc_info": None}
    event, _ = event_from_exception(ValueError("m"), BARE, {"type": "x", "handled": False})
    assert event["exception"]["values"][0]["mechanism"] == {"type": "x", "handled": False}


# --- full stack and deep stacks ---------------------------------------------------------


def test_add_full_stack_prepends_the_capture_point() -> None:
    opts = options(add_full_stack=True, include_local_variables=False)
    exc = caught(lambda: sample.deep(2))
    here = sys._getframe().f_lineno + 1
    (value,) = exceptions_from_exc_info(exc_info_from_error(exc), opts)  # type: ignore[arg-type]
    frames = value["stacktrace"]["frames"]
    names = [f["function"] for f in frames]
    this = "test_add_full_stack_prepends_the_capture_point"
    assert names[-6:] == [this, "caught", "<lambda>", "deep", "deep", "deep"]
    capture_point = frames[-6]
    assert (capture_point["function"], capture_point["lineno"]) == (
        "test_add_full_stack_prepends_the_capture_point",
        here,
    )
    assert names[0] != names[-1]  # frames from pytest's runner come first
    # A never-raised exception has no frames, full stack or not.
    assert "stacktrace" not in exceptions_from_exc_info((ValueError, ValueError(), None), opts)[0]


def test_add_full_stack_keeps_the_newest_max_stack_frames() -> None:
    exc = caught(lambda: sample.deep(200))
    info = exc_info_from_error(exc)
    assert info is not None
    opts = options(add_full_stack=True, max_stack_frames=5, include_local_variables=False)
    frames = exceptions_from_exc_info(info, opts)[0]["stacktrace"]["frames"]
    assert [(f["function"], f["lineno"]) for f in frames] == [("deep", 35)] * 4 + [("deep", 34)]
    none = options(add_full_stack=True, max_stack_frames=0, include_local_variables=False)
    assert exceptions_from_exc_info(info, none)[0]["stacktrace"] == {"frames": []}


def test_recursion_error_at_maximum_depth() -> None:
    exc = caught(lambda: sample.recurse(0))
    assert isinstance(exc, RecursionError)
    info = exc_info_from_error(exc)
    assert info is not None
    full = exceptions_from_exc_info(info, options())[0]["stacktrace"]["frames"]
    assert len(full) > sys.getrecursionlimit() - 100
    assert full[-1]["vars"] == {"n": repr(len(full) - 3)}
    cut = exceptions_from_exc_info(info, options(add_full_stack=True))[0]["stacktrace"]["frames"]
    assert len(cut) == 100
    assert cut == full[-100:]


# --- the incumbent, side by side --------------------------------------------------------

sentry_cases = [
    ("outer", sample.outer, {}),
    ("chained", sample.chained, {}),
    ("during", sample.during, {"include_source_context": False}),
    ("suppressed", sample.suppressed, {"include_local_variables": False}),
    ("hidden", sample.visible_caller, {"in_app_exclude": ["_sample_frames"]}),
    ("pytest_hidden", sample.pytest_style_hidden, {"in_app_include": ["_sample_frames"]}),
    ("deep", lambda: sample.deep(30), {}),
    ("recursion", lambda: sample.recurse(0), {}),
    (
        "exec",
        lambda: exec("def q():\n    z = 3\n    raise KeyError(z)\nq()", {"__name__": "dyn.mod"}),
        {},
    ),
    (
        "stdlib",
        lambda: __import__("json").loads("{}", object_hook=lambda d: sample.outer()),
        {"in_app_include": ["json"]},
    ),
]
if SENTRY_GROUPS:

    def raise_group() -> None:
        errors = []
        for fn in (sample.outer, sample.chained, sample.suppressed):
            try:
                fn()
            except Exception as exc:
                errors.append(exc)
        try:
            sample.during()
        except RuntimeError:
            raise EG("many", [*errors, EG("nested", errors[:1])])

    sentry_cases.append(("group", raise_group, {}))


def sentry_values(captured: Any, exc: BaseException, mechanism: Any = None) -> list[dict[str, Any]]:
    import sentry_sdk

    if mechanism is None:
        sentry_sdk.capture_exception(exc)
    else:
        from sentry_sdk.utils import event_from_exception as sentry_event
        from sentry_sdk.utils import exc_info_from_error as sentry_exc_info

        client = sentry_sdk.get_client()
        event, hint = sentry_event(
            sentry_exc_info(exc), client_options=client.options, mechanism=mechanism
        )
        sentry_sdk.capture_event(event, hint=hint)
    values: list[dict[str, Any]] = captured.last()["exception"]["values"]
    return values


@pytest.mark.parametrize(("name", "fn", "kwargs"), sentry_cases, ids=[c[0] for c in sentry_cases])
def test_same_values_as_sentry_sdk(
    name: str, fn: Callable[[], object], kwargs: dict[str, Any]
) -> None:
    pytest.importorskip("sentry_sdk")
    from _sample_sentry import sentry_client, values_vars_keys

    exc = caught(fn)
    opts = FrameOptions(vars_renderer=render, project_root=os.getcwd(), **kwargs)
    with sentry_client(**kwargs) as captured:
        theirs = sentry_values(captured, exc)
    ours = exceptions_from_exc_info(exc_info_from_error(exc), opts)  # type: ignore[arg-type]
    assert values_vars_keys(ours) == values_vars_keys(theirs)


def test_same_full_stack_as_sentry_sdk() -> None:
    pytest.importorskip("sentry_sdk")
    import sentry_sdk
    from _sample_sentry import sentry_client, values_vars_keys

    exc = caught(lambda: sample.deep(80))
    info = exc_info_from_error(exc)
    assert info is not None
    opts = FrameOptions(vars_renderer=render, project_root=os.getcwd(), add_full_stack=True)
    with sentry_client(add_full_stack=True) as captured:
        sentry_sdk.capture_exception(exc); ours = exceptions_from_exc_info(info, opts)  # fmt: skip  # noqa: E702
    theirs = captured.last()["exception"]["values"]
    assert len(ours[0]["stacktrace"]["frames"]) == 100
    assert values_vars_keys(ours) == values_vars_keys(theirs)


def random_exception(rng: random.Random, depth: int, pool: list[BaseException]) -> BaseException:
    """A random tree of chained exceptions and groups, with shared nodes and cycles."""
    roll = rng.random()
    exc: BaseException
    if SENTRY_GROUPS and depth < 3 and roll < 0.35:
        members = [random_exception(rng, depth + 1, pool) for _ in range(rng.randint(1, 3))]
        kind = EG if all(isinstance(m, Exception) for m in members) else BEG
        exc = kind(rng.choice(["g", ""]), members)
    elif pool and roll < 0.45:
        return rng.choice(pool)
    else:
        exc = rng.choice([ValueError, KeyError, TypeError, KeyboardInterrupt])(rng.randint(0, 9))
    pool.append(exc)
    link = rng.random()
    if depth < 4:
        if link < 0.25:
            exc.__context__ = (
                random_exception(rng, depth + 1, pool) if rng.random() < 0.8 else rng.choice(pool)
            )
        elif link < 0.45:
            exc.__cause__ = random_exception(rng, depth + 1, pool)
        elif link < 0.55:
            exc.__context__ = random_exception(rng, depth + 1, pool)
            exc.__suppress_context__ = True
        elif link < 0.6:
            exc.__cause__ = random_exception(rng, depth + 1, pool)
            exc.__context__ = random_exception(rng, depth + 1, pool)
            exc.__suppress_context__ = False
    return exc


MECHANISMS = [
    None,
    {"type": "x", "handled": False},
    {"handled": False},
    {"type": "y", "data": {"k": 1}},
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), mechanism=st.sampled_from(MECHANISMS))
def test_chains_and_groups_match_sentry_sdk(rng: random.Random, mechanism: Any) -> None:
    pytest.importorskip("sentry_sdk")
    from _sample_sentry import sentry_client

    exc = random_exception(rng, 0, [])
    with sentry_client() as captured:
        theirs = sentry_values(captured, exc, mechanism)
    assert values_of(exc, mechanism=mechanism) == theirs
