"""Dramatiq integration: a middleware for message transactions, failures and propagation.

As sentry_sdk 2.75's ``dramatiq`` integration (not auto-enabling: pass
``DramatiqIntegration()`` to `init`, before the broker is created):

- every `Broker` built after `init` gets `SentryMiddleware` first in its middleware
  (`Broker.__init__` is patched);
- **producer**: ``before_enqueue`` puts the trace (``sentry-trace``, ``baggage``) in
  ``message.options["_sentry_headers"]``; Dramatiq has no submit span;
- **worker**: each message runs in its own isolation scope (breadcrumbs cleared, the
  extra ``dramatiq_message_id``) as a transaction ``queue.task.dramatiq`` named by the
  actor (source ``task``, origin ``auto.queue.dramatiq``, status ``ok``,
  ``messaging.destination.name`` = the queue), continuing the producer's trace; a
  retried message (``retries`` in its options) starts a trace of its own;
- **failures**: the actor's exception is an event (mechanism ``dramatiq``, handled
  false; the transaction's status becomes ``internal_error``) with
  ``contexts["dramatiq"]`` = the message as a dict (bounded by
  ``max_request_body_size``, left out when ``data_collection``'s ``http_bodies`` lack
  ``incoming_request``), for every failed attempt; `dramatiq.errors.Retry` and the
  actor's ``throws`` are not reported.

Unlike the other task queue integrations this module imports Dramatiq (a middleware
subclasses Dramatiq's `Middleware`): importing it without Dramatiq raises
`DidNotEnable`, as sentry_sdk's does.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire.api import capture_event, continue_trace, get_baggage, get_traceparent
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.event.meta import annotate
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common.start_attributes import segment_start
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_isolation_scope, isolation_scope
from tripwire.tracing._api import sdk_start_transaction as _start_transaction
from tripwire.tracing._consts import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.utils import AnnotatedValue, event_from_exception, has_data_collection_enabled

try:
    from dramatiq.broker import Broker
    from dramatiq.errors import Retry
    from dramatiq.middleware import Middleware, default_middleware
except ImportError:
    raise DidNotEnable("Dramatiq is not installed") from None

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

ORIGIN = "auto.queue.dramatiq"
_MARK = "__tripwire_dramatiq__"
# `max_request_body_size` -> the longest message (JSON) kept in the event.
_BODY_LIMITS = {"never": -1, "small": 10**3, "medium": 10**4}
_REMOVED = AnnotatedValue.removed_because_over_size_limit()


class DramatiqIntegration(Integration):
    """Message transactions, failures and trace propagation for Dramatiq.

    Call `tripwire.init` before creating the broker: `Broker.__init__` adds the
    middleware.
    """

    identifier = "dramatiq"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch `Broker.__init__` to put `SentryMiddleware` first."""
        patch_once(Broker, "__init__", _wrap_broker_init, _MARK)


def _wrap_broker_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        integration = get_client().get_integration(DramatiqIntegration)
        middleware = kwargs.pop("middleware", None)
        if middleware is None and len(args) == 1:
            # `Broker` and `StubBroker` take it positionally too; the others do not.
            middleware, args = args[0], ()
        middleware = [m() for m in default_middleware] if middleware is None else list(middleware)
        if integration is not None:
            middleware = [m for m in middleware if not isinstance(m, SentryMiddleware)]
            middleware.insert(0, SentryMiddleware())
        kwargs["middleware"] = middleware
        original(self, *args, **kwargs)

    return __init__


