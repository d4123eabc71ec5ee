"""`tripwire.utils` & co. give sentry_sdk 2.75's results for the same inputs.

Each comparison runs the sentry_sdk function and tripwire's on the same input.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk.consts
import sentry_sdk.integrations
import sentry_sdk.serializer
import sentry_sdk.utils

import tripwire
import tripwire.consts
import tripwire.integrations
import tripwire.serializer
import tripwire.tracing_utils
import tripwire.utils
from tripwire.testing import MemoryTransport

S: Any = sentry_sdk.utils  # reference implementation; its stubs export few names
T = tripwire.utils

WILD = Path(__file__).parent / "data" / "sentry_sdk_imports_in_the_wild.txt"
# Modules of sentry_sdk whose tripwire twins this change provides.
OWN_MODULES = {
    "sentry_sdk.utils",
    "sentry_sdk.consts",
    "sentry_sdk.tracing_utils",
    "sentry_sdk.integrations",
    "sentry_sdk.serializer",
    "sentry_sdk.worker",
    "sentry_sdk.crons.utils",
}


def _wild_imports() -> list[tuple[str, str]]:
    pairs = []
    for line in WILD.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            module, name = line.split()
            pairs.append((module, name))
    return pairs


@pytest.mark.parametrize(
    ("module", "name"), [pair for pair in _wild_imports() if pair[0] in OWN_MODULES]
)
def test_names_imported_in_the_wild_exist(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)  # the list is right
    ours = importlib.import_module("tripwire" + module[len("sentry_sdk") :])
    assert hasattr(ours, name)


# --------------------------------------------------------------------------- consts


@pytest.mark.parametrize("name", ["OP", "SPANDATA", "SPANSTATUS", "SPANNAME", "INSTRUMENTER"])
def test_constant_classes_have_sentry_sdks_names_and_values(name: str) -> None:
    def public(cls: type) -> dict[str, Any]:
        return {k: v for k, v in vars(cls).items() if not k.startswith("_")}

    assert public(getattr(tripwire.consts, name)) == public(getattr(sentry_sdk.consts, name))


@pytest.mark.parametrize("name", ["SPANTEMPLATE", "EndpointType", "CompressionAlgo"])
def test_enums_have_sentry_sdks_members(name: str) -> None:
    ours = [(m.name, m.value) for m in getattr(tripwire.consts, name)]
    assert ours == [(m.name, m.value) for m in getattr(sentry_sdk.consts, name)]


def test_spantemplate_prints_as_its_value() -> None:
    assert str(tripwire.consts.SPANTEMPLATE.AI_TOOL) == "ai_tool"
    assert isinstance(tripwire.consts.SPANTEMPLATE.AI_TOOL, str)


def test_one_definition_of_the_span_constants() -> None:
    from tripwire.tracing import _consts

    assert _consts.SPANDATA is tripwire.consts.SPANDATA
    assert _consts.OP is tripwire.consts.OP
    assert tripwire.tracing_utils.OP is tripwire.consts.OP


@pytest.mark.parametrize(
    "name",
    [
        "MATCH_ALL",
        "FALSE_VALUES",
        "DEFAULT_ADD_FULL_STACK",
        "DEFAULT_QUEUE_SIZE",
        "DEFAULT_MAX_BREADCRUMBS",
        "DEFAULT_MAX_STACK_FRAMES",
    ],
)
def test_plain_constants_match(name: str) -> None:
    assert getattr(tripwire.consts, name) == getattr(sentry_sdk.consts, name)


def test_default_options_have_sentry_sdks_keys_and_defaults() -> None:
    ours = tripwire.consts.DEFAULT_OPTIONS
    for key, value in sentry_sdk.consts.DEFAULT_OPTIONS.items():
        assert ours[key] == value, key


# --------------------------------------------------------------------------- utils values


@pytest.mark.parametrize(
    "value", ["yes", "No", "ON", "0", "1", "t", "F", "bad", "", None, True, False, 1, 0]
)
@pytest.mark.parametrize("strict", [True, False])
def test_env_to_bool(value: Any, strict: bool) -> None:
    assert T.env_to_bool(value, strict=strict) == S.env_to_bool(value, strict=strict)


@pytest.mark.parametrize(
    "value", [(None, None, None), (ValueError, None, None), ("a", "b", "c"), (1, 2), "x", 3]
)
def test_exc_info_helpers(value: Any) -> None:
    for name in ("exc_info_from_error", "event_hint_with_exc_info"):
        outcomes = []
        for module in (S, T):
            try:
                outcomes.append(("=", getattr(module, name)(value)))
            except Exception as exc:
                outcomes.append((type(exc).__name__, str(exc)))
        assert outcomes[1] == outcomes[0], name


@pytest.mark.parametrize(
    "value",
    [
        "2020-01-02T03:04:05.123456Z",
        "2020-01-02T03:04:05Z",
        "2020-01-02T03:04:05+02:00",
        "2020-01-02T03:04:05.1+0200",
        "2020-01-02T03:04:05.123-05:30",
    ],
)
def test_datetime_from_isoformat(value: str) -> None:
    assert T.datetime_from_isoformat(value) == S.datetime_from_isoformat(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2020, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
        datetime.datetime(
            2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        datetime.datetime(1999, 12, 31, 23, 59, 59, 999999),
    ],
)
def test_format_timestamp(value: datetime.datetime) -> None:
    assert T.format_timestamp(value) == S.format_timestamp(value)


@pytest.mark.parametrize(
    "version",
    [
        "1.2.3",
        "1.2.3rc1",
        "v1.2",
        "2.0.0-beta.1",
        "1.2.3.4.5",
        "1.2a",
        " 1.2 ",
        "abc",
        "1.2.3 foo",
        "1.2.3-ubuntu",
        "1.0.post2",
        "3.1.dev4",
        "1!2.0",
        "2.0+local.7",
        "",
    ],
)
def test_parse_version(version: str) -> None:
    assert T.parse_version(version) == S.parse_version(version)


def test_package_version() -> None:
    assert T.package_version("pytest") == S.package_version("pytest")
    assert T.package_version("surely-not-installed-xyz") is None


class _Cls:
    def method(self) -> None: ...

    @staticmethod
    def static() -> None: ...

    @classmethod
    def klass(cls) -> None: ...


def _func() -> None: ...


@pytest.mark.parametrize(
    "func",
    [
        _func,
        _Cls.method,
        _Cls().method,
        _Cls.static,
        _Cls.klass,
        print,
        lambda: 1,
        functools.partial(_func),
        42,
    ],
)
def test_qualname_and_transaction_from_function(func: Any) -> None:
    assert T.qualname_from_function(func) == S.qualname_from_function(func)
    assert T.transaction_from_function(func) == S.transaction_from_function(func)


class _Broken:
    def __repr__(self) -> str:
        raise ValueError

    def __str__(self) -> str:
        raise ValueError


@pytest.mark.parametrize("value", ["s", "é", b"x", 3, None, _Broken(), [1, "a"]])
def test_safe_repr_safe_str_to_string(value: Any) -> None:
    assert T.safe_repr(value) == S.safe_repr(value)
    assert T.safe_str(value) == S.safe_str(value)
    if not isinstance(value, _Broken):
        assert T.to_string(value) == S.to_string(value)


@pytest.mark.parametrize(
    ("value", "limit"),
    [("a" * 10, 5), ("abc", 5), ("é" * 10, 5), ("abc", None), ("", 3), ("x" * 100, 50)],
)
def test_strip_string(value: str, limit: int | None) -> None:
    ours, theirs = T.strip_string(value, limit), S.strip_string(value, limit)
    if isinstance(theirs, S.AnnotatedValue):
        assert isinstance(ours, T.AnnotatedValue)
        assert (ours.value, ours.metadata) == (theirs.value, theirs.metadata)
    else:
        assert ours == theirs


@pytest.mark.parametrize(
    "factory",
    [
        "removed_because_raw_data",
        "removed_because_over_size_limit",
        "substituted_because_contains_sensitive_data",
        "substituted_because_raw_data",
        "substituted_because_over_size_limit",
    ],
)
def test_annotated_value_factories(factory: str) -> None:
    ours, theirs = getattr(T.AnnotatedValue, factory)(), getattr(S.AnnotatedValue, factory)()
    assert (ours.value, ours.metadata) == (theirs.value, theirs.metadata)
    assert ours == getattr(T.AnnotatedValue, factory)()


@pytest.mark.parametrize(
    "data",
    [{"a": 1, "b": [1, "x"]}, "text", 5, {"f": _func, "o": _Cls()}, [_Cls.method, None]],
)
def test_safe_serialize(data: Any) -> None:
    assert T.safe_serialize(data) == S.safe_serialize(data)


def test_json_dumps_decodes_to_the_same_data() -> None:
    data = {"a": "é", "b": [1, 2.5, None, True]}
    assert json.loads(T.json_dumps(data)) == json.loads(S.json_dumps(data))


@pytest.mark.parametrize(
    ("item", "patterns", "substring"),
    [
        ("abc", ["b"], False),
        ("abc", ["b"], True),
        ("abc", None, False),
        ("abc", ["a.*"], False),
        ("https://x.io/p", ["x.io"], True),
    ],
)
def test_match_regex_list(item: str, patterns: Any, substring: bool) -> None:
    assert T.match_regex_list(item, patterns, substring) == S.match_regex_list(
        item, patterns, substring
    )


@pytest.mark.parametrize("rate", [0.5, 0, 1, 2, -1, True, "0.5", float("nan"), None])
def test_is_valid_sample_rate(rate: Any) -> None:
    assert T.is_valid_sample_rate(rate, "x") == S.is_valid_sample_rate(rate, "x")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@ex.com/p?q=1&token=abc#frag",
        "https://ex.com/p",
        "/rel?x=1",
        "http://ex.com:8080/a/b?x=&y=2",
    ],
)
def test_urls(url: str) -> None:
    assert T.sanitize_url(url) == S.sanitize_url(url)
    assert tuple(T.sanitize_url(url, split=True)) == tuple(S.sanitize_url(url, split=True))
    assert T.sanitize_url(url, remove_authority=False, remove_query_values=False) == (
        S.sanitize_url(url, remove_authority=False, remove_query_values=False)
    )
    assert tuple(T.parse_url(url)) == tuple(S.parse_url(url))
    assert tuple(T.parse_url(url, sanitize=False)) == tuple(S.parse_url(url, sanitize=False))


def test_type_names_and_errors() -> None:
    for cls in (ValueError, _Cls, None):
        assert T.get_type_name(cls) == S.get_type_name(cls)
    assert T.get_type_module(ValueError) is None
    assert T.get_type_module(_Cls) == __name__
    error = OSError(2, "not found")
    assert T.get_errno(error) == S.get_errno(error) == 2
    assert T.get_error_message(error) == S.get_error_message(error)

    class WithMessage(Exception):
        message = "from attribute"

    for exc in (ValueError("x"), WithMessage(), WithMessage("arg"), None):
        assert T.get_error_message(exc) == S.get_error_message(exc)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are 3.11+")
def test_error_message_includes_notes() -> None:
    error = ValueError("x")
    error.add_note("first")  # type: ignore[attr-defined]
    error.add_note("second")  # type: ignore[attr-defined]
    assert T.get_error_message(error) == S.get_error_message(error) == "x\nfirst\nsecond"


def test_get_sdk_name_picks_the_framework() -> None:
    assert T.get_sdk_name(["django", "flask"]) == "tripwire.python.django"
    assert T.get_sdk_name(["asgi", "fastapi"]) == "tripwire.python.fastapi"
    assert T.get_sdk_name([]) == "tripwire.python"


def test_release_and_revision_from_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).parent.parent)
    assert T.get_git_revision() == S.get_git_revision()
    monkeypatch.setenv("SENTRY_RELEASE", "my-release")
    assert T.get_default_release() == S.get_default_release() == "my-release"


def test_env_value_sets() -> None:
    assert T.TRUTHY_ENV_VALUES == S.TRUTHY_ENV_VALUES
    assert T.FALSY_ENV_VALUES == S.FALSY_ENV_VALUES
    assert T.SENSITIVE_DATA_SUBSTITUTE == S.SENSITIVE_DATA_SUBSTITUTE
    assert T.MAX_STACK_FRAMES == S.MAX_STACK_FRAMES


# --------------------------------------------------------------------------- DSN


@pytest.mark.parametrize(
    "dsn",
    [
        "https://key@o12.ingest.sentry.io/1",
        "http://k:s@host:9000/sub/path/42",
        "https://key@HOST/1",
    ],
)
def test_dsn_from_a_string(dsn: str) -> None:
    ours, theirs = T.Dsn(dsn), S.Dsn(dsn)
    for attr in (
        "scheme",
        "host",
        "port",
        "public_key",
        "secret_key",
        "project_id",
        "org_id",
        "netloc",
    ):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    auth, their_auth = ours.to_auth("x/1"), theirs.to_auth("x/1")
    assert auth.get_api_url() == their_auth.get_api_url()
    assert auth.to_header() == their_auth.to_header()
    assert auth.get_api_url(T.EndpointType.OTLP_TRACES) == their_auth.get_api_url(
        S.EndpointType.OTLP_TRACES
    )


def test_dsn_org_id_and_errors() -> None:
    assert T.Dsn("https://k@h/1", org_id="5").org_id == S.Dsn("https://k@h/1", org_id="5").org_id
    assert str(T.Dsn("https://k@h/1")) == str(S.Dsn("https://k@h/1"))
    with pytest.raises(T.BadDsn):
        T.Dsn("foo")


# --------------------------------------------------------------------------- events


def _raise_chain() -> None:
    try:
        raise ValueError("inner")
    except ValueError as exc:
        raise KeyError("outer") from exc


def _exc_info() -> Any:
    try:
        _raise_chain()
    except KeyError:
        return sys.exc_info()


def _shape(values: list[dict[str, Any]]) -> list[Any]:
    return [
        (
            v["type"],
            v["value"],
            v["module"],
            v["mechanism"],
            [(f["function"], f["lineno"], f["context_line"]) for f in v["stacktrace"]["frames"]],
        )
        for v in values
    ]


def test_exceptions_from_error_tuple() -> None:
    info = _exc_info()
    options = {**tripwire.consts.DEFAULT_OPTIONS, "include_local_variables": False}
    assert _shape(T.exceptions_from_error_tuple(info, options)) == _shape(
        S.exceptions_from_error_tuple(info, options)
    )
    assert [i[0] for i in T.walk_exception_chain(info)] == [
        i[0] for i in S.walk_exception_chain(info)
    ]


def test_event_from_exception_without_a_client() -> None:
    info = _exc_info()
    event, hint = T.event_from_exception(info)
    their_event, their_hint = S.event_from_exception(info)
    assert hint == their_hint
    assert event["level"] == their_event["level"] == "error"
    assert _shape(event["exception"]["values"]) == _shape(their_event["exception"]["values"])


def test_event_from_exception_captured_with_capture_event(transport: MemoryTransport) -> None:
    event, hint = T.event_from_exception(_exc_info())
    tripwire.capture_event(event, hint=hint)
    tripwire.flush()
    (sent,) = transport.events
    assert [v["type"] for v in sent["exception"]["values"]] == ["ValueError", "KeyError"]


def test_exc_info_from_error() -> None:
    info = _exc_info()
    assert T.exc_info_from_error(info[1]) == S.exc_info_from_error(info[1])
    with pytest.raises(ValueError):
        T.exc_info_from_error("nope")  # type: ignore[arg-type]


def test_in_app_helpers() -> None:
    def event() -> Any:
        return {
            "exception": {
                "values": [
                    {
                        "stacktrace": {
                            "frames": [
                                {"module": "app.views", "abs_path": "/srv/app/views.py"},
                                {"module": "lib", "abs_path": "/venv/site-packages/lib.py"},
                                {"module": "other", "abs_path": "/srv/app/other.py"},
                                {"module": "mine", "in_app": False},
                            ]
                        }
                    }
                ]
            },
            "threads": {"values": [{"stacktrace": {"frames": [{"module": "app"}]}}]},
        }

    ours = T.handle_in_app(event(), ["other"], ["app"], "/srv")
    theirs = S.handle_in_app(event(), ["other"], ["app"], "/srv")
    assert ours == theirs
    assert list(T.iter_event_frames(ours)) == list(S.iter_event_frames(theirs))


def test_frame_helpers() -> None:
    frame = sys._getframe()
    line = frame.f_lineno
    ours = T.serialize_frame(frame, line, include_local_variables=False)
    theirs = S.serialize_frame(frame, line, include_local_variables=False)
    assert ours == theirs
    assert T.get_source_context(frame, line) == S.get_source_context(frame, line)
    assert T.filename_for_module(__name__, __file__) == S.filename_for_module(__name__, __file__)
    assert T.should_hide_frame(frame) is S.should_hide_frame(frame) is False

    def hidden() -> bool:
        __tracebackhide__ = True
        return T.should_hide_frame(sys._getframe())

    assert hidden()


def test_current_stacktrace_ends_at_the_caller() -> None:
    frames = T.current_stacktrace(include_local_variables=False)["frames"]
    assert frames[-1]["function"] == "test_current_stacktrace_ends_at_the_caller"


def test_capture_internal_exceptions_swallows() -> None:
    with T.capture_internal_exceptions():
        raise RuntimeError("swallowed")


def test_reraise_keeps_the_traceback() -> None:
    info = _exc_info()
    with pytest.raises(KeyError) as caught:
        T.reraise(*info)
    assert caught.value.__traceback__ is not None


def test_ensure_integration_enabled(init_memory: Any) -> None:
    from tripwire.integrations.dedupe import DedupeIntegration

    def original() -> str:
        return "original"

    @T.ensure_integration_enabled(DedupeIntegration, original)
    def patched() -> str:
        return "patched"

    @T.ensure_integration_enabled(DedupeIntegration)
    def no_original() -> str:
        return "patched"

    assert patched.__name__ == "original"
    assert patched() == "original"  # no client yet
    assert no_original() is None
    init_memory()
    assert patched() == "patched"
    assert no_original() == "patched"


def test_is_sentry_url(init_memory: Any) -> None:
    init_memory(dsn="https://k@ingest.example.com/1")
    client = tripwire.get_client()
    assert T.is_sentry_url(client, "https://ingest.example.com/api/1/envelope/")
    assert not T.is_sentry_url(client, "https://example.org/")


# --------------------------------------------------------------------------- serializer


def test_serialize_matches_sentry_sdk() -> None:
    event = {
        "extra": {
            "a": "x" * 20,
            "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
            "l": list(range(20)),
        },
        "message": "hi",
        "request": {"data": {"k": list(range(15))}},
    }
    assert tripwire.serializer.serialize(event, max_value_length=10) == (
        sentry_sdk.serializer.serialize(event, max_value_length=10)
    )
    frame_vars = {"x": 1, "s": "str", "l": [1, "a"], "o": object}
    assert tripwire.serializer.serialize(frame_vars, is_vars=True) == (
        sentry_sdk.serializer.serialize(frame_vars, is_vars=True)
    )


class _Secretive:
    pass


def _repr_processor(value: Any, hint: dict[str, Any]) -> Any:
    if isinstance(value, _Secretive):
        return "<secretive>"
    return NotImplemented


@pytest.fixture
def repr_processor() -> Any:
    tripwire.serializer.add_global_repr_processor(_repr_processor)
    yield _repr_processor
    tripwire.serializer.global_repr_processors.remove(_repr_processor)


def test_global_repr_processor_renders_extra_and_frame_vars(
    transport: MemoryTransport, repr_processor: Any
) -> None:
    tripwire.set_extra("thing", {"inner": _Secretive()})
    secretive = _Secretive()
    try:
        raise ValueError(repr(id(secretive)))
    except ValueError:
        tripwire.capture_exception()
    tripwire.flush()
    (event,) = transport.events
    assert event["extra"]["thing"] == {"inner": "<secretive>"}
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["vars"]["secretive"] == "<secretive>"


def test_global_repr_processor_in_serialize(repr_processor: Any) -> None:
    result = tripwire.serializer.serialize({"extra": {"s": _Secretive(), "n": 1}})
    assert result["extra"] == {"s": "<secretive>", "n": 1}


def test_serializer_module_names() -> None:
    for name in ("MAX_DATABAG_DEPTH", "MAX_DATABAG_BREADTH", "MAX_EVENT_BYTES", "CYCLE_MARKER"):
        assert getattr(tripwire.serializer, name) == getattr(sentry_sdk.serializer, name)
    memo = tripwire.serializer.Memo()
    item: list[Any] = []
    with memo.memoize(item) as seen:
        assert seen is False
        with memo.memoize(item) as again:
            assert again is True


# --------------------------------------------------------------------------- integrations


def test_default_and_auto_enabling_integration_lists() -> None:
    def ours(paths: list[str]) -> list[str]:
        return [p.replace("tripwire.", "sentry_sdk.", 1) for p in paths]

    assert ours(tripwire.integrations._DEFAULT_INTEGRATIONS) == (
        sentry_sdk.integrations._DEFAULT_INTEGRATIONS
    )
    assert ours(tripwire.integrations._AUTO_ENABLING_INTEGRATIONS) == (
        sentry_sdk.integrations._AUTO_ENABLING_INTEGRATIONS
    )
    defaults = list(tripwire.integrations.iter_default_integrations(False))
    assert [cls.identifier for cls in defaults] == [
        "argv",
        "atexit",
        "dedupe",
        "excepthook",
        "logging",
        "modules",
        "stdlib",
        "threading",
    ]
    # Integrations tripwire does not ship are skipped, not errors.
    assert len(list(tripwire.integrations.iter_default_integrations(True))) >= len(defaults)


class _Failing(tripwire.integrations.Integration):
    identifier = "failing_for_test"

    @staticmethod
    def setup_once() -> None:
        raise tripwire.integrations.DidNotEnable("package missing")


class _Counting(tripwire.integrations.Integration):
    identifier = "counting_for_test"
    calls = 0
    options_seen: list[Any] = []

    @staticmethod
    def setup_once() -> None:
        _Counting.calls += 1

    def setup_once_with_options(self, options: dict[str, Any] | None = None) -> None:
        _Counting.options_seen.append(options)


def test_setup_integrations_semantics() -> None:
    setup = tripwire.integrations.setup_integrations
    with pytest.raises(tripwire.integrations.DidNotEnable):
        setup([_Failing()], with_defaults=False)
    _Counting.calls = 0
    _Counting.options_seen = []
    first = setup([_Counting()], with_defaults=False, options={"x": 1})
    second = setup([_Counting()], with_defaults=False)
    assert list(first) == list(second) == ["counting_for_test"]
    assert _Counting.calls == 1  # once per process
    assert _Counting.options_seen == [{"x": 1}]
    assert "counting_for_test" in tripwire.integrations._installed_integrations
    with_defaults = setup([], with_defaults=True, disabled_integrations=[_Counting])
    assert "dedupe" in with_defaults and "counting_for_test" not in with_defaults


def test_check_minimum_version() -> None:
    class Flask(tripwire.integrations.Integration):
        identifier = "flask"

    check = tripwire.integrations._check_minimum_version
    check(Flask, (2, 0))
    check(Flask, (1, 1, 4))
    with pytest.raises(tripwire.integrations.DidNotEnable, match=r"1\.1\.4 or newer"):
        check(Flask, (1, 1, 3))
    with pytest.raises(tripwire.integrations.DidNotEnable, match="Unparsable"):
        check(Flask, None)


# --------------------------------------------------------------------------- small modules


def test_background_worker_runs_jobs_in_order() -> None:
    from tripwire.worker import BackgroundWorker

    worker = BackgroundWorker(queue_size=10)
    done: list[int] = []
    assert not worker.is_alive
    for i in range(5):
        assert worker.submit(functools.partial(done.append, i))
    worker.submit(lambda: 1 / 0)  # logged, the worker goes on
    worker.submit(functools.partial(done.append, 5))
    pending: list[Any] = []
    worker.flush(2.0, lambda n, timeout: pending.append(n))
    assert done == [0, 1, 2, 3, 4, 5]
    thread = worker._thread
    assert thread is not None
    worker.kill()
    thread.join(2.0)
    assert not thread.is_alive()


def test_background_worker_refuses_when_full() -> None:
    from tripwire.worker import BackgroundWorker

    worker = BackgroundWorker(queue_size=1)
    gate = threading.Event()
    assert worker.submit(gate.wait)
    results = [worker.submit(lambda: None) for _ in range(3)]
    assert False in results
    gate.set()
    worker.flush(2.0)
    thread = worker._thread
    worker.kill()
    assert thread is not None
    thread.join(2.0)


def test_data_collection_and_debug_modules() -> None:
    data_collection: Any = importlib.import_module("sentry_sdk.data_collection")

    import tripwire.data_collection
    import tripwire.debug

    assert tripwire.data_collection.SENSITIVE_DATA_SUBSTITUTE == (
        data_collection.SENSITIVE_DATA_SUBSTITUTE
    )
    with pytest.warns(DeprecationWarning):
        tripwire.debug.configure_debug_hub()


def test_debug_logger_prints_only_with_debug_on(
    init_memory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    import tripwire.debug
    from tripwire._log import LOGGER_NAME

    real = logging.getLogger(LOGGER_NAME)
    handlers, filters, level = list(real.handlers), list(real.filters), real.level
    try:
        tripwire.debug.configure_logger()
        init_memory()
        real.warning("quiet please")
        init_memory(debug=True)
        capsys.readouterr()
        real.warning("loud now")
        err = capsys.readouterr().err
        assert "loud now" in err
        assert "quiet please" not in err
    finally:
        real.handlers[:] = handlers
        real.filters[:] = filters
        real.setLevel(level)


def test_tracing_utils_record_sql_queries(init_memory: Any) -> None:
    memory = init_memory(traces_sample_rate=1.0, _experiments={"record_sql_params": True})
    with tripwire.start_transaction(name="tx"):
        with tripwire.tracing_utils.record_sql_queries(
            None, "SELECT %s", [1], "pyformat", False
        ) as span:
            span.set_data("rows", 1)
    tripwire.flush()
    (tx,) = (
        memory.transactions
        if hasattr(memory, "transactions")
        else [e for e in memory.events if e.get("type") == "transaction"]
    )
    (db_span,) = tx["spans"]
    assert db_span["op"] == "db"
    assert db_span["description"] == "SELECT %s"
    assert db_span["data"]["db.params"] == [1]
    assert db_span["data"]["db.paramstyle"] == "format"
    tripwire.capture_message("after")
    tripwire.flush()
    (message,) = [e for e in memory.events if e.get("type") != "transaction"]
    assert message["breadcrumbs"]["values"][-1]["category"] == "query"


def test_tracing_utils_http_breadcrumb(transport: MemoryTransport) -> None:
    tripwire.tracing_utils.add_http_breadcrumb(503, {"url": "https://x"})
    tripwire.capture_message("m")
    tripwire.flush()
    (crumb,) = transport.events[0]["breadcrumbs"]["values"]
    assert (crumb["category"], crumb["type"], crumb["level"]) == ("httplib", "http", "error")


def test_get_url_attributes_need_pii(init_memory: Any) -> None:
    parsed = T.parse_url("https://ex.com/p?q=1#f", sanitize=False)
    init_memory()
    assert tripwire.tracing_utils.get_url_attributes(tripwire.get_client(), parsed) == {}
    init_memory(send_default_pii=True)
    assert tripwire.tracing_utils.get_url_attributes(tripwire.get_client(), parsed) == {
        "url.query": "q=1",
        "url.fragment": "f",
        "url.full": "https://ex.com/p?q=1#f",
    }
