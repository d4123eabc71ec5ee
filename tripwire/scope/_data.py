"""The data record behind a Scope, shared between forks until one of them writes.

A fork copies one reference. The first write by either side copies the record
(about twenty references); each container in it (tags, extras, breadcrumbs, ...)
is copied on its own first write. `owned` says which containers this record may
mutate in place; a fresh copy owns none of them.
"""

from __future__ import annotations

from typing import Any

TAGS = 1
CONTEXTS = 2
EXTRAS = 4
CRUMBS = 8
PROCESSORS = 16
ERROR_PROCESSORS = 32
ATTACHMENTS = 64
ATTRIBUTES = 128
FLAGS = 256

# Shared, never-mutated empty containers (a record copies before its first write).
EMPTY_DICT: dict[str, Any] = {}
EMPTY_SEQ: tuple[Any, ...] = ()


class ScopeData:
    """Everything a scope carries, in one record."""

    __slots__ = (
        "attachments",
        "attributes",
        "breadcrumbs",
        "contexts",
        "conversation_id",
        "error_processors",
        "event_processors",
        "extras",
        "fingerprint",
        "flags",
        "force_auto_session_tracking",
        "last_event_id",
        "level",
        "owned",
        "profile",
        "propagation_context",
        "session",
        "span",
        "tags",
        "transaction",
        "transaction_info",
        "user",
    )

    def __init__(self) -> None:
        self.level: str | None = None
        self.fingerprint: list[str] | None = None
        self.transaction: str | None = None
        self.transaction_info: dict[str, Any] = EMPTY_DICT
        self.user: dict[str, Any] | None = None
        self.tags: dict[str, Any] = EMPTY_DICT
        self.contexts: dict[str, Any] = EMPTY_DICT
        self.extras: dict[str, Any] = EMPTY_DICT
        self.attributes: dict[str, Any] = EMPTY_DICT
        self.breadcrumbs: Any = EMPTY_SEQ
        self.event_processors: Any = EMPTY_SEQ
        self.error_processors: Any = EMPTY_SEQ
        self.attachments: Any = EMPTY_SEQ
        self.span: Any = None
        self.session: Any = None
        self.profile: Any = None
        self.force_auto_session_tracking: bool | None = None
        self.propagation_context: Any = None
        self.last_event_id: str | None = None
        self.flags: Any = None  # a FlagBuffer once a flag is evaluated (FLAGS bit: owned)
        self.conversation_id: str | None = None
        self.owned = 0

    def copy(self) -> ScopeData:
        """A record sharing this one's containers (owning none of them)."""
        new = ScopeData.__new__(ScopeData)
        new.level = self.level
        new.fingerprint = self.fingerprint
        new.transaction = self.transaction
        new.transaction_info = self.transaction_info
        new.user = self.user
        new.tags = self.tags
        new.contexts = self.contexts
        new.extras = self.extras
        new.attributes = self.attributes
        new.breadcrumbs = self.breadcrumbs
        new.event_processors = self.event_processors
        new.error_processors = self.error_processors
        new.attachments = self.attachments
        new.span = self.span
        new.session = self.session
        new.profile = self.profile
        new.force_auto_session_tracking = self.force_auto_session_tracking
        new.propagation_context = self.propagation_context
        new.last_event_id = self.last_event_id
        new.flags = self.flags
        new.conversation_id = self.conversation_id
        new.owned = 0
        return new


# The record of every fresh Scope: never written to (the first write copies it).
EMPTY_DATA = ScopeData()
