"""The capture steps: a list of small named steps, from scope layers to a final event.

Each step takes the `Capture` in flight and returns None to continue or a
`Drop` to stop; the client records the drop in one place. Steps are chosen once,
when the client is built, so options that are off cost nothing per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from tripwire._clock import clock, format_timestamp, to_epoch
from tripwire._ids import ids, random
from tripwire._log import logger
from tripwire.capture.markers import SDK_BUILT_KEYS, PlainSpans
from tripwire.capture.merge import apply_layers
from tripwire.event.frames import stacktrace_for_current_thread
from tripwire.event.meta import annotate, merge_meta
from tripwire.outcomes import DataCategory, Drop, DropReason

if TYPE_CHECKING:
    from tripwire.client import Client
    from tripwire.scope._scope import Scope
    from tripwire.types import EventDict, Hint


class Capture:
    """One event on its way through the pipeline."""

    __slots__ = ("built_by_sdk", "event", "hint", "layers", "user_hooks_ran")

    def __init__(
        self, event: EventDict, hint: Hint, layers: Sequence[Scope], built_by_sdk: bool
    ) -> None:
        self.event = event
        self.hint = hint
        self.layers = layers
        # False when the event dict came from user code: it may hold anything.
        self.built_by_sdk = built_by_sdk
        self.user_hooks_ran = False


Step = Callable[[Capture], "Drop | None"]


def error_steps(client: Client) -> list[Step]:
    """The steps for error and message events, given the client's options."""
    opts = client.options
    steps: list[Step] = []
    if opts["ignore_errors"]:
        steps.append(_ignore_errors(tuple(opts["ignore_errors"])))
    rate = _error_sample_rate(opts["sample_rate"])
    if opts["error_sampler"] is None and rate is not None:
        steps.append(_sample_rate(rate))
    steps.append(_apply_scopes(client))
    if opts["attach_stacktrace"]:
        steps.append(_attach_stacktrace(client))
    steps.append(_defaults(client))
    steps.append(_serialize(client))
    if client._scrubber is not None:
        steps.append(_scrub(client))
    if opts["before_send"] is not None:
        steps.append(_before_send(client, opts["before_send"]))
    if opts["error_sampler"] is not None:
        steps.append(_error_sampler(client, opts["error_sampler"]))
    return steps


def transaction_steps(client: Client) -> list[Step]:
    """The steps for transaction events (no ignore_errors / sample_rate / before_send)."""
    opts = client.options
    steps: list[Step] = [_apply_scopes(client), _defaults(client), _serialize_spans(client)]
    if opts.get("trace_ignore_status_codes"):
        steps.insert(0, _ignore_status_codes(frozenset(opts["trace_ignore_status_codes"])))
    if client._scrubber is not None:
        steps.append(_scrub(client))
    if opts["before_send_transaction"] is not None:
        steps.append(
            _before_send(client, opts["before_send_transaction"], "before_send_transaction")
        )
    return steps


# -- steps -------------------------------------------------------------------------


def _ignore_status_codes(codes: frozenset[int]) -> Step:
    def ignore_status_codes(cap: Capture) -> Drop | None:
        # The transaction's HTTP status, as Span.set_http_status records it.
        contexts = cap.event.get("contexts")
        trace = contexts.get("trace") if isinstance(contexts, dict) else None
        data = trace.get("data") if isinstance(trace, dict) else None
        code = data.get("http.response.status_code") if isinstance(data, dict) else None
        if isinstance(code, int) and code in codes:
            return Drop(DropReason.EVENT_PROCESSOR, f"trace_ignore_status_codes: {code}")
        return None

    return ignore_status_codes


def _ignore_errors(ignored: tuple[Any, ...]) -> Step:
    classes = tuple(i for i in ignored if isinstance(i, type))
    names = frozenset(i for i in ignored if isinstance(i, str))

    def ignore_errors(cap: Capture) -> Drop | None:
        exc_info = cap.hint.get("exc_info")
        if not exc_info or exc_info[0] is None:
            return None
        exc_type = exc_info[0]
        if classes and issubclass(exc_type, classes):
            return Drop(DropReason.IGNORED, exc_type.__name__)
        if names:
            full = f"{exc_type.__module__}.{exc_type.__qualname__}"
            if exc_type.__name__ in names or full in names:
                return Drop(DropReason.IGNORED, full)
        return None

    return ignore_errors


