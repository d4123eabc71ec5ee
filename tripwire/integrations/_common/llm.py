"""What the LLM client integrations share: their setup, the call context, the wrappers.

- `LLMIntegration`: an integration with sentry_sdk's ``include_prompts`` option;
  `enable` checks its package (installed, recent enough) and patches the library
  when the application imports it.
- `LLMCall`: one model call, from its span's start to its end: the client, the
  integration, the span and the user's `DataRules`; a failure of the library is an
  event (mechanism: the integration's identifier, unhandled) and ends the span.
- `start_llm_span`: a model call's span, with the attributes sentry_sdk gives at its
  start when it is streamed; `start_run_span`: an AI framework's run's (a segment
  only under streaming);
- `started`: a call context after its ``begin(kwargs)``, or None when that failed
  before the span started (the call is then left alone).
- `wrap_call` (`call_wrapper`: the same for `patch_once`): a library method wrapped
  around a call context, sync or async: the integration's `start` makes the context
  (None: the call is left alone), `done` records the answer and returns what the
  caller gets; they are shared by both flavours, which differ only by the ``await``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, TypeVar

from tripwire.ai.data_rules import DataRules
from tripwire.ai.utils import annotate_truncated_messages, sdk_start_span_function
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start, segment_start
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._global_processors import global_event_processors
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction

if TYPE_CHECKING:
    from types import ModuleType

    from tripwire.types import ExcInfo


class LLMIntegration(Integration):
    """An LLM client integration; prompts and answers are sent only if `include_prompts`."""

    include_prompts = True

    def __init__(self, include_prompts: bool = True) -> None:
        """Args:
        include_prompts: Send prompts and answers (with ``send_default_pii``).
        """
        self.include_prompts = include_prompts


def enable(
    integration: type[Integration],
    module: str,
    patch: Callable[[ModuleType], None],
    *,
    package: str,
    distribution: Optional[str] = None,
    missing: str,
    truncation: bool = False,
) -> None:
    """`integration`'s setup: `patch(module)` once `module` is imported.

    `truncation`: its spans may carry cut messages, whose original length an SDK event
    processor adds.

    Raises:
        DidNotEnable: `package` is not installed (`missing` says so), or its
            `distribution` (default: `package`) is older than the integration's minimum.
    """
    import importlib.util

    from tripwire.utils import package_version

    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is not there
        found = False
    if not found:
        raise DidNotEnable(missing)
    if distribution is None:
        _check_minimum_version(integration, package_version(package))
    else:
        _check_minimum_version(integration, package_version(distribution), distribution)
    when_imported(module, patch)
    if truncation and annotate_truncated_messages not in global_event_processors:
        add_internal_processor(annotate_truncated_messages)


class LLMCall:
    """One model call: the client, its integration, the span and what it may carry."""

    __slots__ = ("client", "integration", "rules", "span")

    def __init__(self, client: Any, integration: Any) -> None:
        self.client = client
        self.integration = integration
        self.rules = DataRules(client.options, integration.include_prompts)
        self.span: Any = None

    def failed(self, exc_info: ExcInfo) -> None:
        """The library raised: an event, and the span ends with the exception."""
        capture_unhandled(self.client, exc_info, self.integration.identifier)
        self.span.__exit__(*exc_info)

    def end(self, exc_info: Optional[ExcInfo] = None) -> None:
        """End the span (with `exc_info`, if the call failed)."""
        self.span.__exit__(*(exc_info or (None, None, None)))


class _Begins(Protocol):
    span: Any

    def begin(self, kwargs: dict[str, Any]) -> None:
        """Start the span (entered) and record the request."""


_C = TypeVar("_C", bound=_Begins)


def started(call: _C, kwargs: dict[str, Any]) -> Optional[_C]:
    """`call` once its ``begin(kwargs)`` ran; None if that failed before the span
    started (the call is left alone), the call if it failed after (the span ends
    with the call, without the rest of the request's data)."""
    try:
        call.begin(kwargs)
    except Exception:  # instrumentation must not break the call
        if call.span is None:
            return None
    return call


def wrap_call(
    original: Callable[..., Any],
    start: Callable[[tuple[Any, ...], dict[str, Any]], Any],
    done: Callable[[Any, Any], Any],
    is_async: bool = False,
    catch: type[BaseException] = Exception,
) -> Callable[..., Any]:
    """`original` (a coroutine function if `is_async`) with a call context around it.

    `start(args, kwargs)`: the context, or None to leave the call alone; an exception
    of the type `catch` from `original` goes to the context's ``failed(exc_info)``
    and on to the caller; `done(context, result)`: what the caller gets (it must not
    raise: a failure of the instrumentation is its to swallow).
    """
    if is_async:

        @functools.wraps(original)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            call = start(args, kwargs)
            if call is None:
                return await original(*args, **kwargs)
            try:
                result = await original(*args, **kwargs)
            except catch:
                call.failed(sys.exc_info())
                raise
            return done(call, result)

        return call_async

    @functools.wraps(original)
    def call_sync(*args: Any, **kwargs: Any) -> Any:
        call = start(args, kwargs)
        if call is None:
            return original(*args, **kwargs)
        try:
            result = original(*args, **kwargs)
        except catch:
            call.failed(sys.exc_info())
            raise
        return done(call, result)

    return call_sync


def call_wrapper(
    start: Callable[[tuple[Any, ...], dict[str, Any]], Any],
    done: Callable[[Any, Any], Any],
    is_async: bool = False,
    catch: type[BaseException] = Exception,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`wrap_call` for `patch_once`: a function of the original method."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        return wrap_call(original, start, done, is_async, catch)

    return wrap


def start_llm_span(op: str, name: str, origin: str, attributes: Mapping[str, Any]) -> Any:
    """A model call's span (not entered), with the `attributes` sentry_sdk 2.75 gives at
    its start when it is streamed (so `traces_sampler` and `ignore_spans` see them).

    `sdk_start_span_function` gives a child of the current span or, with none, a new
    transaction (a segment under streaming); either takes ``attributes=`` only under
    streaming, which `segment_start` / `child_start` decide.
    """
    start = sdk_start_span_function()
    segment = start is sdk_start_transaction
    extra = segment_start(attributes) if segment else child_start(attributes)
    return start(op=op, name=name, origin=origin, **extra)


def start_run_span(op: str, name: str, origin: str, attributes: Mapping[str, Any]) -> Any:
    """The span (not entered) of an AI framework's run (a LangChain model or tool run, an
    agent's model call or tool), as sentry_sdk 2.75's framework integrations start it.

    Under span streaming `start_llm_span`'s: a segment with no active span. Else a span
    under the active one, never sent without one: in transaction mode these runs start
    no transaction.
    """
    if segment_start(attributes):
        return start_llm_span(op, name, origin, attributes)
    return sdk_start_span(op=op, name=name, origin=origin)


__all__ = [
    "LLMCall",
    "LLMIntegration",
    "call_wrapper",
    "enable",
    "start_llm_span",
    "start_run_span",
    "started",
    "wrap_call",
]
