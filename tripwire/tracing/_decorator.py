"""`@trace`: run a function (sync or async) in a child span, and the functions_to_trace option."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from tripwire._late import hooks
from tripwire._log import logger
from tripwire.scope._current import get_current_scope
from tripwire.tracing import _templates
from tripwire.tracing._consts import OP, SPANTEMPLATE

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

    Without an active span (no transaction) the function just runs. Works with
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
            if parent is None:
                logger.debug("no active span: %s runs without a span", span_name)
                return await func(*args, **kw)
            with parent.start_child(op=span_op, name=span_name, scope=scope) as span:
                if data:
                    span.update_data(data)
                return await func(*args, **kw)

        setattr(async_wrapper, _MARK, True)
        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        scope = get_current_scope()
        parent = scope._d.span
        if parent is None:
            logger.debug("no active span: %s runs without a span", span_name)
            return func(*args, **kw)
        with parent.start_child(op=span_op, name=span_name, scope=scope) as span:
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
        span = parent.start_child(op=span_op, name=span_name, scope=scope)
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
            if parent is None:
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
        if parent is None:
            logger.debug("no active span: %s runs without a span", function_name)
            return func(*args, **kw)
        with enter(scope, parent, args, kw) as span:
            result = func(*args, **kw)
            leave(scope, span, result)
            return result

    setattr(wrapper, _MARK, True)
    return wrapper  # type: ignore[return-value]


def setup_functions_to_trace(client: BaseClient) -> None:
    """Wrap each function named in the functions_to_trace option with `@trace`.

    Names are `module.function` or `module.Class.method`; the module is imported.
    Names that cannot be resolved are skipped (logged with debug=True). The
    wrapping is undone by `tripwire.testing.reset()`.
    """
    for item in client.options.get("functions_to_trace") or ():
        qualified = item.get("qualified_name") if isinstance(item, Mapping) else None
        if not isinstance(qualified, str) or "." not in qualified:
            logger.debug("functions_to_trace: bad entry %r skipped", item)
            continue
        try:
            _trace_by_name(qualified)
        except Exception:
            logger.debug("functions_to_trace: cannot trace %r", qualified, exc_info=True)


def _trace_by_name(qualified: str) -> None:
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
    wrapped: Any
    if isinstance(target, staticmethod):
        wrapped = staticmethod(trace(target.__func__, name=qualified))
    elif isinstance(target, classmethod):
        wrapped = classmethod(trace(target.__func__, name=qualified))
    elif callable(target):
        wrapped = trace(target, name=qualified)
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
