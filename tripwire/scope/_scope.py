"""`Scope`: the data that enriches events, with forks that cost four assignments.

sentry_sdk 2.x keeps three scopes (global, isolation, current; see `_current.py`)
and forks one for every request and every `new_scope()`. Here a scope points to a
`ScopeData` record; a fork shares it, and whichever side writes first copies it
(see `_data.py`). `_mine` says whether this scope may write its record in place;
`_tw` is the tags dict it may write in place (None until a write has made it its
own), so that `tripwire.set_tag` is one attribute read and a dict store.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, cast

from tripwire._client_base import NON_RECORDING_CLIENT, NonRecordingClient
from tripwire._late import hooks
from tripwire._log import logger
from tripwire.scope import _current
from tripwire.scope._breadcrumbs import append_counted, copy_ring, record_breadcrumb
from tripwire.scope._data import (
    ATTACHMENTS,
    ATTRIBUTES,
    CONTEXTS,
    CRUMBS,
    EMPTY_DATA,
    ERROR_PROCESSORS,
    EXTRAS,
    FLAGS,
    PROCESSORS,
    TAGS,
    ScopeData,
)
from tripwire.scope._flags import DEFAULT_FLAG_CAPACITY, FlagBuffer
from tripwire.scope._private_names import PrivateNames
from tripwire.scope._scope_tracing import TracingMethods

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.types import (
        Breadcrumb,
        BreadcrumbHint,
        ErrorProcessor,
        Event,
        EventDict,
        EventProcessor,
        ExceptionLike,
        ExcInfo,
        Hint,
    )

_NO_TRANSACTION = "Scope.transaction is not available in streaming mode."


def _name_events_after(data: ScopeData, span: Any) -> None:
    """A transaction or segment made active: the scope's events take its name."""
    name = getattr(span, "name", None)
    if name:
        data.transaction = name
        source = getattr(span, "source", None)
        if source:
            data.transaction_info = {"source": source}


SCOPE_KWARGS = frozenset({"user", "level", "extras", "extra", "contexts", "tags", "fingerprint"})


class ScopeType:
    """The kinds of scope (strings, as sentry_sdk's enum values)."""

    CURRENT = "current"
    ISOLATION = "isolation"
    GLOBAL = "global"
    MERGED = "merged"


