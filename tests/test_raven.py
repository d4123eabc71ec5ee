"""tripwire.raven: the raven 6.x Client API, asserted on the event JSON on the wire."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire
from tripwire.raven import Client
from tripwire.raven.base import DummyClient
from tripwire.raven.context import Context, get_active_contexts
from tripwire.raven.exceptions import InvalidDsn
from tripwire.testing import MemoryTransport

DSN = "https://pub:sec@sentry.example.com/42"


def make(**options: Any) -> tuple[Client, MemoryTransport]:
    memory = MemoryTransport()
    options.setdefault("install_sys_hook", False)
    return Client(transport=memory, **options), memory


def crumbs(event: dict[str, Any]) -> list[Any]:
    return [c.get("message") for c in event.get("breadcrumbs", {}).get("values", [])]


def boom(password: str = "hunter2") -> None:
    secret_number = 4111111111111111  # noqa: F841 - shows up in the frame's vars
    raise ZeroDivisionError("division by zero")


# -- exceptions ---------------------------------------------------------------------------------


def test_capture_exception_with_extra_tags_user_context() -> None:
    client, memory = make(tags={"app": "shop"}, site="eu", release="1.2.3", environment="prod")
    client.user_context({"id": 7, "email": "a@example.com"})
    client.tags_context({"tenant": "acme"})
    client.extra_context({"cart": 3})
    client.http_context({"url": "http://shop/checkout", "method": "POST"})
    try:
        boom()
    except ZeroDivisionError:
        event_id = client.captureException(
            extra={"order": 42}, tags={"step": "pay"}, level="warning", fingerprint=["pay"]
        )

    assert isinstance(event_id, str) and len(event_id) == 32
    assert client.last_event_id == event_id
    [envelope] = memory.envelopes
    assert envelope.headers["event_id"] == event_id
    assert [item.type for item in envelope.items] == ["event"]
    event = memory.events[0]
    assert event["event_id"] == event_id
    assert event["level"] == "warning"
    assert event["fingerprint"] == ["pay"]
    assert event["release"] == "1.2.3"
    assert event["environment"] == "prod"
    assert event["tags"] == {"app": "shop", "tenant": "acme", "step": "pay", "site": "eu"}
    assert event["extra"]["order"] == 42
    assert event["extra"]["cart"] == 3
    assert event["extra"]["sys.argv"] == list(sys.argv)[:10]  # lists keep 10 items
    assert event["user"] == {"id": 7, "email": "a@example.com"}
    assert event["request"] == {"url": "http://shop/checkout", "method": "POST"}
    [exc] = event["exception"]["values"]
    assert exc["type"] == "ZeroDivisionError"
    assert exc["value"] == "division by zero"
    assert exc["mechanism"] == {"type": "generic", "handled": True}
    frame = exc["stacktrace"]["frames"][-1]
    assert frame["function"] == "boom"
    # SanitizePasswordsProcessor is on by default.
    assert frame["vars"]["password"] == "********"
    assert "sentry.interfaces.Exception" not in event and "message" not in event


def test_capture_exception_accepts_tuple_and_instance() -> None:
    client, memory = make()
    try:
        raise KeyError("k")
    except KeyError as exc:
        error = exc
    assert client.captureException((type(error), error, error.__traceback__)) is not None
    assert client.captureException(ValueError("v")) is not None
    assert [e["exception"]["values"][-1]["type"] for e in memory.events] == [
        "KeyError",
        "ValueError",
    ]


def test_capture_exception_without_exception_returns_none() -> None:
    client, memory = make()
    assert client.captureException() is None
    assert client.captureException(exc_info=("not", "an", "exc_info")) is None
    assert memory.events == []


def test_same_exception_is_captured_once() -> None:
    client, memory = make()
    try:
        boom()
    except ZeroDivisionError:
        assert client.captureException() is not None
        assert client.captureException() is None
    assert len(memory.events) == 1


def test_ignore_exceptions_names_prefixes_and_classes() -> None:
    class MyWarning(Exception):
        pass

    class SubKeyError(KeyError):
        pass

    prefix = f"{__name__}.*"  # this module's classes, by a prefix pattern
    client, memory = make(ignore_exceptions=["KeyError", prefix, ValueError])
    results = {}
    for exc_type in (KeyError, SubKeyError, UnicodeError, MyWarning, TypeError):
        try:
            raise exc_type("x")
        except Exception:
            exc_info = sys.exc_info()
            results[exc_type.__name__] = (
                client.should_capture(exc_info),
                client.captureException(),
            )
    # A name matches that exact class; a class matches its subclasses; "x.*" a prefix.
    assert results["KeyError"] == (False, None)
    assert results["UnicodeError"] == (False, None)  # a ValueError
    assert results["MyWarning"] == (False, None)  # by the prefix
    assert results["SubKeyError"][0] is False  # by the prefix too, not by "KeyError"
    assert results["TypeError"][0] is True
    assert [e["exception"]["values"][-1]["type"] for e in memory.events] == ["TypeError"]


def test_capture_exceptions_decorator_and_context_manager() -> None:
    client, memory = make()

    @client.capture_exceptions
    def fails() -> None:
        raise ValueError("decorated")

    @client.capture_exceptions((KeyError,))
    def fails_other() -> None:
        raise ValueError("not captured")

    with pytest.raises(ValueError, match="decorated"):
        fails()
    with pytest.raises(ValueError, match="not captured"):
        fails_other()
    with pytest.raises(TypeError), client.capture_exceptions(extra={"op": "upload"}):
        raise TypeError("in block")
    assert [e["exception"]["values"][-1]["value"] for e in memory.events] == [
        "decorated",
        "in block",
    ]
    assert memory.events[1]["extra"]["op"] == "upload"


# -- messages and generic capture -------------------------------------------------------------


def test_capture_message_with_params() -> None:
    client, memory = make()
    event_id = client.captureMessage("hello %s, you are %d", params=("ann", 7), level="info")
    event = memory.events[0]
    assert event["event_id"] == event_id
    assert event["level"] == "info"
    assert event["logentry"] == {
        "message": "hello %s, you are %d",
        "params": ["ann", 7],
        "formatted": "hello ann, you are 7",
    }
    assert "message" not in event


def test_capture_message_defaults_and_stack() -> None:
    client, memory = make()
    client.captureMessage("plain")
    client.captureMessage("with stack", stack=True)
    plain, stacked = memory.events
    assert plain["message"] == "plain"
    assert plain["level"] == "error"  # raven's default level
    assert "threads" not in plain
    frames = stacked["threads"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "test_capture_message_defaults_and_stack"
    assert not any(f.get("module", "").startswith("tripwire.") for f in frames)


def test_auto_log_stacks_attaches_stack_to_messages() -> None:
    client, memory = make(auto_log_stacks=True)
    client.captureMessage("m")
    assert memory.events[0]["threads"]["values"][0]["stacktrace"]["frames"]


def test_capture_query() -> None:
    client, memory = make()
    client.captureQuery("SELECT * FROM t WHERE a=%s", params=(1,), engine="psycopg2")
    event = memory.events[0]
    assert event["message"] == "SELECT * FROM t WHERE a=%s"
    assert event["contexts"]["query"] == {
        "query": "SELECT * FROM t WHERE a=%s",
        "engine": "psycopg2",
    }


def test_capture_maps_legacy_interfaces_to_modern_keys() -> None:
    client, memory = make()
    date = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    client.capture(
        "raven.events.Message",
        message="legacy",
        data={
            "sentry.interfaces.Http": {"url": "http://a/b", "method": "GET"},
            "sentry.interfaces.User": {"id": 3},
            "sentry.interfaces.Template": {"filename": "x.html", "lineno": 1},
            "sentry.interfaces.Query": {"query": "SELECT 1", "engine": "pg"},
            "request": {"method": "POST"},
            "level": 30,
            "culprit": "views.checkout",
            "project": "42",
            "repos": {},
        },
        date=date,
        time_spent=12,
    )
    event = memory.events[0]
    assert not any(key.startswith("sentry.interfaces") for key in event)
    # The modern key wins; the legacy dict fills the gaps.
    assert event["request"] == {"url": "http://a/b", "method": "POST"}
    assert event["user"] == {"id": 3}
    assert event["template"] == {"filename": "x.html", "lineno": 1}
    assert event["contexts"]["query"] == {"query": "SELECT 1", "engine": "pg"}
    assert event["level"] == "warning"
    assert event["culprit"] == "views.checkout"
    assert event["timestamp"].startswith("2020-01-02T03:04:05")
    assert event["extra"]["time_spent"] == 12
    assert "project" not in event and "repos" not in event
    assert event["message"] == "legacy"


def test_legacy_message_interface_becomes_logentry() -> None:
    client, memory = make()
    client.capture(
        "raven.events.Message",
        message="ignored %s",
        data={"sentry.interfaces.Message": {"message": "hi %s", "params": ["x"]}},
    )
    event = memory.events[0]
    assert event["logentry"] == {"message": "hi %s", "params": ["x"], "formatted": "hi x"}
    assert "message" not in event  # an alias of logentry on the server: never both


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (10, "debug"),
        (20, "info"),
        (30, "warning"),
        (40, "error"),
        (50, "fatal"),
        ("WARN", "warning"),
        ("critical", "fatal"),
        ("nonsense", "error"),
    ],
)
def test_levels_become_protocol_strings(level: Any, expected: str) -> None:
    client, memory = make()
    client.captureMessage("m", level=level)
    assert memory.events[0]["level"] == expected


def test_build_msg_and_send() -> None:
    client, memory = make()
    data = client.build_msg("raven.events.Message", message="built", extra={"password": "x"})
    assert data["message"] == "built"
    assert data["extra"]["password"] == "********"  # processors ran in build_msg
    assert memory.events == []
    assert client.send(**data) == data["event_id"]
    assert memory.events[0]["message"] == "built"


def test_dummy_client_sends_nothing() -> None:
    memory = MemoryTransport()
    client = DummyClient(transport=memory, install_sys_hook=False)
    assert client.captureMessage("x") is not None
    assert memory.raw == []


# -- sampling --------------------------------------------------------------------------------


def test_sample_rate_zero_returns_an_id_but_sends_nothing() -> None:
    client, memory = make(sample_rate=0.0)
    event_id = client.captureMessage("dropped")
    assert event_id is not None and client.last_event_id == event_id
    assert memory.raw == []
    # A per-call rate wins over the client's.
    assert client.captureMessage("kept", sample_rate=1.0) is not None
    assert [e["message"] for e in memory.events] == ["kept"]


def test_sample_rate_is_seedable() -> None:
    def sent(seed: int) -> list[str]:
        client, memory = make(sample_rate=0.5, _random_seed=seed)
        for i in range(40):
            client.captureMessage(str(i))
        return [e["message"] for e in memory.events]

    first = sent(3)
    assert first == sent(3)
    assert 5 < len(first) < 35


# -- context -----------------------------------------------------------------------------------


def test_context_merge_set_get_clear() -> None:
    client, _ = make()
    ctx = client.context
    ctx.merge({"tags": {"a": 1}, "extra": {"e": 1}, "user": {"id": 1}})
    ctx.merge({"tags": {"b": 2}, "extra": {"e": 2}, "user": {"email": "x"}})
    assert ctx.get() == {"tags": {"a": 1, "b": 2}, "extra": {"e": 2}, "user": {"email": "x"}}
    assert dict(ctx) == ctx.get() and len(ctx) == 3 and ctx["tags"] == {"a": 1, "b": 2}
    client.http_context({"url": "u"})
    client.http_context({"method": "GET"})
    assert ctx["request"] == {"method": "GET"}  # replaced, not merged
    ctx.set({"tags": {"z": 1}})
    assert ctx.get() == {"tags": {"z": 1}}
    ctx.clear()
    assert ctx.get() == {}
    assert ctx in get_active_contexts()  # the client's context is sticky on its thread


def test_context_activation() -> None:
    ctx = Context()
    assert ctx.client is None
    assert ctx not in get_active_contexts()
    with ctx as entered:
        assert entered is ctx
        assert ctx in get_active_contexts()
    assert ctx not in get_active_contexts()
    ctx.merge({"tags": {"x": 1}})
    assert ctx in get_active_contexts()
    ctx.clear()  # not sticky: cleared and deactivated
    assert ctx not in get_active_contexts()
    ctx.merge({"tags": {"x": 1}}, activate=False)
    assert ctx not in get_active_contexts()
    ctx.activate(sticky=True)
    ctx.clear()
    assert ctx in get_active_contexts()
    ctx.clear(deactivate=True)
    assert ctx not in get_active_contexts()


def test_context_is_isolated_between_threads() -> None:
    client, memory = make()
    client.tags_context({"thread": "main"})
    client.user_context({"id": "main-user"})
    client.captureBreadcrumb(message="main crumb")
    seen: dict[str, Any] = {}

    def worker() -> None:
        seen["initial"] = dict(client.context)
        client.tags_context({"thread": "worker"})
        seen["event_id"] = client.captureMessage("from worker")
        seen["last"] = client.last_event_id

    main_id = client.captureMessage("from main")
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()

    assert seen["initial"] == {}
    assert seen["last"] == seen["event_id"] != main_id
    assert client.last_event_id == main_id  # last_event_id is per thread too
    by_message = {e["message"]: e for e in memory.events}
    assert by_message["from main"]["tags"]["thread"] == "main"
    assert by_message["from main"]["user"] == {"id": "main-user"}
    assert crumbs(by_message["from main"]) == ["main crumb"]
    assert by_message["from worker"]["tags"]["thread"] == "worker"
    assert "user" not in by_message["from worker"]
    assert crumbs(by_message["from worker"]) == []


def test_context_data_is_merged_with_specific_data_winning() -> None:
    client, memory = make(tags={"t": "client"}, context={"e": "client"})
    client.tags_context({"t": "context"})
    client.extra_context({"e": "context"})
    client.captureMessage("m", data={"tags": {"t": "data"}, "extra": {"e": "data"}}, tags={"u": 1})
    event = memory.events[0]
    assert event["tags"] == {"t": "data", "u": "1"}  # tag values are strings
    assert event["extra"] == {"e": "data"}  # `context=` replaces the sys.argv default


def test_bad_context_values_are_ignored() -> None:
    client, memory = make()
    client.user_context("not a dict")  # type: ignore[arg-type]
    client.tags_context(5)  # type: ignore[arg-type]
    client.captureMessage("m")
    assert "user" not in memory.events[0]


# -- the global tripwire client ------------------------------------------------------------------


def test_global_tripwire_client_is_untouched() -> None:
    global_memory = MemoryTransport()
    tripwire.init(transport=global_memory)
    global_client = tripwire.get_client()
    tripwire.set_tag("global", "yes")
    tripwire.add_breadcrumb(message="global crumb")

    client, memory = make()
    client.tags_context({"raven": "yes"})
    raven_id = client.captureMessage("via raven")

    assert tripwire.get_client() is global_client
    assert tripwire.last_event_id() is None
    assert global_memory.raw == []
    event = memory.events[0]
    assert event["tags"] == {"raven": "yes"}
    assert crumbs(event) == []
    assert "trace" not in event.get("contexts", {})

    tripwire.capture_message("via tripwire")
    [global_event] = global_memory.events
    assert global_event["tags"] == {"global": "yes"}
    assert global_event["event_id"] != raven_id
    assert len(memory.events) == 1


def test_raven_client_alone_does_not_initialise_tripwire() -> None:
    client, memory = make()
    client.captureMessage("m")
    assert not tripwire.is_initialized()
    assert len(memory.events) == 1


def test_exception_captured_by_both_clients_reaches_both() -> None:
    global_memory = MemoryTransport()
    tripwire.init(transport=global_memory)
    client, memory = make()
    try:
        boom()
    except ZeroDivisionError:
        tripwire.capture_exception()
        client.captureException()
    assert len(global_memory.events) == 1
    assert len(memory.events) == 1


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"sample_rate": "abc"}, ValueError),
        ({"sample_rate": 2}, ValueError),
        ({"sample_rate": True}, TypeError),
        ({"tags": "x"}, TypeError),
        ({"context": ["a"]}, TypeError),
        ({"processors": 5}, TypeError),
        ({"processors": [5]}, TypeError),
        ({"processors": ["no.such.Processor"]}, ImportError),
        ({"ignore_exceptions": [5]}, TypeError),
        ({"string_max_length": -1}, ValueError),
        ({"list_max_length": "many"}, ValueError),
        ({"release": object()}, TypeError),
        ({"auto_log_stacks": "yes"}, TypeError),
        ({"transport": 5}, TypeError),
    ],
)
def test_nonsense_options_fail_clearly(options: dict[str, Any], error: type) -> None:
    options.setdefault("install_sys_hook", False)
    with pytest.raises(error, match=r"option|import|transport"):
        Client(**options)


def test_unknown_and_unneeded_options_are_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="tripwire.errors")
    client, memory = make(frobnicate=1, timeout=3, servers=["http://x"])
    client.captureMessage("still works")
    assert len(memory.events) == 1
    text = caplog.text
    assert "unknown raven option 'frobnicate'" in text
    assert "'timeout' is not needed" in text
    assert "'servers' is no longer supported" in text


def test_option_values_are_exposed_and_mapped() -> None:
    client, memory = make(
        name="web-1",
        release=3,
        string_max_length="20",
        include_paths="myapp",
        capture_locals=False,
    )
    assert client.name == "web-1"
    assert client.release == "3"
    assert client.string_max_length == 20
    assert client.include_paths == {"myapp"}
    try:
        boom()
    except ZeroDivisionError:
        client.captureException(extra={"long": "y" * 100})
    event = memory.events[0]
    assert event["server_name"] == "web-1"
    assert event["release"] == "3"
    assert event["extra"]["long"] == "y" * 20  # cut as raven cut it, no ellipsis
    assert "vars" not in event["exception"]["values"][0]["stacktrace"]["frames"][-1]


def test_string_and_list_max_length_apply_to_user_data_only() -> None:
    client, memory = make(string_max_length=5, list_max_length=3)
    client.captureMessage("m %s", params=("abcdefgh",), extra={"s": "abcdefgh", "l": [1, 2, 3, 4]})
    try:
        raise ValueError("a long exception value")
    except ValueError:
        client.captureException()
    message, error = memory.events
    assert message["logentry"]["params"] == ["abcde"]
    assert message["logentry"]["formatted"] == "m abcdefgh"
    assert message["extra"]["s"] == "abcde"
    assert message["extra"]["l"] == [1, 2, 3]
    assert error["exception"]["values"][0]["value"] == "a long exception value"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_RELEASE", "r1")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    monkeypatch.setenv("SENTRY_NAME", "box")
    client, memory = make()
    client.captureMessage("m")
    event = memory.events[0]
    assert (event["release"], event["environment"], event["server_name"]) == (
        "r1",
        "staging",
        "box",
    )


def test_dsn_handling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    client = Client(install_sys_hook=False)
    assert not client.is_enabled()
    assert client.get_public_dsn() is None
    assert client.captureMessage("nowhere") is None

    client = Client(
        "threaded+https://pub:sec@sentry.example.com/sub/42?timeout=3",
        install_sys_hook=False,
        transport=MemoryTransport(),
    )
    assert client.is_enabled()
    assert client.get_public_dsn() == "//pub@sentry.example.com/sub/42"
    assert client.get_public_dsn("https") == "https://pub@sentry.example.com/sub/42"
    assert client.remote.project == "42" and client.remote.public_key == "pub"
    assert client.remote.secret_key == "sec" and client.remote.is_active()

    monkeypatch.setenv("SENTRY_DSN", "https://envkey@sentry.example.com/7")
    client = Client(dsn="", install_sys_hook=False, transport=MemoryTransport())
    assert client.get_public_dsn() == "//envkey@sentry.example.com/7"

    with pytest.raises(InvalidDsn) as info:
        Client("https://sentry.example.com/42", install_sys_hook=False)
    assert isinstance(info.value, ValueError)


def test_get_module_versions_and_ident() -> None:
    client, _ = make(include_paths=["pytest"])
    versions = client.get_module_versions()
    assert versions["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert versions["pytest"] == pytest.__version__
    assert client.get_ident("abc") == "abc"
    client, memory = make(include_versions=False)
    assert client.get_module_versions() == {}
    client.captureMessage("m")
    assert "modules" not in memory.events[0]


def test_set_dsn_switches_transport() -> None:
    client, first = make()
    second = MemoryTransport()
    client.set_dsn(DSN, transport=second)
    client.captureMessage("m")
    assert first.raw == [] and len(second.events) == 1


# -- sys hook ------------------------------------------------------------------------------------


def test_install_sys_hook_captures_uncaught_as_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    previous: list[Any] = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc_info: previous.append(exc_info))
    memory = MemoryTransport()
    Client(transport=memory)  # install_sys_hook=True by default; the hook keeps the client
    try:
        boom()
    except ZeroDivisionError:
        exc_info = sys.exc_info()
    sys.excepthook(*exc_info)
    assert previous == [exc_info]
    event = memory.events[0]
    assert event["level"] == "fatal"
    assert event["exception"]["values"][0]["mechanism"] == {
        "type": "excepthook",
        "handled": False,
    }


# -- never raising ------------------------------------------------------------------------------


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


def test_broken_processor_drops_the_event_without_raising() -> None:
    class Broken:
        def process(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("processor bug")

    client, memory = make(processors=[Broken()])
    assert client.captureMessage("m") is None
    assert memory.raw == []


def test_broken_transport_never_raises_by_default() -> None:
    def explode(event: dict[str, Any]) -> None:
        raise OSError("network down")

    client = Client(transport=explode, install_sys_hook=False)
    assert client.captureMessage("m") is not None


leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.builds(Unprintable)
    | st.builds(object)
)
odd_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=odd_values,
    data=odd_values,
    extra=odd_values,
    tags=odd_values,
    level=odd_values,
    params=odd_values,
)
def test_capture_never_raises(
    message: Any, data: Any, extra: Any, tags: Any, level: Any, params: Any
) -> None:
    client, memory = make()
    client.extra_context(extra)
    client.captureBreadcrumb(message=message, data=data)
    client.captureMessage(message, data=data, extra=extra, tags=tags, level=level, params=params)
    client.capture("raven.events.Message", message=message, data=data, stack=level)
    client.captureQuery(message, engine=level)
    client.captureException(exc_info=data, extra=extra)
    client.capture("no.such.EventType", message=message)
    for raw in memory.raw:
        assert raw  # whatever went out is a complete envelope


def test_import_is_light() -> None:
    code = (
        "import sys, tripwire.raven; "
        "heavy = [m for m in ('urllib3', 'ssl', 'asyncio') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