class SentryMiddleware(Middleware):
    """Reports Dramatiq messages: added first to every broker by `DramatiqIntegration`."""

    SENTRY_HEADERS_NAME = "_sentry_headers"

    def before_enqueue(self, broker: Any, message: Any, delay: int) -> None:
        """Put the trace headers in the message's options."""
        if get_client().get_integration(DramatiqIntegration) is None:
            return
        message.options[self.SENTRY_HEADERS_NAME] = {
            BAGGAGE_HEADER_NAME: get_baggage(),
            SENTRY_TRACE_HEADER_NAME: get_traceparent(),
        }

    def before_process_message(self, broker: Any, message: Any) -> None:
        """Enter the message's isolation scope and start its transaction."""
        if get_client().get_integration(DramatiqIntegration) is None:
            return
        manager = isolation_scope()
        scope = manager.__enter__()
        message._scope_manager = manager
        try:
            scope.clear_breadcrumbs()
            scope.set_extra("dramatiq_message_id", message.message_id)
            _set_message_context(scope, message)
            headers = message.options.get(self.SENTRY_HEADERS_NAME) or {}
            if "retries" in message.options:
                headers = {}  # a retry starts a trace of its own
            transaction = continue_trace(
                headers,
                name=message.actor_name,
                op=OP.QUEUE_TASK_DRAMATIQ,
                source="task",
                origin=ORIGIN,
            )
            transaction.set_status(SPANSTATUS.OK)
            # sentry_sdk's transaction carries the status it was started with as a
            # tag ("ok", whatever the outcome): sent the same.
            transaction.set_tag("status", SPANSTATUS.OK)
            # Under streaming the segment starts with its queue, as sentry_sdk's
            # (`traces_sampler` and `ignore_spans` see it).
            at_start = segment_start({SPANDATA.MESSAGING_DESTINATION_NAME: message.queue_name})
            started = _start_transaction(transaction, **at_start)
            started.__enter__()
            started.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, message.queue_name)
            message._sentry_span_ctx = started
        except Exception:  # reporting must never stop the message
            pass

    def after_process_message(
        self,
        broker: Any,
        message: Any,
        *,
        result: Optional[Any] = None,
        exception: Optional[BaseException] = None,
    ) -> None:
        """Report the actor's exception, end the transaction and leave the scope."""
        if get_client().get_integration(DramatiqIntegration) is None:
            return
        manager = getattr(message, "_scope_manager", None)
        span = getattr(message, "_sentry_span_ctx", None)
        if manager is None:
            return
        exc_info: tuple[Any, Any, Any] = (None, None, None)
        try:
            if exception is not None:
                # Dramatiq's Retries middleware has added the retry to the options.
                _set_message_context(get_isolation_scope(), message)
            if exception is not None and not isinstance(exception, Retry):
                actor = broker.get_actor(message.actor_name)
                throws = message.options.get("throws") or actor.options.get("throws")
                if not (throws and isinstance(exception, throws)):
                    event, hint = event_from_exception(
                        exception, mechanism={"type": "dramatiq", "handled": False}
                    )
                    capture_event(event, hint=hint)
                    exc_info = (type(exception), exception, None)
        except Exception:
            pass
        finally:
            message._scope_manager = None
            message._sentry_span_ctx = None
            try:
                if span is not None:
                    span.__exit__(*exc_info)
            finally:
                manager.__exit__(*exc_info)

    after_skip_message = after_process_message


def _set_message_context(scope: Any, message: Any) -> None:
    """``contexts["dramatiq"]`` on the message's isolation scope, as the message is now.

    Scope data rather than sentry_sdk's event processor, so events keep the
    serializer's fast path; set again once the message failed, before its event and
    transaction go out (what sentry_sdk's processor reads then).
    """
    try:
        client = get_client()
        if not client.is_active():
            return
        context, removed = DramatiqMessageExtractor(message)._context(client.options)
        scope.set_context("dramatiq", context)
        if removed is not None and not getattr(message, "_tripwire_annotated", False):
            # Over the size limit: the value's `_meta` annotation needs the event.
            message._tripwire_annotated = True
            scope.add_event_processor(_annotate_removed)
    except Exception:
        pass


def _annotate_removed(event: EventDict, hint: Hint) -> EventDict:
    context = event.get("contexts", {}).get("dramatiq")
    if isinstance(context, dict) and context.get("data") == "":
        annotate(event, ("contexts", "dramatiq", "data"), _REMOVED.metadata)
    return event


class DramatiqMessageExtractor:
    """Puts a message, as a dict, in an event's ``contexts["dramatiq"]``."""

    def __init__(self, message: Any) -> None:
        self.message_data = dict(message.asdict())

    def content_length(self) -> int:
        """The length of the message as JSON."""
        return len(json.dumps(self.message_data))

    def extract_into_event(self, event: EventDict) -> None:
        """Add ``contexts["dramatiq"]`` (the message, if bodies are collected)."""
        client = get_client()
        if not client.is_active():
            return
        found, removed = self._context(client.options)
        context = event.setdefault("contexts", {}).setdefault("dramatiq", {})
        context.update(found)
        if removed is not None:
            annotate(event, ("contexts", "dramatiq", "data"), removed.metadata)

    def _context(self, options: dict[str, Any]) -> tuple[dict[str, Any], Optional[AnnotatedValue]]:
        """The context, and the `AnnotatedValue` standing for data over the size limit."""
        context: dict[str, Any] = {"type": "dramatiq"}
        if (
            has_data_collection_enabled(options)
            and "incoming_request" not in options["data_collection"]["http_bodies"]
        ):
            return context, None
        limit = _BODY_LIMITS.get(str(options.get("max_request_body_size")))
        if limit is not None and self.content_length() > limit:
            # sentry_sdk's serializer turns its AnnotatedValue into "" and `_meta`.
            context["data"] = _REMOVED.value
            return context, _REMOVED
        context["data"] = self.message_data
        return context, None


__all__ = ["DramatiqIntegration", "DramatiqMessageExtractor", "SentryMiddleware"]