class Scope(TracingMethods, PrivateNames):
    """Holds extra information that is sent with every event captured in it."""

    __slots__ = ("_client", "_d", "_mine", "_tw", "_type")

    # Set once any scope gets a conversation id (read by span finish; never reset).
    conversations_used: bool = False

    def __init__(self, ty: str | None = None, client: BaseClient | None = None) -> None:
        self._type = ty
        self._d = EMPTY_DATA
        self._mine = False
        # Invariant: `_tw` is `_d.tags` when this scope owns both, else None.
        self._tw: dict[str, Any] | None = None
        self._client: BaseClient | None = None
        if client is not None:
            self.set_client(client)

    def _w(self) -> ScopeData:
        """This scope's record, copied first if it is shared."""
        if self._mine:
            return self._d
        data = self._d = self._d.copy()
        self._mine = True
        self._tw = None  # the copy owns no container yet
        return data

    # -- forking ----------------------------------------------------------------------

    def fork(self) -> Scope:
        """A copy of this scope; the data is shared until either side writes."""
        new = Scope.__new__(Scope)
        new._type = self._type
        new._client = self._client
        new._d = self._d
        new._mine = False
        new._tw = None
        self._mine = False  # the parent must copy before its next write too
        self._tw = None
        return new

    __copy__ = fork

    # -- scopes and client ----------------------------------------------------------------

    @classmethod
    def get_current_scope(cls) -> Scope:
        """The current scope of this context."""
        return _current.get_current_scope()

    @classmethod
    def get_isolation_scope(cls) -> Scope:
        """The isolation scope of this context."""
        return _current.get_isolation_scope()

    @classmethod
    def get_global_scope(cls) -> Scope:
        """The process-wide global scope."""
        return _current.get_global_scope()

    @classmethod
    def set_current_scope(cls, new_current_scope: Scope) -> None:
        """Make `new_current_scope` the current scope of this context."""
        _current._current_scope.set(new_current_scope)

    @classmethod
    def set_isolation_scope(cls, new_isolation_scope: Scope) -> None:
        """Make `new_isolation_scope` the isolation scope of this context."""
        _current._isolation_scope.set(new_isolation_scope)

    @classmethod
    def get_client(cls) -> BaseClient:
        """The active client: current scope's, else isolation's, else global's."""
        return _current.get_client()

    @property
    def client(self) -> BaseClient:
        """The client bound to this very scope; a non-recording one if none is.

        As in sentry_sdk 2.x, never None: `Scope().client.is_active()` is False.
        """
        client = self._client
        return NON_RECORDING_CLIENT if client is None else client

    @client.setter
    def client(self, value: BaseClient | None) -> None:
        self.set_client(value)

    def set_client(self, client: BaseClient | None = None) -> None:
        """Bind `client` to this scope (None, or a non-recording client, unbinds).

        An unbound scope defers to the next scope out (current, isolation, global), as
        a scope holding sentry_sdk's NonRecordingClient does.
        """
        if client is not None and isinstance(client, NonRecordingClient):
            client = None
        self._client = client
        if self._type == ScopeType.GLOBAL:
            if self is _current._global.scope:
                _current.note_global_client(client)
        elif client is not None:
            _current.note_scoped_client()

    def is_forked(self) -> bool:
        """Kept for sentry_sdk compatibility."""
        return False

    @classmethod
    def last_event_id(cls) -> str | None:
        """Id of the last event captured in the current isolation scope."""
        return _current.get_isolation_scope()._d.last_event_id

    # -- simple fields ------------------------------------------------------------------

    def set_level(self, value: str) -> None:
        """Override the level of every event captured in this scope."""
        self._w().level = value

    @property
    def level(self) -> str | None:
        """Deprecated: use `set_level`."""
        return self._d.level

    @level.setter
    def level(self, value: str | None) -> None:
        self._w().level = value

    @property
    def fingerprint(self) -> list[str] | None:
        """When set, overrides the default grouping fingerprint."""
        return self._d.fingerprint

    @fingerprint.setter
    def fingerprint(self, value: list[str] | None) -> None:
        self._w().fingerprint = value

    def set_user(self, value: dict[str, Any] | None) -> None:
        """Bind a user (None clears it)."""
        data = self._d if self._mine else self._w()
        data.user = value
        session = data.session
        if session is not None and value is not None:
            update = getattr(session, "update", None)
            if update is not None:
                update(user=value)

    @property
    def user(self) -> dict[str, Any] | None:
        """Deprecated: use `set_user`."""
        return self._d.user

    @user.setter
    def user(self, value: dict[str, Any] | None) -> None:
        self.set_user(value)

    @property
    def transaction(self) -> Any:
        """The transaction (root span) of this scope's span, if any.

        None under a streamed span, with sentry_sdk 2.75's warning.
        """
        span = self._d.span
        if span is None:
            return None
        if getattr(span, "_streamed", False):
            warnings.warn(_NO_TRANSACTION, DeprecationWarning, stacklevel=2)
            return None
        return getattr(span, "containing_transaction", None)

    @transaction.setter
    def transaction(self, value: str) -> None:
        # sentry_sdk 1.x allowed `scope.transaction = "name"`: it names the events; a
        # streamed span's segment keeps its name (with a warning), as sentry_sdk 2.75's,
        # which also logs (seen with debug=True) that the assignment is deprecated.
        logger.warning(
            "scope.transaction = name is deprecated: call scope.set_transaction_name(name)"
        )
        data = self._w()
        data.transaction = value
        span = data.span
        if getattr(span, "_streamed", False):
            warnings.warn(_NO_TRANSACTION, DeprecationWarning, stacklevel=2)
            return
        tx = getattr(span, "containing_transaction", None)
        if tx is not None:
            tx.name = value

    def set_transaction_name(self, name: str, source: str | None = None) -> None:
        """Set the transaction name (and its source) for events and the active transaction
        (or segment)."""
        data = self._w()
        data.transaction = name
        tx = getattr(data.span, "containing_transaction", None)
        if tx is not None:
            tx.name = name
            if source:
                tx.source = source
        if source:
            data.transaction_info = {"source": source}

    @property
    def span(self) -> Any:
        """The active span or transaction; None under a streamed span (see `streamed_span`),
        as in sentry_sdk 2.75."""
        span = self._d.span
        if span is not None and getattr(span, "_streamed", False):
            return None
        return span

    @span.setter
    def span(self, span: Any) -> None:
        # Any span, a streamed one too (as sentry_sdk's); only a transaction names events.
        data = self._w()
        data.span = span
        if (
            span is not None
            and not getattr(span, "_streamed", False)
            and getattr(span, "containing_transaction", None) is span
        ):
            _name_events_after(data, span)

    @property
    def streamed_span(self) -> Any:
        """The active span if it is a streamed span (``trace_lifecycle="stream"``), else None."""
        span = self._d.span
        return span if getattr(span, "_streamed", False) else None

    @streamed_span.setter
    def streamed_span(self, span: Any) -> None:
        # Any span (as sentry_sdk's); a streamed segment names the scope's events.
        data = self._w()
        data.span = span
        if getattr(span, "_streamed", False) and span.containing_transaction is span:
            _name_events_after(data, span)

    @property
    def profile(self) -> Any:
        """The active profile, if any."""
        return self._d.profile

    @profile.setter
    def profile(self, value: Any) -> None:
        self._w().profile = value

    @property
    def flags(self) -> FlagBuffer:
        """This scope's feature flag evaluations (see `tripwire.feature_flags`).

        The buffer belongs to this scope alone: a fork gets a copy on first access.
        """
        data = self._d
        if self._mine and data.owned & FLAGS:
            return data.flags  # type: ignore[no-any-return]
        data = self._w()
        buffer: FlagBuffer | None = data.flags
        if buffer is None:
            capacity = (self.get_client().options.get("_experiments") or {}).get(
                "max_flags"
            ) or DEFAULT_FLAG_CAPACITY
            buffer = FlagBuffer(capacity=capacity)
        else:
            buffer = buffer.copy()
        data.flags = buffer
        data.owned |= FLAGS
        return buffer

    def set_conversation_id(self, conversation_id: str) -> None:
        """Set the conversation id that gen_ai spans finished in this scope carry."""
        self._w().conversation_id = conversation_id
        # Until a conversation id is set anywhere, finishing a span skips the AI check.
        Scope.conversations_used = True

    def get_conversation_id(self) -> str | None:
        """The conversation id for gen_ai spans, if set."""
        return self._d.conversation_id

    def remove_conversation_id(self) -> None:
        """Forget the conversation id."""
        if self._d.conversation_id is not None:
            self._w().conversation_id = None

    # -- containers (each copied on its first write) ---------------------------------------

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag."""
        tags = self._tw
        if tags is None:
            tags = self._own_tags()
        tags[key] = value

    def set_tags(self, tags: Any) -> None:
        """Set several tags from a mapping."""
        own = self._tw
        if own is None:
            own = self._own_tags()
        own.update(tags)

    def _own_tags(self) -> dict[str, Any]:
        """The tags dict, copied first if this scope shares it (see `_tw`)."""
        data = self._d if self._mine else self._w()
        if not data.owned & TAGS:
            data.tags = dict(data.tags)
            data.owned |= TAGS
        tags = self._tw = data.tags
        return tags

    def remove_tag(self, key: str) -> None:
        """Remove a tag if present."""
        self._remove("tags", TAGS, key)

    def set_context(self, key: str, value: Any) -> None:
        """Bind a context object under `key`."""
        data = self._w()
        if not data.owned & CONTEXTS:
            data.contexts = dict(data.contexts)
            data.owned |= CONTEXTS
        data.contexts[key] = value

    def remove_context(self, key: str) -> None:
        """Remove a context if present."""
        self._remove("contexts", CONTEXTS, key)

    def set_extra(self, key: str, value: Any) -> None:
        """Set an extra value."""
        data = self._d if self._mine else self._w()
        if not data.owned & EXTRAS:
            data.extras = dict(data.extras)
            data.owned |= EXTRAS
        data.extras[key] = value

    def remove_extra(self, key: str) -> None:
        """Remove an extra value if present."""
        self._remove("extras", EXTRAS, key)

    def set_attribute(self, attribute: str, value: Any) -> None:
        """Set an attribute applied to logs and metrics."""
        data = self._w()
        if not data.owned & ATTRIBUTES:
            data.attributes = dict(data.attributes)
            data.owned |= ATTRIBUTES
        data.attributes[attribute] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        """Set several attributes."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def remove_attribute(self, attribute: str) -> None:
        """Remove an attribute if present."""
        self._remove("attributes", ATTRIBUTES, attribute)

    def _remove(self, field: str, bit: int, key: str) -> None:
        if key not in getattr(self._d, field):
            return
        if bit == TAGS:
            del self._own_tags()[key]
            return
        data = self._w()
        if not data.owned & bit:
            setattr(data, field, dict(getattr(data, field)))
            data.owned |= bit
        del getattr(data, field)[key]

    def _append(self, field: str, bit: int, value: Any) -> None:
        data = self._w()
        if not data.owned & bit:
            setattr(data, field, list(getattr(data, field)))
            data.owned |= bit
        getattr(data, field).append(value)

    def add_event_processor(self, func: EventProcessor) -> None:
        """Register a processor run on every event captured in this scope."""
        self._append("event_processors", PROCESSORS, func)

    def add_error_processor(
        self, func: ErrorProcessor, cls: type[BaseException] | None = None
    ) -> None:
        """Register a processor run on error events (only for `cls` when given)."""
        if cls is not None:
            inner = func

            def func(event: EventDict, exc_info: ExcInfo) -> EventDict | None:
                try:
                    matches = isinstance(exc_info[1], cls)
                except Exception:
                    matches = False
                return inner(event, exc_info) if matches else event

        self._append("error_processors", ERROR_PROCESSORS, func)

    def add_attachment(
        self,
        bytes: bytes | Callable[[], bytes] | None = None,
        filename: str | None = None,
        path: str | None = None,
        content_type: str | None = None,
        add_to_transactions: bool = False,
    ) -> None:
        """Attach a file or bytes to every future event of this scope."""
        # Lazy: attachments load the envelope module and json, off `import tripwire`.
        from tripwire.attachments import Attachment

        attachment = Attachment(
            bytes=bytes,
            filename=filename,
            path=path,
            content_type=content_type,
            add_to_transactions=add_to_transactions,
        )
        self._append("attachments", ATTACHMENTS, attachment)

    # -- breadcrumbs ----------------------------------------------------------------------

    def add_breadcrumb(
        self, crumb: Breadcrumb | None = None, hint: BreadcrumbHint | None = None, **kwargs: Any
    ) -> None:
        """Record a breadcrumb (run through before_breadcrumb, capped at max_breadcrumbs)."""
        record_breadcrumb(self, crumb, hint, kwargs)

    def append_breadcrumb(self, crumb: dict[str, Any], limit: int) -> None:
        """Append an already-processed breadcrumb to the ring (oldest ones fall off)."""
        data = self._d if self._mine else self._w()
        ring = data.breadcrumbs
        if data.owned & CRUMBS and ring.maxlen == limit:
            append_counted(ring, crumb)
            return
        ring = data.breadcrumbs = copy_ring(ring, limit)
        data.owned |= CRUMBS
        append_counted(ring, crumb)

    def clear_breadcrumbs(self) -> None:
        """Forget all breadcrumbs of this scope."""
        data = self._w()
        data.breadcrumbs = ()
        data.owned &= ~CRUMBS

    # -- whole-scope operations -----------------------------------------------------------

    def clear(self) -> None:
        """Reset all data of this scope; its client and processors stay (as sentry_sdk's)."""
        old = self._d
        self._d = EMPTY_DATA
        self._mine = False
        self._tw = None
        if old.event_processors or old.error_processors:
            data = self._w()  # shares the lists, owning neither: the next add copies
            data.event_processors = old.event_processors
            data.error_processors = old.error_processors

    def update_from_scope(self, scope: Scope) -> None:
        """Copy `scope`'s data over this scope's (its non-empty values win)."""
        other = scope._d
        data = self._w()
        for name in ("level", "fingerprint", "user", "span", "session", "profile"):
            value = getattr(other, name)
            if value is not None:
                setattr(data, name, value)
        if other.propagation_context is not None:
            data.propagation_context = other.propagation_context
        if other.conversation_id:
            data.conversation_id = other.conversation_id
        if other.flags is not None:
            if data.flags is None:
                data.flags = other.flags.copy()
                data.owned |= FLAGS
            else:
                self.flags._update(other.flags)
        if other.transaction is not None:
            data.transaction = other.transaction
            data.transaction_info = dict(other.transaction_info)
        if other.tags:
            self.set_tags(other.tags)
        for key, value in other.contexts.items():
            self.set_context(key, value)
        for key, value in other.extras.items():
            self.set_extra(key, value)
        if other.attributes:
            self.set_attributes(other.attributes)
        if other.breadcrumbs:
            limit = max(len(data.breadcrumbs) + len(other.breadcrumbs), 1)
            for crumb in other.breadcrumbs:
                self.append_breadcrumb(crumb, limit)
            data.breadcrumbs.truncated += getattr(other.breadcrumbs, "truncated", 0)
        for processor in other.event_processors:
            self._append("event_processors", PROCESSORS, processor)
        for err_processor in other.error_processors:
            self._append("error_processors", ERROR_PROCESSORS, err_processor)
        for attachment in other.attachments:
            self._append("attachments", ATTACHMENTS, attachment)

    def update_from_kwargs(
        self,
        user: Any | None = None,
        level: str | None = None,
        extras: dict[str, Any] | None = None,
        contexts: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        fingerprint: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Apply capture keyword arguments; `extra` is accepted as an alias of `extras`."""
        data = self._w()
        if level is not None:
            data.level = level
        if user is not None:
            data.user = user
        for bag in (extras, extra):
            if bag:
                for key, value in bag.items():
                    self.set_extra(key, value)
        if contexts:
            for key, value in contexts.items():
                self.set_context(key, value)
        if tags:
            self.set_tags(tags)
        if fingerprint is not None:
            data.fingerprint = fingerprint

    # -- capture ---------------------------------------------------------------------------

    def capture_event(
        self,
        event: Event,
        hint: Hint | None = None,
        scope: Scope | None = None,
        **scope_kwargs: Any,
    ) -> str | None:
        """Capture `event` with this scope's data (see `Client.capture_event`)."""
        return hooks.capture.capture_event(self, event, hint, scope, scope_kwargs)

    def capture_message(
        self,
        message: str,
        level: str | None = None,
        scope: Scope | None = None,
        **scope_kwargs: Any,
    ) -> str | None:
        """Capture a message (level "info" unless given)."""
        return hooks.capture.capture_message(self, message, level, scope, scope_kwargs)

    def capture_exception(
        self,
        error: ExceptionLike | None = None,
        scope: Scope | None = None,
        **scope_kwargs: Any,
    ) -> str | None:
        """Capture an exception (the one being handled when `error` is None)."""
        return hooks.capture.capture_exception(self, error, scope, scope_kwargs)

    def apply_to_event(
        self, event: Event, hint: Hint, options: dict[str, Any] | None = None
    ) -> Event | None:
        """Apply this scope's data (and its processors) to `event`; None if dropped."""
        result = hooks.capture.apply_layers(
            cast("EventDict", event), hint, (self,), self.get_client()
        )
        return cast("Event", result) if isinstance(result, dict) else None

    def __repr__(self) -> str:
        return f"<Scope id={id(self):#x} name={self._type}>"
