"""Strawberry integration: a schema extension for spans, errors from the HTTP views.

As sentry_sdk 2.75's ``strawberry`` integration:

- every `strawberry.Schema` made while the integration is active gets an extension,
  the async one or the sync one (``async_execution``; without it, guessed from a
  Sentry tracing extension in the schema's list, else sync with a warning), put first;
  Strawberry's own Sentry extensions are taken out;
- the extension makes a span per operation (``graphql.query`` / ``graphql.mutation``
  / ``graphql.subscription``, named ``"<type> <operation name>"``, data
  ``graphql.operation.type``, ``graphql.operation.name``, ``graphql.resource_name``:
  ``"<name>:<md5 of the query>"``, and ``graphql.document`` when it may be collected),
  with ``graphql.parse`` and ``graphql.validate`` spans and a ``graphql.resolve`` span
  per resolver that is not a default one (data field name, parent type, field path,
  path); a named operation renames the transaction (source ``component``, op the
  operation's); a breadcrumb (category ``graphql.operation``) records each operation;
- events of an operation carry ``request.api_target`` and ``request.data`` (query,
  variables, operationName) under the collection rules;
- the HTTP views' `_handle_errors` turn each error into an event (mechanism
  ``strawberry``, handled false), with the response body as ``contexts.response``
  when response bodies may be collected.

Spans have origin ``auto.graphql.strawberry``. Under span streaming, as sentry_sdk's
streamed spans: no ``graphql.resource_name``, ``graphql.operation.name`` only for a
named operation, resolve spans without the field data, and a named operation renames
the segment and sets its ``sentry.op``.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Iterator
from inspect import isawaitable
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.api import add_breadcrumb
from tripwire.consts import OP
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common import graphql as gql_rules
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.integrations.logging import ignore_logger
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope
from tripwire.tracing import TransactionSource
from tripwire.tracing._api import sdk_start_span
from tripwire.tracing._streamed import NoOpStreamedSpan
from tripwire.utils import capture_internal_exceptions

ORIGIN = "auto.graphql.strawberry"
_MARK = "__tripwire_strawberry__"

# (async extension, sync extension), built once strawberry is imported.
_extensions: Optional[tuple[type, type]] = None
# Strawberry's own Sentry extensions (older versions): replaced by ours.
_THEIRS = {"SentryTracingExtension": True, "SentryTracingExtensionSync": False}


class StrawberryIntegration(Integration):
    """Spans and errors for Strawberry schemas and views.

    Args:
        async_execution: Whether schemas run async (None: guess).

    Raises:
        ValueError: `async_execution` is not None or a bool.
    """

    identifier = "strawberry"
    origin = ORIGIN

    def __init__(self, async_execution: Optional[bool] = None) -> None:
        if async_execution not in (None, False, True):
            raise ValueError(
                f'Invalid value for async_execution: "{async_execution}" (must be bool)'
            )
        self.async_execution = async_execution

    @staticmethod
    def setup_once() -> None:
        """Patch `Schema.__init__` and the HTTP views' error handling.

        Raises:
            DidNotEnable: strawberry-graphql is missing or older than 0.209.5.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("strawberry") is None:
            raise DidNotEnable("strawberry-graphql is not installed")
        _check_minimum_version(
            StrawberryIntegration, package_version("strawberry-graphql"), "strawberry-graphql"
        )
        ignore_logger("strawberry.execution")
        when_imported("strawberry.schema.schema", _patch_schema)
        when_imported("strawberry.http.async_base_view", _patch_async_view)
        when_imported("strawberry.http.sync_base_view", _patch_sync_view)


def _patch_schema(module: ModuleType) -> None:
    patch_once(module.Schema, "__init__", _wrap_schema_init, _MARK)


def _patch_async_view(module: ModuleType) -> None:
    patch_once(module.AsyncBaseHTTPView, "_handle_errors", _wrap_errors, _MARK)


def _patch_sync_view(module: ModuleType) -> None:
    patch_once(module.SyncBaseHTTPView, "_handle_errors", _wrap_errors, _MARK)


