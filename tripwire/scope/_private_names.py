"""sentry_sdk's private scope attribute names (`scope._tags`, `scope._span`, ...).

Integrations and user code written for sentry_sdk read and sometimes assign these;
here they are properties over the scope's `ScopeData` record (assigning one copies
the record first if it is shared, like any other write).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tripwire.scope._data import (
    ATTACHMENTS,
    ATTRIBUTES,
    CONTEXTS,
    CRUMBS,
    ERROR_PROCESSORS,
    EXTRAS,
    PROCESSORS,
    TAGS,
)

if TYPE_CHECKING:
    from tripwire.scope._data import ScopeData


def _data_property(name: str, doc: str) -> Any:
    """`scope._<name>` for code written against sentry_sdk's private attributes."""

    def fget(self: PrivateNames) -> Any:
        return getattr(self._d, name)

    def fset(self: PrivateNames, value: Any) -> None:
        data = self._w()
        setattr(data, name, value)
        if name in _CONTAINER_BITS:
            data.owned |= _CONTAINER_BITS[name]
            if name == "tags":
                self._own_tags()  # the new dict is written in place from now on, as before

    return property(fget, fset, doc=doc)


_CONTAINER_BITS = {
    "tags": TAGS,
    "contexts": CONTEXTS,
    "extras": EXTRAS,
    "breadcrumbs": CRUMBS,
    "event_processors": PROCESSORS,
    "error_processors": ERROR_PROCESSORS,
    "attachments": ATTACHMENTS,
    "attributes": ATTRIBUTES,
}


class PrivateNames:
    """Mixed into `Scope`."""

    __slots__ = ()

    if TYPE_CHECKING:
        _d: ScopeData

        def _own_tags(self) -> dict[str, Any]: ...

        def _w(self) -> ScopeData: ...

    _level = _data_property("level", "The level override.")
    _user = _data_property("user", "The user.")
    _tags = _data_property("tags", "The tags.")
    _contexts = _data_property("contexts", "The contexts.")
    _extras = _data_property("extras", "The extra values.")
    _attributes = _data_property("attributes", "The log/metric attributes.")
    _breadcrumbs = _data_property("breadcrumbs", "The breadcrumb ring.")
    _event_processors = _data_property("event_processors", "The event processors.")
    _error_processors = _data_property("error_processors", "The error processors.")
    _attachments = _data_property("attachments", "The attachments.")
    _fingerprint = _data_property("fingerprint", "The fingerprint override.")
    _transaction = _data_property("transaction", "The transaction name.")
    _transaction_info = _data_property("transaction_info", "The transaction source info.")
    _span = _data_property("span", "The active span.")
    _session = _data_property("session", "The release-health session.")
    _profile = _data_property("profile", "The active profile.")
    _propagation_context = _data_property("propagation_context", "The propagation context.")
    _last_event_id = _data_property("last_event_id", "The last captured event id.")
    _force_auto_session_tracking = _data_property(
        "force_auto_session_tracking", "Session tracking override."
    )
