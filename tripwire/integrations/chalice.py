"""Chalice integration: errors of AWS Chalice views and event handlers.

As sentry_sdk 2.75's ``chalice`` integration, once `chalice.app` is imported:

- each REST API view runs in a fork of the isolation scope whose events are named
  after the Lambda function (source ``component``) and carry what the AWS Lambda
  integration adds (``extra.lambda``, ``extra["cloudwatch logs"]`` and a `request`
  from the Chalice request: headers filtered, the user's identity only with
  `send_default_pii`);
- an exception escaping a view, other than Chalice's own `ChaliceViewError`s (the
  4xx/5xx answers the view chose), is reported unhandled (mechanism ``chalice``)
  and the client flushed before Chalice answers 500 (the platform may freeze the
  process right after);
- the same for event-source handlers (SNS, SQS, S3, schedules...), whose exception
  propagates to the runtime.

No transaction is made here: under Lambda the AWS Lambda integration makes one per
invocation (as sentry_sdk). Under span streaming a view marks that segment with
Chalice's origin, the request's method and headers, and ``error`` when it fails.
Patches go through `_patch.py` and fall through when the active client lacks this
integration.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import Any, Callable

from tripwire import _data_collection
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import streamed
from tripwire.integrations.aws_lambda import _event_processor
from tripwire.scope._current import get_client, get_current_scope, isolation_scope

_MARK = "__tripwire_chalice__"
# Chalice's `ChaliceViewError` (an answer the view chose, not a failure), once imported.
_view_errors: list[type[BaseException]] = []


class ChaliceIntegration(Integration):
    """Errors of Chalice applications, with the Lambda invocation's data."""

    identifier = "chalice"
    origin = "auto.function.chalice"

    @staticmethod
    def setup_once() -> None:
        """Check Chalice's version; patch it once `chalice.app` is imported.

        Raises:
            DidNotEnable: Chalice is not installed, or older than 1.16.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("chalice") is None:
            raise DidNotEnable("Chalice is not installed")
        _check_minimum_version(ChaliceIntegration, package_version("chalice"), "Chalice")
        when_imported("chalice.app", _patch_chalice)


def _patch_chalice(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    # Chalice 1.20+ serves views from RestAPIEventHandler, older ones from Chalice.
    owner = getattr(module, "RestAPIEventHandler", None) or module.Chalice
    _view_errors[:] = [module.ChaliceViewError]
    patch_once(owner, "_get_view_function_response", _wrap_view_response, _MARK)
    patch_once(module.EventSourceHandler, "__call__", _wrap_event_source_call, _MARK)


def _wrap_view_response(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _get_view_function_response(
        handler: Any, view_function: Callable[..., Any], function_args: Any
    ) -> Any:
        if get_client().get_integration(ChaliceIntegration) is None:
            return original(handler, view_function, function_args)
        return original(handler, _reporting_view(handler, view_function), function_args)

    return _get_view_function_response


def _reporting_view(handler: Any, view_function: Callable[..., Any]) -> Callable[..., Any]:
    answers = tuple(_view_errors)

    @functools.wraps(view_function)
    def view(**function_args: Any) -> Any:
        client = get_client()
        with isolation_scope() as scope:
            try:
                context = handler.lambda_context
                scope.add_event_processor(
                    _event_processor(
                        handler.current_request.to_dict(),
                        context,
                        context.get_remaining_time_in_millis(),
                    )
                )
                scope.set_transaction_name(context.function_name, "component")
            except Exception:  # the view runs without what could not be added
                pass
            segment = _decorate_segment(handler)
            try:
                return view_function(**function_args)
            except answers:
                raise
            except Exception:
                if segment is not None:
                    segment.status = "error"  # Chalice answers 500: the view failed
                capture_unhandled(client, sys.exc_info(), "chalice")
                client.flush()
                raise

    return view


def _decorate_segment(handler: Any) -> Any:
    """Under span streaming, the invocation's segment (the AWS Lambda integration's)
    with Chalice's origin and the request's method and headers, as sentry_sdk; None
    outside a streamed segment."""
    try:
        span = streamed(get_current_scope()._d.span)
        if span is None:
            return None
        segment = span.containing_transaction
        request = handler.current_request.to_dict()
        attributes: dict[str, Any] = {"sentry.origin": ChaliceIntegration.origin}
        options = get_client().options
        headers = request.get("headers") or {}
        for key, value in _data_collection.request_headers(headers, options).items():
            attributes["http.request.header." + key.lower()] = value
        if "method" in request:
            attributes["http.request.method"] = request["method"]
        segment.set_attributes(attributes)
        return segment
    except Exception:
        return None


def _wrap_event_source_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __call__(handler: Any, event: Any, context: Any) -> Any:
        client = get_client()
        if client.get_integration(ChaliceIntegration) is None:
            return original(handler, event, context)
        with isolation_scope() as scope:
            try:
                scope.add_event_processor(
                    _event_processor(event, context, context.get_remaining_time_in_millis())
                )
            except Exception:
                pass
            try:
                return original(handler, event, context)
            except Exception:
                capture_unhandled(client, sys.exc_info(), "chalice")
                client.flush()
                raise

    return __call__


__all__ = ["ChaliceIntegration"]
