"""Grouping of error events into issues (tripwire.server.grouping)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire.server.grouping import event_culprit, event_title, group_event


def _frame(function: str, lineno: int, in_app: bool = True, module: str = "shop.cart") -> dict:
    return {
        "function": function,
        "module": module,
        "filename": module.replace(".", "/") + ".py",
        "lineno": lineno,
        "in_app": in_app,
        "context_line": f"    line {lineno}",
    }


def _error(
    exc_type: str = "KeyError", value: str = "'kiwi'", frames: Any = None, **extra: Any
) -> dict:
    if frames is None:
        frames = [_frame("main", 10), _frame("checkout", 20)]
    exc: dict[str, Any] = {"type": exc_type, "value": value}
    if frames:
        exc["stacktrace"] = {"frames": frames}
    return {"level": "error", "exception": {"values": [exc]}, **extra}


def test_same_type_and_in_app_frames_group_together_whatever_the_lines_and_value():
    a = group_event(_error(value="'kiwi'", frames=[_frame("main", 10), _frame("checkout", 20)]))
    b = group_event(_error(value="'plum'", frames=[_frame("main", 12), _frame("checkout", 27)]))
    assert a.hash == b.hash


def test_a_different_in_app_function_or_type_is_another_issue():
    base = group_event(_error())
    other_function = group_event(_error(frames=[_frame("main", 10), _frame("pay", 20)]))
    other_type = group_event(_error(exc_type="ValueError"))
    assert len({base.hash, other_function.hash, other_type.hash}) == 3


def test_library_frames_do_not_split_issues_when_in_app_frames_exist():
    lib_a = _frame("request", 100, in_app=False, module="requests.api")
    lib_b = _frame("urlopen", 7, in_app=False, module="urllib3.pool")
    a = group_event(_error(frames=[_frame("main", 1), lib_a]))
    b = group_event(_error(frames=[_frame("main", 1), lib_b]))
    assert a.hash == b.hash


def test_without_in_app_frames_all_frames_count():
    a = group_event(_error(frames=[_frame("x", 1, in_app=False)]))
    b = group_event(_error(frames=[_frame("y", 1, in_app=False)]))
    assert a.hash != b.hash


def test_chained_exceptions_all_contribute():
    cause = {"type": "OSError", "value": "disk", "stacktrace": {"frames": [_frame("read", 3)]}}
    top = {"type": "RuntimeError", "value": "x", "stacktrace": {"frames": [_frame("run", 9)]}}
    chained = group_event({"exception": {"values": [cause, top]}})
    alone = group_event({"exception": {"values": [top]}})
    assert chained.hash != alone.hash
    assert chained.title == "RuntimeError: x"


def test_without_a_stack_trace_the_value_groups_with_numbers_and_ids_masked():
    a = group_event(_error(value="user 123 not found (id 0x7f3a)", frames=[]))
    b = group_event(_error(value="user 98765 not found (id 0x1b2c)", frames=[]))
    c = group_event(_error(value="order 1 not found", frames=[]))
    assert a.hash == b.hash
    assert a.hash != c.hash


def test_messages_group_by_template_before_parameters():
    a = group_event({"logentry": {"message": "payment %s failed", "params": ["42"]}})
    b = group_event({"logentry": {"message": "payment %s failed", "params": ["43"]}})
    assert a.hash == b.hash


def test_plain_messages_group_with_numbers_masked():
    a = group_event({"message": "retry 3 of 5 for 6f1c2a44-0c5d-4c8e-9a7e-2f0f5e3b9d11"})
    b = group_event({"message": "retry 4 of 5 for 0b8e9d52-1f3a-4e7a-8c2d-7a6b5c4d3e2f"})
    c = group_event({"message": "something else"})
    assert a.hash == b.hash != c.hash
    assert a.title == "retry 3 of 5 for 6f1c2a44-0c5d-4c8e-9a7e-2f0f5e3b9d11"


def test_fingerprint_overrides_default_grouping():
    a = group_event(_error(fingerprint=["payments-down"]))
    b = group_event(_error(exc_type="ValueError", fingerprint=["payments-down"]))
    assert a.hash == b.hash != group_event(_error()).hash


def test_default_only_fingerprint_is_the_default_grouping():
    assert group_event(_error(fingerprint=["{{ default }}"])).hash == group_event(_error()).hash
    assert group_event(_error(fingerprint=["{{default}}"])).hash == group_event(_error()).hash


def test_default_expansion_splits_the_default_group_by_extra_values():
    eu = group_event(_error(fingerprint=["{{ default }}", "eu"]))
    us = group_event(_error(fingerprint=["{{ default }}", "us"]))
    assert len({eu.hash, us.hash, group_event(_error()).hash}) == 3
    # Two events that differ by default grouping stay apart under the same extra value.
    other = group_event(_error(exc_type="ValueError", fingerprint=["{{ default }}", "eu"]))
    assert other.hash != eu.hash
    # And "{{ default }}" plus a value differs from the value alone.
    assert group_event(_error(fingerprint=["eu"])).hash != eu.hash


def test_fingerprint_variables():
    a = group_event(_error(transaction="/checkout", fingerprint=["{{ transaction }}", "x"]))
    b = group_event(
        _error(
            exc_type="ValueError", transaction="/checkout", fingerprint=["{{ transaction }}", "x"]
        )
    )
    c = group_event(_error(transaction="/cart", fingerprint=["{{ transaction }}", "x"]))
    assert a.hash == b.hash != c.hash
    by_type = group_event(_error(fingerprint=["{{ error.type }}"]))
    assert by_type.hash == group_event(_error(frames=[], fingerprint=["{{ type }}"])).hash


def test_title_and_culprit():
    event = _error()
    assert event_title(event) == "KeyError: 'kiwi'"
    assert event_culprit(event) == "shop.cart in checkout"
    assert event_culprit({**event, "transaction": "/checkout"}) == "/checkout"
    assert event_title({"message": "first line\nsecond"}) == "first line"
    assert event_title({}) == "<unlabeled event>"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["exception", "message", "logentry", "fingerprint", "transaction", "level", "logger"]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=6))
def test_grouping_never_raises_on_odd_events(event):
    grouping = group_event(event)
    assert len(grouping.hash) == 40
    assert isinstance(grouping.title, str)
    assert len(grouping.title) <= 200
