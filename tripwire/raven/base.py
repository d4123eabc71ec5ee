"""The raven 6.x `Client` (`raven.base.Client`), built on a private tripwire client.

A raven `Client` owns its own `tripwire.Client`: it never reads or changes the
global tripwire client or scopes, so it can run next to ``tripwire.init()``. Events
are built the raven way (client tags and extra, the thread-local `Context`,
breadcrumbs, processors, sampling) and then go through tripwire's pipeline
(bounded serialization, event id, SDK info) to its transport as envelopes.

Capture methods never raise into the caller (unless ``raise_send_errors=True`` and a
raven-style transport fails); they return the event id, or None when nothing was
captured.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, cast, overload

from tripwire._clock import clock
from tripwire._ids import ids
from tripwire._log import logger, suppress
from tripwire.raven import _event
from tripwire.raven._backend import RemoteView, forget, keep_flushed, tripwire_options
from tripwire.raven._options import (
    Settings,
    _warn_verify_ssl,
    import_path,
    read_options,
    split_dsn,
)
from tripwire.raven.context import Context
from tripwire.raven.events import BaseEvent, ExceptionEvent, MessageEvent, QueryEvent
from tripwire.raven.versioning import installed_version

if TYPE_CHECKING:
    from tripwire.client import Client as TripwireClient

F = TypeVar("F", bound=Callable[..., Any])

_HANDLERS: dict[str, type[BaseEvent]] = {
    "Exception": ExceptionEvent,
    "Message": MessageEvent,
    "Query": QueryEvent,
}
# Capture keyword arguments that set event fields (the rest go to the event handler).
_EVENT_FIELDS = ("culprit", "logger", "server_name", "release", "environment", "transaction")


class Client:
    """raven's client: ``Client(dsn, **options)``; capture with `captureException` & co.

    Args:
        dsn: The DSN; ``SENTRY_DSN`` from the environment when not given. A raven
            transport prefix (``"threaded+https://..."``) and query options are accepted.
        raise_send_errors: Re-raise errors of a raven-style (synchronous) transport.
        transport: See `tripwire.raven.transport`: a raven transport class, a tripwire
            `Transport` (class or instance) or a callable taking the event dict.
        install_sys_hook: Capture uncaught exceptions (``sys.excepthook``, level fatal).
        install_logging_hook: Turn log records into breadcrumbs.
        hook_libraries: Not supported (logged and ignored).
        enable_breadcrumbs: Keep breadcrumbs and send them with events.
        _random_seed: Seed of the sampling random generator (for tests).
        **options: raven's options: ``name``, ``release``, ``environment``, ``site``,
            ``tags``, ``context`` (initial extra), ``include_paths``,
            ``exclude_paths``, ``sample_rate``, ``string_max_length``,
            ``list_max_length``, ``auto_log_stacks``, ``capture_locals``,
            ``include_versions``, ``processors``, ``sanitize_keys``,
            ``ignore_exceptions``, ``ca_certs``.

    Raises:
        TypeError: An option of the wrong type, or an unusable transport.
        ValueError: An option out of range; `InvalidDsn` for a malformed DSN.
    """

    protocol_version = "7"

    def __init__(
        self,
        dsn: Optional[str] = None,
        raise_send_errors: bool = False,
        transport: Any = None,
        install_sys_hook: bool = True,
        install_logging_hook: bool = True,
        hook_libraries: Any = None,
        enable_breadcrumbs: bool = True,
        _random_seed: Any = None,
        **options: Any,
    ) -> None:
        self.raise_send_errors = bool(raise_send_errors)
        self.enable_breadcrumbs = bool(enable_breadcrumbs)
        settings = read_options(dict(options))
        self._apply_settings(settings)
        self._random = random.Random(_random_seed)
        self._local_state = threading.local()
        self.module_cache: dict[str, Any] = {}
        self._handler_cache: dict[str, BaseEvent] = {}
        self._processor_instances = tuple(self._load_processor(p) for p in self.processors)
        self._tw: Any = None
        self._can_send = False
        self.set_dsn(dsn, transport)
        self._context = Context(self)
        self._context.activate(sticky=True)
        if install_sys_hook:
            self.install_sys_hook()
        if install_logging_hook:
            self.install_logging_hook()
        if hook_libraries:
            self.hook_libraries(hook_libraries)

    def _apply_settings(self, s: Settings) -> None:
        self.name = s.name
        self.release = s.release
        self.environment = s.environment
        self.site = s.site
        self.tags = s.tags
        self.extra = s.extra
        self.include_paths = s.include_paths
        self.exclude_paths = s.exclude_paths
        self.sample_rate = s.sample_rate
        self.string_max_length = s.string_max_length
        self.list_max_length = s.list_max_length
        self.auto_log_stacks = s.auto_log_stacks
        self.capture_locals = s.capture_locals
        self.include_versions = s.include_versions
        self.processors = s.processors
        self.sanitize_keys = s.sanitize_keys
        self.ignore_exceptions = s.ignore_exceptions
        self._ca_certs = s.ca_certs

    def _load_processor(self, spec: Any) -> Any:
        if isinstance(spec, str):
            cls = import_path(spec)
            return cls(self)
        if isinstance(spec, type):
            return spec(self)
        return spec

    # -- configuration ------------------------------------------------------------------

    def set_dsn(self, dsn: Optional[str] = None, transport: Any = None) -> None:
        """(Re)configure where events go; the previous tripwire client is flushed.

        Raises:
            InvalidDsn: The DSN is malformed.
            TypeError: `transport` is unusable.
        """
        import os

        from tripwire.dsn import BadDsn, Dsn
        from tripwire.raven.exceptions import InvalidDsn
        from tripwire.raven.transport._adapter import resolve_transport

        raw = dsn if dsn else os.environ.get("SENTRY_DSN") or None
        if raw is not None and not isinstance(raw, str):
            raise TypeError(f"dsn must be a string, got {type(raw).__name__}")
        text, dsn_options = split_dsn(raw)
        parsed = None
        if text:
            try:
                parsed = Dsn.parse(text)
            except BadDsn as exc:
                raise InvalidDsn(f"Invalid Sentry DSN {text!r}: {exc}") from None
        if dsn_options.get("verify_ssl") in ("0", "false", "False"):
            _warn_verify_ssl()
        tw_transport, can_send = resolve_transport(transport, parsed, dsn_options)
        ca_certs = dsn_options.get("ca_certs") or self._ca_certs
        tw_options = tripwire_options(self, str(parsed) if parsed else None, tw_transport)
        if ca_certs:
            tw_options["ca_certs"] = ca_certs
        import tripwire

        new = tripwire.Client(**tw_options)
        old, self._tw = self._tw, new
        self._can_send = can_send and new.transport is not None
        if old is not None:
            old.close(timeout=old.options["shutdown_timeout"])
        if self._can_send:
            keep_flushed(self)

    @property
    def tripwire_client(self) -> TripwireClient:
        """The private `tripwire.Client` that sends this client's events (tripwire extension)."""
        return cast("TripwireClient", self._tw)

    @property
    def remote(self) -> RemoteView:
        """The DSN's parts, as raven's ``RemoteConfig`` exposed them."""
        return RemoteView(self)

    def is_enabled(self) -> bool:
        """Whether events can be sent (a DSN or a transport is configured)."""
        return self._can_send and self._tw is not None and self._tw.transport is not None

    def get_public_dsn(self, scheme: Optional[str] = None) -> Optional[str]:
        """The DSN without its secret, for browsers: ``//key@host/project``.

        Args:
            scheme: Prefix the URL with ``"<scheme>:"`` (e.g. ``"https"``).
        """
        dsn = self._tw.parsed_dsn if self._tw is not None else None
        if dsn is None:
            return None
        url = f"//{dsn.public_key}@{dsn.netloc}{dsn.path}/{dsn.project_id}"
        return f"{scheme}:{url}" if scheme else url

    def get_processors(self) -> Iterator[Any]:
        """The processor instances, in order."""
        return iter(self._processor_instances)

    def get_module_versions(self) -> dict[str, str]:
        """``{"python": ...}`` plus the versions of the packages in ``include_paths``."""
        if not self.include_versions:
            return {}
        versions = {"python": "%d.%d.%d" % sys.version_info[:3]}
        for path in sorted(self.include_paths):
            top = path.split(".", 1)[0]
            if top not in self.module_cache:
                self.module_cache[top] = installed_version(top)
            if self.module_cache[top]:
                versions[top] = self.module_cache[top]
        return versions

    def get_handler(self, name: Any) -> BaseEvent:
        """The event handler for an event type (``"raven.events.Message"``, a class, ...).

        Raises:
            ValueError: Unknown event type.
        """
        if isinstance(name, BaseEvent):
            return name
        if isinstance(name, type) and issubclass(name, BaseEvent):
            return name(self)
        key = str(name)
        handler = self._handler_cache.get(key)
        if handler is None:
            short = key.rsplit(".", 1)[-1]
            cls: Any = None
            if key in _HANDLERS:
                cls = _HANDLERS[key]
            elif key.startswith(("raven.events.", "tripwire.raven.events.")) and short in _HANDLERS:
                cls = _HANDLERS[short]
            else:
                cls = import_path(key)
            handler = self._handler_cache[key] = cls(self)
        return handler

    def get_ident(self, result: Any) -> Any:
        """The searchable id of a capture result (the event id itself)."""
        return result

    # -- hooks --------------------------------------------------------------------------

    def install_sys_hook(self) -> None:
        """Capture uncaught exceptions at level fatal, then call the previous hook."""
        from tripwire.integrations._patch import patch

        previous = sys.excepthook
        # A strong reference, as raven's hook held: `Client(dsn)` alone is enough.
        client = self

        def raven_excepthook(
            exc_type: type[BaseException], value: BaseException, tb: Optional[TracebackType]
        ) -> None:
            try:
                client.captureException(
                    exc_info=(exc_type, value, tb),
                    level="fatal",
                    mechanism={"type": "excepthook", "handled": False},
                )
            finally:
                previous(exc_type, value, tb)

        patch(sys, "excepthook", raven_excepthook)

    def install_logging_hook(self) -> None:
        """Record log records as breadcrumbs (process-wide, installed once)."""
        from tripwire.raven.breadcrumbs import install_logging_hook

        install_logging_hook()

    def hook_libraries(self, libraries: Any) -> None:
        """Not supported (raven patched HTTP libraries for breadcrumbs); logged."""
        from tripwire.raven.breadcrumbs import hook_libraries

        hook_libraries(libraries)

    # -- context --------------------------------------------------------------------------

    @property
    def context(self) -> Context:
        """The thread-local `Context` of this client."""
        return self._context

    def _merge_context(self, key: str, data: Any) -> None:
        try:
            if data is not None and not isinstance(data, Mapping):
                logger.debug("raven %s_context: expected a dict, got %r", key, type(data))
                return
            self._context.merge({key: data})
        except Exception:
            logger.debug("raven context update failed", exc_info=True)

    def user_context(self, data: Optional[Mapping[str, Any]]) -> None:
        """Set the user of this thread's events (``id``, ``username``, ``email``, ...)."""
        self._merge_context("user", data)

    def tags_context(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Add tags to this thread's events."""
        self._merge_context("tags", data)

    def extra_context(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Add extra data to this thread's events."""
        self._merge_context("extra", data)

    def http_context(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        """Set the HTTP request of this thread's events (``url``, ``method``, ...)."""
        self._merge_context("request", data)

    @property
    def last_event_id(self) -> Optional[str]:
        """The id of the last event captured on this thread."""
        return getattr(self._local_state, "last_event_id", None)

    # -- filtering -----------------------------------------------------------------------

    def should_capture(self, exc_info: Any) -> bool:
        """False when the exception matches ``ignore_exceptions``.

        Names match the class's own name or ``module.Name`` exactly; a name ending in
        ``*`` matches as a prefix of ``module.Name``; a class matches its subclasses too.
        """
        try:
            exc_type = exc_info[0]
            if not isinstance(exc_type, type):
                return True
            name = exc_type.__name__
            full = f"{exc_type.__module__}.{name}"
            for item in self.ignore_exceptions:
                if isinstance(item, type):
                    if issubclass(exc_type, item):
                        return False
                elif item in (name, full) or (item.endswith("*") and full.startswith(item[:-1])):
                    return False
            return True
        except Exception:
            return True

    def skip_error_for_logging(self, exc_info: Any) -> bool:
        """Whether this exception was already captured on this thread."""
        try:
            return getattr(self._local_state, "seen", None) is exc_info[1]
        except Exception:
            return False

    def record_exception_seen(self, exc_info: Any) -> None:
        """Remember this exception so that it is not captured twice."""
        # One per thread: enough for "captured, then logged" and keeps memory flat.
        self._local_state.seen = exc_info[1]

    # -- building and sending -----------------------------------------------------------

    def build_msg(
        self,
        event_type: Any,
        data: Optional[Mapping[str, Any]] = None,
        date: Any = None,
        time_spent: Any = None,
        extra: Optional[Mapping[str, Any]] = None,
        stack: Any = None,
        public_key: Any = None,
        tags: Optional[Mapping[str, Any]] = None,
        fingerprint: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Build the event: handler data, context, client defaults, processors.

        Returns:
            The event in the modern protocol shape (legacy interface keys mapped).
        """
        handler = self.get_handler(event_type)
        event = _event.modernize(data) if data else {}
        for key, value in handler.capture(**kwargs).items():
            event.setdefault(key, value)
        context = _event.modernize(self._context.get())

        event["tags"] = _merged(self.tags, context.get("tags"), event.get("tags"), tags)
        if self.site and "site" not in event["tags"]:
            event["tags"]["site"] = self.site
        event["extra"] = _merged(self.extra, context.get("extra"), event.get("extra"), extra)
        if time_spent is not None:
            event["extra"].setdefault("time_spent", time_spent)
        for key, value in context.items():
            if key not in ("tags", "extra") and value is not None:
                event.setdefault(key, value)

        if kwargs.get("level") is not None:
            event["level"] = kwargs["level"]
        event.setdefault("level", "error")
        for key in _EVENT_FIELDS:
            if kwargs.get(key) is not None:
                event[key] = kwargs[key]
        if "message" in kwargs and not isinstance(handler, MessageEvent):
            event.setdefault("message", kwargs["message"])
        if fingerprint is not None:
            event["fingerprint"] = fingerprint
        event.setdefault("server_name", self.name or None)
        if self.release is not None:
            event.setdefault("release", self.release)
        if self.environment is not None:
            event.setdefault("environment", self.environment)
        if date is not None:
            event["timestamp"] = date
        event.setdefault("timestamp", clock.now())
        if not isinstance(event.get("event_id"), str):
            event["event_id"] = ids.event_id()

        if stack is None:
            stack = self.auto_log_stacks
        if stack and not ("exception" in event or "stacktrace" in event or "threads" in event):
            self._attach_stack(event, stack)
        if self.enable_breadcrumbs and "breadcrumbs" not in event:
            crumbs = self._context.breadcrumbs.get_buffer()
            if crumbs:
                event["breadcrumbs"] = {"values": [_event.wire_breadcrumb(c) for c in crumbs]}
        if self.include_versions and "modules" not in event:
            event["modules"] = self.get_module_versions()

        _event.shorten(event, self.string_max_length, self.list_max_length)
        for processor in self._processor_instances:
            result = processor.process(event)
            if isinstance(result, dict):
                event = result
        return _event.finish(event)

    def _attach_stack(self, event: dict[str, Any], stack: Any) -> None:
        from types import FrameType

        from tripwire.event.frames import frames_from_stack, stacktrace_for_current_thread

        opts = self._tw._frame_options
        if isinstance(stack, FrameType):
            stacktrace = {"frames": frames_from_stack(stack, opts)}
        else:
            stacktrace = stacktrace_for_current_thread(opts)
        if stacktrace.get("frames"):
            event["threads"] = {
                "values": [{"stacktrace": stacktrace, "crashed": False, "current": True}]
            }

    def send(self, auth_header: Any = None, **data: Any) -> Optional[str]:
        """Send a built event (see `build_msg`); returns its id, or None if not sent."""
        if not self.is_enabled():
            return None
        event = _event.finish(_event.modernize(data))
        tw = self._tw
        with suppress:
            # No exc_info in the hint on purpose: tripwire's global dedupe processor
            # must not link this client's exceptions with the global client's.
            event_id: Optional[str] = tw.capture_event(event, {})
        if self.raise_send_errors:
            take_error = getattr(tw.transport, "take_error", None)
            error = take_error() if take_error is not None else None
            if error is not None:
                raise error
        return event_id

    def capture(
        self,
        event_type: Any,
        data: Optional[Mapping[str, Any]] = None,
        date: Any = None,
        time_spent: Any = None,
        extra: Optional[Mapping[str, Any]] = None,
        stack: Any = None,
        tags: Optional[Mapping[str, Any]] = None,
        sample_rate: Optional[float] = None,
        **kwargs: Any,
    ) -> Optional[str]:
        """Capture an event of `event_type` (``"raven.events.Message"``, ...).

        Args:
            event_type: Which handler builds the event.
            data: Event fields (legacy ``sentry.interfaces.*`` keys are accepted).
            date: The event's time (datetime or epoch seconds).
            time_spent: Sent as ``extra["time_spent"]``.
            extra: Extra data for this event.
            stack: Attach the current stack (True), or the stack of a frame.
            tags: Tags for this event.
            sample_rate: Overrides the client's sample rate for this event.
            **kwargs: For the handler (``message``, ``params``, ``exc_info``, ...) and
                event fields (``level``, ``culprit``, ``logger``, ``fingerprint``, ...).

        Returns:
            The event id (also when sampled out), or None when nothing was captured.
        """
        try:
            if not self.is_enabled():
                return None
            handler = self.get_handler(event_type)
            if isinstance(handler, ExceptionEvent):
                exc_info = _event.resolve_exc_info(kwargs.get("exc_info"))
                if exc_info is None:
                    logger.debug("raven captureException: no exception to capture")
                    return None
                if self.skip_error_for_logging(exc_info) or not self.should_capture(exc_info):
                    return None
                self.record_exception_seen(exc_info)
                kwargs["exc_info"] = exc_info
            with suppress:
                event = self.build_msg(
                    handler, data, date, time_spent, extra, stack, tags=tags, **kwargs
                )
            rate = self.sample_rate if sample_rate is None else sample_rate
            sampled = self._random.random() < rate
            event_id: str = event["event_id"]
        except Exception:
            logger.warning("raven capture failed; event dropped", exc_info=True)
            return None
        if sampled:
            if self.raise_send_errors:
                self.send(**event)
            else:
                try:
                    self.send(**event)
                except Exception:
                    logger.warning("raven send failed; event dropped", exc_info=True)
                    return None
        self._local_state.last_event_id = event_id
        return event_id

    # -- the capture API --------------------------------------------------------------------

    def captureException(self, exc_info: Any = None, **kwargs: Any) -> Optional[str]:
        """Capture an exception: the one being handled, or `exc_info` (tuple or exception).

        Keyword arguments are those of `capture` (``extra``, ``tags``, ``level``,
        ``fingerprint``, ``data``, ...).
        """
        return self.capture("raven.events.Exception", exc_info=exc_info, **kwargs)

    def captureMessage(self, message: Any, **kwargs: Any) -> Optional[str]:
        """Capture a message (``params=`` for a %-template; ``level`` defaults to error)."""
        return self.capture("raven.events.Message", message=message, **kwargs)

    def captureQuery(
        self, query: Any, params: Any = (), engine: Any = None, **kwargs: Any
    ) -> Optional[str]:
        """Capture a database query as a message event with a ``query`` context."""
        return self.capture(
            "raven.events.Query", query=query, params=params, engine=engine, **kwargs
        )

    def captureBreadcrumb(
        self,
        message: Optional[str] = None,
        timestamp: Any = None,
        level: Optional[str] = None,
        category: Optional[str] = None,
        data: Optional[dict[str, Any]] = None,
        type: Optional[str] = None,
        processor: Optional[Callable[[dict[str, Any]], Any]] = None,
    ) -> None:
        """Record a breadcrumb in this thread's context.

        Args:
            message: What happened.
            timestamp: When (epoch seconds or datetime; now by default).
            level: ``"info"``, ``"warning"``, ...
            category: A dotted category such as ``"ui.click"``.
            data: Details.
            type: The breadcrumb type (``"default"``, ``"http"``, ...).
            processor: Called with the breadcrumb dict when it is sent, to edit it.
        """
        try:
            self._context.breadcrumbs.record(
                timestamp=timestamp,
                level=level,
                message=message,
                category=category,
                data=data,
                type=type,
                processor=processor,
            )
        except Exception:
            logger.debug("raven captureBreadcrumb failed", exc_info=True)

    capture_breadcrumb = captureBreadcrumb

    @overload
    def capture_exceptions(
        self,
        function_or_exceptions: Union[
            type[BaseException], tuple[type[BaseException], ...], None
        ] = None,
        **kwargs: Any,
    ) -> _CaptureExceptions: ...

    @overload
    def capture_exceptions(self, function_or_exceptions: F, **kwargs: Any) -> F: ...

    def capture_exceptions(self, function_or_exceptions: Any = None, **kwargs: Any) -> Any:
        """Capture (and re-raise) exceptions: as a decorator or a ``with`` block.

        ``@client.capture_exceptions``, ``@client.capture_exceptions((IOError,))`` and
        ``with client.capture_exceptions(extra={...}):`` all work; `kwargs` go to
        `captureException`.
        """
        if callable(function_or_exceptions) and not (
            isinstance(function_or_exceptions, type)
            and issubclass(function_or_exceptions, BaseException)
        ):
            return _CaptureExceptions(self, (Exception,), kwargs)(function_or_exceptions)
        exceptions = function_or_exceptions or (Exception,)
        if isinstance(exceptions, type):
            exceptions = (exceptions,)
        return _CaptureExceptions(self, tuple(exceptions), kwargs)

    captureExceptions = capture_exceptions

    # -- lifecycle (tripwire extensions) --------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> None:
        """Wait up to `timeout` seconds for queued events to be sent."""
        if self._tw is not None:
            self._tw.flush(timeout)

    def close(self, timeout: Optional[float] = None) -> None:
        """Flush, then stop the transport; later events are dropped."""
        forget(self)
        if self._tw is not None:
            self._tw.close(timeout)
        self._can_send = False

    def __repr__(self) -> str:
        return f"<tripwire.raven.Client dsn={self.get_public_dsn('https')!r}>"


class _CaptureExceptions:
    """Decorator and context manager returned by `Client.capture_exceptions`."""

    def __init__(
        self, client: Client, exceptions: tuple[type[BaseException], ...], kwargs: dict[str, Any]
    ) -> None:
        self._client = client
        self._exceptions = exceptions
        self._kwargs = kwargs

    def __call__(self, func: F) -> F:
        import functools

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is not None and isinstance(exc, self._exceptions):
            self._client.captureException(exc_info=(exc_type, exc, tb), **self._kwargs)
        # Falls through: the exception is re-raised.


class DummyClient(Client):
    """A client that builds events but sends nothing (raven's ``DummyClient``)."""

    def send(self, auth_header: Any = None, **data: Any) -> Optional[str]:
        """Send nothing."""
        return None


def _merged(*layers: Any) -> dict[str, Any]:
    """Later layers win; their keys also come first.

    The server keeps only the first keys of a large ``extra`` (as sentry_sdk), so the
    most specific data (this call's) goes in front of the client-wide defaults.
    """
    out: dict[str, Any] = {}
    for layer in reversed(layers):
        if isinstance(layer, Mapping):
            for key, value in layer.items():
                out.setdefault(key, value)
    return out


__all__ = ["Client", "DummyClient"]