def __getattr__(name: str) -> Any:
    """sentry_sdk's module names its two extension classes; made here on first use."""
    global _extensions
    if name in ("SentryAsyncExtension", "SentrySyncExtension"):
        if _extensions is None:
            _extensions = _build_extensions()
        return _extensions[0] if name == "SentryAsyncExtension" else _extensions[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- schema ---------------------------------------------------------------------------------


def _theirs(extension: Any) -> Optional[bool]:
    """Whether `extension` is Strawberry's async (True) or sync (False) Sentry extension.

    Recognised by name, so that looking does not import Strawberry's tracing package.
    """
    module = getattr(extension, "__module__", "") or ""
    if not module.startswith("strawberry.extensions.tracing"):
        return None
    return _THEIRS.get(getattr(extension, "__name__", ""))


def _guess_async(extensions: list[Any]) -> Optional[bool]:
    kinds = [_theirs(extension) for extension in extensions]
    if True in kinds:
        return True
    if False in kinds:
        return False
    return None


def _wrap_schema_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _extensions
        integration = get_client().get_integration(StrawberryIntegration)
        if integration is None:
            return original(self, *args, **kwargs)
        if _extensions is None:
            # Built at the first schema, when Strawberry is fully imported.
            _extensions = _build_extensions()
        extensions = list(kwargs.get("extensions") or [])
        use_async = integration.async_execution
        if use_async is None:
            use_async = _guess_async(extensions)
        if use_async is None:
            warnings.warn(
                "Assuming strawberry is running sync. If not, initialize the integration "
                "as StrawberryIntegration(async_execution=True).",
                stacklevel=2,
            )
            use_async = False
        ours = _extensions[0] if use_async else _extensions[1]
        kept = [ext for ext in extensions if _theirs(ext) is None]
        kwargs["extensions"] = [ours, *kept]
        return original(self, *args, **kwargs)

    return __init__


def _build_extensions() -> tuple[type, type]:
    """The two extension classes (they subclass Strawberry's, so made after its import)."""
    from strawberry.extensions import SchemaExtension
    from strawberry.extensions.tracing.utils import should_skip_tracing

    class SentryAsyncExtension(SchemaExtension):
        def __init__(self, *, execution_context: Any = None) -> None:
            if execution_context:
                self.execution_context = execution_context

        @functools.cached_property
        def _resource_name(self) -> str:
            context = self.execution_context
            digest = hashlib.md5((context.query or "").encode("utf-8"), usedforsecurity=False)
            if context.operation_name:
                return f"{context.operation_name}:{digest.hexdigest()}"
            return digest.hexdigest()

        def on_operation(self) -> Iterator[None]:
            context = self.execution_context
            if context.query is None:
                context.query = ""
            name = context.operation_name
            kind, op = gql_rules.operation_kind(context.query)
            add_breadcrumb(
                category="graphql.operation",
                data={"operation_name": name, "operation_type": kind},
            )
            get_isolation_scope().add_event_processor(_request_processor(context))
            document = gql_rules.collect_document(get_client().options)
            given: dict[str, Any] = {"graphql.operation.type": kind}
            if document:
                given["graphql.document"] = context.query
            if name:
                given["graphql.operation.name"] = name
            # A streamed span starts with them, as sentry_sdk's (`ignore_spans` sees
            # them); the span has no resource name there.
            span = sdk_start_span(
                op=op,
                name=f"{kind} {name}" if name else kind,
                origin=ORIGIN,
                **child_start(given),
            )
            span.__enter__()
            stream = streamed(span)
            with capture_internal_exceptions():
                if stream is None:
                    if document:
                        span.set_data("graphql.document", context.query)
                    span.set_data("graphql.operation.type", kind)
                    span.set_data("graphql.operation.name", name)
                    span.set_data("graphql.resource_name", self._resource_name)
            yield
            with capture_internal_exceptions():
                if stream is not None:
                    # An ignored (or unsampled) operation span leaves its segment alone,
                    # as sentry_sdk's.
                    if context.operation_name and not isinstance(stream, NoOpStreamedSpan):
                        segment = stream.containing_transaction
                        segment.set_attribute("sentry.segment.name.source", "component")
                        segment.set_attribute("sentry.op", op)
                        segment.name = context.operation_name
                    span.__exit__(None, None, None)
                    return
                transaction = span.containing_transaction
                if transaction is not None and context.operation_name:
                    # The scope's name too: the operation's error events carry it (the
                    # web framework's route name otherwise), as sentry_sdk's.
                    get_current_scope().set_transaction_name(
                        context.operation_name, TransactionSource.COMPONENT
                    )
                    transaction.name = context.operation_name
                    transaction.source = TransactionSource.COMPONENT
                    transaction.op = op
            span.__exit__(None, None, None)

        def on_validate(self) -> Iterator[None]:
            with _step(OP.GRAPHQL_VALIDATE, "validation"):
                yield

        def on_parse(self) -> Iterator[None]:
            with _step(OP.GRAPHQL_PARSE, "parsing"):
                yield

        async def resolve(
            self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
        ) -> Any:
            if should_skip_tracing(_next, info):
                result = _next(root, info, *args, **kwargs)
                return (await result) if isawaitable(result) else result
            with _resolve_span(info):
                result = _next(root, info, *args, **kwargs)
                return (await result) if isawaitable(result) else result

    class SentrySyncExtension(SentryAsyncExtension):
        def resolve(
            self, _next: Callable[..., Any], root: Any, info: Any, *args: Any, **kwargs: Any
        ) -> Any:
            if should_skip_tracing(_next, info):
                return _next(root, info, *args, **kwargs)
            with _resolve_span(info):
                return _next(root, info, *args, **kwargs)

    for cls in (SentryAsyncExtension, SentrySyncExtension):
        cls.__qualname__ = cls.__name__  # as if defined at the module's top level
    return SentryAsyncExtension, SentrySyncExtension


class _step:
    """A parse or validate span, finished even when the step raises."""

    def __init__(self, op: str, name: str) -> None:
        self.span = sdk_start_span(op=op, name=name, origin=ORIGIN)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.span.finish()


class _resolve_span:
    """The ``graphql.resolve`` span of one resolver call."""

    def __init__(self, info: Any) -> None:
        field_path = f"{info.parent_type}.{info.field_name}"
        self.span = sdk_start_span(
            op=OP.GRAPHQL_RESOLVE, name=f"resolving {field_path}", origin=ORIGIN
        )
        if streamed(self.span) is not None:
            return  # sentry_sdk's streamed resolve spans carry no field attributes
        with capture_internal_exceptions():
            self.span.set_data("graphql.field_name", info.field_name)
            self.span.set_data("graphql.parent_type", info.parent_type.name)
            self.span.set_data("graphql.field_path", field_path)
            self.span.set_data("graphql.path", ".".join(map(str, info.path.as_list())))

    def __enter__(self) -> None:
        self.span.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.span.__exit__(*exc)


def _request_processor(context: Any) -> Callable[[Any, Any], Any]:
    def processor(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        with capture_internal_exceptions():
            options = get_client().options
            document = gql_rules.collect_document(options)
            variables = gql_rules.collect_variables(options)
            if not gql_rules.uses_data_collection(options) and not document:
                request = event.get("request")
                if isinstance(request, dict):
                    request.pop("data", None)
                return event
            request = event.setdefault("request", {})
            if document:
                request["api_target"] = "graphql"
            if not request.get("data"):
                data: dict[str, Any] = {"query": context.query} if document else {}
                if variables and context.variables:
                    data["variables"] = context.variables
                if context.operation_name:
                    data["operationName"] = context.operation_name
                request["data"] = data
        return event

    return processor


# -- views ----------------------------------------------------------------------------------


def _wrap_errors(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _handle_errors(self: Any, errors: Any, response_data: Any) -> Any:
        result = original(self, errors, response_data)
        if errors and get_client().get_integration(StrawberryIntegration) is not None:
            with capture_internal_exceptions():
                get_isolation_scope().add_event_processor(_response_processor(response_data))
            gql_rules.capture_errors(errors, StrawberryIntegration.identifier)
        return result

    return _handle_errors


def _response_processor(response_data: Any) -> Callable[[Any, Any], Any]:
    def processor(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        with capture_internal_exceptions():
            if gql_rules.collect_response(get_client().options):
                event.setdefault("contexts", {})["response"] = {"data": response_data}
        return event

    return processor