def _error_sample_rate(value: Any) -> float | None:
    """The rate errors are sampled with; None: every error is kept.

    As sentry_sdk reads `sample_rate` (any value: `tripwire.options`): a value below 1
    samples; one that is not (2, NaN) or cannot be compared with 1 (a string) keeps
    every error.
    """
    try:
        return float(value) if value < 1.0 else None
    except Exception:
        return None


def _sample_rate(rate: float) -> Step:
    def sample_rate(cap: Capture) -> Drop | None:
        if random() >= rate:
            return Drop(DropReason.SAMPLE_RATE, f"sample_rate={rate}")
        return None

    return sample_rate


def _apply_scopes(client: Client) -> Step:
    def apply_scopes(cap: Capture) -> Drop | None:
        spans_before = 0
        if client._has_user_processors(cap.layers):
            cap.user_hooks_ran = True
            spans = cap.event.get("spans")
            spans_before = len(spans) if isinstance(spans, list) else 0
        result = apply_layers(
            cap.event, cap.hint, cap.layers, client, share_crumbs=not cap.user_hooks_ran
        )
        if isinstance(result, Drop):
            return result
        cap.event = result
        if spans_before:
            _count_removed_spans(client, result, spans_before, DropReason.EVENT_PROCESSOR)
        return None

    return apply_scopes


def _attach_stacktrace(client: Client) -> Step:
    def attach_stacktrace(cap: Capture) -> Drop | None:
        event = cap.event
        if "exception" in event or "threads" in event or "stacktrace" in event:
            return None
        event["threads"] = {
            "values": [
                {
                    "stacktrace": stacktrace_for_current_thread(client._frame_options),
                    "crashed": False,
                    "current": True,
                }
            ]
        }
        return None

    return attach_stacktrace


def _defaults(client: Client) -> Step:
    opts = client.options
    fixed = {
        key: opts[key]
        for key in ("release", "environment", "server_name", "dist")
        if opts.get(key) is not None
    }

    def defaults(cap: Capture) -> Drop | None:
        event = cap.event
        if "timestamp" not in event:
            event["timestamp"] = format_timestamp(clock.now())
        elif not isinstance(event["timestamp"], str):
            event["timestamp"] = _timestamp_str(event["timestamp"])
        for key, value in fixed.items():
            if event.get(key) is None:
                event[key] = value
        if "sdk" not in event:
            event["sdk"] = client._sdk_info
        event.setdefault("platform", "python")
        return None

    return defaults


def _serialize(client: Client) -> Step:
    serializer = client._serializer
    max_len = client._max_value_length

    def serialize(cap: Capture) -> Drop | None:
        event = cap.event
        if not cap.built_by_sdk or cap.user_hooks_ran:
            # User code touched the event: bound everything (sentry_sdk's full pass).
            cap.event = serializer.event(event)
            return None
        # Only the parts that hold user data need work; the rest was built bounded.
        user_part = {k: v for k, v in event.items() if k not in SDK_BUILT_KEYS}
        if user_part:
            done = serializer.event(user_part)
            meta = done.pop("_meta", None)
            event.update(done)
            if meta:
                merge_meta(event.setdefault("_meta", {}), meta)
        if max_len is not None and "exception" in event:
            _trim_exception_values(event, max_len)
        return None

    return serialize


def _serialize_spans(client: Client) -> Step:
    """`serialize` for transactions: spans the tracing module vouches for skip it."""
    full = _serialize(client)

    def serialize(cap: Capture) -> Drop | None:
        event = cap.event
        spans: Any = event.get("spans")
        if not spans or not cap.built_by_sdk or cap.user_hooks_ran:
            return full(cap)
        if type(spans) is not PlainSpans:
            return full(cap)
        del event["spans"]
        drop = full(cap)
        cap.event["spans"] = list(spans)
        return drop

    serialize.__name__ = "serialize"
    return serialize


