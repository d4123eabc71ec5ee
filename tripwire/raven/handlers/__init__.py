"""raven 6.x handlers (`raven.handlers`): see `tripwire.raven.handlers.logging`."""

from __future__ import annotations
