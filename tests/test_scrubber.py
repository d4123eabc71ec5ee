"""tripwire.scrubber: "[Filtered]" placements and their `_meta`, as sentry_sdk does."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber

F = "[Filtered]"
REM = {"": {"rem": [["!config", "s"]]}}


def _event() -> dict[str, Any]:
    return {
        "message": "m",
        "extra": {
            "password": "p",
            "Api_Key": "k",
            "nested": {"token": "t", "ok": 1, "deep": {"secret": "s"}},
            "lst": [{"auth": "a"}, "x"],
            "ip_address": "1.2.3.4",
            "none": None,
        },
        "request": {
            "url": "http://x",
            "headers": {
                "Authorization": "Bearer x",
                "X-Forwarded-For": "1.2.3.4",
                "Cookie": "a=b",
                "Accept": "*/*",
                "X_Forwarded_For": "q",
            },
            "cookies": {"sessionid": "s", "other": "o", "csrftoken": "c"},
            "data": {"password": "p", "username": "u", "nested": {"password": "np"}},
            "env": {"REMOTE_ADDR": "1.1.1.1"},
            "query_string": "password=x",
        },
        "user": {"id": "1", "email": "e", "password": "p", "remote_addr": "r"},
        "breadcrumbs": {
            "values": [
                {"message": "b", "data": {"password": "p", "x": 1, "nested": {"token": "t"}}},
                {"message": "no data"},
            ]
        },
        "exception": {
            "values": [
                {
                    "type": "E",
                    "stacktrace": {
                        "frames": [
                            {"function": "f", "vars": {"password": "p", "apikey": "k", "x": "1"}},
                            {"function": "g"},
                        ]
                    },
                }
            ]
        },
        "threads": {"values": [{"stacktrace": {"frames": [{"vars": {"password": "p"}}]}}]},
        "spans": [{"data": {"password": "p", "ok": 1, "nested": {"token": "t"}}}, {"op": "x"}],
        "tags": {"password": "not scrubbed"},
        "contexts": {"trace": {"data": {"password": "not scrubbed"}}},
    }


def test_default_scrubber_filters_values_and_writes_meta() -> None:
    event = _event()
    EventScrubber().scrub_event(event)

    assert event["extra"]["password"] == F
    assert event["extra"]["Api_Key"] == F
    assert event["extra"]["ip_address"] == F  # PII, send_default_pii is off
    assert event["extra"]["nested"] == {"token": "t", "ok": 1, "deep": {"secret": "s"}}
    assert event["extra"]["none"] is None
    headers = event["request"]["headers"]
    assert headers["Authorization"] == F
    assert headers["Cookie"] == F
    assert headers["X_Forwarded_For"] == F
    assert headers["X-Forwarded-For"] == F  # "-" matches "_" (adopted from sentry_sdk 2.76)
    assert headers["Accept"] == "*/*"
    assert event["request"]["cookies"] == {"sessionid": F, "other": "o", "csrftoken": F}
    assert event["request"]["data"]["nested"] == {"password": "np"}
    assert event["request"]["env"] == {"REMOTE_ADDR": "1.1.1.1"}
    assert event["user"] == {"id": "1", "email": "e", "password": F, "remote_addr": F}
    assert event["breadcrumbs"]["values"][0]["data"]["password"] == F
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"] == {"password": F, "apikey": F, "x": "1"}
    assert event["threads"]["values"][0]["stacktrace"]["frames"][0]["vars"] == {"password": F}
    assert event["spans"][0]["data"] == {"password": F, "ok": 1, "nested": {"token": "t"}}
    assert event["tags"] == {"password": "not scrubbed"}
    assert event["contexts"]["trace"]["data"] == {"password": "not scrubbed"}

    assert event["_meta"] == {
        "request": {
            "headers": {
                "Authorization": REM,
                "Cookie": REM,
                "X_Forwarded_For": REM,
                "X-Forwarded-For": REM,
            },
            "cookies": {"sessionid": REM, "csrftoken": REM},
            "data": {"password": REM},
        },
        "extra": {"password": REM, "Api_Key": REM, "ip_address": REM},
        "user": {"password": REM, "remote_addr": REM},
        "breadcrumbs": {"values": {"0": {"data": {"password": REM}}}},
        "exception": {
            "values": {
                "0": {"stacktrace": {"frames": {"0": {"vars": {"password": REM, "apikey": REM}}}}}
            }
        },
        "threads": {
            "values": {"0": {"stacktrace": {"frames": {"0": {"vars": {"password": REM}}}}}}
        },
        "spans": {"0": {"data": {"password": REM}}},
    }


def test_recursive_scrubber_descends_into_dicts_and_lists() -> None:
    event = _event()
    EventScrubber(recursive=True).scrub_event(event)
    assert event["extra"]["nested"] == {"token": F, "ok": 1, "deep": {"secret": F}}
    assert event["extra"]["lst"] == [{"auth": F}, "x"]
    assert event["request"]["data"]["nested"] == {"password": F}
    assert event["spans"][0]["data"]["nested"] == {"token": F}
    assert event["_meta"]["extra"]["nested"] == {"token": REM, "deep": {"secret": REM}}
    assert event["_meta"]["extra"]["lst"] == {"0": {"auth": REM}}


def test_recursive_scrubber_filters_inside_what_the_depth_limit_cuts(init_memory: Any) -> None:
    # Past the databag depth limit a container is sent as its repr: the secret inside
    # it is filtered before it becomes a string, in extra as in local variables.
    import tripwire

    memory = init_memory(event_scrubber=EventScrubber(recursive=True))
    secret = "s3" + "cr3t"  # not in the source lines the event carries
    rows = {"a": {"b": {"items": [{"token": secret, "id": 1}]}}}
    tripwire.set_extra("rows", rows)
    tripwire.capture_message("m")

    def fail() -> None:
        config = {"a": {"b": {"c": {"d": {"e": {"f": {"Api-Key": secret}}}}}}}  # noqa: F841
        raise ValueError("x")

    try:
        fail()
    except ValueError:
        tripwire.capture_exception()
    message, error = memory.events
    assert message["extra"]["rows"] == {"a": {"b": {"items": ["{'token': '[Filtered]', 'id': 1}"]}}}
    frame = error["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert "[Filtered]" in str(frame["vars"]["config"])
    assert secret not in str(memory.events)
    assert rows["a"]["b"]["items"][0]["token"] == secret  # the application's data untouched


def test_denylists_are_lowercased_and_configurable() -> None:
    assert "phpsessid" in EventScrubber().denylist
    assert "xsrf_token" in EventScrubber().denylist  # "-" and "_" match alike (2.76)
    assert "PHPSESSID" in DEFAULT_DENYLIST

    pii = EventScrubber(send_default_pii=True)
    assert not set(DEFAULT_PII_DENYLIST) & set(pii.denylist)

    custom = EventScrubber(denylist=["Foo"], pii_denylist=["Bar"])
    assert custom.denylist == ["foo", "bar"]
    event: dict[str, Any] = {"extra": {"FOO": 1, "bar": 2, "password": 3}}
    custom.scrub_event(event)
    assert event["extra"] == {"FOO": F, "bar": F, "password": 3}

    # An empty denylist is taken as given: only the PII names remain.
    assert EventScrubber(denylist=[]).denylist == DEFAULT_PII_DENYLIST
    assert EventScrubber(denylist=[], send_default_pii=True).denylist == []


def test_user_ip_address_is_removed_not_filtered() -> None:
    event: dict[str, Any] = {"user": {"id": 1, "ip_address": "1.2.3.4", "IP_Address": "x"}}
    EventScrubber().scrub_event(event)
    assert event["user"] == {"id": 1, "IP_Address": F}
    assert event["_meta"] == {"user": {"IP_Address": REM}}

    event = {"user": {"ip_address": "1.2.3.4"}}
    EventScrubber(send_default_pii=True).scrub_event(event)
    assert event["user"] == {"ip_address": "1.2.3.4"}


def test_denylist_changes_after_construction_are_followed() -> None:
    scrubber = EventScrubber(denylist=["a"])
    scrubber.denylist.append("b")
    d = {"a": 1, "b": 2, "c": 3}
    scrubber.scrub_dict(d)
    assert d == {"a": F, "b": F, "c": 3}


def test_scrub_dict_and_list_on_plain_data() -> None:
    scrubber = EventScrubber()
    d: dict[Any, Any] = {"password": {"a": 1}, "token": None, 5: "int key", "n": {"password": 1}}
    scrubber.scrub_dict(d)
    assert d == {"password": F, "token": F, 5: "int key", "n": {"password": 1}}
    assert "_meta" not in d

    lst: list[Any] = [{"password": 1}, [{"token": 2}], ({"secret": 3},), "x"]
    scrubber.scrub_list(lst)
    assert lst == [{"password": F}, [{"token": F}], ({"secret": 3},), "x"]

    recursive = EventScrubber(recursive=True)
    d = {"a": [[{"secret": 1}]], "b": {"c": {"Password": ""}}}
    recursive.scrub_dict(d)
    assert d == {"a": [[{"secret": F}]], "b": {"c": {"Password": F}}}

    scrubber.scrub_dict("not a dict")
    scrubber.scrub_list(None)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"request": None},
        {"request": "x"},
        {"request": {"headers": None, "cookies": "x", "data": "raw body"}},
        {"extra": None, "user": "x"},
        {"breadcrumbs": {"values": None}},
        {"breadcrumbs": {"values": ["x", None, {"data": None}, {"data": [1]}]}},
        {"exception": {"values": [{"stacktrace": None}, None]}},
        {"exception": {"values": None}},
        {"exception": {"values": [{"stacktrace": {"frames": [None, "x", {"vars": "s"}]}}]}},
        {"threads": {"values": [{"stacktrace": {"frames": None}}]}},
        {"stacktrace": "x"},
        {"spans": None},
        {"spans": ["x", {"data": None}]},
    ],
)
def test_odd_shapes_are_left_alone(event: dict[str, Any]) -> None:
    before = copy.deepcopy(event)
    EventScrubber(recursive=True).scrub_event(event)
    assert event == before


def test_request_data_list_and_bare_list_interfaces() -> None:
    event: dict[str, Any] = {
        "request": {"data": [{"password": 1}]},
        "stacktrace": {"frames": [{"vars": {"password": 1}}]},
        # Relay accepts these interfaces as bare lists too: scrub them as well.
        "breadcrumbs": [{"data": {"password": 1}}],
        "exception": [{"stacktrace": {"frames": [{"vars": {"token": 1}}]}}],
    }
    EventScrubber().scrub_event(event)
    assert event["request"]["data"] == [{"password": F}]
    assert event["stacktrace"]["frames"][0]["vars"] == {"password": F}
    assert event["breadcrumbs"][0]["data"] == {"password": F}
    assert event["exception"][0]["stacktrace"]["frames"][0]["vars"] == {"token": F}
    assert event["_meta"]["request"] == {"data": {"0": {"password": REM}}}
    assert event["_meta"]["breadcrumbs"] == {"0": {"data": {"password": REM}}}


def test_scrubbing_replaces_stale_meta_and_is_idempotent() -> None:
    event: dict[str, Any] = {
        "extra": {"password": "x" * 10, "other": "y"},
        "_meta": {"extra": {"password": {"": {"len": 5000}}, "other": {"": {"len": 9}}}},
    }
    scrubber = EventScrubber()
    scrubber.scrub_event(event)
    scrubber.scrub_event(event)
    assert event["extra"] == {"password": F, "other": "y"}
    assert event["_meta"] == {"extra": {"password": REM, "other": {"": {"len": 9}}}}


def test_cyclic_data_terminates() -> None:
    d: dict[str, Any] = {"password": 1}
    d["self"] = d
    EventScrubber(recursive=True).scrub_dict(d)
    assert d["password"] == F


# -- differential: sentry_sdk 2.x --------------------------------------------------------


def _sentry_scrubbed(event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Run sentry_sdk's scrubber and serializer (which turns its marks into `_meta`)."""
    scrubber_mod = pytest.importorskip("sentry_sdk.scrubber")
    serializer = pytest.importorskip("sentry_sdk.serializer")
    scrubber_mod.EventScrubber(**kwargs).scrub_event(event)
    result: dict[str, Any] = serializer.serialize(event)
    return result


