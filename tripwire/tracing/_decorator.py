"""`@trace`: run a function (sync or async) in a child span, and the functions_to_trace option.

Under span streaming (``trace_lifecycle="stream"``) `@trace` makes no span, as
sentry_sdk 2.75's, and functions_to_trace wraps with `streamed_trace` (the decorator of
`tripwire.traces.trace`): a traced function called without an active span starts a
segment of its own, as sentry_sdk 2.75 does.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from tripwire._late import hooks
from tripwire._log import logger
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing import _streamed, _templates
from tripwire.tracing._api import start_child
from tripwire.tracing._consts import OP, SPANTEMPLATE
from tripwire.tracing._sampling import has_span_streaming_enabled

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient

F = TypeVar("F", bound=Callable[..., Any])

# Set on wrappers so a function is never traced twice (e.g. init() called again).
_MARK = "__tripwire_traced__"


def qualname_from_function(func: Callable[..., Any]) -> str:
    """`module.Qualified.name` of a function, as span names use it."""
    inner = getattr(func, "__func__", func)
    module = getattr(inner, "__module__", None)
    qualname = getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None)
    if qualname is None:
        return repr(func)
    return f"{module}.{qualname}" if module else str(qualname)


@overload
def trace(
    func: F,
    *,
    op: str | None = None,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    template: Any = SPANTEMPLATE.DEFAULT,
) -> F: ...


@overload
def trace(
    func: None = None,
    *,
    op: str | None = None,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    template: Any = SPANTEMPLATE.DEFAULT,
) -> Callable[[F], F]: ...


def trace(
    func: F | None = None,
    *,
    op: str | None = None,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    template: Any = SPANTEMPLATE.DEFAULT,
) -> F | Callable[[F], F]:
    """Decorator: run the function in a child span of the active span.

    Without an active span (no transaction), or under a streamed one (as sentry_sdk
    2.75's: `tripwire.traces.trace` is span streaming's), the function just runs. Works with
    `@trace` and `@trace(op=..., name=..., attributes=...)`, on sync and async
    functions. The span's op defaults to "function", its name to the function's
    qualified name. An AI `template` (`SPANTEMPLATE.AI_CHAT`, `AI_AGENT`,
    `AI_TOOL`) makes it a ``gen_ai.*`` span named and filled as sentry_sdk's.
    """

    def decorate(f: F) -> F:
        kind = _templates.template_value(template)
        if _templates.is_ai(kind):
            return _wrap_ai(f, kind, op, name, attributes)
        return _wrap(f, op, name, attributes)

    if func is None:
        return decorate
    return decorate(func)


def _wrap(func: F, op: str | None, name: str | None, attributes: Mapping[str, Any] | None) -> F:
    # Lazy: inspect costs ~5 ms to import; paid at the first decoration, not at init().
    import inspect

    span_op = op or OP.FUNCTION
    span_name = name or qualname_from_function(func)
    data = dict(attributes) if attributes else None

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kw: Any) -> Any:
            scope = get_current_scope()
            parent = scope._d.span
            if parent is None or getattr(parent, "_streamed", False):
                logger.debug("no active span: %s runs without a span", span_name)
                return await func(*args, **kw)
            with start_child(parent, scope=scope, op=span_op, name=span_name) as span:
                if data:
                    span.update_data(data)
                return await func(*args, **kw)

        setattr(async_wrapper, _MARK, True)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        scope = get_current_scope()
        parent = scope._d.span
        if parent is None or getattr(parent, "_streamed", False):
            logger.debug("no active span: %s runs without a span", span_name)
            return func(*args, **kw)
        with start_child(parent, scope=scope, op=span_op, name=span_name) as span:
            if data:
                span.update_data(data)
            return func(*args, **kw)

    setattr(wrapper, _MARK, True)
    return wrapper  # type: ignore[return-value]


def _wrap_ai(
    func: F, template: str, op: str | None, name: str | None, attributes: Mapping[str, Any] | None
) -> F:
    """`_wrap` for the AI templates: the span's name and data depend on the call."""
    import inspect  # lazy: see _wrap

    function_name = name or qualname_from_function(func)
    span_op = op or _templates.span_op(template)
    data = dict(attributes) if attributes else None

    def enter(scope: Any, parent: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
        span_name = _templates.span_name(template, function_name, kw)
        span = start_child(parent, scope=scope, op=span_op, name=span_name)
        if data:
            span.update_data(data)
        try:
            options = scope.get_client().options
            span.update_data(
                _templates.input_data(template, function_name, func, args, kw, options)
            )
        except Exception:
            logger.debug("span template input failed", exc_info=True)
        return span

    def leave(scope: Any, span: Any, result: Any) -> None:
        try:
            options = scope.get_client().options
            span.update_data(_templates.output_data(template, result, options))
        except Exception:
            logger.debug("span template output failed", exc_info=True)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kw: Any) -> Any:
            scope = get_current_scope()
            parent = scope._d.span
            if parent is None or getattr(parent, "_streamed", False):
                logger.debug("no active span: %s runs without a span", function_name)
                return await func(*args, **kw)
            with enter(scope, parent, args, kw) as span:
                result = await func(*args, **kw)
                leave(scope, span, result)
                return result

        setattr(async_wrapper, _MARK, True)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        scope = get_current_scope()
        parent = scope._d.span
        if parent is None or getattr(parent, "_streamed", False):
            logger.debug("no active span: %s runs without a span", function_name)
            return func(*args, **kw)
        with enter(scope, parent, args, kw) as span:
            result = func(*args, **kw)
            leave(scope, span, result)
            return result

    setattr(wrapper, _MARK, True)
    return wrapper  # type: ignore[return-value]


