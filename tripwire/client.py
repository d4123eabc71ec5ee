"""`Client`: options, the capture steps and the transport; `capture_event` stays short.

Scopes call `Client._capture(event, hint, layers)` (through `tripwire.capture`); the
public `Client.capture_event(event, hint, scope)` is the sentry_sdk-compatible form.

The client is where the SDK is put together, so this module imports everything a
client uses, once, at the top: nothing is imported by the first capture (an import
interrupted by a signal handler that captures too would hand the handler a
half-initialised module). `import tripwire` does not load it (`tripwire.Client` and
`init()` do). The interface the rest of the SDK sees, and the client in force before
`init()`, are `tripwire._client_base`'s (below the scopes).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable

from tripwire import _data_collection as data_collection
from tripwire import _json
from tripwire._batcher import close_batchers, flush_batchers
from tripwire._client_base import NON_RECORDING_CLIENT as NON_RECORDING_CLIENT
from tripwire._client_base import BaseClient as BaseClient
from tripwire._client_base import NonRecordingClient as NonRecordingClient
from tripwire._client_base import capture_guard as capture_guard
from tripwire._clock import clock, format_timestamp
from tripwire._compat import check_uwsgi_thread_support
from tripwire._deprecation import deprecated
from tripwire._late import hooks
from tripwire._log import configure_debug, logger
from tripwire.capture.breadcrumbs import CrumbCache, base_wire_form
from tripwire.capture.gen_ai_spans import split_gen_ai_spans
from tripwire.capture.markers import is_internal
from tripwire.capture.payload import EventPayload
from tripwire.capture.steps import Capture, error_steps, new_event_id, transaction_steps
from tripwire.consts import SDK_NAME, VERSION
from tripwire.dsn import Dsn
from tripwire.envelope import Envelope, Item
from tripwire.event.exceptions import event_from_exception
from tripwire.event.frames import FrameOptions
from tripwire.event.serializer import Serializer
from tripwire.monitor import Monitor
from tripwire.options import build_options
from tripwire.outcomes import DataCategory, Drop, DropReason
from tripwire.scope._global_processors import global_event_processors
from tripwire.scrubber import EventScrubber
from tripwire.sessions import queue_session, update_session_from_event
from tripwire.spotlight import SpotlightTee, sample_all, setup_spotlight
from tripwire.tracing import setup_functions_to_trace
from tripwire.tracing._api import continue_trace_from_environment
from tripwire.transport import lost_event_forwarder, make_transport

if TYPE_CHECKING:
    from tripwire.capture.steps import Step
    from tripwire.scope._scope import Scope
    from tripwire.types import Event, EventDict, ExcInfo, Hint

# The `sdk` metadata every event carries (the client adds its integrations).
SDK_INFO: dict[str, Any] = {
    "name": SDK_NAME,
    "version": VERSION,
    "packages": [{"name": "pypi:tripwire", "version": VERSION}],
}

# True while a client with debug=True is being set up (sentry_sdk.client's name).
_client_init_debug: ContextVar[bool] = ContextVar("client_init_debug", default=False)


def get_options(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The full option dict `Client(*args, **kwargs)` would use (validated, defaults filled).

    As sentry_sdk.client.get_options; raises as `init` does on a bad option.
    """
    return build_options(*args, **kwargs)