def _sentry_scrubbed_raw(event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """sentry_sdk's scrubber alone, its marks turned into `_meta` the serializer's way.

    Its serializer would also trim deep databags, which is not under test here.
    """
    scrubber_mod = pytest.importorskip("sentry_sdk.scrubber")
    types = pytest.importorskip("sentry_sdk._types")
    scrubber_mod.EventScrubber(**kwargs).scrub_event(event)
    meta: dict[str, Any] = {}

    def unwrap(value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, types.AnnotatedValue):
            node = meta
            for key in path:
                node = node.setdefault(key, {})
            node[""] = value.metadata
            return value.value
        if isinstance(value, dict):
            return {k: unwrap(v, (*path, str(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [unwrap(v, (*path, str(i))) for i, v in enumerate(value)]
        return value

    result: dict[str, Any] = unwrap(event, ())
    if meta:
        result["_meta"] = meta
    return result


_SECTIONS = ("extra", "request", "user", "breadcrumbs", "exception", "threads", "spans", "_meta")


def _sections(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in _SECTIONS if k in event}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"recursive": True},
        {"send_default_pii": True},
        {"denylist": ["Foo", "BAR"], "pii_denylist": ["Baz"]},
        {"denylist": ["foo"], "pii_denylist": ["bar"], "send_default_pii": True},
    ],
)
def test_same_as_sentry_sdk_on_a_full_event(kwargs: dict[str, Any]) -> None:
    event = _event()
    # Deliberately not 2.75's behaviour (see test_forwarded_for_is_pii_in_any_spelling).
    for spelling in ("X-Forwarded-For", "X_Forwarded_For"):
        del event["request"]["headers"][spelling]
    event["extra"].update({"Foo": 1, "bar": 2, "BAZ": 3})
    theirs = _sentry_scrubbed(copy.deepcopy(event), **kwargs)
    EventScrubber(**kwargs).scrub_event(event)
    assert _sections(event) == _sections(theirs)


@pytest.mark.parametrize("spelling", ["X-Forwarded-For", "x_forwarded_for", "X-FORWARDED_FOR"])
def test_forwarded_for_is_pii_in_any_spelling(spelling: str) -> None:
    """Adopted from sentry_sdk 2.76: 2.75 let the dashed header (the usual one) through."""
    headers = {spelling: "203.0.113.9", "X-Real-IP": "203.0.113.9", "Accept": "*/*"}
    event: dict[str, Any] = {"request": {"headers": dict(headers)}}
    EventScrubber().scrub_event(event)
    assert event["request"]["headers"] == {spelling: F, "X-Real-IP": F, "Accept": "*/*"}
    assert set(event["_meta"]["request"]["headers"]) == {spelling, "X-Real-IP"}

    # With send_default_pii the client's address is sent, as ip_address is.
    event = {"request": {"headers": dict(headers)}}
    EventScrubber(send_default_pii=True).scrub_event(event)
    assert event["request"]["headers"] == headers


_KEYS = st.sampled_from(
    ["password", "Password", "TOKEN", "ip_address", "x_real_ip", "safe", "name", "PHPSESSID", "a"]
)
_leaf = st.none() | st.integers() | st.text(max_size=5)
_bag = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=8,
)
_dicts = st.dictionaries(_KEYS, _bag, max_size=4)


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    frames = draw(st.lists(st.fixed_dictionaries({"vars": _dicts}), max_size=3))
    return {
        "extra": draw(_dicts),
        "user": draw(_dicts),
        "request": {
            "headers": draw(_dicts),
            "cookies": draw(_dicts),
            "data": draw(_dicts | st.lists(_dicts, max_size=2)),
        },
        "breadcrumbs": {
            "values": draw(st.lists(st.fixed_dictionaries({"data": _dicts}), max_size=3))
        },
        "exception": {"values": [{"stacktrace": {"frames": frames}}]},
        "spans": draw(st.lists(st.fixed_dictionaries({"data": _dicts}), max_size=2)),
    }


@settings(max_examples=60, deadline=None)
@given(_events(), st.booleans(), st.booleans())
def test_same_as_sentry_sdk_on_generated_events(
    event: dict[str, Any], recursive: bool, pii: bool
) -> None:
    kwargs: dict[str, Any] = {"recursive": recursive, "send_default_pii": pii}
    theirs = _sentry_scrubbed_raw(copy.deepcopy(event), **kwargs)
    EventScrubber(**kwargs).scrub_event(event)
    assert _sections(event) == _sections(theirs)