def streamed_trace(
    func: F,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    active: bool = True,
    name_of: Callable[[Callable[..., Any]], str | None] = qualname_from_function,
) -> F:
    """Run each call of `func` in a streamed span (`tripwire.traces.trace`).

    The span is a child of the active streamed span, or a segment without one. Its
    name defaults to ``name_of(func)``, its op (``sentry.op``) to "function".
    """
    import inspect  # lazy: see _wrap

    span_attributes = dict(attributes) if attributes else {}
    span_attributes.setdefault("sentry.op", OP.FUNCTION)
    span_name = name or name_of(func) or ""
    start_span = _streamed.start_span

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kw: Any) -> Any:
            _warn_outside_streaming()
            with start_span(name=span_name, attributes=span_attributes, active=active):
                return await func(*args, **kw)

        setattr(async_wrapper, _MARK, True)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        _warn_outside_streaming()
        with start_span(name=span_name, attributes=span_attributes, active=active):
            return func(*args, **kw)

    setattr(wrapper, _MARK, True)
    return wrapper  # type: ignore[return-value]


def _warn_outside_streaming() -> None:
    client = get_client()
    if client.is_active() and not has_span_streaming_enabled(client.options):
        warnings.warn(
            "Using span streaming API in non-span-streaming mode. Use @sentry_sdk.trace instead.",
            stacklevel=3,
        )


def setup_functions_to_trace(client: BaseClient) -> None:
    """Wrap each function named in the functions_to_trace option with `@trace`.

    Names are `module.function` or `module.Class.method`; the module is imported.
    Names that cannot be resolved are skipped (logged with debug=True). The
    wrapping is undone by `tripwire.testing.reset()`. Under span streaming the
    functions get `streamed_trace`, named after the function (as sentry_sdk's are).
    """
    streaming = has_span_streaming_enabled(client.options)
    for item in client.options.get("functions_to_trace") or ():
        qualified = item.get("qualified_name") if isinstance(item, Mapping) else None
        if not isinstance(qualified, str) or "." not in qualified:
            logger.debug("functions_to_trace: bad entry %r skipped", item)
            continue
        try:
            _trace_by_name(qualified, streaming)
        except Exception:
            logger.debug("functions_to_trace: cannot trace %r", qualified, exc_info=True)


def _trace_by_name(qualified: str, streaming: bool = False) -> None:
    import inspect  # lazy: see _wrap

    owner_path, attr = qualified.rsplit(".", 1)
    try:
        owner: Any = importlib.import_module(owner_path)
    except ImportError:
        # `module.Class.method`: import the module, then look the class up.
        module_path, _, class_name = owner_path.rpartition(".")
        if not module_path:
            raise
        owner = getattr(importlib.import_module(module_path), class_name)
    target = inspect.getattr_static(owner, attr)
    inner = getattr(target, "__func__", target)
    if getattr(inner, _MARK, False):
        return
    wrap: Callable[[Any], Any] = streamed_trace if streaming else lambda f: trace(f, name=qualified)
    wrapped: Any
    if isinstance(target, staticmethod):
        wrapped = staticmethod(wrap(target.__func__))
    elif isinstance(target, classmethod):
        wrapped = classmethod(wrap(target.__func__))
    elif callable(target):
        wrapped = wrap(target)
    else:
        logger.debug("functions_to_trace: %r is not a function", qualified)
        return
    setattr(owner, attr, wrapped)

    def undo() -> None:
        # Restore the raw class attribute (a staticmethod stays a staticmethod).
        if inspect.getattr_static(owner, attr, None) is wrapped:
            setattr(owner, attr, target)

    on_undo = hooks.on_undo
    if on_undo is not None:
        on_undo(undo)