def _scrub(client: Client) -> Step:
    scrubber = client._scrubber
    assert scrubber is not None
    # Breadcrumbs were scrubbed once, when their wire form was cached: skip them here,
    # unless a user scrubber subclass wants to see the whole event.
    whole_event = client._scrubber_is_custom

    def scrub(cap: Capture) -> Drop | None:
        event = cap.event
        if whole_event or cap.user_hooks_ran or event.get("type") == "transaction":
            scrubber.scrub_event(event)
            return None
        scrubber.scrub_request(event)
        scrubber.scrub_extra(event)
        scrubber.scrub_user(event)
        scrubber.scrub_frames(event)
        return None

    return scrub


_RAISED: Any = object()


def _before_send(
    client: Client, hook: Callable[[EventDict, Hint], EventDict | None], name: str = "before_send"
) -> Step:
    def before_send(cap: Capture) -> Drop | None:
        cap.user_hooks_ran = True
        event = cap.event
        spans = event.get("spans")
        spans_before = len(spans) if isinstance(spans, list) else 0
        # A hook that raises drops the event: it may have been the PII filter.
        result = client._run_user_hook(hook, event, cap.hint, on_error=_RAISED)
        if result is _RAISED:
            return Drop(DropReason.CALLBACK_ERROR, f"{name} raised")
        if result is None:
            return Drop(DropReason.BEFORE_SEND, f"{name} returned None")
        if not isinstance(result, dict):
            # Not an event: nothing can be sent, so it counts as the hook's drop.
            logger.warning(
                "%s returned a %s, not an event dict: event dropped", name, type(result).__name__
            )
            return Drop(DropReason.BEFORE_SEND, f"{name} returned {type(result).__name__}")
        cap.event = result
        if result.get("tags"):
            _bound_tags(client, result)  # what the hook set is bounded like the rest
        if spans_before:
            _count_removed_spans(client, result, spans_before, DropReason.BEFORE_SEND)
        return None

    before_send.__name__ = name
    return before_send


def _bound_tags(client: Client, event: EventDict) -> None:
    meta: dict[str, Any] = {}
    event["tags"] = client._serializer.tags(event["tags"], meta)
    if meta:
        old = event.get("_meta")
        if not isinstance(old, dict):
            old = event["_meta"] = {}
        merge_meta(old, meta)


def _count_removed_spans(client: Client, event: EventDict, before: int, reason: DropReason) -> None:
    # User code that removes spans from a transaction it keeps: those spans are lost.
    spans = event.get("spans")
    removed = before - (len(spans) if isinstance(spans, list) else 0)
    if removed > 0:
        client.outcomes.record(reason, DataCategory.SPAN, removed)


def _error_sampler(client: Client, sampler: Callable[[EventDict, Hint], Any]) -> Step:
    def error_sampler(cap: Capture) -> Drop | None:
        rate = client._run_user_hook(sampler, cap.event, cap.hint, on_error=1.0)
        try:
            rate = float(rate)
        except (TypeError, ValueError):
            logger.debug("error_sampler returned %r, not a rate; event kept", rate)
            return None
        if not 0.0 <= rate <= 1.0:
            logger.debug("error_sampler returned %r, outside [0, 1]; event kept", rate)
            return None
        if random() >= rate:
            return Drop(DropReason.SAMPLE_RATE, f"error_sampler={rate}")
        return None

    return error_sampler


# -- helpers ----------------------------------------------------------------------------


def new_event_id(event: EventDict) -> str:
    """The event's id, assigned if missing or malformed."""
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        event_id = event["event_id"] = ids.event_id()
    return event_id


def _timestamp_str(value: Any) -> Any:
    epoch = to_epoch(value)
    return format_timestamp(epoch) if epoch is not None else value


def _trim_exception_values(event: EventDict, max_len: int) -> None:
    values = event["exception"].get("values") if isinstance(event["exception"], dict) else None
    for index, exc in enumerate(values or ()):
        value = exc.get("value")
        if isinstance(value, str) and len(value) > max_len:
            exc["value"] = value[: max_len - 3] + "..."
            annotate(
                event,
                ("exception", "values", index, "value"),
                {"len": len(value), "rem": [["!limit", "x", max_len - 3, max_len]]},
            )