class Client(BaseClient):
    """The client: takes the options of `tripwire.init` (dsn may be positional)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(get_options(*args, **kwargs))
        # While the client sets up, its own `debug` decides (as sentry_sdk's contextvar).
        token = _client_init_debug.set(bool(self.options["debug"]))
        try:
            self._setup()
        finally:
            _client_init_debug.reset(token)

    def _setup(self) -> None:
        opts = self.options
        experiments = opts.get("_experiments") or {}
        if (
            opts["profiles_sample_rate"] is not None
            or opts["profiles_sampler"] is not None
            or experiments.get("profiles_sample_rate") is not None
        ):
            deprecated(
                "transaction-based profiling (profiles_sample_rate, profiles_sampler) is"
                " deprecated as in sentry_sdk 2.x: use profile_session_sample_rate"
            )
        if (
            not isinstance(opts["data_collection"], dict)
            or "provided_by_user" not in (opts["data_collection"])
        ):
            data_collection.resolve(opts)  # (an unpickled client's is resolved already)
        if opts["spotlight"] is not False:
            self.spotlight = setup_spotlight(opts)
            if self.spotlight is not None and not opts["dsn"]:
                # As sentry_sdk 2.x: Spotlight alone (local development) sees everything.
                opts["send_default_pii"] = True
                opts["error_sampler"] = opts["traces_sampler"] = sample_all
                opts["profiles_sampler"] = sample_all
                if not data_collection.enabled(opts):
                    opts["data_collection"] = data_collection.from_legacy(
                        True,
                        opts["include_local_variables"] is not False,
                        opts["include_source_context"] is not False,
                    )
        configure_debug(bool(opts["debug"]))
        self._max_breadcrumbs: int = opts["max_breadcrumbs"]
        self._crumb_wire = CrumbCache(self._prepare_crumb, limit=4 * self._max_breadcrumbs + 64)
        self._before_breadcrumb = opts["before_breadcrumb"]
        self._max_value_length: int | None = opts["max_value_length"]
        collect = data_collection.enabled(opts)
        scrubber = opts["event_scrubber"]
        if scrubber is None:
            # Deliberately not sentry_sdk 2.75, which drops the default scrubber when
            # data_collection is given and then sends `password` locals as they are:
            # the scrubber stays, with PII allowed as data_collection's user_info says.
            pii = opts["data_collection"]["user_info"] if collect else opts["send_default_pii"]
            scrubber = opts["event_scrubber"] = EventScrubber(send_default_pii=bool(pii))
        self._scrubber: EventScrubber | None = scrubber
        self._serializer = Serializer(
            max_value_length=opts["max_value_length"],
            custom_repr=opts["custom_repr"],
            cut_filter=getattr(scrubber, "_filtered_copy", None),
        )
        local_vars = data_collection.local_variables(opts)
        context_lines = data_collection.context_lines(opts)
        self._frame_options = FrameOptions(
            include_source_context=context_lines > 0,
            include_local_variables=local_vars,
            context_lines=context_lines,
            in_app_include=opts["in_app_include"],
            in_app_exclude=opts["in_app_exclude"],
            project_root=opts["project_root"],
            max_stack_frames=opts["max_stack_frames"],
            add_full_stack=bool(opts["add_full_stack"]),
            vars_renderer=self._serializer.frame_vars if local_vars else None,
        )
        self._scrubber_is_custom = any(
            getattr(type(scrubber), name, None) is not getattr(EventScrubber, name)
            for name in ("scrub_event", "scrub_breadcrumbs", "scrub_dict")
        )
        self.transport = make_transport(opts)
        if self.spotlight is not None:
            # Every envelope, whoever sends it, also goes to the sidecar.
            self.transport = SpotlightTee(self.transport, self.spotlight)
        if self.transport is not None:
            check_uwsgi_thread_support()  # the worker thread must be able to run
            # The JSON backend (an import attempt of orjson) is picked now, on init()'s
            # thread, whatever the transport: a first import on an application thread
            # while another forks leaves the child that module half-imported, its
            # import lock held by a thread the child does not have (it hangs there).
            _json.dumps(None)
            self.transport._outcomes = self.outcomes
            # Every loss counted in self.outcomes also reaches a transport subclass's own
            # record_lost_event, whichever part of the SDK records it.
            self.outcomes.forward = lost_event_forwarder(self.transport)
            if opts["enable_backpressure_handling"]:
                self.monitor = Monitor(self.transport)
        setup_integrations = hooks.setup_integrations
        self.integrations = setup_integrations(opts) if setup_integrations is not None else {}
        self._sdk_info: dict[str, Any] = {
            **SDK_INFO,
            "packages": [dict(package) for package in SDK_INFO["packages"]],
            "integrations": sorted(self.integrations),
        }
        self._steps: list[Step] = error_steps(self)
        self._transaction_steps: list[Step] = transaction_steps(self)
        self._parsed_dsn: Dsn | None = None
        if opts["dsn"]:
            self._parsed_dsn = Dsn.parse(opts["dsn"])
        if opts["functions_to_trace"]:
            setup_functions_to_trace(self)
        continue_trace_from_environment()

    _recording = True

    def is_active(self) -> bool:
        """True: this client records (it sends only if it has a transport)."""
        return True

    @property
    def parsed_dsn(self) -> Dsn | None:
        """The parsed DSN, if any."""
        return self._parsed_dsn

    # -- capture ------------------------------------------------------------------------

    def capture_event(
        self, event: Event, hint: Hint | None = None, scope: Scope | None = None
    ) -> str | None:
        """Capture a ready-made event; returns its id, or None if it was dropped."""
        try:
            layers = (scope,) if scope is not None else ()
            payload: EventDict = dict(event)
            return self._capture(payload, hint if hint is not None else {}, layers, False)
        except Exception:
            logger.debug("capture_event failed", exc_info=True)
            return None

    def _capture(
        self, event: EventDict, hint: Hint, layers: Sequence[Scope], built_by_sdk: bool
    ) -> str | None:
        guard = capture_guard
        if guard.active:
            logger.debug("capture made while capturing on this thread: ignored")
            return None
        guard.active = True
        try:
            return self._process(event, hint, layers, built_by_sdk)
        except Exception:
            # A bug (ours, or a hook's leftovers we could not make sense of): the
            # event is lost, but counted, never silently.
            logger.warning("internal error while capturing", exc_info=True)
            category = (
                DataCategory.TRANSACTION
                if event.get("type") == "transaction"
                else DataCategory.ERROR
            )
            drop = Drop(DropReason.INTERNAL_SDK_ERROR, "internal error")
            self._record_drop(drop, category, "capture", event)
            return None
        finally:
            guard.active = False

    def _process(
        self, event: EventDict, hint: Hint, layers: Sequence[Scope], built_by_sdk: bool
    ) -> str | None:
        transport = self.transport
        if transport is None:
            logger.debug("event dropped: no DSN and no transport")
            return None
        event_id = new_event_id(event)
        cap = Capture(event, hint, layers, built_by_sdk)
        if event.get("type") == "transaction":
            steps, category = self._transaction_steps, DataCategory.TRANSACTION
        else:
            steps, category = self._steps, DataCategory.ERROR
        for step in steps:
            drop = step(cap)
            if drop is not None:
                self._record_drop(drop, category, step, cap.event)
                return None
        final = cap.event
        if final.get("event_id") != event_id:
            kept = final.get("event_id")
            if not isinstance(kept, str) or not kept:
                # A hook returned a new dict without an id: it keeps the one the
                # caller was given.
                final["event_id"] = kept = event_id
            event_id = kept
        if category is DataCategory.ERROR:
            self._update_session(layers, final)
        transport.capture_envelope(self._envelope_for(final, cap.hint))
        return event_id

    def capture_session(self, session: Any) -> None:
        """Queue a release-health session update for sending."""
        if self.transport is None:
            return
        queue_session(self, session)

    def _update_session(self, layers: Sequence[Scope], event: EventDict) -> None:
        for layer in reversed(layers):
            session = layer._d.session
            if session is not None:
                update_session_from_event(session, event)
                return

    def _record_drop(
        self, drop: Drop, category: DataCategory, step: Any, event: EventDict | None = None
    ) -> None:
        # The one place where a pipeline drop becomes an outcome.
        logger.info(
            "event dropped by %s: %s%s",
            getattr(step, "__name__", step),
            drop.reason.value,
            f" ({drop.detail})" if drop.detail else "",
        )
        self.outcomes.record(drop.reason, category)
        if category is DataCategory.TRANSACTION and event is not None:
            # A dropped transaction loses its spans too (+1 for the root span).
            spans = event.get("spans")
            count = len(spans) + 1 if isinstance(spans, list) else 1
            self.outcomes.record(drop.reason, DataCategory.SPAN, count)

    def _envelope_for(self, event: EventDict, hint: Hint) -> Envelope:
        headers: dict[str, Any] = {
            "event_id": event["event_id"],
            "sent_at": format_timestamp(clock.now()),
        }
        contexts = event.get("contexts")
        trace = contexts.get("trace") if isinstance(contexts, dict) else None
        if isinstance(trace, dict):
            dsc = trace.pop("dynamic_sampling_context", None)
            if dsc:
                headers["trace"] = dsc
        envelope = Envelope(headers=headers)
        is_transaction = event.get("type") == "transaction"
        if is_transaction:
            gen_ai = self._split_gen_ai(event)
            envelope.add_transaction(event)
            if gen_ai is not None:
                envelope.add_item(gen_ai)
        else:
            envelope.add_item(Item(payload=EventPayload(json=event), type="event"))
        for attachment in hint.get("attachments") or ():
            if is_transaction and not attachment.add_to_transactions:
                continue
            envelope.add_item(attachment.to_envelope_item())
        return envelope

    def _split_gen_ai(self, event: EventDict) -> Item | None:
        if not self.options.get("stream_gen_ai_spans", True):
            return None
        try:
            return split_gen_ai_spans(event)
        except Exception:
            logger.debug("gen_ai spans kept in their transaction", exc_info=True)
            return None

    def _event_from_exception(
        self, exc_info: ExcInfo, mechanism: dict[str, Any] | None = None
    ) -> tuple[EventDict, Hint]:
        guard = capture_guard
        outer = guard.active
        guard.active = True  # frame locals' __repr__s run here (see _CaptureGuard)
        try:
            return event_from_exception(exc_info, self._frame_options, mechanism)
        finally:
            guard.active = outer

    def _prepare_crumb(self, crumb: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A breadcrumb's wire form: bounded, scrubbed, with its own `_meta` (cached by Crumb)."""
        mini = self._serializer.event({"breadcrumbs": {"values": [base_wire_form(crumb)]}})
        if self._scrubber is not None:
            self._scrubber.scrub_breadcrumbs(mini)
        meta = mini.get("_meta", {}).get("breadcrumbs", {}).get("values", {}).get("0")
        return mini["breadcrumbs"]["values"][0], meta

    def _has_user_processors(self, layers: Sequence[Scope]) -> bool:
        for layer in layers:
            if layer._event_processors or layer._error_processors:
                return True
        return any(not is_internal(p) for p in global_event_processors)

    # -- lifecycle ---------------------------------------------------------------------------

    def flush(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Wait up to `timeout` (default shutdown_timeout) seconds for queued events."""
        if timeout is None:
            timeout = self.options["shutdown_timeout"]
        if self.spotlight is not None:
            self.spotlight.flush(timeout)
        transport = self.transport
        if transport is None:
            return
        # Batched items (logs, sessions) go to the transport first, then out with it; a
        # failing batcher must not keep the transport's queue from being flushed.
        try:
            flush_batchers(self)
        except Exception:
            logger.debug("flushing batched items failed", exc_info=True)
        inner = self._async_transport()
        if inner is not None and inner.on_its_loop():
            # Waiting here would block the loop the transport sends from (as sentry_sdk).
            warnings.warn(
                "flush() used with AsyncHttpTransport. Use flush_async() instead.", stacklevel=2
            )
            return
        try:
            transport.flush(timeout, callback)
        except Exception:
            logger.debug("flush failed", exc_info=True)

    def _async_transport(self) -> Any:
        """The AsyncHttpTransport this client sends through (behind Spotlight too), or None."""
        transport = self.transport
        inner = getattr(transport, "inner", transport)
        return inner if getattr(inner, "is_async", False) else None

    def _has_async_transport(self) -> bool:
        """Whether the client sends through an AsyncHttpTransport (sentry_sdk's name)."""
        return self._async_transport() is not None

    async def flush_async(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Wait up to `timeout` seconds for queued events, without blocking the loop.

        With the async transport, awaits its flush on the loop; with another
        transport, runs `flush` in the loop's executor (sentry_sdk 2.75 does
        nothing there).
        """
        inner = self._async_transport()
        if inner is None:
            await BaseClient.flush_async(self, timeout, callback)
            return
        if timeout is None:
            timeout = self.options["shutdown_timeout"]
        if self.spotlight is not None:
            self.spotlight.flush(timeout)
        try:
            flush_batchers(self)
        except Exception:
            logger.debug("flushing batched items failed", exc_info=True)
        task = inner.flush(timeout, callback)
        if task is not None:
            await task

    async def close_async(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Flush (awaited), then shut the transport down; later captures are dropped."""
        if self._async_transport() is None:
            await BaseClient.close_async(self, timeout, callback)
            return
        try:
            close_batchers(self)
        except Exception:
            logger.debug("closing batchers failed", exc_info=True)
        await self.flush_async(timeout, callback)
        self.close(timeout=0.0)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()

    def close(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Flush, then shut the transport down; later captures are dropped."""
        if self.monitor is not None:
            self.monitor.kill()
            self.monitor = None
        if self.spotlight is not None:
            self.spotlight.flush(timeout if timeout is not None else 1.0)
            self.spotlight.kill()
            self.spotlight = None
        transport = self.transport
        if transport is None:
            return
        try:
            # Stop the batchers' flusher threads; what they hold goes out with this flush.
            close_batchers(self)
        except Exception:
            logger.debug("closing batchers failed", exc_info=True)
        inner = self._async_transport()
        if inner is None:
            self.flush(timeout, callback)
        elif timeout != 0.0:  # 0.0: close_async() flushed already
            if inner.on_its_loop():
                warnings.warn(
                    "close() used with AsyncHttpTransport. Use close_async() instead.",
                    stacklevel=2,
                )
            # Unlike sentry_sdk, what is queued is not lost: the transport's worker
            # thread sends it while this waits (blocking the loop, as a sync close does).
            try:
                inner.flush_sync(
                    self.options["shutdown_timeout"] if timeout is None else timeout, callback
                )
            except Exception:
                logger.debug("flush failed", exc_info=True)
        try:
            transport.kill()
        except Exception:
            logger.debug("transport kill failed", exc_info=True)
        self.transport = None

    # Pickling keeps the options only: the copy builds its own transport, worker and
    # integrations on load, and can send (as a sentry_sdk 2.x client can).
    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        BaseClient.__init__(self, state["options"])
        self._setup()

    def __repr__(self) -> str:
        return f"<tripwire.Client dsn={self.dsn!r}>"


_Client = Client
